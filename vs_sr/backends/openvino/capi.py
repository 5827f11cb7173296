"""A small ctypes binding of OpenVINO's C API: read, reshape, compile, infer.

Why not the `openvino` Python package: VapourSynth autoloads vs-mlrt's ov plugin, which brings
its own libopenvino with the same soname. Whichever copy loads first serves the whole process,
and the Python package refuses to run on a copy that is not its own build ("OpenVINO Python
version mismatches with OpenVINO Runtime library"). The C API has no such check, so we use the
libopenvino_c that sits beside the libopenvino already loaded (the same build), or the pip
package's own libraries when none is loaded yet. ctypes releases the GIL during every call.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import sys
from ctypes import POINTER, Structure, byref, c_bool, c_char_p, c_int, c_int64, c_size_t, c_void_p
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SRError

F32 = 4  # ov_element_type_e


class Shape(Structure):
    _fields_ = [("rank", c_int64), ("dims", POINTER(c_int64))]


class Dimension(Structure):
    _fields_ = [("min", c_int64), ("max", c_int64)]


class PartialShape(Structure):
    _fields_ = [("rank", Dimension), ("dims", POINTER(Dimension))]


class Version(Structure):
    _fields_ = [("buildNumber", c_char_p), ("description", c_char_p)]


SIGNATURES = {
    "ov_core_create": [POINTER(c_void_p)],
    "ov_core_free": [c_void_p],
    "ov_core_read_model": [c_void_p, c_char_p, c_char_p, POINTER(c_void_p)],
    "ov_core_get_property": [c_void_p, c_char_p, c_char_p, POINTER(c_void_p)],
    "ov_model_is_dynamic": [c_void_p],
    "ov_model_reshape_single_input": [c_void_p, PartialShape],
    "ov_model_free": [c_void_p],
    "ov_output_const_port_free": [c_void_p],
    "ov_partial_shape_create_static": [c_int64, POINTER(c_int64), POINTER(PartialShape)],
    "ov_partial_shape_free": [POINTER(PartialShape)],
    "ov_compiled_model_create_infer_request": [c_void_p, POINTER(c_void_p)],
    "ov_compiled_model_input": [c_void_p, POINTER(c_void_p)],
    "ov_compiled_model_output": [c_void_p, POINTER(c_void_p)],
    "ov_const_port_get_shape": [c_void_p, POINTER(Shape)],
    "ov_compiled_model_free": [c_void_p],
    "ov_infer_request_set_input_tensor_by_index": [c_void_p, c_size_t, c_void_p],
    "ov_infer_request_set_output_tensor_by_index": [c_void_p, c_size_t, c_void_p],
    "ov_infer_request_start_async": [c_void_p],
    "ov_infer_request_wait": [c_void_p],
    "ov_infer_request_free": [c_void_p],
    "ov_tensor_create_from_host_ptr": [c_int, Shape, c_void_p, POINTER(c_void_p)],
    "ov_tensor_free": [c_void_p],
    "ov_shape_create": [c_int64, POINTER(c_int64), POINTER(Shape)],
    "ov_shape_free": [POINTER(Shape)],
    "ov_get_openvino_version": [POINTER(Version)],
    "ov_version_free": [POINTER(Version)],
    "ov_free": [c_void_p],
}


def _loaded_openvino_dir() -> Path | None:
    """Directory of a libopenvino already mapped into this process (Linux), if any."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and "/libopenvino.so" in fields[5]:
            return Path(fields[5].strip()).parent
    return None


def _pip_libs_dir() -> Path | None:
    spec = importlib.util.find_spec("openvino")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "libs"


def _c_library_in(directory: Path | None) -> Path | None:
    if directory is None:
        return None
    pattern = "openvino_c.dll" if sys.platform == "win32" else "libopenvino_c.*"
    found = sorted(directory.glob(pattern))
    return found[0] if found else None


