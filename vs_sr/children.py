"""Child processes that die with us: Linux's parent-death signal, armed before the tool runs.

Every child vs_sr starts goes through `start_child` or `run_child`, the long-lived ones (vspipe and
ffmpeg, the Triton server, the int8 quantizer) and the quick ones (ffprobe, one-frame encodes), so
a SIGKILLed vs_sr leaves no process behind. The signal follows the *thread* that started the child:
start children from a thread that lives as long as they should.
A thread's work can be cancelled from outside (`cancelled_by`): the children it waits for stop.
Also: whether a process is alive (zombies are not), owner tags that say which process left a shared
file, and the Python to run helper scripts with.
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
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import SRError

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
POLL = 0.2  # seconds between checks of a cancellation while waiting for children
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
                   options: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The command line and extra Popen options of a child that gets `sig` when we die.

    setpriv arms the signal and a shell checks we still live before it runs the tool, so that Popen
    keeps starting children with vfork: a `preexec_fn` makes it fork(), and a child forked from a
    process where gRPC has run (the Triton client) aborts in gRPC's fork handlers now and then
    (measured: 5 of 1000 forks after one call of an idle client, 3% beside a busy one; none with vfork).
    The shell passes the tool the environment it is given, less names a shell cannot hold (with a
    dot or a dash): none of ours has one.
    """
    if "executable" in options or options.get("shell"):
        raise TypeError("start_child and run_child take the program as the command's first item (no executable= "
                        "or shell=)")
    setpriv = _setpriv()
    if setpriv is None:
        return list(command), {"preexec_fn": die_with_parent(sig)}
    program = _program(command[0], options.get("env"), options.get("cwd"))
    shell = ["/bin/sh", "-c", PARENT_CHECK, str(os.getpid())]
    return [setpriv, f"--pdeathsig={sig.name.removeprefix('SIG')}", "--", *shell, program, *command[1:]], {}


