"""TensorRT on NVIDIA GPUs: engines built from our ONNX export, one per static tile shape, cached.

Written against the TensorRT 10/11 Python API. Networks are strongly typed (the only kind
TensorRT 11 builds; a creation flag on 10): the precision is in the ONNX graph, which
`models.mixed_precision` rewrites for fp16/bf16. Transformer networks (HAT) keep LayerNorm,
softmax and attention's activation MatMuls in fp32 there, which is what keeps them from
overflowing; conv nets run wholly in fp16/bf16. Each stream is an execution context with its own
CUDA stream and pinned host buffers (device memory and streams come from PyTorch's CUDA
allocator), so one frame's copies overlap another's compute. A cached engine whose min/opt/max
profile covers the tile shape is used instead of building a static one (`vs-sr engines build
--profile ...`).

TensorRT cannot be installed in the workplace this was written in; everything around it (the
ONNX it parses, the fp16/bf16 graphs, the engine cache) is tested there without it, and every
TensorRT name used here was checked against the TensorRT 11.4 bindings and 10.13 type stubs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...devices import cuda_compute_capability, cuda_device_count, cuda_device_names, cuda_free_memory
from ...errors import SRError
from ...extras import install_line
from ...log import info
from ...models import Network, Precision, resolve
from ...models.architectures import round_up
from ...models.mixed_precision import mixed_precision_onnx
from ...models.onnx_export import export_onnx
from ...models.onnx_graph import tensorrt_problems
from ...models.weights import file_digest
from ..base import Backend, Session, SessionSpec, import_runtime
from .engine_cache import EngineCache, EngineKey, Entry

WORKSPACE_FRACTION = 0.5  # of free VRAM the builder may use for tactics


def _import() -> tuple[Any, str | None]:
    if cuda_device_count() == 0:  # first: installing TensorRT would not help a machine without a GPU
        return None, ("no CUDA GPU here (TensorRT needs an NVIDIA GPU and its driver); use backend='auto' (OpenVINO "
                      "on this CPU)")
    tensorrt, missing = import_runtime("tensorrt", f"TensorRT is not installed: {install_line('tensorrt')}; or use "
                                       "backend='torch'/'ort' on the GPU")
    if missing is None and import_runtime("torch", "")[0] is None:
        return None, ("the TensorRT backend needs PyTorch (with CUDA) for device memory and streams: "
                      f"{install_line('tensorrt')}")
    return tensorrt, missing


_runtimes: dict[int, Any] = {}
_lock = threading.Lock()


def _runtime(trt: Any, logger: Any) -> Any:
    with _lock:
        if id(trt) not in _runtimes:
            _runtimes[id(trt)] = trt.Runtime(logger)
        return _runtimes[id(trt)]


def engine_key(network: Network, onnx: Path, shapes: tuple[tuple[int, int, int], ...], precision: str,
               device_id: int, trt_version: str) -> EngineKey:
    low, opt, high = shapes
    return EngineKey(network.label, file_digest(onnx), low, opt, high, precision, trt_version,
                     cuda_device_names()[device_id], cuda_compute_capability(device_id))


def progress_monitor(trt: Any) -> Any:
    """A TensorRT IProgressMonitor reporting through VapourSynth's log (builds take minutes)."""

    class Monitor(trt.IProgressMonitor):  # type: ignore[misc]  # tensorrt is imported at run time, untyped
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.steps: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.steps[phase_name] = num_steps
            if parent_phase is None:
                info(f"TensorRT build: {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name: str, step: int) -> bool:
            total = self.steps.get(phase_name, 0)
            if total >= 10 and (step + 1) % max(1, total // 10) == 0:
                info(f"TensorRT build: {phase_name} {step + 1}/{total}")
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            self.steps.pop(phase_name, None)

    return Monitor()


def engine_onnx(network: Network, shape: tuple[int, int, int], dynamic: bool, precision: str) -> Path:
    """The ONNX an engine is built from: our export, rewritten for fp16/bf16 with its fp32 islands."""
    onnx = export_onnx(network, *shape, dynamic=dynamic)
    if precision == "fp32":
        return onnx
    return mixed_precision_onnx(onnx, "fp16" if precision == "fp16" else "bf16", network.traits.precision)


def network_flags(trt: Any) -> int:
    """Strongly typed: required on TensorRT 10 for a typed graph to be obeyed; 11 has no other kind."""
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if strongly_typed is None else 1 << int(strongly_typed)


def build_engine(trt: Any, onnx: Path, key: EngineKey, network: Network, cache: EngineCache, device_id: int,
                 target: Path) -> None:
    """Parse `onnx` (its precision is in its types), set the shapes, build on `device_id`, write the plan."""
    import torch

    problems = tensorrt_problems(onnx)
    if problems:
        raise SRError(f"TensorRT cannot parse {onnx.name}: {', '.join(problems)}.")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    graph = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(graph, logger)
    if not parser.parse_from_file(str(onnx)):
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
        raise SRError(f"TensorRT's ONNX parser rejected {onnx.name}: {errors}")
    config = builder.create_builder_config()
    free, _ = torch.cuda.mem_get_info(torch.device("cuda", device_id))
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(free * WORKSPACE_FRACTION))
    image = graph.get_input(0)
    if not key.is_static or any(d < 0 for d in image.shape):
        # A range of sizes, or a user's graph with open dimensions built for one size: either
        # way TensorRT needs a profile for the dynamic input.
        profile = builder.create_optimization_profile()
        profile.set_shape(image.name, *[(b, 3, h, w) for b, h, w in (key.min_shape, key.opt_shape, key.max_shape)])
        config.add_optimization_profile(profile)
    timing_path = cache.timing_cache(key.trt_version, key.compute_capability)
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)
    config.progress_monitor = progress_monitor(trt)
    plan = builder.build_serialized_network(graph, config)
    if plan is None:
        raise SRError(f"TensorRT could not build an engine for {network.label} ({key.precision}); see its log above.")
    target.write_bytes(bytes(plan))
    _save_timing_cache(config, timing_path)


