"""What works on this machine: versions, tools, plugins, devices, backends with their precisions,
models and extras, each with what to do where something is missing. `vs-sr info` prints it; the
studio serves it at /api/info."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import vapoursynth as vs

from .. import __version__, extras
from ..backends import BACKEND_MODULES, Backend, get_backend
from ..devices import INT8_FEATURES, ISA_FEATURES, cpu_count, cpu_features, cpu_name, cuda_device_names, isa_cap
from ..errors import SRError
from ..media.tools import FFMPEG_MINIMUM, ffmpeg_version, vspipe_status
from ..models import Network, arch_traits
from ..models.catalog import catalog
from ..models.registry import int8_models
from ..paths import cache_dir, cache_limit, model_dirs

TOOLS = {"ffmpeg": "install ffmpeg 5.1 or newer", "ffprobe": "install ffmpeg", "mkvmerge": "install mkvtoolnix"}


def machine_report() -> dict[str, Any]:
    """Versions, tools, plugins, devices, backends and models, each with what to do if missing."""
    core = vs.core
    plugins = {p.namespace for p in core.plugins()}
    rows = catalog()
    return {
        "vs_sr": __version__,
        "python": sys.version.split()[0],
        "vapoursynth": {"release": core.core_version.release_major,
                        "api": f"{core.api_version.api_major}.{core.api_version.api_minor}"},
        "vspipe": vspipe_status(),
        "tools": tools(),
        "plugins": {"bestsource": "bs" in plugins, "bwdif": "bwdif" in plugins,
                    "vs-mlrt": [name for name in ("ov", "ort", "trt") if name in plugins]},
        "cpu_cores": cpu_count(),
        "cpu": cpu_report(),
        "cuda_gpus": cuda_device_names(),
        "backends": {name: backend_report(get_backend(name)) for name in BACKEND_MODULES},
        "models": {"installed": sum(row["installed"] for row in rows), "known": len(rows),
                   "searched": [str(d) for d in model_dirs()]},
        "extras": {name: {"installed": extras.has(name), "install": extras.install_line(name)} for name in extras.EXTRAS},
        "cache": str(cache_dir("")),
        "cache_limit": cache_limit_report(),
    }


def cache_limit_report() -> dict[str, Any]:
    """Bytes each export folder of the cache may hold (None: no limit), or the problem with the
    setting or the folder."""
    try:
        limit = cache_limit()
    except SRError as error:
        return {"bytes": None, "problem": error.message}
    folder = cache_dir("")
    problem = f"{folder} is not a folder: vs_sr cannot cache there" if folder.exists() and not folder.is_dir() else None
    return {"bytes": limit, "problem": problem}


def tools() -> dict[str, dict[str, Any]]:
    """Each outside program: its path, ffmpeg's version, and the problem with it (None: fine)."""
    found: dict[str, dict[str, Any]] = {}
    for name, hint in TOOLS.items():
        path = shutil.which(name)
        found[name] = {"path": path, "problem": None if path else f"not found: {hint}"}
    ffmpeg = found["ffmpeg"]
    if ffmpeg["path"]:
        version = ffmpeg_version(ffmpeg["path"])
        ffmpeg["version"] = ".".join(map(str, version)) if version else "unknown"
        if version and version < FFMPEG_MINIMUM:
            ffmpeg["problem"] = "older than 5.1: vs-sr upscale needs -fps_mode; install a newer ffmpeg"
    return found


def backend_report(backend: Backend) -> dict[str, Any]:
    reason = backend.unavailable()
    if reason:
        return {"available": False, "problem": reason}
    return {"available": True, "device": backend.device_name(0), "precisions": list(backend.precisions(0)),
            "auto": auto_precisions(backend)}


# A stand-in architecture of each model family that precision="auto" tells apart.
FAMILIES = {"conv_int8": "compact", "conv": "rrdbnet", "transformer": "hat"}
FAMILY_NAMES = {"conv_int8": f"conv nets with an int8 recipe ({', '.join(int8_models())})", "conv": "other conv nets",
                "transformer": "transformers"}


def cpu_report() -> dict[str, Any]:
    """The CPU and the ISA features that decide precision="auto" on CPU runtimes (from
    /proc/cpuinfo, less what OV_CPU_MAX_ISA / ONEDNN_MAX_CPU_ISA hold back)."""
    features = cpu_features()
    return {"name": cpu_name(), "features": {name: name in features for name in ISA_FEATURES},
            "int8_units": bool(features & INT8_FEATURES), "isa_cap": isa_cap()}


def auto_precisions(backend: Backend) -> dict[str, str]:
    """What precision="auto" picks on `backend` for each model family. The choice depends on the
    architecture's traits only, so a stand-in network of each family asks it."""
    return {family: backend.auto_precision(Network(name=arch, scale=4, path=Path(arch), digest="",
                                                   traits=arch_traits(arch, 4), format="onnx"), 0)
            for family, arch in FAMILIES.items()}