def _program(name: str, env: Mapping[str, str] | None, cwd: str | os.PathLike[str] | None) -> str:
    """The file Popen would run for `name`, or the error it would raise (not a shell's exit 127)."""
    if "/" not in name:
        found = shutil.which(name, path=(env if env is not None else os.environ).get("PATH"))
        if found is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        return found
    path = Path(cwd or ".") / name  # a relative name is relative to the child's folder, as for Popen
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
    if path.is_dir() or not os.access(path, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
    return str(path.absolute())


def start_child(command: Sequence[str], sig: signal.Signals = signal.SIGKILL, **kwargs: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen` for a child that receives `sig` when the thread that started it dies."""
    arguments, options = _dying_with_us(command, sig, kwargs)
    return subprocess.Popen(arguments, **options, **kwargs)


def run_child(command: Sequence[str], input: Any = None, timeout: float | None = None,
              capture_output: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run` for a short-lived tool (ffprobe, a one-frame encode), whose child dies with
    us, and which a cancellation of this thread's work (`cancelled_by`) stops. subprocess.run kills
    its child when interrupted, but not when the interruption (our SIGTERM handler's
    KeyboardInterrupt) lands while Popen is still starting it, which a busy machine makes likely
    enough to see: the parent-death signal covers that window, and a SIGKILL of ours."""
    arguments, options = _dying_with_us(command, signal.SIGKILL, kwargs)
    if capture_output:
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    with subprocess.Popen(arguments, **options, **kwargs) as process:
        try:
            out, err = communicate(process, input, timeout)
        except BaseException:
            process.kill()
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


class Cancelled(SRError):
    """The work was stopped on request."""


_scope = threading.local()  # the event that cancels this thread's work (see `cancelled_by`)


@contextmanager
def cancelled_by(event: threading.Event) -> Iterator[None]:
    """Within the block, the children this thread waits for (`run_child`, `communicate`) are
    stopped, raising Cancelled, once `event` is set: how a thread that runs several steps (a
    batch's assembly) is stopped from outside, without handing the event through every step."""
    outer = getattr(_scope, "event", None)
    _scope.event = event
    try:
        yield
    finally:
        _scope.event = outer


def check_cancelled() -> None:
    """Raise Cancelled if this thread's work was cancelled: for the steps between children, and
    before a step that cannot be undone (an output renamed into place)."""
    cancel: threading.Event | None = getattr(_scope, "event", None)
    if cancel is not None and cancel.is_set():
        raise Cancelled("stopped")


def communicate(process: subprocess.Popen[Any], input: Any = None,
                timeout: float | None = None) -> tuple[Any, Any]:
    """`process.communicate`, which a cancellation of this thread's work interrupts (the caller
    stops the process). Not with `input`: Popen sends it only within the call that is given it, and
    refuses it in a repeated one."""
    if getattr(_scope, "event", None) is None or input is not None:
        return process.communicate(input, timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        check_cancelled()
        wait = POLL if deadline is None else max(0.0, min(POLL, deadline - time.monotonic()))
        try:
            return process.communicate(None, wait)
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(process.args, timeout or 0.0) from None


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not: it only waits to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def owner_tag(pid: int | None = None) -> str:
    """This process (or `pid` of our namespace) as the owner of a file others may clean up: the pid
    and its pid namespace ("1234n4026531836"). A pid names a process only in its own namespace: a
    container sharing /dev/shm or /tmp with us numbers its processes from 1 too."""
    return f"{os.getpid() if pid is None else pid}n{_pid_namespace()}"


def owner_gone(tag: str) -> bool:
    """Whether the owner of `tag` (an `owner_tag`, or a bare pid as vs_sr wrote before) has surely
    ended: a process of our namespace that no longer runs. One in another namespace cannot be looked
    up from here, so it is never taken for gone."""
    pid, _, namespace = tag.partition("n")
    return pid.isdigit() and namespace in ("", _pid_namespace()) and not alive(int(pid))


@functools.cache
def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:  # no /proc: tags carry no namespace, judged by pid alone as before
        return ""


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


@contextmanager
def killed_if_interrupted(shutdown: Callable[[], None]) -> Iterator[None]:
    """Within the block, what it starts below us is ours to end: if the block raises, `shutdown`
    runs, then every process that appeared below us meanwhile is killed and reaped. Grandchildren
    orphaned by the shutdown (a daemon's own helpers) are adopted meanwhile (we are their child
    subreaper for the block), so they are among them rather than left to init."""
    own = os.getpid()
    before = set(descendants(own))
    was_subreaper = ctypes.c_int(0)
    if _PRCTL is not None:
        _PRCTL(PR_GET_CHILD_SUBREAPER, ctypes.byref(was_subreaper))
        _PRCTL(PR_SET_CHILD_SUBREAPER, 1)
    try:
        yield
    except BaseException:
        held = _pidfds(set(descendants(own)) - before)  # held: a pid freed meanwhile is not reused
        try:
            shutdown()
        finally:
            _kill_all_new(held, before)
        raise
    finally:
        if _PRCTL is not None:
            _PRCTL(PR_SET_CHILD_SUBREAPER, was_subreaper.value)


def _kill_all_new(held: dict[int, int], before: set[int]) -> None:
    """Kill the processes `held`, then, round after round, those that appeared below us since
    `before` (a daemon may start a helper until it is killed; orphaned, the helper is adopted by
    us), until a round finds none; reap those that are ours."""
    done: set[int] = set()
    while held:
        for fd in held.values():
            _kill(fd)
        done.update(held)
        held = _pidfds({pid for pid in descendants(os.getpid()) if alive(pid)} - before - done)


def _pidfds(pids: set[int]) -> dict[int, int]:
    """Descriptors of the processes `pids` that still run (a signal through one reaches that
    process or none, never a later one with the same pid)."""
    fds = {}
    for pid in pids:
        try:
            fds[pid] = os.pidfd_open(pid)
        except ProcessLookupError:
            pass
    return fds


def _kill(fd: int) -> None:
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        os.waitid(os.P_PIDFD, fd, os.WEXITED)  # ours (a child, or adopted): no zombie stays
    except (ProcessLookupError, ChildProcessError):  # ended already; or a grandchild, reaped by its parent
        pass
    finally:
        os.close(fd)


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