def _save_timing_cache(config: Any, path: Path) -> None:
    """Merge this build's timings into the shared cache file (other engines may be building)."""
    from filelock import FileLock

    from ...atomic import atomic_output

    ours = config.get_timing_cache()
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            ours.combine(config.create_timing_cache(path.read_bytes()), ignore_mismatch=True)
        with atomic_output(path) as temp:
            temp.write_bytes(bytes(ours.serialize()))


def covers(entry: Entry, shape: tuple[int, int, int]) -> bool:
    low, high = entry.key.min_shape, entry.key.max_shape
    return all(lo <= s <= hi for lo, s, hi in zip(low, shape, high, strict=True))


class TensorRTSession(Session):
    def __init__(self, trt: Any, engine: Any, device_id: int, shape: tuple[int, ...], scale: int) -> None:
        import torch

        self.device = torch.device("cuda", device_id)
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        batch, channels, height, width = shape
        out_shape = (batch, channels, height * scale, width * scale)
        self.context.set_input_shape(self.input, shape)
        with torch.cuda.device(self.device):
            self.stream = torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]  # unannotated in torch
            self.device_in = torch.empty(shape, dtype=torch.float32, device=self.device)
            self.device_out = torch.empty(out_shape, dtype=torch.float32, device=self.device)
        self.host_in = torch.empty(shape, dtype=torch.float32).pin_memory()
        self.host_out = torch.empty(out_shape, dtype=torch.float32).pin_memory()
        self.context.set_tensor_address(self.input, self.device_in.data_ptr())
        self.context.set_tensor_address(self.output, self.device_out.data_ptr())

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        np.copyto(self.host_in.numpy(), batch)
        with torch.cuda.stream(self.stream):
            self.device_in.copy_(self.host_in, non_blocking=True)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            self.host_out.copy_(self.device_out, non_blocking=True)
        self.stream.synchronize()  # waits without the GIL; other streams keep going
        return self.host_out.numpy()


def installed_version() -> str | None:
    """The installed TensorRT's version, whether or not this machine can run it."""
    trt, _ = import_runtime("tensorrt", "")
    return None if trt is None else str(trt.__version__)


