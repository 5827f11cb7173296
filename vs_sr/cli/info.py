"""`vs-sr info`: what works on this machine, and what to install for what does not."""

from __future__ import annotations

import argparse
import sys


def add_parser(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("info", help="what works on this machine").set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import shutil

    import vapoursynth as vs

    from .. import __version__
    from ..backends import BACKEND_MODULES, get_backend
    from ..devices import cpu_count, cuda_device_names
    from ..media.tools import vspipe_status
    from ..models.registry import all_specs
    from ..models.weights import find_weights
    from ..paths import cache_dir, model_dirs

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
