"""Child processes that die with us: Linux's parent-death signal, armed before the tool runs.

Every child vs_sr starts goes through `start_child` or `run_child`, the long-lived ones (vspipe and
ffmpeg, the Triton server, the int8 quantizer) and the quick ones (ffprobe, one-frame encodes), so
a SIGKILLed vs_sr leaves no process behind. The signal follows the *thread* that started the child:
start children from a thread that lives as long as they should.
Also: whether a process is alive (zombies are not), and the Python to run helper scripts with.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
# Run between setpriv and the tool: the parent may have died before setpriv armed the signal.
PARENT_CHECK = 'test "$PPID" = "$0" && exec "$@"; exit 1'


def _prctl() -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True).prctl if name else None
    except (OSError, AttributeError):  # not Linux
        return None


# Resolved before any fork: the child may only call it, never import or load anything.
_PRCTL = _prctl()


@functools.cache
def _setpriv() -> str | None:
    """util-linux's setpriv, when it can set the parent-death signal (2.33 and later)."""
    path = shutil.which("setpriv")
    if path is None:
        return None
    done = subprocess.run([path, "--help"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return path if "--pdeathsig" in done.stdout else None


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


def _dying_with_us(command: Sequence[str], sig: signal.Signals,
                   env: Mapping[str, str] | None) -> tuple[list[str], dict[str, Any]]:
    """The command line and Popen options of a child that gets `sig` when we die.

    setpriv arms the signal and a shell checks we still live before it runs the tool, so that Popen
    keeps starting children with vfork: a `preexec_fn` makes it fork(), and a child forked from a
    process where gRPC has run (the Triton client) aborts in gRPC's fork handlers now and then
    (measured: 5 of 1000 forks after one call of an idle client, 3% beside a busy one; none with vfork).
    """
    setpriv = _setpriv()
    if setpriv is None:
        return list(command), {"preexec_fn": die_with_parent(sig)}
    program = shutil.which(command[0], path=(env if env is not None else os.environ).get("PATH"))
    if program is None:  # as Popen would say, not the shell's exit 127
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command[0])
    shell = ["/bin/sh", "-c", PARENT_CHECK, str(os.getpid())]
    return [setpriv, f"--pdeathsig={sig.name.removeprefix('SIG')}", "--", *shell, program, *command[1:]], {}


def start_child(command: Sequence[str], sig: signal.Signals = signal.SIGKILL, **kwargs: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen` for a child that receives `sig` when the thread that started it dies."""
    arguments, options = _dying_with_us(command, sig, kwargs.get("env"))
    return subprocess.Popen(arguments, **options, **kwargs)


def run_child(command: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run` for a short-lived tool (ffprobe, a one-frame encode), whose child dies with us.
    subprocess.run kills its child when interrupted, but not when the interruption (our SIGTERM
    handler's KeyboardInterrupt) lands while Popen is still starting it, which a busy machine makes
    likely enough to see: the parent-death signal covers that window, and a SIGKILL of ours."""
    arguments, options = _dying_with_us(command, signal.SIGKILL, kwargs.get("env"))
    return subprocess.run(arguments, **options, **kwargs)


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not: it only waits to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...), read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
            parents.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found.extend(children)
        todo.extend(children)
    return found


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
