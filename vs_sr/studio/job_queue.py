"""Upscale jobs, run one after another through the batch layer (its state, executors, retries,
assembly and output check): a job is a one-video batch in DATA/jobs/<id>/. A server restart
re-queues unfinished jobs, and their batches continue where they stopped."""

from __future__ import annotations

import dataclasses
import logging
import queue
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from ..batch import BatchSettings, RunOptions, batch_status, run_batch
from ..batch.driver import OutOfSpace, out_of_space
from ..batch.executors import Executor
from ..batch.single import CHUNKS_PER_VIDEO
from ..errors import SRError
from .library import ACTIVE, Job, Library, Video

log = logging.getLogger("vs_sr.studio")
RESULT_NAME = "source.mkv"  # the batch names its output after the input, stored as source.<ext>
CHUNK_MINIMUM = 250  # frames: a job spreads over the workers, and a chunk's model load stays small beside its work
DISK_FULL = ("the server's disk is full: delete the videos and jobs you no longer need (DELETE /api/videos/ID, "
             "/api/jobs/ID), or have its operator free space")
FOLDERS = re.compile(r"(?<![\w.~])/(?:[^\s/:;,'\"()]+/)+")  # an absolute path's folders


def for_client(message: str, no_space: bool = False) -> str:
    """A job's failure as the API says it: a full disk (`no_space`, or a tool's words for it) as
    such, with what to do through the API (not the command line's rerun); elsewhere a file's name
    without the server's folders."""
    if no_space or out_of_space(message):
        return f"{DISK_FULL}; then retry the job (POST /api/jobs/ID/retry): what it finished is kept."
    return FOLDERS.sub("", message)


@dataclasses.dataclass
class Rate:
    """Frames per second of a running job, from the first frame this server saw."""

    first: tuple[float, int] | None = None
    last: tuple[float, int] | None = None

    def add(self, frames: int) -> None:
        now = time.monotonic()
        if self.first is None and frames > 0:
            self.first = (now, frames)
        if self.first is not None:
            self.last = (now, frames)

    def fps(self) -> float | None:
        if self.first is None or self.last is None or self.last[0] <= self.first[0] or self.last[1] <= self.first[1]:
            return None
        return (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])


