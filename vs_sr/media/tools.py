"""The outside programs and plugins vs_sr drives: finding vspipe/ffmpeg/ffprobe, and opening
video files with bestsource."""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import vapoursynth as vs

from ..children import run_child
from ..errors import SRError
from ..paths import check_name

HINTS = {
    "vspipe": "it comes with the vapoursynth wheel (pip install vapoursynth)",
    "ffmpeg": "install ffmpeg 5.1 or newer, e.g. `apt-get install ffmpeg`",
    "ffprobe": "it comes with ffmpeg: install ffmpeg, e.g. `apt-get install ffmpeg`",
    "mkvmerge": "install MKVToolNix, e.g. `apt-get install mkvtoolnix`",
}
FFMPEG_MINIMUM = (5, 1)  # -fps_mode


def file_url(path: Path) -> str:
    """A path as ffmpeg/ffprobe must get it: absolute, with `file:`. A relative name like
    `ep1:pilot.mkv` or `-dash.mkv` would otherwise be read as a protocol or an option."""
    return f"file:{Path(path).resolve()}"


def find_tool(name: str) -> str:
    """The path of an external program.

    vspipe: the native binary inside the vapoursynth wheel when there is one. The wheel's
    `bin/vspipe` is a Python wrapper that runs it as a child: signalling the wrapper would orphan
    the real vspipe, so we run the binary itself (see `tool_environment`).
    """
    path: str | None = None
    if name == "vspipe":
        native = Path(vs.__file__).with_name("vspipe")
        path = str(native) if native.is_file() else None
    path = path or shutil.which(name)
    if path is None:
        raise SRError(f"{name} not found: {HINTS.get(name, 'install it')}.")
    if name == "ffmpeg":
        check_ffmpeg_version(path, ffmpeg_version(path))
    return path


def tool_environment() -> dict[str, str]:
    """The environment for our vspipe runs: this Python first on PATH, which is how VapourSynth
    finds the interpreter of a virtual environment without `vapoursynth config`."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@functools.cache
def ffmpeg_version(path: str) -> tuple[int, ...] | None:
    """(major, minor) of an ffmpeg binary, None if it does not say (a git build)."""
    done = run_child([path, "-version"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    match = re.match(r"ffmpeg version n?(\d+)\.(\d+)", done.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_ffmpeg_version(path: str, version: tuple[int, ...] | None) -> None:
    if version is not None and version < FFMPEG_MINIMUM:
        raise SRError(f"{path} is ffmpeg {'.'.join(map(str, version))}; vs-sr needs 5.1 or newer (for -fps_mode): "
                      "install a newer ffmpeg.")


def open_video(path: str | Path, timecodes: Path | None = None) -> vs.VideoNode:
    """A video file as a clip, through the bestsource plugin (frame-accurate seeking); with
    `timecodes`, bestsource also writes every frame's presentation time there (from its index).
    A file bestsource cannot read is an SRError that says what is wrong with it."""
    path = Path(path)
    check_input(path, "video")
    core = vs.core
    if not hasattr(core, "bs"):
        raise SRError("the bestsource source plugin is missing: pip install vapoursynth-bestsource.")
    extra = {} if timecodes is None else {"timecodes": str(timecodes)}
    try:
        return core.bs.VideoSource(str(path.resolve()), **extra)  # absolute: "ep1:x.mkv" is no protocol
    except vs.Error as error:
        raise SRError(_unreadable(path, str(error))) from None


def _unreadable(path: Path, error: str) -> str:
    if "Invalid track index" in error:
        return f"{path} has no video track (bestsource found none: an audio-only file, or a video without frames)."
    if "Couldn't open" in error:
        return (f"cannot open {path} as a video: FFmpeg (through bestsource) cannot read it; it is not a video "
                "file, or it is empty or damaged.")
    if "Indexing of" in error:  # most often a file cut short inside a frame
        return f"cannot decode {path.name} (damaged, or not indexable by bestsource): {error.strip().splitlines()[-1]}."
    return f"cannot open {path} as a video: {error.strip().splitlines()[-1]}"


NOT_REGULAR = ((stat.S_ISFIFO, "a pipe (FIFO)"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def check_input(path: Path, what: str = "input file") -> None:
    """`path` is a regular file we may read. A pipe, a FIFO, /dev/stdin or a device is refused by
    name: bestsource reads a video twice (it indexes every frame, then seeks), which only a file can
    take, so the stream has to be saved to a file first."""
    check_name(path, what)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SRError(f"{what} not found: {path}.") from None
    except OSError as error:
        raise SRError(f"cannot read {path}: {error.strerror}.") from None
    if stat.S_ISDIR(mode):
        raise SRError(f"{path} is a folder, not a video file (`vs-sr batch` takes folders).")
    kind = next((name for test, name in NOT_REGULAR if test(mode)), None)
    if kind is not None:
        raise SRError(f"{path} is {kind}, not a file: vs-sr needs a seekable video file (bestsource indexes "
                      "the whole file, then seeks in it). Save the stream to a file first, e.g. "
                      "`ffmpeg -i pipe: -c copy input.mkv`, and pass that file.")
    if not os.access(path, os.R_OK):
        raise SRError(f"cannot read {path}: permission denied.")


def vspipe_status() -> str:
    """Whether vspipe exists and can evaluate a script."""
    import tempfile

    try:
        vspipe = find_tool("vspipe")
    except SRError as error:
        return error.message
    with tempfile.NamedTemporaryFile("w", suffix=".vpy") as script:
        script.write("import vapoursynth as vs\nvs.core.std.BlankClip(length=1).set_output()\n")
        script.flush()
        done = run_child([vspipe, "--info", script.name, "-"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=120, env=tool_environment())
    if done.returncode != 0:
        return f"{vspipe} cannot run scripts: {' / '.join(done.stderr.strip().splitlines()[-2:])}"
    return f"{vspipe} (works)"
