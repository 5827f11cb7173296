"""TensorRT on NVIDIA GPUs (engines built from our ONNX export)."""

from __future__ import annotations

from typing import Any

from ..devices import cuda_device_count
from ..errors import sr_error
from ..models.spec import Precision
from .base import Backend, Session, SessionSpec, import_runtime


def _import() -> tuple[Any, str | None]:
    tensorrt, missing = import_runtime("tensorrt", "TensorRT is not installed: pip install tensorrt (needs an NVIDIA "
                                       "GPU and driver); or use backend='torch' / 'ort' on the GPU")
    if missing is None and cuda_device_count() == 0:
        return None, "no CUDA GPU found (TensorRT needs an NVIDIA GPU and its driver)"
    return tensorrt, missing


class TensorRTBackend(Backend):
    name = "trt"
    gpu = True

    def unavailable(self) -> str | None:
        return _import()[1]

    def precisions(self, device_id: int) -> tuple[Precision, ...]:
        return ("fp32", "fp16", "bf16")

    def device_name(self, device_id: int) -> str:
        return f"CUDA device {device_id} via TensorRT"

    def open(self, spec: SessionSpec) -> list[Session]:
        raise sr_error("the TensorRT backend is not built yet; use backend='torch' or 'ort'.")