class JobQueue:
    def __init__(self, library: Library, workers: int, executor: Executor | None = None) -> None:
        self.library = library
        self.workers = workers
        self.executor = executor
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stops: dict[str, threading.Event] = {}
        self._cancelled: set[str] = set()
        self._rates: dict[str, Rate] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._work, name="studio-jobs", daemon=True)

    def start(self) -> None:
        """Re-queue what a stopped or killed server left unfinished, in order, and start working."""
        unfinished = [job for job in self.library.jobs() if job.state in ACTIVE]
        for job in unfinished:
            self.library.set_job(job.id, "queued")
            self._queue.put(job.id)
        if unfinished:
            log.warning("%d unfinished job(s) from the last run are queued again; they continue from their "
                        "finished chunks", len(unfinished))
        self._thread.start()

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def cancel(self, job_id: str) -> None:
        """A queued job is skipped; a running one is stopped (its tools too) and its files removed."""
        self._cancelled.add(job_id)
        stop = self._stops.get(job_id)
        if stop is not None:
            stop.set()
        job = self.library.job(job_id)
        if job is not None and job.state == "queued":
            self.library.set_job(job_id, "cancelled")

    def retry(self, job_id: str, max_queued: int) -> bool:
        """A failed or cancelled job queued again (its batch continues where it stopped), unless
        `max_queued` jobs wait already (False)."""
        if not self.library.requeue_job(job_id, max_queued):
            return False
        self._cancelled.discard(job_id)
        self.submit(job_id)
        return True

    def wait_stopped(self, job_id: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while job_id in self._stops and time.monotonic() < deadline:
            time.sleep(0.05)

    def shutdown(self) -> None:
        """Stop the running job (it stays queued: the next server start continues it) and the worker,
        which starts no other (the jobs waiting stayed waiting; the worker took the next one, and the
        stop waited for it)."""
        self._stopping.set()
        for stop in list(self._stops.values()):
            stop.set()
        self._queue.put(None)
        self._thread.join(timeout=120)

    def result(self, job: Job) -> Path:
        return self.library.job_dir(job.id) / RESULT_NAME

    def view_of(self, job: Job) -> dict[str, Any]:
        """`view`, the job's video read for it."""
        return self.view(job, self.library.video(job.video))

    def view(self, job: Job, video: Video | None) -> dict[str, Any]:
        """The job as the API shows it: state, frames, frames per second, seconds left, error
        (`video`: the job's, None once deleted; a list of jobs reads them all in one query)."""
        total = video.frames if video else 0
        done = total if job.state == "done" else 0
        status = self._batch_status(job) if job.state == "running" else None
        if status is not None:
            total = status["frames_total"] or total
            done = min(total, status["frames_done"] + sum(v["frames_encoding"] for v in status["videos"]))
            self._rates.setdefault(job.id, Rate()).add(done)
        fps = self._rates[job.id].fps() if job.state == "running" and job.id in self._rates else None
        eta = None if not fps else round((total - done) / fps, 1)
        return {"id": job.id, "video": job.video, "video_name": video.name if video else None, "state": job.state,
                "frames_done": done, "frames_total": total,
                "fps": None if fps is None else round(fps, 2), "eta_s": eta, "error": job.error, **job.settings}

    def _batch_status(self, job: Job) -> dict[str, Any] | None:
        """The job's batch as `batch_status` reads it; None before its state exists (not started)
        or when it cannot be read (the job's own run fails with the reason)."""
        try:
            return batch_status(self.library.job_dir(job.id))
        except SRError:
            return None

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None or self._stopping.is_set():
                return
            job = self.library.job(job_id)
            if job is None or job.state != "queued" or job_id in self._cancelled:
                if job is None or job.state != "running":  # (a running one's stop reads it)
                    self._cancelled.discard(job_id)  # skipped: kept, the set grew for the server's life
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        video = self.library.video(job.video)
        if video is None:
            self.library.set_job(job.id, "failed", "the video was deleted")
            return
        stop = self._stops[job.id] = threading.Event()
        if self._stopping.is_set():  # (the server began to stop as this job started)
            stop.set()
        self.library.set_job(job.id, "running")
        settings = BatchSettings(job=dict(job.settings), chunk_frames=chunk_frames(video.frames, self.workers))
        try:
            outcome = run_batch([video.file], self.library.job_dir(job.id), settings, RunOptions(), jobs=self.workers,
                                log=lambda line: log.info("job %s: %s", job.id, line), quiet=True, stop=stop,
                                executor=self.executor)
            failed = for_client(outcome.failed[0].error or "failed") if outcome.failed else None
            self._finish(job, failed, outcome.failed[0].error if outcome.failed else None)
        except KeyboardInterrupt:  # stopped: cancelled by a user, or the server is shutting down
            if job.id in self._cancelled:
                self.library.set_job(job.id, "cancelled")
                shutil.rmtree(self.library.job_dir(job.id), ignore_errors=True)
                self._cancelled.discard(job.id)
            else:
                self.library.set_job(job.id, "queued")
        except SRError as error:
            self._finish(job, for_client(error.message, isinstance(error, OutOfSpace)), error.message)
        except Exception as error:  # a job's failure must not end the queue
            log.exception("job %s failed", job.id)
            self.library.set_job(job.id, "failed", f"{type(error).__name__}: {error}")
        finally:
            self._stops.pop(job.id, None)
            self._rates.pop(job.id, None)

    def _finish(self, job: Job, failed: str | None, reason: str | None) -> None:
        """Record a job's end; a failure also goes to the server's log, in the words that name the
        server's files (the client's `failed` leaves them out)."""
        self.library.set_job(job.id, "failed" if failed else "done", failed)
        if failed:
            log.warning("job %s failed: %s", job.id, reason or failed)


def chunk_frames(frames: int, workers: int) -> int:
    """A job spread over the workers, in chunks of at most ~2% of the video (and at least
    CHUNK_MINIMUM frames): a server restart or crash loses only the chunks in flight (one chunk per
    worker lost the whole video)."""
    return max(CHUNK_MINIMUM, -(-frames // max(workers, CHUNKS_PER_VIDEO)))
