"""Child processes that die with us: Linux's parent-death signal, armed between fork and exec.

Every helper vs_sr starts uses this, the long-lived ones (vspipe and ffmpeg, the Triton server, the
int8 quantizer) and the quick ones (ffprobe, through `run_child`), so a SIGKILLed vs_sr leaves no
process behind. The signal follows the *thread* that started the child: start children from a
thread that lives as long as they should.
Also: whether a process is alive (zombies are not), and the Python to run helper scripts with.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True).prctl if name else None
    except (OSError, AttributeError):  # not Linux
        return None


# Resolved before any fork: the child may only call it, never import or load anything.
_PRCTL = _prctl()


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn` that makes the child receive `sig` when its parent dies (and exit at once
    if the parent is already gone)."""
    parent = os.getpid()

    def setup() -> None:
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return setup


def run_child(command: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run` for a short-lived tool (ffprobe, a one-frame encode), whose child dies with us.
    subprocess.run kills its child when interrupted, but not when the interruption (our SIGTERM
    handler's KeyboardInterrupt) lands while Popen is still starting it, which a busy machine makes
    likely enough to see: the parent-death signal covers that window, and a SIGKILL of ours."""
    return subprocess.run(list(command), preexec_fn=die_with_parent(), **kwargs)


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not: it only waits to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def python_executable() -> str:
    """This environment's Python interpreter, for helper scripts. Inside an application that
    embeds Python (VapourSynth Editor, for one) `sys.executable` is the application itself."""
    executable = Path(sys.executable)
    if executable.name.startswith("python"):
        return str(executable)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path(sys.prefix) / "bin" / version, Path(sys.prefix) / "bin" / "python3"):
        if candidate.exists():
            return str(candidate)
    return str(executable)
