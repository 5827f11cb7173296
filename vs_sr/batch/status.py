"""A batch directory's progress as data (`vs-sr batch status --json`, the studio): frames done
count verified chunk frames only, and every frame of a finished video (whose chunks are gone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .state import State, state_path

SHOWN_STATES = {"assembling": "running"}


def batch_status(directory: Path) -> dict[str, Any]:
    state = State(state_path(directory.resolve()), readonly=True)
    try:
        videos = []
        for video in state.videos():
            chunks = state.chunks(video.id)
            videos.append({
                "input": str(video.input),
                "output": str(video.output),
                "state": SHOWN_STATES.get(video.state, video.state),
                "frames_total": video.frames or 0,
                "frames_done": (video.frames or 0) if video.state == "done" else sum(c.frames for c in chunks
                                                                                      if c.state == "done"),
                "frames_encoding": sum(c.progress for c in chunks if c.state == "running"),
                "error": video.error,
                "salvaged": video.salvaged,
                "chunks": [{"first": c.first, "last": c.last, "state": c.state, "attempts": c.attempts,
                            "node": c.node, "frames_encoding": c.progress if c.state == "running" else 0}
                           for c in chunks],
            })
    finally:
        state.close()
    return {"frames_total": sum(v["frames_total"] for v in videos),
            "frames_done": sum(v["frames_done"] for v in videos), "videos": videos}
