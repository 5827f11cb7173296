"""No process a test starts outlives it: the `spawn` fixture (Popen whose processes are killed at
the test's end, passed or failed) and a check after every test and every wider fixture.

Every process this run starts carries two marks in its environment, inherited by whatever it
starts in turn (vspipe's native child, ffmpeg, tritonserver's stubs, Ray's daemons, chromium):
`VS_SR_TEST_RUN` (this pytest process: other runs on the machine are not ours) and
`VS_SR_TEST_OWNER` (the test, or the module/session fixture, being set up or run). When a test or
a wider fixture is torn down, the processes it owned must be gone: after a grace period they are
killed and the teardown fails, naming them. A process that clears its environment escapes this
check; none of ours does.
"""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

RUN_MARK = "VS_SR_TEST_RUN"
OWNER_MARK = "VS_SR_TEST_OWNER"
GRACE = 60.0  # seconds a torn-down owner's processes get to finish exiting (a busy machine is slow)
_numbers = itertools.count(1)
_fixture_owners: dict[int, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    os.environ[RUN_MARK] = f"{os.getpid()}-{secrets.token_hex(4)}"
    # A suite started in the background of a script (`cmd &` in sh, as some CI runners do) gets
    # SIGINT ignored, and an ignored signal stays ignored across exec: every vs-sr the tests start
    # would then shrug off the Ctrl-C they test, and run on to exit 0. A handler, unlike SIG_IGN,
    # is reset to the default on exec, so the children start as from a terminal.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[Any]:
    os.environ[OWNER_MARK] = item.nodeid
    try:
        return (yield)
    finally:
        os.environ.pop(OWNER_MARK, None)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    """A module or session fixture owns what it starts (a server shared by tests), not the test
    that happened to set it up."""
    if fixturedef.scope == "function":
        return (yield)
    outer = os.environ.get(OWNER_MARK)
    owner = _fixture_owners[id(fixturedef)] = f"fixture {fixturedef.argname} ({fixturedef.scope}) #{next(_numbers)}"
    os.environ[OWNER_MARK] = owner
    try:
        return (yield)
    finally:
        if outer is None:
            os.environ.pop(OWNER_MARK, None)
        else:
            os.environ[OWNER_MARK] = outer


def pytest_fixture_post_finalizer(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> None:
    owner = _fixture_owners.pop(id(fixturedef), None)
    if owner is not None:
        _fail_if_left(owner)


@pytest.fixture(autouse=True)
def no_process_outlives_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Autouse, so set up first and torn down last: after every other function fixture's end."""
    yield
    _fail_if_left(request.node.nodeid)


def started_by(owner: str) -> list[tuple[int, str]]:
    """(pid, command line) of live processes of this run that `owner` started."""
    wanted = {f"{RUN_MARK}={os.environ[RUN_MARK]}".encode(), f"{OWNER_MARK}={owner}".encode()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == str(os.getpid()):
            continue
        try:
            if not wanted <= set((entry / "environ").read_bytes().split(b"\0")):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        found.append((int(entry.name), command))
    return found


def _fail_if_left(owner: str) -> None:
    left = started_by(owner)
    deadline = time.monotonic() + GRACE
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = started_by(owner)
    if not left:
        return
    for pid, _ in left:  # so that they cannot disturb the tests after this one
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    listing = "\n".join(f"  {pid}: {command[:300]}" for pid, command in left)
    pytest.fail(f"{owner} left {len(left)} process(es) running (now killed):\n{listing}", pytrace=False)


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGKILL a process started by a test (with its process group when it leads one) unless it
    has ended, and reap it. Survivors of a group whose leader ended are the check's to find."""
    if process.poll() is None:  # not reaped, so its pid (and group id) cannot belong to another
        try:
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        except ProcessLookupError:
            pass
    process.wait(timeout=60)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[Any]]]:
    """`spawn(command, **popen_options)`: subprocess.Popen (stdin from /dev/null unless given),
    and every process so started is killed and reaped when the test ends, however it ends."""
    started: list[subprocess.Popen[Any]] = []

    def start(command: list[str], **options: Any) -> subprocess.Popen[Any]:
        # No preexec_fn (a parent-death signal, say): it makes Popen fork() instead of vfork(), and
        # a child forked from a pytest that has gRPC loaded (the Triton tests) now and then aborts
        # in gRPC's fork handlers ("epoll_wait error: Bad file descriptor") before its exec.
        process = subprocess.Popen(command, **{"stdin": subprocess.DEVNULL, **options})
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        stop_process(process)
