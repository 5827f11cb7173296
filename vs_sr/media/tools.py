"""The outside programs and plugins vs_sr drives: finding vspipe/ffmpeg/ffprobe, and opening
video files with bestsource."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import vapoursynth as vs

from ..errors import SRError

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
        raise SRError(f"{name} not found: {HINTS.get(name, 'install it')}.")
    return path


def open_video(path: str | Path) -> vs.VideoNode:
    """A video file as a clip, through the bestsource plugin (frame-accurate seeking)."""
    path = Path(path)
    if not path.is_file():
        raise SRError(f"video not found: {path}.")
    core = vs.core
    if not hasattr(core, "bs"):
        raise SRError("the bestsource source plugin is missing: pip install vapoursynth-bestsource.")
    return core.bs.VideoSource(str(path))


def vspipe_status() -> str:
    """Whether vspipe exists and can evaluate a script (it needs `vapoursynth config` once)."""
    import subprocess
    import tempfile

    try:
        vspipe = find_tool("vspipe")
    except SRError as error:
        return error.message
    with tempfile.NamedTemporaryFile("w", suffix=".vpy") as script:
        script.write("import vapoursynth as vs\nvs.core.std.BlankClip(length=1).set_output()\n")
        script.flush()
        done = subprocess.run([vspipe, "--info", script.name, "-"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=120)
    if done.returncode != 0:
        return f"{vspipe} cannot run scripts: run `vapoursynth config` once ({done.stderr.strip().splitlines()[-1:]})"
    return f"{vspipe} (works)"
