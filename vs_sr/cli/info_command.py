"""`vs-sr info`: what works on this machine, and what to install for what does not."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(commands: argparse._SubParsersAction) -> None:
    info = commands.add_parser("info", help="what works on this machine")
    info.add_argument("--json", action="store_true", help="print the report as JSON")
    info.set_defaults(run=run)


def report() -> dict[str, Any]:
    """Versions, tools, plugins, devices, backends and models, each with what to do if missing."""
    import shutil

    import vapoursynth as vs

    from .. import __version__, extras
    from ..backends import BACKEND_MODULES, get_backend
    from ..devices import cpu_count, cuda_device_names
    from ..media.tools import ffmpeg_version, vspipe_status
    from ..models.catalog import catalog
    from ..paths import cache_dir, model_dirs

    core = vs.core
    tools: dict[str, Any] = {}
    for name, hint in (("ffmpeg", "install ffmpeg 5.1 or newer"), ("ffprobe", "install ffmpeg"),
                       ("mkvmerge", "install mkvtoolnix")):
        path = shutil.which(name)
        tools[name] = {"path": path, "problem": None if path else f"not found: {hint}"}
    if tools["ffmpeg"]["path"]:
        version = ffmpeg_version(tools["ffmpeg"]["path"])
        tools["ffmpeg"]["version"] = ".".join(map(str, version)) if version else "unknown"
        if version and version < (5, 1):
            tools["ffmpeg"]["problem"] = "older than 5.1: vs-sr upscale needs -fps_mode; install a newer ffmpeg"
    plugins = {p.namespace for p in core.plugins()}
    backends = {}
    for name in BACKEND_MODULES:
        backend = get_backend(name)
        reason = backend.unavailable()
        backends[name] = ({"available": False, "problem": reason} if reason else
                          {"available": True, "device": backend.device_name(0), "precisions": list(backend.precisions(0)),
                           "auto": auto_precisions(backend)})
    rows = catalog()
    return {
        "vs_sr": __version__,
        "python": sys.version.split()[0],
        "vapoursynth": {"release": core.core_version.release_major,
                        "api": f"{core.api_version.api_major}.{core.api_version.api_minor}"},
        "vspipe": vspipe_status(),
        "tools": tools,
        "plugins": {"bestsource": "bs" in plugins, "bwdif": "bwdif" in plugins,
                    "vs-mlrt": [name for name in ("ov", "ort", "trt") if name in plugins]},
        "cpu_cores": cpu_count(),
        "cuda_gpus": cuda_device_names(),
        "backends": backends,
        "models": {"installed": sum(row["installed"] for row in rows), "known": len(rows),
                   "searched": [str(d) for d in model_dirs()]},
        "extras": {name: {"installed": extras.has(name), "install": extras.install_line(name)} for name in extras.EXTRAS},
        "cache": str(cache_dir("")),
    }


def auto_precisions(backend: Any) -> dict[str, str]:
    """What precision="auto" picks on `backend` for a conv net and for a transformer."""
    from pathlib import Path

    from ..models import Network, arch_traits

    return {kind: backend.auto_precision(Network(name=arch, scale=4, path=Path(arch), digest="",
                                                 traits=arch_traits(arch, 4), format="onnx"), 0)
            for kind, arch in (("conv", "compact"), ("transformer", "hat"))}


def run(args: argparse.Namespace) -> int:
    data = report()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"vs_sr {data['vs_sr']}, Python {data['python']}")
    vsinfo = data["vapoursynth"]
    print(f"VapourSynth: R{vsinfo['release']} (API {vsinfo['api']})")
    print(f"vspipe: {data['vspipe']}")
    for name, tool in data["tools"].items():
        version = f" (version {tool['version']})" if tool.get("version") else ""
        print(f"{name}: {tool['path'] or ''}{version}" + (f"  [{tool['problem']}]" if tool["problem"] else ""))
    plugins = data["plugins"]
    print(f"source plugin bestsource: {'yes' if plugins['bestsource'] else 'missing: pip install vapoursynth-bestsource'}")
    print(f"deinterlacer bwdif: {'yes' if plugins['bwdif'] else 'missing: pip install vapoursynth-bwdif'}")
    if plugins["vs-mlrt"]:
        print(f"vs-mlrt plugins loaded: {', '.join(plugins['vs-mlrt'])} (vs_sr runs beside them)")
    gpus = data["cuda_gpus"]
    print(f"CPU cores: {data['cpu_cores']}; CUDA GPUs: {', '.join(gpus) if gpus else 'none'}")
    for name, backend in data["backends"].items():
        if backend["available"]:
            auto = backend["auto"]
            exact = " (--precision fp32 for fp32)" if set(auto.values()) != {"fp32"} else ""
            print(f"backend {name:<9} {backend['device']}; precisions {', '.join(backend['precisions'])}; auto: "
                  f"{auto['conv']} for conv nets, {auto['transformer']} for transformers{exact}")
        else:
            print(f"backend {name:<9} unavailable: {backend['problem']}")
    print("extras: " + ", ".join(name if extra["installed"] else f"{name} (missing: {extra['install']})"
                                 for name, extra in data["extras"].items()))
    models = data["models"]
    print(f"models: {models['installed']} of {models['known']} installed (`vs-sr models list`); "
          f"searched: {', '.join(models['searched'])}")
    print(f"cache: {data['cache']}")
    return 0
