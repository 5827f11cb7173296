"""PyTorch: the flexible fallback, on the CPU or a CUDA GPU.

Runs the spandrel module directly, so it needs no export and handles any architecture spandrel
loads. On CUDA each stream owns a `torch.cuda.Stream`; reduced precision on transformers uses
bf16 (fp16 overflows in HAT's attention).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import numpy as np

from ..devices import cuda_device_count
from ..errors import sr_error
from ..models.resolve import torch_module
from ..models.spec import Network, Precision
from .base import Backend, Session, SessionSpec, import_runtime


def _import() -> tuple[Any, str | None]:
    return import_runtime("torch", "PyTorch is not installed: pip install torch")


def _cuda() -> bool:
    torch, _ = _import()
    return cuda_device_count() > 0 and torch.cuda.is_available()


class TorchSession(Session):
    def __init__(self, module: Any, device: Any, dtype: Any, stream: Any = None) -> None:
        self._module = module
        self._device = device
        self._dtype = dtype
        self._stream = stream

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch, _ = _import()
        with torch.inference_mode():
            if self._stream is None:
                return self._forward(torch.from_numpy(batch)).float().numpy()
            with torch.cuda.stream(self._stream):
                x = torch.from_numpy(batch).pin_memory().to(self._device, non_blocking=True)
                y = self._forward(x).float().cpu()
            return y.numpy()

    def _forward(self, x: Any) -> Any:
        torch, _ = _import()
        if self._device.type == "cpu" and self._dtype == torch.bfloat16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self._module(x)
        return self._module(x.to(self._dtype))


class TorchBackend(Backend):
    name = "torch"
    _lock = threading.Lock()

    def unavailable(self) -> str | None:
        return _import()[1]

    @property
    def gpu(self) -> bool:  # type: ignore[override]
        return _cuda()

    def precisions(self, device_id: int) -> tuple[Precision, ...]:
        torch, _ = _import()
        if _cuda():
            return ("fp32", "fp16", "bf16") if torch.cuda.is_bf16_supported() else ("fp32", "fp16")
        return ("fp32", "bf16")

    def auto_precision(self, network: Network, device_id: int) -> Precision:
        return network.traits.precision.gpu_default if _cuda() else "fp32"

    def batch_size(self, tiles: int) -> int:
        return tiles if _cuda() else 1

    def device_name(self, device_id: int) -> str:
        torch, _ = _import()
        if _cuda():
            return f"{torch.cuda.get_device_name(device_id)} (CUDA {device_id}) via PyTorch {torch.__version__}"
        return f"CPU via PyTorch {torch.__version__}"

    def open(self, spec: SessionSpec) -> list[Session]:
        torch, _ = _import()
        if spec.precision == "fp16" and not spec.network.traits.precision.fp16_safe:
            raise sr_error(f"{spec.network.label} overflows in fp16; use precision='bf16' or 'fp32'.")
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[spec.precision]
        module = torch_module(spec.network)
        if not _cuda():
            return [TorchSession(module, torch.device("cpu"), dtype) for _ in range(spec.num_streams)]
        device = torch.device("cuda", spec.device_id)
        with self._lock:  # one converted copy per device and dtype, shared by its streams
            module = copy.deepcopy(module).to(device=device, dtype=dtype)
        return [TorchSession(module, device, dtype, torch.cuda.Stream(device)) for _ in range(spec.num_streams)]
