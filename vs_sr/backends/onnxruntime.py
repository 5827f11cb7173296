"""ONNX Runtime: CPU everywhere, the CUDA execution provider where a GPU and the CUDA build exist.

ORT's Python module carries its own library, so it loads beside vs-mlrt's ort plugin. On the
CPU it runs fp32 only; on CUDA, fp16 runs a graph exported in fp16 (conv nets only: transformers
overflow in plain fp16).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import SRError
from ..models import Network, Precision
from ..models.onnx_export import INPUT_NAME, export_onnx
from .base import Backend, Session, SessionSpec, import_runtime


def _import() -> tuple[Any, str | None]:
    return import_runtime("onnxruntime", "ONNX Runtime is not installed: pip install onnxruntime (or onnxruntime-gpu for CUDA)")


def _has_cuda() -> bool:
    from ..devices import cuda_device_count

    ort, _ = _import()
    return "CUDAExecutionProvider" in ort.get_available_providers() and cuda_device_count() > 0


class OnnxRuntimeSession(Session):
    def __init__(self, session: Any, input_name: str) -> None:
        self._session = session
        self._input = input_name
        self._dtype = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32

    def run(self, batch: np.ndarray) -> np.ndarray:
        out: np.ndarray = self._session.run(None, {self._input: batch.astype(self._dtype, copy=False)})[0]
        return out if out.dtype == np.float32 else out.astype(np.float32)


class OnnxRuntimeBackend(Backend):
    name = "ort"

    def unavailable(self) -> str | None:
        return _import()[1]

    @property
    def gpu(self) -> bool:  # type: ignore[override]
        return _has_cuda()

    def precisions(self, device_id: int) -> tuple[Precision, ...]:
        return ("fp32", "fp16") if _has_cuda() else ("fp32",)

    def auto_precision(self, network: Network, device_id: int) -> Precision:
        policy = network.traits.precision
        return "fp16" if _has_cuda() and policy.gpu_default == "fp16" and policy.fp16_safe else "fp32"

    def batch_size(self, tiles: int) -> int:
        return tiles if _has_cuda() else 1

    def free_memory(self, device_id: int) -> int | None:
        from ..devices import cuda_free_memory

        return cuda_free_memory(device_id) if _has_cuda() else None

    def device_name(self, device_id: int) -> str:
        ort, _ = _import()
        where = f"CUDA device {device_id}" if _has_cuda() else "CPU"
        return f"{where} via ONNX Runtime {ort.__version__}"

    def open(self, spec: SessionSpec) -> list[Session]:
        ort, _ = _import()
        if spec.precision == "fp16" and not spec.network.traits.precision.fp16_safe:
            raise SRError(f"{spec.network.label} overflows in plain fp16 under ONNX Runtime; use precision='fp32' "
                 "(or backend='trt'/'torch', which keep its attention in fp32).")
        if spec.precision == "fp16" and spec.network.format == "onnx":
            raise SRError(f"{spec.network.path.name} is run as given; ONNX Runtime cannot lower it to fp16. "
                           "Export it in fp16 yourself, or use precision='fp32'.")
        dtype = "fp16" if spec.precision == "fp16" else "fp32"
        path = export_onnx(spec.network, spec.batch, spec.height, spec.width, dtype)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if _has_cuda():
            providers: list[Any] = [("CUDAExecutionProvider", {"device_id": spec.device_id}), "CPUExecutionProvider"]
        else:
            # The cores are split between the streams, each session with its own thread pool.
            options.intra_op_num_threads = spec.threads or max(1, (os.cpu_count() or 1) // spec.num_streams)
            providers = ["CPUExecutionProvider"]
        sessions: list[Session] = []
        for _ in range(spec.num_streams):
            session = ort.InferenceSession(str(path), options, providers=providers)
            name = session.get_inputs()[0].name if spec.network.format == "onnx" else INPUT_NAME
            sessions.append(OnnxRuntimeSession(session, name))
        return sessions
