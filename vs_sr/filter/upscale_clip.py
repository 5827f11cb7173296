"""`Upscale()`: check the arguments once, pick model, backend, precision and tiles, build the node graph."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

import vapoursynth as vs

from .. import extras
from ..backends import Backend, OutOfMemory, Session, SessionSpec, choose_backend, network_for
from ..devices import isa_cap
from ..errors import SRError, script_errors
from ..log import info, warn
from ..models import Network, Precision
from ..models.int8 import int8_recipe
from .arguments import Arguments, BackendName, PrecisionName, normalise
from .formats import check_clip, from_rgbs, output_size, to_rgbs
from .frames import FrameUpscaler
from .memory import Tiles, check_frame_memory, memory_budget
from .sessions import SessionPool
from .tiling import TilePlan, plan_tiles


@script_errors
def Upscale(
    clip: vs.VideoNode,
    model: str | os.PathLike[str] = "hat",
    scale: int = 4,
    *,
    backend: BackendName = "auto",
    precision: PrecisionName = "auto",
    tile: int | tuple[int, int] | None = None,
    overlap: int | tuple[int, int] | None = None,
    num_streams: int = 1,
    device_id: int | Sequence[int] = 0,
    width: int | None = None,
    height: int | None = None,
    server: str | None = None,
    noise: int | None = None,
) -> vs.VideoNode:
    """Upscale `clip` with a super-resolution network.

    clip:        any constant-format YUV, RGB or GRAY clip, integer 8-16 bit or float16/32.
                 The result has the same format at the new size; frame props are kept.
    model:       a registry name (see `vs_sr.list_models()`), or the path of a .pth /
                 .safetensors / .pt file (architecture detected) or of an .onnx file.
    scale:       the network's scale; named models list the scales they were trained for
                 (1 for denoise-only models such as waifu2x-cunet x1).
    backend:     "auto" | "trt" | "torch" | "ort" | "openvino" | "triton". "auto" prefers GPU
                 runtimes where a GPU exists, then OpenVINO, ONNX Runtime, PyTorch; "triton"
                 sends the tiles to a Triton Inference Server (see server=).
    precision:   "auto" | "fp32" | "fp16" | "bf16" | "int8". "auto" is the fastest tested precision
                 that holds the model's quality bar on this device: on GPUs fp16 for conv nets, bf16
                 for transformers; on CPUs (OpenVINO) int8 for networks with an int8 recipe
                 (the Compact models: realesr-animevideov3, faithful) where the CPU has VNNI,
                 AMX or AVX2 without AVX-512, else bf16 for conv nets where it has native bf16
                 (AVX512-BF16, AMX), else fp32. `vs-sr info` says what it picks.
                 "int8" (OpenVINO): the network quantized on first use (about a minute, once per
                 model, then cached); refused with the reason for networks without a recipe and on
                 CPUs where it was never measured (AVX-512 without VNNI, no AVX2). Speed and
                 quality of each: docs/benchmarks.md.
    tile:        None picks tiles automatically (whole frame where it fits); an int or
                 (width, height) in input pixels, rounded up to the model's size multiple.
    overlap:     input pixels shared by neighbouring tiles (None: the model's default).
    num_streams: concurrent inference instances; frames wait only when all are busy.
    device_id:   GPU index for GPU backends, or a list of them: frame n goes to device_id[n % len].
    width, height: exact output size: the network runs at its own scale, then the result is
                 resized (Spline36) to this size; the display aspect (_SARNum/_SARDen) is kept.
    server:      the Triton server of backend="triton": "grpc://host:8001" or "http://host:8000"
                 (default $VS_SR_TRITON_URL). It must serve the model as "<name>-x<scale>" (or
                 the file's stem), e.g. exported by `vs-sr triton export`. Giving server= with
                 backend="auto" means "triton".
    noise:       denoise level of models that have levels (realcugan, waifu2x-*): -1
                 (conservative / none), 0 (no denoise) ... 3 (strongest); None: the model's default.
    """
    clip = check_clip(clip)
    args = normalise(model, scale, backend, precision, tile, overlap, num_streams, device_id, width, height, server,
                     noise)
    out_w, out_h = output_size(clip, args.scale, args.width, args.height)
    check_frame_memory(out_w, out_h, args.num_streams * len(args.devices),
                       "choose a smaller width=/height= (or fewer num_streams=)")
    network = network_for(args.model, args.scale, args.noise, args.backend, args.server)
    _check_frame_size(clip, network)
    runtime = choose_backend(args.backend, network, args.server)
    deployment = deploy(runtime, network, clip.width, clip.height, args)
    info(deployment.describe())
    upscaler = FrameUpscaler(deployment.tiles, deployment.pools, alpha_size=(out_w, out_h))
    upscaled = upscaled_rgbs(to_rgbs(clip), network.scale, upscaler, args.num_streams * len(args.devices))
    result = from_rgbs(upscaled, clip, out_w, out_h)
    return result.std.SetFrameProps(SRModel=network.label, SRBackend=runtime.name, SRPrecision=deployment.precision)


@dataclass
class Deployment:
    """What runs: the network on a runtime at a precision, its tiles, and the open sessions of
    each device (`num_streams` per device)."""

    network: Network
    runtime: Backend
    precision: Precision
    tiles: Tiles
    pools: list[SessionPool]
    devices: tuple[int, ...]
    auto: bool = False
    """True where precision="auto" chose `precision` for this network on this device."""

    def describe(self) -> str:
        plan, batch = self.tiles.current()
        nx, ny = len(plan.x.starts), len(plan.y.starts)
        th, tw = plan.tile_shape
        streams = len(self.pools[0].sessions)
        where = " + ".join(self.runtime.device_name(d) for d in self.devices)
        precision = f"{self.precision} (auto)" if self.auto else self.precision
        return (f"{self.network.label} on {where}, {precision}, {nx}x{ny} tiles of {tw}x{th} "
                f"(overlap {plan.overlap}, batch {batch}), {streams} stream(s)"
                + (" per GPU" if len(self.devices) > 1 else ""))


def deploy(runtime: Backend, network: Network, width: int, height: int, args: Arguments) -> Deployment:
    """Precision, tiles sized for the device, and `num_streams` sessions on each device.

    A device that runs out of memory while the sessions open (PyTorch captures and runs a first
    tile then) gets smaller tiles before any frame is made, so every frame uses the same tiles.
    """
    devices = args.devices
    chosen = _checked_precision(runtime, network, args)
    free = runtime.free_memory(devices[0])
    budget = None if free is None else memory_budget(free // args.num_streams, network.traits, chosen)
    plan = plan_tiles(width, height, network.scale, network.traits, args.tile, args.overlap, network.fixed_shape,
                      budget)
    area = plan.tile_shape[0] * plan.tile_shape[1]
    fits = plan.count if budget is None else max(1, budget // area)  # tiles a device's memory holds at once
    batch = network.fixed_batch or min(runtime.batch_size(plan.count), fits)
    tiles = Tiles(plan, batch, network.traits, args.overlap, resizable=network.fixed_shape is None)
    while True:
        plan, batch = tiles.current()
        try:
            spec = SessionSpec(network, batch, *plan.tile_shape, chosen, args.num_streams, devices[0],
                               clamp=not plan.blends)
            pools = [SessionPool(_open_sessions(runtime, replace(spec, device_id=d))) for d in devices]
            break
        except OutOfMemory as error:
            tiles.after_out_of_memory(plan, error)
    tiles.resizable = tiles.resizable and all(s.dynamic_shapes for pool in pools for s in pool.sessions)
    _check_tile_safety(network, plan)
    return Deployment(network, runtime, chosen, tiles, pools, devices, auto=args.precision == "auto")


def check_runtime(network: Network, args: Arguments) -> None:
    """What `Upscale` would refuse about the runtime, the devices and the precision, asked without
    loading the network: `vs-sr upscale` asks before its pipeline starts."""
    _checked_precision(choose_backend(args.backend, network, args.server), network, args)


def _checked_precision(runtime: Backend, network: Network, args: Arguments) -> Precision:
    """The precision `network` runs at on `runtime`, once the devices asked for are checked."""
    _check_devices(runtime, args.devices)
    return _choose_precision(runtime, network, args.precision, args.devices[0])


def _check_tile_safety(network: Network, plan: TilePlan) -> None:
    """Say so when tiles change a tile-dependent network's picture, not just its seams."""
    traits = network.traits
    if not traits.tile_safe and plan.split_below(traits.min_tile):
        th, tw = plan.tile_shape
        warn(f"{network.label}: {tw}x{th} tiles are smaller than the {traits.min_tile}-pixel tiles this network "
             "needs to look like whole frames (its squeeze-and-excitation blocks average over each tile, so "
             f"brightness shifts from tile to tile); use tile={traits.min_tile} or more, or leave tile unset")


def upscaled_rgbs(rgb: vs.VideoNode, scale: int, upscaler: FrameUpscaler, streams: int) -> vs.VideoNode:
    """The upscaled RGBS clip, with up to `streams` frames in flight.

    One ModifyFrame node runs its callback for one frame at a time. With one stream that is all
    we need; with more, requests go in turn to 2 x `streams` ModifyFrame nodes, so the frames
    VapourSynth asks for together run at once and take whichever sessions are free, whatever the
    access pattern. The nodes keep no frame cache of their own (the clip's output has one): with
    caches they held on to 5 MB output frames and cost 0.3 ms per frame in memory churn, and a
    fresh node per frame cost 0.1 ms more than these (measured at 176x144 x4).
    """
    blank = rgb.std.BlankClip(width=rgb.width * scale, height=rgb.height * scale, keep=True)
    if streams == 1:
        return blank.std.ModifyFrame(rgb, upscaler)
    nodes = []
    for _ in range(2 * streams):
        node = blank.std.ModifyFrame(rgb, upscaler)
        node.std.SetVideoCache(0)
        nodes.append(node)
    turn = itertools.cycle(nodes)
    return blank.std.FrameEval(lambda n: next(turn), clip_src=[rgb])


def _check_devices(runtime: Backend, devices: tuple[int, ...]) -> None:
    if len(devices) > 1 and not runtime.gpu:
        raise SRError(f"device_id lists spread frames over GPUs; backend '{runtime.name}' runs on the CPU here.")
    if devices != (0,) and not runtime.gpu:  # a GPU machine's script run here: it still runs, and says so
        warn(f"device_id={devices[0]} names a GPU; backend '{runtime.name}' runs on the CPU here, so it is ignored")
    if runtime.gpu:
        from ..devices import cuda_device_count

        count = cuda_device_count()
        missing = [d for d in devices if d >= count]
        if missing:
            raise SRError(f"no GPU {missing[0]}: this machine has {count} (device_id counts from 0).")


def _check_frame_size(clip: vs.VideoNode, network: Network) -> None:
    smallest = network.traits.min_size
    if min(clip.width, clip.height) < smallest:
        raise SRError(f"{network.label} needs frames of at least {smallest}x{smallest} pixels; the clip is "
                      f"{clip.width}x{clip.height}. Pad or resize it first.")


def _choose_precision(runtime: Backend, network: Network, requested: PrecisionName, device: int) -> Precision:
    supported = runtime.precisions(device)
    if requested == "auto":
        chosen = runtime.auto_precision(network, device)
        if network.traits.precision.int8 is not None and "int8" in supported and not extras.has("int8"):
            info(f"{network.label}: auto runs {chosen}; int8, faster on this CPU, needs the [int8] extra: "
                 f"{extras.install_line('int8')}")
        if chosen not in supported:  # e.g. bf16 for HAT on a GPU without bf16: stay exact
            info(f"{network.label}: {chosen} is not available on this device; running fp32")
            return "fp32"
        return chosen
    if requested == "int8":
        if runtime.name != "openvino":
            raise SRError(f"precision='int8' runs on OpenVINO's CPU device, not backend '{runtime.name}': pass "
                          "backend='openvino' (or leave backend='auto').")
        int8_recipe(network)  # refuses networks without a measured recipe, saying why
        extras.require("int8", "precision='int8'")  # (here, not in vspipe: a batch took it for a chunk's failure)
        if requested not in supported:
            cap = isa_cap()
            here = f"OpenVINO held to {cap}" if cap else "this CPU (`vs-sr info` lists its ISA)"
            instead = " or ".join(f"precision='{p}'" for p in supported if p != "int8")
            raise SRError(f"precision='int8' runs where OpenVINO's int8 kernels were measured: CPUs with int8 "
                          "dot-product units (AVX512-VNNI, AVX-VNNI or AMX) and AVX2 CPUs without AVX-512 (Zen 2/3, "
                          f"Haswell to Skylake clients); {here} is neither. Pass {instead}.")
    if requested not in supported:
        raise SRError(f"backend '{runtime.name}' runs {'/'.join(supported)} on this machine, not {requested}; "
                      "pass one of those as precision=.")
    runtime.check_precision(network, requested)
    return requested


def _open_sessions(runtime: Backend, spec: SessionSpec) -> list[Session]:
    try:
        return runtime.open(spec)
    except (vs.Error, OutOfMemory):
        raise
    except Exception as error:  # a runtime's own exception: say which step failed and on what
        raise SRError(f"backend '{runtime.name}' could not load {spec.network.label} for "
                      f"{spec.width}x{spec.height} tiles at {spec.precision}: {error}") from error
