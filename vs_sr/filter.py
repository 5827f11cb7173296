"""`Upscale()`: check the arguments, pick model, backend, precision and tiles, build the node graph."""

from __future__ import annotations

import os
from collections.abc import Sequence

import vapoursynth as vs

from .backends import BACKEND_NAMES, Backend, SessionSpec, choose_backend
from .errors import sr_error
from .formats import check_clip, from_rgbs, output_size, to_rgbs
from .log import info
from .models import Network, Precision, resolve
from .models.spec import PRECISIONS
from .runner import FrameUpscaler
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
    if not isinstance(num_streams, int) or isinstance(num_streams, bool) or num_streams < 1:
        raise sr_error(f"num_streams must be a positive integer, not {num_streams!r}.")
    devices = _devices(device_id)
    device = devices[0]
    if precision != "auto" and precision not in PRECISIONS:
        raise sr_error(f"unknown precision {precision!r}; use one of auto, {', '.join(PRECISIONS)}.")
    if not isinstance(backend, str) or backend not in BACKEND_NAMES:
        raise sr_error(f"unknown backend {backend!r}; use one of {', '.join(BACKEND_NAMES)}.")
    out_w, out_h = output_size(clip, scale, width, height)
    network = resolve(model, scale)
    _check_frame_size(clip, network)
    runtime = choose_backend(backend, network)
    if len(devices) > 1 and not runtime.gpu:
        raise sr_error(f"device_id lists spread frames over GPUs; backend '{runtime.name}' runs on the CPU here.")
    chosen = _choose_precision(runtime, network, precision, device)
    free = runtime.free_memory(device)
    budget = None if free is None else memory_budget(free // num_streams, network.traits, chosen)
    plan = plan_tiles(clip.width, clip.height, network.scale, network.traits, tile, overlap, network.fixed_shape, budget)
    area = plan.tile_shape[0] * plan.tile_shape[1]
    batch = network.fixed_batch or min(runtime.batch_size(plan.count), max(1, (budget or area) // area))
    pools = [StreamPool(_open_sessions(runtime, SessionSpec(network, batch, *plan.tile_shape, chosen, num_streams, d)))
             for d in devices]
    info(_describe(network, runtime, chosen, plan, batch, num_streams, devices))

    resizable = all(getattr(s, "dynamic_shapes", False) for pool in pools for s in pool.sessions)
    shrink = (lambda failed: halved(failed, network.traits)) if resizable and network.fixed_shape is None else None
    upscaler = FrameUpscaler(plan, pools, batch, shrink)
    upscaled = _upscaled_rgbs(to_rgbs(clip), network.scale, upscaler, num_streams * len(devices))
    result = from_rgbs(upscaled, clip, out_w, out_h)
    return result.std.SetFrameProps(SRModel=network.label, SRBackend=runtime.name, SRPrecision=chosen)


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
    chosen: Precision = runtime.auto_precision(network, device) if requested == "auto" else requested  # type: ignore[assignment]
    if chosen not in supported:
        raise sr_error(f"backend '{runtime.name}' runs {'/'.join(supported)} on this machine, not {chosen}; "
                       "pass one of those as precision=.")
    return chosen


def _open_sessions(runtime: Backend, spec: SessionSpec) -> list:
    try:
        return runtime.open(spec)
    except vs.Error:
        raise
    except Exception as error:  # a runtime's own exception: say which step failed and on what
        raise sr_error(f"backend '{runtime.name}' could not load {spec.network.label} for "
                       f"{spec.width}x{spec.height} tiles at {spec.precision}: {error}") from error


def _describe(network: Network, runtime: Backend, precision: str, plan: TilePlan, batch: int, streams: int,
              devices: list[int]) -> str:
    nx, ny = len(plan.x.starts), len(plan.y.starts)
    th, tw = plan.tile_shape
    where = " + ".join(runtime.device_name(d) for d in devices)
    return (f"{network.label} on {where}, {precision}, {nx}x{ny} tiles of {tw}x{th} "
            f"(overlap {plan.overlap}, batch {batch}), {streams} stream(s)" + (" per GPU" if len(devices) > 1 else ""))
