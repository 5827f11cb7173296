"""Locks between processes that leave no file behind (vs_sr.atomic.PathLock): the holder removes
the lock file before it unlocks, and a waiter that then gets the removed file notices and locks
the file now at the path, so there is never more than one holder.

The moment a waiter is blocked is observed in /proc/locks (a "->" line for the file), not slept on."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from conftest import wait_until

from vs_sr.atomic import PathLock, remove_stale_locks


def blocked_on(path: Path) -> bool:
    """Whether some process waits for a flock on the file at `path` (/proc/locks: "1: -> FLOCK ...")."""
    inode = os.stat(path).st_ino
    return any(" -> " in line and f":{inode} " in line for line in Path("/proc/locks").read_text().splitlines())


def test_released_lock_files_are_removed(tmp_path):
    path = tmp_path / "out.lock"
    with PathLock(path) as lock:
        assert lock.held and path.exists()
        assert not PathLock(path).acquire(blocking=False)  # another descriptor: refused at once
    assert not path.exists()


def test_a_waiter_never_shares_the_lock_with_a_newcomer_when_the_file_is_removed(tmp_path):
    """A holds; B waits on A's file; A removes it and unlocks; B must then hold the file at the
    path (not the removed one), so that a newcomer C is refused."""
    path = tmp_path / "shared.lock"
    first = PathLock(path)
    assert first.acquire()
    waiter = PathLock(path)
    took = threading.Event()
    thread = threading.Thread(target=lambda: waiter.acquire() and took.set(), daemon=True)
    thread.start()
    try:
        wait_until(lambda: blocked_on(path), 60, "the waiter to block on the lock")
        first.release()
        assert took.wait(60)
        # It holds the file now at the path, not the removed one: a newcomer is refused.
        assert path.exists() and not PathLock(path).acquire(blocking=False)
    finally:
        waiter.release()
        thread.join(60)
    assert not path.exists()


def test_the_lock_of_a_killed_holder_is_taken_and_stale_files_are_swept(tmp_path):
    path = tmp_path / "killed.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys\nfrom vs_sr.atomic import PathLock\n"
                               f"PathLock({str(path)!r}).acquire()\nprint('held', flush=True)\nsys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        other = tmp_path / "other.lock"
        other.touch()  # a lock file whose process died: nobody holds it
        remove_stale_locks(tmp_path)
        assert path.exists() and not other.exists()  # the held one stays
    finally:
        holder.kill()
        holder.wait()
    remove_stale_locks(tmp_path)
    assert list(tmp_path.iterdir()) == []
