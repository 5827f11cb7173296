"""A batch directory's progress as data (`vs-sr batch status --json`, the studio): frames done
count verified chunk frames only, and every frame of a finished video (whose chunks are gone)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .state import DRIVER_LOCK, STATE_DIR, State, state_path

SHOWN_STATES = {"assembling": "running"}
STOPPED = "interrupted"  # what "running" reads as when no driver is: the next run continues it


def batch_status(directory: Path) -> dict[str, Any]:
    """The state of every video and chunk; `running` says whether a driver works on the directory
    (when none does, what the state left as running shows as interrupted)."""
    directory = directory.resolve()
    state = State(state_path(directory), readonly=True)
    running = driver_running(directory)
    try:
        videos = []
        for video in state.videos():
            chunks = state.chunks(video.id)
            encoding = {c.idx: c.progress for c in chunks if c.state == "running" and running}
            videos.append({
                "input": str(video.input),
                "output": str(video.output),
                "state": _shown(SHOWN_STATES.get(video.state, video.state), running),
                "frames_total": video.frames or 0,
                "frames_done": (video.frames or 0) if video.state == "done" else sum(c.frames for c in chunks
                                                                                      if c.state == "done"),
                "frames_encoding": sum(encoding.values()),
                "error": video.error,
                "salvaged": video.salvaged,
                "chunks": [{"first": c.first, "last": c.last, "state": _shown(c.state, running),
                            "attempts": c.attempts, "node": c.node,
                            "frames_encoding": encoding.get(c.idx, 0)}
                           for c in chunks],
            })
    finally:
        state.close()
    return {"running": running, "frames_total": sum(v["frames_total"] for v in videos),
            "frames_done": sum(v["frames_done"] for v in videos), "videos": videos}


def _shown(state: str, running: bool) -> str:
    return STOPPED if state == "running" and not running else state


def driver_running(directory: Path) -> bool:
    """Whether a process holds the directory's driver lock. Read from the kernel's list of locks
    (/proc/locks), not by trying the lock: a look must never take the lock from a driver that is
    starting. Where that list cannot be read, a driver is assumed to run."""
    try:
        locks = Path("/proc/locks").read_text(encoding="ascii")
    except OSError:
        return True
    try:
        held = os.stat(directory / STATE_DIR / DRIVER_LOCK)
    except FileNotFoundError:  # no driver has worked here since the state was made
        return False
    device = f"{os.major(held.st_dev):02x}:{os.minor(held.st_dev):02x}:{held.st_ino}"
    return any(fields[1:2] == ["FLOCK"] and device in fields for fields in (line.split() for line in locks.splitlines()))
