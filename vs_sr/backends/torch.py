"""PyTorch: the flexible fallback on the CPU, and the measurable GPU path on CUDA.

Runs the spandrel module directly, so it needs no export and handles any architecture spandrel
loads. On CUDA each stream owns a `torch.cuda.Stream`, pinned host buffers and device buffers;
copies of one frame overlap another frame's compute. Conv nets run with their weights in
fp16/bf16 and channels_last; transformers (HAT) run under autocast, which keeps LayerNorm and
softmax in fp32 — bf16 for them by default, since plain fp16 overflows in their attention.
cuDNN autotuning is on and each stream replays a CUDA graph of its static tile shape.
"""

from __future__ import annotations

import copy
import threading
import weakref
from typing import Any, cast

import numpy as np

from ..devices import cuda_device_count, cuda_free_memory
from ..errors import SRError
from ..extras import install_line
from ..log import warn
from ..models import Network, Precision
from ..models.resolve import torch_module
from .base import Backend, OutOfMemory, Session, SessionSpec, import_runtime


# torch is imported at run time through import_runtime, so it is untyped (Any) here: what comes
# back from it is cast to what it is where our signatures name a type.
def _import() -> tuple[Any, str | None]:
    return import_runtime("torch", f"PyTorch is not installed: {install_line('torch')}")


def _cuda() -> bool:
    torch, _ = _import()
    return cuda_device_count() > 0 and torch.cuda.is_available()


class TorchSession(Session):
    """A CPU slot: the module is shared, PyTorch's own thread pool does the parallel work."""

    dynamic_shapes = True

    def __init__(self, module: Any, dtype: Any) -> None:
        self._module = module
        self._dtype = dtype

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch, _ = _import()
        with torch.inference_mode():
            x = torch.from_numpy(batch)
            if self._dtype == torch.bfloat16:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return cast(np.ndarray, self._module(x).float().numpy())
            return cast(np.ndarray, self._module(x).float().numpy())


class TorchCudaSession(Session):
    """One CUDA stream with its own pinned and device buffers, replaying a CUDA graph."""

    dynamic_shapes = True  # other shapes (smaller tiles after an out-of-memory) run eagerly

    def __init__(self, module: Any, device: Any, dtype: Any, autocast: bool, shape: tuple[int, ...], scale: int) -> None:
        torch, _ = _import()
        self.module, self.device, self.dtype, self.autocast = module, device, dtype, autocast
        self.shape = shape
        out_shape = (shape[0], shape[1], shape[2] * scale, shape[3] * scale)
        self.stream = torch.cuda.Stream(device)
        self.host_in = torch.empty(shape, dtype=torch.float32).pin_memory()
        self.host_out = torch.empty(out_shape, dtype=torch.float32).pin_memory()
        self.device_in = torch.empty(shape, dtype=torch.float32, device=device)
        self.device_out = torch.empty(out_shape, dtype=torch.float32, device=device)
        self.graph = self._capture()

    def _forward(self, x: Any) -> Any:
        torch, _ = _import()
        if self.autocast:
            with torch.autocast("cuda", dtype=self.dtype):
                return self.module(x).float()
        return self.module(x.to(self.dtype, memory_format=torch.channels_last)).float()


    def _compute(self) -> None:
        self.device_out.copy_(self._forward(self.device_in))

    def _capture(self) -> Any:
        """A CUDA graph of one static-shape step; None (eager) if this model cannot be captured."""
        torch, _ = _import()
        try:
            with torch.inference_mode(), torch.cuda.stream(self.stream):
                for _ in range(2):  # warm-up: cuDNN autotuning and allocator pools settle first
                    self._compute()
                self.stream.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=self.stream):
                    self._compute()
            return graph
        except torch.cuda.OutOfMemoryError as error:
            raise OutOfMemory(str(error)) from error
        except RuntimeError as error:
            warn(f"CUDA graph capture failed, running eagerly: {error}")
            return None

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch, _ = _import()
        try:
            if batch.shape != self.shape:
                return self._run_eagerly(batch)
            np.copyto(self.host_in.numpy(), batch)
            with torch.inference_mode(), torch.cuda.stream(self.stream):
                self.device_in.copy_(self.host_in, non_blocking=True)
                if self.graph is not None:
                    self.graph.replay()
                else:
                    self._compute()
                self.host_out.copy_(self.device_out, non_blocking=True)
            self.stream.synchronize()  # waits without the GIL: other streams keep going
            return cast(np.ndarray, self.host_out.numpy())
        except torch.cuda.OutOfMemoryError as error:
            raise OutOfMemory(str(error)) from error

    def _run_eagerly(self, batch: np.ndarray) -> np.ndarray:
        torch, _ = _import()
        with torch.inference_mode(), torch.cuda.stream(self.stream):
            x = torch.from_numpy(batch).pin_memory().to(self.device, non_blocking=True)
            y = self._forward(x).cpu()
        return cast(np.ndarray, y.numpy())


