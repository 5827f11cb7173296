"""`vs-sr engines`: build TensorRT engines ahead of time, list the cache, clean it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .common import TILE_METAVAR, add_noise_option, non_negative, pair, positive, size, tile

if TYPE_CHECKING:
    from ..backends.tensorrt.engine_cache import EngineCache

TENSORRT_PRECISIONS = ("fp32", "fp16", "bf16")  # what TensorRTBackend builds; int8 runs on CPUs only


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    engines = commands.add_parser("engines", help="TensorRT engines: build ahead of time, list, clean")
    engine_commands = engines.add_subparsers(dest="engines_command", metavar="COMMAND", required=True)
    build = engine_commands.add_parser("build", help="build (or find) the engine for a model and tile shape")
    build.add_argument("--model", required=True, help="registry name or weight/ONNX file")
    build.add_argument("--scale", type=positive, default=4, help="the network's scale (default 4)")
    add_noise_option(build)
    build.add_argument("--tile", type=tile, metavar=TILE_METAVAR,
                       help="input tile of a static engine: N (NxN) or WIDTHxHEIGHT (default 640x360)")
    build.add_argument("--profile", type=size, nargs=3, metavar=("MIN", "OPT", "MAX"),
                       help="one engine for a range of input sizes (conv nets only), each WIDTHxHEIGHT")
    build.add_argument("--batch", type=positive, default=1, help="tiles per launch")
    build.add_argument("--precision", choices=TENSORRT_PRECISIONS,
                       help="default: the model's GPU precision, as the filter picks it (bf16 needs an Ampere GPU "
                       "or later; before those, fp32)")
    build.add_argument("--device-id", type=non_negative, default=0, help="GPU index (device_id= in Python; default 0)")
    build.set_defaults(run=build_engine, parser=build)
    engine_commands.add_parser("list", help="cached engines and whether they still fit this machine").set_defaults(
        run=list_engines)
    clean = engine_commands.add_parser("clean", help="remove stale engines (another TensorRT version or GPU, or "
                                       "older vs_sr build settings), and engine files without a manifest")
    clean.add_argument("--all", action="store_true", help="remove every engine and timing cache")
    clean.set_defaults(run=clean_engines)


STATIC_TILE = (640, 360)


def build_engine(args: argparse.Namespace) -> int:
    from ..backends.tensorrt import build_ahead

    if args.profile and args.tile is not None:
        args.parser.error("--tile sizes a static engine and --profile a dynamic one: give one of them")
    shapes = args.profile or [pair(args.tile if args.tile is not None else STATIC_TILE)]
    print(build_ahead(args.model, args.scale, args.noise, shapes, args.batch, args.precision, args.device_id))
    return 0


def list_engines(args: argparse.Namespace) -> int:
    import datetime

    from ..backends.tensorrt import installed_version
    from ..backends.tensorrt.engine_cache import EngineCache
    from ..devices import cuda_gpus

    cache = EngineCache()
    entries = cache.entries()
    print(f"engines in {cache.directory}: {len(entries)}")
    version, gpus = installed_version(), cuda_gpus()
    for entry in entries:
        key = entry.key
        shapes = "x".join(map(str, key.opt_shape)) if key.is_static else " .. ".join(
            "x".join(map(str, s)) for s in (key.min_shape, key.opt_shape, key.max_shape))
        built = datetime.datetime.fromtimestamp(entry.built_at).strftime("%Y-%m-%d %H:%M")
        stale = cache.stale_reason(entry, version, gpus)
        print(f"{key.model:<28} {shapes:<24} {key.precision:<5} TensorRT {key.trt_version:<8} {key.gpu} "
              f"(sm {key.compute_capability}) {entry.size / 2**20:.1f} MiB, built {built}"
              f"{f'  [stale: {stale}]' if stale else ''}")
    return 0


def clean_engines(args: argparse.Namespace) -> int:
    from ..backends.tensorrt import installed_version
    from ..backends.tensorrt.engine_cache import EngineCache
    from ..devices import cuda_gpus

    cache = EngineCache()
    version, gpus = installed_version(), cuda_gpus()
    if not args.all and cache.entries():
        refuse_to_judge_staleness_blind(cache, version, gpus)
    removed = cache.clean(lambda entry: args.all or cache.stale_reason(entry, version, gpus) is not None)
    if args.all:
        removed += cache.clean_timing_caches()
    for path in removed:
        print(f"removed {path}")
    print(f"{len(removed)} file(s) removed from {cache.directory}")
    return 0


def refuse_to_judge_staleness_blind(cache: EngineCache, trt_version: str | None, gpus: set[tuple[str, str]]) -> None:
    """Without TensorRT or a GPU every engine would look stale; a machine that shares the cache
    folder with the GPU boxes (a file server, a CPU-only encoder) must not empty it."""
    from ..errors import SRError

    missing = "TensorRT is not installed" if trt_version is None else "no CUDA GPU is visible" if not gpus else None
    if missing:
        raise SRError(f"cannot tell which engines in {cache.directory} are stale: {missing} here, and an engine is "
                      "stale for the TensorRT version and GPUs of the machine that runs it. Run `vs-sr engines clean` "
                      "there, or remove every engine with `vs-sr engines clean --all`.")
