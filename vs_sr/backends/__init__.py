"""Runtimes behind one interface, and the choice among them for backend="auto"."""

from __future__ import annotations

import importlib

from ..errors import sr_error
from ..log import warn
from ..models.spec import Network
from .base import Backend, OutOfMemory, Session, SessionSpec

BACKEND_MODULES = {
    "trt": ("tensorrt", "TensorRTBackend"),
    "torch": ("torch", "TorchBackend"),
    "ort": ("onnxruntime", "OnnxRuntimeBackend"),
    "openvino": ("openvino", "OpenVINOBackend"),
}
BACKEND_NAMES = ("auto", *BACKEND_MODULES)


def get_backend(name: str) -> Backend:
    module_name, class_name = BACKEND_MODULES[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)()


def auto_order(network: Network) -> tuple[str, ...]:
    """Preference for backend="auto": GPU runtimes first where a GPU exists, then CPU runtimes."""
    from ..devices import cuda_device_count

    if cuda_device_count() > 0:
        gpu = ("trt", "ort") if network.format == "onnx" else ("trt", "torch", "ort")
        # ONNX Runtime belongs to the GPU tier only with its CUDA provider (onnxruntime-gpu).
        ort = get_backend("ort")
        gpu = tuple(name for name in gpu if name != "ort" or (ort.unavailable() is None and ort.gpu))
    else:
        gpu = ()
    cpu = ("openvino", "ort") if network.format == "onnx" else ("openvino", "ort", "torch")
    return (*gpu, *cpu)


def check_backend_name(requested: object) -> None:
    if not isinstance(requested, str) or requested not in BACKEND_NAMES:
        raise sr_error(f"unknown backend {requested!r}; use one of {', '.join(BACKEND_NAMES)}.")


def choose_backend(requested: str, network: Network) -> Backend:
    """The backend to run `network` on; explicit choices must work, "auto" falls back with a reason."""
    check_backend_name(requested)
    if requested != "auto":
        backend = get_backend(requested)
        reason = backend.unavailable()
        if reason:
            raise sr_error(f"backend '{requested}' cannot run here: {reason}")
        if network.format == "onnx" and requested == "torch":
            raise sr_error("backend='torch' needs PyTorch weights, not an .onnx file; use 'ort' or 'openvino'.")
        return backend
    skipped = []
    for name in auto_order(network):
        backend = get_backend(name)
        reason = backend.unavailable()
        if reason is None:
            if any(clash for _, clash in skipped):
                warn(f"using backend '{name}': " + "; ".join(f"'{n}' unavailable: {r}" for n, r in skipped if r))
            return backend
        # Not installing an optional runtime is normal; a runtime that is installed but cannot
        # load is worth telling the user about when we fall back.
        skipped.append((name, reason if "not installed" not in reason else None))
    raise sr_error("no inference runtime is usable: " + "; ".join(
        f"{name}: {get_backend(name).unavailable()}" for name in auto_order(network)))


__all__ = ["Backend", "OutOfMemory", "Session", "SessionSpec", "BACKEND_NAMES", "check_backend_name",
           "choose_backend", "get_backend"]