class TorchBackend(Backend):
    name = "torch"
    _lock = threading.Lock()
    # GPU copies live as long as some clip's sessions use them (previewers reload scripts).
    _converted: weakref.WeakValueDictionary[tuple[str, str, str, bool], Any] = weakref.WeakValueDictionary()

    def unavailable(self) -> str | None:
        return _import()[1]

    @property
    def gpu(self) -> bool:  # type: ignore[override]
        return _cuda()

    def precisions(self, device_id: int) -> tuple[Precision, ...]:
        torch, _ = _import()
        if _cuda():
            with torch.cuda.device(device_id):
                bf16 = torch.cuda.is_bf16_supported()
            return ("fp32", "fp16", "bf16") if bf16 else ("fp32", "fp16")
        return ("fp32", "bf16")

    def auto_precision(self, network: Network, device_id: int) -> Precision:
        return network.traits.precision.gpu_default if _cuda() else "fp32"

    def batch_size(self, tiles: int) -> int:
        return tiles if _cuda() else 1

    def free_memory(self, device_id: int) -> int | None:
        return cuda_free_memory(device_id) if _cuda() else None

    def device_name(self, device_id: int) -> str:
        torch, _ = _import()
        if _cuda():
            return f"{torch.cuda.get_device_name(device_id)} (CUDA {device_id}) via PyTorch {torch.__version__}"
        return f"CPU via PyTorch {torch.__version__}"

    def open(self, spec: SessionSpec) -> list[Session]:
        torch, _ = _import()
        policy = spec.network.traits.precision
        if spec.precision == "fp16" and not policy.fp16_safe:
            raise SRError(f"{spec.network.label} overflows in fp16; use precision='bf16' or precision='fp32'.")
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[spec.precision]
        module = torch_module(spec.network)
        if not _cuda():
            return [TorchSession(module, dtype) for _ in range(spec.num_streams)]
        torch.backends.cudnn.benchmark = True  # static tile shapes: autotune once per shape
        device = torch.device("cuda", spec.device_id)
        # Transformers keep fp32 weights and run under autocast (fp32 LayerNorm/softmax islands);
        # conv nets convert their weights and use channels_last for the tensor cores.
        autocast = spec.precision != "fp32" and bool(policy.fp32_ops)
        module = self._converted_module(module, spec.network, device, torch.float32 if autocast else dtype,
                                        channels_last=not autocast)
        shape = (spec.batch, 3, spec.height, spec.width)
        return [TorchCudaSession(module, device, dtype, autocast, shape, spec.network.scale)
                for _ in range(spec.num_streams)]

    def _converted_module(self, module: Any, network: Network, device: Any, dtype: Any, channels_last: bool) -> Any:
        """One copy per device, dtype and layout, shared by that device's streams."""
        torch, _ = _import()
        key = (network.digest, str(device), str(dtype), channels_last)
        with self._lock:
            converted = self._converted.get(key)
            if converted is None:
                memory = torch.channels_last if channels_last else torch.contiguous_format
                converted = copy.deepcopy(module).to(device=device, dtype=dtype, memory_format=memory).eval()
                self._converted[key] = converted
            return converted