class OpenVINOLibrary:
    """The loaded C library with typed functions; every call is checked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lib = ctypes.CDLL(str(path))
        for name, argtypes in SIGNATURES.items():
            function = getattr(self._lib, name)
            function.argtypes = argtypes
            function.restype = c_bool if name == "ov_model_is_dynamic" else c_int
        self._lib.ov_core_compile_model.restype = c_int  # variadic: argtypes left open
        self._last_error = getattr(self._lib, "ov_get_last_err_msg", None)
        if self._last_error is not None:
            self._last_error.restype = c_char_p
            self._last_error.argtypes = []

    def call(self, name: str, *args: object) -> None:
        status = getattr(self._lib, name)(*args)
        if status != 0:
            detail = self._last_error().decode(errors="replace").strip() if self._last_error else ""
            raise RuntimeError(f"{name} failed with status {status}" + (f": {detail}" if detail else ""))

    def raw(self, name: str) -> Any:
        return getattr(self._lib, name)

    @functools.cached_property
    def version(self) -> str:
        version = Version()
        self.call("ov_get_openvino_version", byref(version))
        text: str = version.buildNumber.decode()  # a ctypes field: bytes, which ctypes leaves untyped
        self.raw("ov_version_free")(byref(version))
        return text


@functools.cache
def library() -> OpenVINOLibrary:
    """The OpenVINO C library this process should use (see the module docstring)."""
    path = _c_library_in(_loaded_openvino_dir()) or _c_library_in(_pip_libs_dir())
    if path is None:
        raise SRError("OpenVINO is not installed: pip install openvino")
    return OpenVINOLibrary(path)


class Core:
    def __init__(self) -> None:
        self.lib = library()
        self._handle = c_void_p()
        self.lib.call("ov_core_create", byref(self._handle))

    def property(self, device: str, key: str) -> str:
        value = c_void_p()
        self.lib.call("ov_core_get_property", self._handle, device.encode(), key.encode(), byref(value))
        text = ctypes.string_at(value).decode()
        self.lib.raw("ov_free")(value)
        return text

    def compile(self, model_path: Path, shape: tuple[int, ...], device: str, config: dict[str, str]) -> "CompiledModel":
        """Read an ONNX/IR file, pin its input to `shape` if it is dynamic, and compile it."""
        model = c_void_p()
        self.lib.call("ov_core_read_model", self._handle, str(model_path).encode(), None, byref(model))
        try:
            if self.lib.raw("ov_model_is_dynamic")(model):
                self._reshape(model, shape)
            compiled = c_void_p()
            args: list[object] = []
            for key, value in config.items():
                args += [c_char_p(key.encode()), c_char_p(str(value).encode())]
            self.lib.call("ov_core_compile_model", self._handle, model, c_char_p(device.encode()),
                          c_size_t(len(args)), byref(compiled), *args)
        finally:
            self.lib.raw("ov_model_free")(model)
        return CompiledModel(self.lib, compiled)

    def _reshape(self, model: c_void_p, shape: tuple[int, ...]) -> None:
        partial = PartialShape()
        dims = (c_int64 * len(shape))(*shape)
        self.lib.call("ov_partial_shape_create_static", len(shape), dims, byref(partial))
        try:
            self.lib.call("ov_model_reshape_single_input", model, partial)
        finally:
            self.lib.raw("ov_partial_shape_free")(byref(partial))


class CompiledModel:
    def __init__(self, lib: OpenVINOLibrary, handle: c_void_p) -> None:
        self.lib = lib
        self._handle = handle

    def infer_request(self) -> "InferRequest":
        request = c_void_p()
        self.lib.call("ov_compiled_model_create_infer_request", self._handle, byref(request))
        return InferRequest(self, request)

    def port_shape(self, kind: str) -> tuple[int, ...]:
        """The static shape of the model's one input (`kind` "input") or output ("output")."""
        port, shape = c_void_p(), Shape()
        self.lib.call(f"ov_compiled_model_{kind}", self._handle, byref(port))
        try:
            self.lib.call("ov_const_port_get_shape", port, byref(shape))
            dims = tuple(shape.dims[i] for i in range(shape.rank))
            self.lib.raw("ov_shape_free")(byref(shape))
        finally:
            self.lib.raw("ov_output_const_port_free")(port)
        return dims

    def __del__(self) -> None:
        self.lib.raw("ov_compiled_model_free")(self._handle)


class InferRequest:
    """One request whose input and output are bound, once, to arrays of its own: an inference
    costs two calls and no tensor (creating and setting tensors per call cost 0.2-0.4 ms of the
    calling thread per frame, 1-2% of a 50 fps frame). Fill `input` in place to avoid even the
    input copy; `infer` returns `output`, valid until the next infer."""

    def __init__(self, compiled: CompiledModel, handle: c_void_p) -> None:
        self.lib = compiled.lib
        self._compiled = compiled  # keeps the compiled model alive
        self._handle = handle
        self.input = np.zeros(compiled.port_shape("input"), np.float32)
        self.output = np.zeros(compiled.port_shape("output"), np.float32)
        self._tensors = [self._tensor(self.input), self._tensor(self.output)]
        self.lib.call("ov_infer_request_set_input_tensor_by_index", self._handle, 0, self._tensors[0])
        self.lib.call("ov_infer_request_set_output_tensor_by_index", self._handle, 0, self._tensors[1])

    def _tensor(self, array: np.ndarray) -> c_void_p:
        """An f32 tensor over `array`'s memory (the array must outlive it)."""
        shape, tensor = Shape(), c_void_p()
        dims = (c_int64 * array.ndim)(*array.shape)
        self.lib.call("ov_shape_create", array.ndim, dims, byref(shape))
        try:
            self.lib.call("ov_tensor_create_from_host_ptr", F32, shape, array.ctypes.data_as(c_void_p), byref(tensor))
        finally:
            self.lib.raw("ov_shape_free")(byref(shape))
        return tensor

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if batch is not self.input:
            if batch.shape != self.input.shape:
                raise ValueError(f"this request takes {self.input.shape} batches, not {batch.shape}")
            np.copyto(self.input, batch)
        # Start + wait rather than the synchronous infer: the request then runs on its own
        # stream's executor threads. Synchronous calls from our threads ran 15% slower with
        # two streams on some OpenVINO builds (vs-mlrt's).
        self.lib.call("ov_infer_request_start_async", self._handle)
        self.lib.call("ov_infer_request_wait", self._handle)
        return self.output

    def __del__(self) -> None:
        self.lib.raw("ov_infer_request_free")(self._handle)
        for tensor in getattr(self, "_tensors", ()):
            self.lib.raw("ov_tensor_free")(tensor)