def build_ahead(model: str, scale: int, noise: int | None, sizes: Sequence[tuple[int, int]], batch: int, precision: Precision | None,
                device_id: int) -> Path:
    """Build (or find) the engine the filter will ask for, before any clip needs it: one tile
    size (width, height) for a static engine, or three for a min/opt/max profile; sizes are in
    input pixels and rounded up as the filter rounds its tiles. Returns the engine file."""
    if cuda_device_count() == 0:  # (the filter's reason names a backend to use instead, an option this lacks)
        raise SRError("cannot build TensorRT engines here: no CUDA GPU (TensorRT needs an NVIDIA GPU and its "
                      "driver); build them on the machine whose GPU will run them.")
    backend = TensorRTBackend()
    reason = backend.unavailable()
    if reason:
        raise SRError(f"cannot build TensorRT engines here: {reason}")
    import torch  # (after the checks: a machine without the extra gets their line, not a ModuleNotFoundError)

    if len(sizes) not in (1, 3):
        raise SRError("give one tile size, or three (MIN OPT MAX) for a profile.")
    if not 0 <= device_id < cuda_device_count():
        raise SRError(f"no GPU {device_id}: this machine has {cuda_device_count()}.")
    network = resolve(model, scale, noise)
    runs = backend.precisions(device_id)
    if precision is None:  # what the filter's `auto` runs: the backend's pick, or fp32 where that cannot run
        default = backend.auto_precision(network, device_id)
        precision = default if default in runs else "fp32"
    elif precision not in runs:
        capability = cuda_compute_capability(device_id)
        raise SRError(f"TensorRT on GPU {device_id} (compute capability {capability}) builds {', '.join(runs)}, "
                      f"not {precision}: pick one of those with --precision.")
    multiple = network.traits.multiple
    shapes = tuple((batch, round_up(h, multiple), round_up(w, multiple)) for w, h in sizes)
    if len(shapes) == 1:
        shapes = shapes * 3
    with torch.cuda.device(device_id):
        _, key = backend.engine(network, shapes, precision, device_id)
    return EngineCache().paths(key)[0]


class TensorRTBackend(Backend):
    name = "trt"
    gpu = True

    def unavailable(self) -> str | None:
        return _import()[1]

    def precisions(self, device_id: int) -> tuple[Precision, ...]:
        major = int(cuda_compute_capability(device_id).split(".")[0])  # bf16 needs Ampere or later
        return ("fp32", "fp16", "bf16") if major >= 8 else ("fp32", "fp16")

    def auto_precision(self, network: Network, device_id: int) -> Precision:
        return network.traits.precision.gpu_default

    def batch_size(self, tiles: int) -> int:
        return tiles  # the tiles of a frame go in one launch

    def free_memory(self, device_id: int) -> int | None:
        return cuda_free_memory(device_id)

    def device_name(self, device_id: int) -> str:
        trt, _ = _import()
        return f"{cuda_device_names()[device_id]} (CUDA {device_id}) via TensorRT {trt.__version__}"

    def open(self, spec: SessionSpec) -> list[Session]:
        import torch

        with torch.cuda.device(spec.device_id):  # builder, runtime and contexts use the current device
            return self._open(spec)

    def _open(self, spec: SessionSpec) -> list[Session]:
        trt, _ = _import()
        cache = EngineCache()
        shape = (spec.batch, spec.height, spec.width)
        engine = self._profile_engine(trt, cache, spec, shape)
        if engine is None:
            engine, _ = self.engine(spec.network, (shape, shape, shape), spec.precision, spec.device_id)
        return [TensorRTSession(trt, engine, spec.device_id, (spec.batch, 3, spec.height, spec.width), spec.network.scale)
                for _ in range(spec.num_streams)]

    def engine(self, network: Network, shapes: tuple[tuple[int, int, int], ...], precision: str,
               device_id: int) -> tuple[Any, EngineKey]:
        """The engine for these (min, opt, max) input shapes, from the cache or built now (on the
        current CUDA device: callers enter `torch.cuda.device(device_id)`)."""
        trt, _ = _import()
        runtime = _runtime(trt, trt.Logger(trt.Logger.WARNING))
        cache = EngineCache()
        low, opt, high = shapes
        onnx = engine_onnx(network, opt, not low == opt == high, precision)
        key = engine_key(network, onnx, shapes, precision, device_id, trt.__version__)
        engine = cache.get_or_build(key, lambda target: build_engine(trt, onnx, key, network, cache, device_id, target),
                                    runtime.deserialize_cuda_engine, log=info)
        return engine, key

    @staticmethod
    def _profile_engine(trt: Any, cache: EngineCache, spec: SessionSpec, shape: tuple[int, int, int]) -> Any:
        """A cached engine built with a min/opt/max profile that covers `shape`, if any."""
        if spec.network.format == "onnx":  # only our own graphs have dynamic-size profiles
            return None
        gpu, capability = cuda_device_names()[spec.device_id], cuda_compute_capability(spec.device_id)
        candidates = [
            e for e in cache.entries()
            if not e.key.is_static and e.key.model == spec.network.label and e.key.precision == spec.precision
            and e.key.trt_version == trt.__version__ and e.key.gpu == gpu and e.key.compute_capability == capability
            and covers(e, shape)
        ]
        if not candidates:
            return None
        digest = file_digest(engine_onnx(spec.network, shape, True, spec.precision))
        for entry in candidates:
            key = entry.key
            if key.onnx_sha256 == digest:  # built from these very weights
                engine = cache.load(key, _runtime(trt, trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine)
                if engine is not None:
                    info(f"using the profile engine {entry.engine.name}")
                    return engine
        return None
