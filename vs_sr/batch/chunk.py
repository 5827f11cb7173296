"""One chunk of a video, on whichever worker runs it: frames first..last through vspipe into the
encoder (the same step as `vs-sr upscale`), verified and renamed into place, with its sha256.

A task is plain data (it travels to Ray workers); each attempt writes its own temporary file, so
a lost attempt on another machine can never overwrite a later one's result. A failure on a disk
that is (nearly) full says so, whatever the tool said (ffmpeg may end its write errors with a
file that is only found short when counted).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SRError
from ..media.encode import encode_video
from ..media.job import Job
from ..media.output import DiskFull, readable_size
from ..media.probe import probe
from ..media.processes import Cancelled, ToolFailed
from ..models.weights import file_digest

LOW_SPACE = 64 << 20  # bytes free, after a failed write, below which the disk is taken as the cause
NO_SPACE = "No space left on device"


def space_note(error: SRError, folder: Path) -> SRError:
    """`error`, or when `folder`'s disk is (nearly) full, the same failure saying so."""
    free = shutil.disk_usage(folder).free
    if free >= LOW_SPACE or NO_SPACE in error.message or isinstance(error, Cancelled | DiskFull):
        return error  # (a DiskFull says so already, with what was free before its partial files went)
    message = f"{error.message} ({NO_SPACE}: {readable_size(free)} free in {folder})"
    return ToolFailed(message, error.transient) if isinstance(error, ToolFailed) else SRError(message)


@dataclass(frozen=True)
class ChunkTask:
    key: tuple[int, int]
    """(video id, chunk index) in the batch's state."""
    attempt: int
    job: Job
    options: tuple[str, ...]
    """The encoder's options (media.ffmpeg.encoder_options)."""
    first: int
    last: int
    width: int
    height: int
    target: Path
    environment: dict[str, str] = field(default_factory=dict)
    """Extra variables for vspipe (a local worker pinned to a GPU)."""

    @property
    def frames(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class ChunkResult:
    key: tuple[int, int]
    attempt: int
    sha256: str
    size: int
    node: str
    """Where it ran: the host, or the Ray node's id."""
    ran: str = ""
    """What the filter said it runs (model, device, backend, precision, tiles, streams)."""
    log: tuple[str, ...] = ()
    """vspipe's log lines (the last LOG_LINES of them)."""


LOG_LINES = 100


def attempt_folder(task: ChunkTask) -> Path:
    """Where an attempt writes before its chunk is renamed into place."""
    return task.target.with_name(f".{task.target.stem}.attempt{task.attempt}")


def run_chunk(task: ChunkTask, progress: Callable[[int], None], cancel: threading.Event | None = None,
              node: str | None = None) -> ChunkResult:
    """Encode, verify (frame count, frame size) and rename the chunk; its sha256 and size."""
    work = attempt_folder(task)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        encoded = work / task.target.name
        heard: deque[str] = deque(maxlen=LOG_LINES)
        running = encode_video(task.job, task.options, task.first, task.last, encoded, progress, heard.append, cancel,
                               task.environment)
        width, height = probe(encoded).frame_size
        if (width, height) != (task.width, task.height):
            raise SRError(f"chunk {task.key[1]} is {width}x{height}, expected {task.width}x{task.height}.")
        digest, size = file_digest(encoded), encoded.stat().st_size
        os.replace(encoded, task.target)
    except SRError as error:
        raise space_note(error, work) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ChunkResult(task.key, task.attempt, digest, size, node or socket.gethostname(), running,
                       tuple(heard))


