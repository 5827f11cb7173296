"""The model of a `python`-platform repository: Triton's python backend runs vs_sr's own session
(OpenVINO, ONNX Runtime, ...) on the ONNX graph exported beside it.

Requests of one shape that the dynamic batcher hands over together run as one batch, and one
session is opened per input shape. Tensors cross the stub boundary through DLPack: under numpy 2
the stub's `as_numpy()` reads zeros and `pb_utils.Tensor(name, array)` sends nothing.
"""

from __future__ import annotations

import ctypes
import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SESSIONS = 16  # input shapes (batch sizes x tile sizes) kept open per instance
ENTRY_POINT = '''\
"""Triton python-backend entry point written by `vs-sr triton export`: vs_sr's own session."""
import os
import sys

# The stub's embedded Python ignores PYTHONPATH; honour it, so the server runs the vs_sr its
# launcher runs (a checkout on PYTHONPATH included).
sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]

from vs_sr.serving.python_model import TritonPythonModel  # noqa: E402,F401
'''


class Runner:
    """The ONNX graph at `path` on a vs_sr backend: batches of (N, 3, h, w) of any shape."""

    def __init__(self, path: Path, scale: int, runtime: str = "auto", precision: str = "auto",
                 threads: int | None = None, device_id: int = 0) -> None:
        from ..backends import choose_backend
        from ..models import resolve

        self.network = resolve(path, scale)
        self.backend = choose_backend(runtime, self.network)
        self.precision = (self.backend.auto_precision(self.network, device_id) if precision == "auto"
                          else precision)
        self.threads = threads
        self.device_id = device_id
        self._sessions: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def session(self, shape: tuple[int, ...]) -> Any:
        """The session for input shape (N, 3, h, w), opened on first use; the least recently used
        one is closed beyond SESSIONS (clients with many tile sizes must not exhaust memory)."""
        session = self._sessions.get(shape)
        if session is None:
            from ..backends import SessionSpec

            batch, _, height, width = shape
            spec = SessionSpec(self.network, batch, height, width, self.precision, 1, self.device_id,  # type: ignore[arg-type]
                               self.threads)
            session = self._sessions[shape] = self.backend.open(spec)[0]
            while len(self._sessions) > SESSIONS:
                self._sessions.popitem(last=False)
        self._sessions.move_to_end(shape)
        return session

    def run_all(self, arrays: Sequence[np.ndarray], wire: np.dtype) -> list[np.ndarray | Exception]:
        """The output of each array (as `wire` dtype), or the exception its group raised."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, array in enumerate(arrays):
            groups.setdefault(array.shape[1:], []).append(index)
        outputs: list[np.ndarray | Exception] = [np.empty(0)] * len(arrays)
        for indices in groups.values():
            try:
                batch = np.concatenate([arrays[i] for i in indices]).astype(np.float32, copy=False)
                # a copy: the session's buffer is reused, and DLPack cannot export read-only views
                result = self.session(batch.shape).run(np.ascontiguousarray(batch)).astype(wire, copy=True)
            except Exception as error:  # reported to those requests; the model keeps serving
                for i in indices:
                    outputs[i] = error
                continue
            first = 0
            for i in indices:
                count = len(arrays[i])
                outputs[i] = result[first:first + count]
                first += count
        return outputs


class TritonPythonModel:
    """What Triton's python backend instantiates (re-exported by the repository's model.py)."""

    def initialize(self, args: dict[str, str]) -> None:
        import triton_python_backend_utils as pb_utils  # exists only inside the stub

        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        self.wire = np.dtype(pb_utils.triton_string_to_numpy(config["output"][0]["data_type"]))
        path = Path(args["model_repository"]) / args["model_version"] / parameters.get("onnx_file", "model.onnx")
        threads = parameters.get("threads")
        self.runner = Runner(path, int(parameters["scale"]), parameters.get("runtime", "auto"),
                             parameters.get("precision", "auto"), int(threads) if threads else None,
                             int(args.get("model_instance_device_id") or 0))
        pb_utils.Logger.log_info(f"{args['model_instance_name']}: {self.runner.network.label} on "
                                 f"{self.runner.backend.device_name(self.runner.device_id)}, {self.runner.precision}")

    def execute(self, requests: list[Any]) -> list[Any]:
        import triton_python_backend_utils as pb_utils

        arrays = [np.from_dlpack(pb_utils.get_input_tensor_by_name(request, self.input_name)) for request in requests]
        responses = []
        for output in self.runner.run_all(arrays, self.wire):
            if isinstance(output, Exception):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"vs_sr: {output}")))
            else:
                responses.append(pb_utils.InferenceResponse(output_tensors=[dlpack_tensor(self.output_name, output)]))
        return responses


_USED = ctypes.c_char_p(b"used_dltensor")  # the name must outlive every capsule given it


def dlpack_tensor(name: str, array: np.ndarray) -> Any:
    """`pb_utils.Tensor.from_dlpack` for a numpy array, without a traceback in the server log per
    call: the stub marks the capsule it consumed "used_dlpack", numpy's capsule destructor only
    recognises "used_dltensor" and reports the other name as an error (the data is right either
    way). Marking the capsule ourselves afterwards keeps the log clean."""
    import triton_python_backend_utils as pb_utils

    capsule = np.ascontiguousarray(array).__dlpack__()
    tensor = pb_utils.Tensor.from_dlpack(name, capsule)
    set_name = ctypes.pythonapi.PyCapsule_SetName
    set_name.argtypes = [ctypes.py_object, ctypes.c_char_p]
    set_name(capsule, _USED)
    return tensor
