"""The outside programs and plugins vs_sr drives: finding vspipe/ffmpeg/ffprobe, opening video
files with bestsource, and reading the arguments vspipe passes to our scripts."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import vapoursynth as vs

from .errors import sr_error

HINTS = {
    "vspipe": "it comes with the vapoursynth wheel; run `vapoursynth config` once",
    "ffmpeg": "install ffmpeg, e.g. `apt-get install ffmpeg`",
    "ffprobe": "it comes with ffmpeg: install ffmpeg, e.g. `apt-get install ffmpeg`",
}


def find_tool(name: str) -> str:
    """The path of an external program: on PATH, or (vspipe) beside this Python."""
    path = shutil.which(name)
    if path is None and name == "vspipe":
        beside = Path(sys.executable).with_name(name)
        path = str(beside) if beside.exists() else None
    if path is None:
        raise sr_error(f"{name} not found: {HINTS.get(name, 'install it')}.")
    return path


def open_video(path: str | Path) -> vs.VideoNode:
    """A video file as a clip, through the bestsource plugin (frame-accurate seeking)."""
    path = Path(path)
    if not path.is_file():
        raise sr_error(f"video not found: {path}.")
    core = vs.core
    if not hasattr(core, "bs"):
        raise sr_error("the bestsource source plugin is missing: pip install vapoursynth-bestsource.")
    return core.bs.VideoSource(str(path))


def script_args(namespace: dict, prefix: str) -> dict[str, str]:
    """The `vspipe -a key=value` arguments with `prefix` from a script's globals, as str."""
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in namespace.items() if k.startswith(prefix)}
