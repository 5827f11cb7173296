"""`Upscale()`: check the arguments, pick model, backend, precision and tiles, build the node graph."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import vapoursynth as vs

from .backends import Backend, OutOfMemory, SessionSpec, check_backend_name, choose_backend
from .errors import sr_error
from .formats import check_clip, from_rgbs, output_size, to_rgbs
from .log import info, warn
from .models import Network, Precision, resolve
from .models.spec import PRECISIONS
from .runner import FrameUpscaler, Shrink
from .streams import StreamPool
from .tiling import TilePlan, halved, memory_budget, plan_tiles


def Upscale(
    clip: vs.VideoNode,
    model: str | os.PathLike[str] = "hat",
    scale: int = 4,
    *,
    backend: str = "auto",
    precision: str = "auto",
    tile: int | tuple[int, int] | None = None,
    overlap: int | tuple[int, int] | None = None,
    num_streams: int = 1,
    device_id: int | Sequence[int] = 0,
    width: int | None = None,
    height: int | None = None,
) -> vs.VideoNode:
    """Upscale `clip` with a super-resolution network.

    clip:        any constant-format YUV, RGB or GRAY clip, integer 8-16 bit or float16/32.
                 The result has the same format at the new size; frame props are kept.
    model:       a registry name (see `vs_sr.list_models()`), or the path of a .pth /
                 .safetensors / .pt file (architecture detected) or of an .onnx file.
    scale:       the network's scale; named models list the scales they were trained for.
    backend:     "auto" | "trt" | "torch" | "ort" | "openvino". "auto" prefers GPU runtimes
                 where a GPU exists, then OpenVINO, ONNX Runtime, PyTorch.
    precision:   "auto" | "fp32" | "fp16" | "bf16". "auto" is fp32 on CPUs; on GPUs the model's
                 tested reduced precision (fp16 for conv nets, bf16 for transformers).
    tile:        None picks tiles automatically (whole frame where it fits); an int or
                 (width, height) in input pixels, rounded up to the model's size multiple.
    overlap:     input pixels shared by neighbouring tiles (None: the model's default).
    num_streams: concurrent inference instances; frames wait only when all are busy.
    device_id:   GPU index for GPU backends, or a list of them: frame n goes to device_id[n % len].
    width, height: exact output size: the network runs at its own scale, then the result is
                 resized (Spline36) to this size; the display aspect (_SARNum/_SARDen) is kept.
    """
    clip = check_clip(clip)
    _check_positive("num_streams", num_streams)
    _check_positive("scale", scale)
    devices = _devices(device_id)
    check_backend_name(backend)
    if precision != "auto" and precision not in PRECISIONS:
        raise sr_error(f"unknown precision {precision!r}; use one of auto, {', '.join(PRECISIONS)}.")
    out_w, out_h = output_size(clip, scale, width, height)
    network = resolve(model, scale)
    _check_frame_size(clip, network)
    runtime = choose_backend(backend, network)
    setup = prepare(runtime, network, clip.width, clip.height, precision, tile, overlap, num_streams, devices)
    info(_describe(network, runtime, setup, num_streams, devices))

    upscaler = FrameUpscaler(setup.plan, setup.pools, setup.batch, setup.shrink)
    upscaled = _upscaled_rgbs(to_rgbs(clip), network.scale, upscaler, num_streams * len(devices))
    result = from_rgbs(upscaled, clip, out_w, out_h)
    return result.std.SetFrameProps(SRModel=network.label, SRBackend=runtime.name, SRPrecision=setup.precision)


@dataclass
class Setup:
    """What runs: the precision, the tile plan and batch, and the open sessions per device."""

    precision: Precision
    plan: TilePlan
    batch: int
    pools: list[StreamPool]
    shrink: Shrink | None


def prepare(runtime: Backend, network: Network, width: int, height: int, precision: str,
            tile: int | tuple[int, int] | None, overlap: int | tuple[int, int] | None, num_streams: int,
            devices: list[int]) -> Setup:
    """Precision, tiles sized for the device, and `num_streams` sessions on each device.

    A device that runs out of memory while the sessions open (PyTorch captures and runs a first
    tile then) gets halved tiles before any frame is made, so every frame uses the same tiles.
    """
    _check_devices(runtime, devices)
    chosen = _choose_precision(runtime, network, precision, devices[0])
    free = runtime.free_memory(devices[0])
    budget = None if free is None else memory_budget(free // num_streams, network.traits, chosen)
    plan = plan_tiles(width, height, network.scale, network.traits, tile, overlap, network.fixed_shape, budget)
    shrink: Shrink | None = None
    if network.fixed_shape is None:
        shrink = lambda failed: halved(failed, network.traits, overlap)  # noqa: E731
    while True:
        area = plan.tile_shape[0] * plan.tile_shape[1]
        batch = network.fixed_batch or min(runtime.batch_size(plan.count), max(1, (budget or area) // area))
        try:
            pools = [StreamPool(_open_sessions(runtime, SessionSpec(network, batch, *plan.tile_shape, chosen,
                                                                    num_streams, d))) for d in devices]
            break
        except OutOfMemory as error:
            smaller = shrink(plan) if shrink else None
            if smaller is None:
                raise sr_error(f"out of device memory opening {network.label} ({error}); pass a smaller tile= "
                               "or fewer num_streams.") from None
            warn(f"out of device memory with {plan.tile_shape[1]}x{plan.tile_shape[0]} tiles; using "
                 f"{smaller.tile_shape[1]}x{smaller.tile_shape[0]}")
            plan, budget = smaller, smaller.tile_shape[0] * smaller.tile_shape[1]
    resizable = all(session.dynamic_shapes for pool in pools for session in pool.sessions)
    return Setup(chosen, plan, batch, pools, shrink if resizable else None)


def _upscaled_rgbs(rgb: vs.VideoNode, scale: int, upscaler: FrameUpscaler, streams: int) -> vs.VideoNode:
    """The upscaled RGBS clip, with up to `streams` frames in flight.

    One ModifyFrame node runs its callback for one frame at a time. With one stream that is all
    we need; with more, each request gets a fresh ModifyFrame node, so any frames VapourSynth
    asks for run at once and take whichever sessions are free, whatever the access pattern
    (measured: 0.1 ms per frame, within the benchmark's noise).
    """
    blank = rgb.std.BlankClip(width=rgb.width * scale, height=rgb.height * scale, keep=True)
    if streams == 1:
        return blank.std.ModifyFrame(rgb, upscaler)
    return blank.std.FrameEval(lambda n: blank.std.ModifyFrame(rgb, upscaler), clip_src=[rgb])


def _check_positive(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise sr_error(f"{name} must be a positive integer, not {value!r}.")


def _check_devices(runtime: Backend, devices: list[int]) -> None:
    if len(devices) > 1 and not runtime.gpu:
        raise sr_error(f"device_id lists spread frames over GPUs; backend '{runtime.name}' runs on the CPU here.")
    if runtime.gpu:
        from .devices import cuda_device_count

        count = cuda_device_count()
        missing = [d for d in devices if d >= count]
        if missing:
            raise sr_error(f"no GPU {missing[0]}: this machine has {count} (device_id counts from 0).")


def _devices(device_id: int | Sequence[int]) -> list[int]:
    """device_id as a list of GPU indices: one, or several that frames are spread over."""
    ids = [device_id] if isinstance(device_id, int) and not isinstance(device_id, bool) else device_id
    try:
        ids = list(ids)  # type: ignore[arg-type]
    except TypeError:
        ids = []
    if not ids or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids) or len(set(ids)) != len(ids):
        raise sr_error(f"device_id must be a GPU index (0, 1, ...) or a list of distinct ones, not {device_id!r}.")
    return ids


def _check_frame_size(clip: vs.VideoNode, network: Network) -> None:
    smallest = network.traits.min_size
    if min(clip.width, clip.height) < smallest:
        raise sr_error(f"{network.label} needs frames of at least {smallest}x{smallest} pixels; the clip is "
                       f"{clip.width}x{clip.height}. Pad or resize it first.")


def _choose_precision(runtime: Backend, network: Network, requested: str, device: int) -> Precision:
    supported = runtime.precisions(device)
    if requested == "auto":
        chosen = runtime.auto_precision(network, device)
        if chosen not in supported:  # e.g. bf16 for HAT on a GPU without bf16: stay exact
            info(f"{network.label}: {chosen} is not available on this device; running fp32")
            return "fp32"
        return chosen
    if requested not in supported:
        raise sr_error(f"backend '{runtime.name}' runs {'/'.join(supported)} on this machine, not {requested}; "
                       "pass one of those as precision=.")
    return requested  # type: ignore[return-value]


def _open_sessions(runtime: Backend, spec: SessionSpec) -> list:
    try:
        return runtime.open(spec)
    except (vs.Error, OutOfMemory):
        raise
    except Exception as error:  # a runtime's own exception: say which step failed and on what
        raise sr_error(f"backend '{runtime.name}' could not load {spec.network.label} for "
                       f"{spec.width}x{spec.height} tiles at {spec.precision}: {error}") from error


def _describe(network: Network, runtime: Backend, setup: Setup, streams: int, devices: list[int]) -> str:
    plan = setup.plan
    nx, ny = len(plan.x.starts), len(plan.y.starts)
    th, tw = plan.tile_shape
    where = " + ".join(runtime.device_name(d) for d in devices)
    return (f"{network.label} on {where}, {setup.precision}, {nx}x{ny} tiles of {tw}x{th} "
            f"(overlap {plan.overlap}, batch {setup.batch}), {streams} stream(s)"
            + (" per GPU" if len(devices) > 1 else ""))
