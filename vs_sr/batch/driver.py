"""The batch's driver: plan videos into chunks, run the chunks on an executor with retries and
stall detection, assemble each video when its chunks are verified, and keep the state on disk so
that running the same command again continues where it stopped.

Chunks need no overlap: output frame n depends only on input frame n, so a video's chunks,
concatenated, are exactly the full run.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import SRError
from ..media.codecs import CODECS
from ..media.ffmpeg import encoder_options
from ..media.job import Job, check_job, plan_job
from ..media.probe import probe
from ..progress import Progress
from .assemble import DamagedChunks, assemble, damaged
from .chunk import ChunkTask
from .executors import Event, Executor
from .inputs import Source
from .settings import BatchSettings
from .state import STATE_DIR, Chunk, State, Video, state_path

STARTUP_ALLOWANCE = 1800.0  # seconds before a chunk's first frame (an ONNX export, a TensorRT build)
RETRY_DELAY_CAP = 60.0


@dataclass
class RunOptions:
    max_tries: int = 3
    stall_seconds: float = 600.0
    """A running chunk that produces no frame for this long is stopped and retried."""
    keep_chunks: bool = False


@dataclass(frozen=True)
class Planned:
    """What every chunk of a video needs: the job, the chunks' encoder options, the frame size."""

    job: Job
    options: tuple[str, ...]
    width: int
    height: int


@dataclass(frozen=True)
class Assembled:
    video: int
    error: str | None = None
    redo: list[tuple[int, int]] = field(default_factory=list)
    """Chunks whose files changed since they were verified: done again, then assembled again."""


@dataclass
class Outcome:
    done: list[Video] = field(default_factory=list)
    failed: list[Video] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def chunk_dir(directory: Path, video_id: int) -> Path:
    return directory / STATE_DIR / "chunks" / f"video-{video_id:05d}"


def chunk_file(directory: Path, chunk: Chunk) -> Path:
    return chunk_dir(directory, chunk.video) / f"chunk-{chunk.idx:05d}.mkv"


class BatchRun:
    """One run over a batch directory; `run()` returns when every video is done or failed."""

    def __init__(self, directory: Path, settings: BatchSettings, executor: Executor, options: RunOptions,
                 log: Callable[[str], None] = print, quiet: bool = False, stop: threading.Event | None = None) -> None:
        self.directory = directory.resolve()
        self.settings = settings
        self.executor = executor
        self.options = options
        self.log = log
        self.quiet = quiet
        self.stop = stop or threading.Event()
        """Set from another thread to end the run as Ctrl-C would (the studio's cancel)."""
        self.state = State(state_path(self.directory))
        self.plans: dict[int, Planned] = {}
        self.retry_at: dict[tuple[int, int], float] = {}
        self.last_frame: dict[tuple[int, int], float] = {}
        self.encoded: dict[tuple[int, int], int] = {}
        self.attempts: dict[tuple[int, int], int] = {}

    # setup
    def prepare(self, sources: Sequence[Source], restart: bool) -> None:
        """Check the settings against the directory's, record new videos, recover from a crash."""
        stored = self.state.setting("settings")
        if restart:
            self.state.clear()
            shutil.rmtree(self.directory / STATE_DIR / "chunks", ignore_errors=True)
        elif stored is not None:
            changes = BatchSettings.from_json(stored).differences(self.settings)
            if changes:
                raise SRError(f"{self.directory} holds a batch with other settings ({'; '.join(changes)}); run it with "
                              "the same options to continue, or pass --restart to start over with the new ones.")
        self.state.set_setting("settings", self.settings.as_json())
        for source in sources:
            if self.state.add_video(source.path, source.output):
                self.log(f"{source.path} changed since the batch last saw it; it is done again from the start")
        for video in self.state.videos():
            if video.state == "done" and not video.output.exists():
                self.log(f"{video.output} is gone; it is made again")
                self.state.reset_video(video.id)
        self.state.recover()

    def plan(self, workers: int) -> None:
        """Frames and chunks of every video not planned yet, through the same source the render
        uses (bestsource, whose index is built once here); a bad input fails its video only."""
        for video in self.state.videos():
            if video.state in ("done", "failed"):
                continue
            job = self.settings.job_for(video.input, video.output)
            try:
                if video.output.exists() and not video.written:
                    raise SRError(f"{video.output} exists and was not written by this batch; move it away or choose "
                                  "another --output-dir.")
                video.output.parent.mkdir(parents=True, exist_ok=True)
                check_job(job)
                media = probe(video.input)
                plan = plan_job(job, media, job.output_muxer)
            except SRError as error:
                self._fail_video(video, error.message)
                continue
            if not self.state.chunks(video.id):
                length = self.settings.chunk_length(plan.frames, workers)
                ranges = [(first, min(first + length, plan.frames) - 1) for first in range(0, plan.frames, length)]
                self.state.plan_video(video.id, plan.frames, ranges)
            chunk_codec = self.settings.chunk_codec(job, len(self.state.chunks(video.id)))
            chunk_job = job
            if chunk_codec != job.codec:  # lossless chunks; the final codec encodes the joined video
                chunk_job = dataclasses.replace(job, codec=chunk_codec, crf=None, preset=None, ffmpeg_args=[])
            options = tuple(encoder_options(chunk_job, CODECS[chunk_job.codec], plan, media))
            self.plans[video.id] = Planned(job, options, plan.width, plan.height)
            for note in plan.tracks.notes:
                self.log(f"{video.input.name}: note: {note}")
        self._check_chunk_files()

    def _check_chunk_files(self) -> None:
        """A verified chunk whose file is missing or truncated is redone (hashes are checked again
        before assembly)."""
        for video in self.state.videos():
            chunks = [c for c in self.state.chunks(video.id) if c.state == "done"]
            for chunk in damaged(chunks, [chunk_file(self.directory, c) for c in chunks], full=False):
                self.log(f"{video.input.name}: chunk {chunk.idx} (frames {chunk.first}-{chunk.last}) is missing or "
                         "truncated; it is done again")
                self.state.redo_chunk(chunk.key, "file missing or truncated")

    def check_space(self) -> None:
        """Refuse to start when the remaining chunks would not fit on the batch directory's disk."""
        needed = 0.0
        for video in self.state.videos():
            planned = self.plans.get(video.id)
            if planned is None or video.state in ("done", "failed"):
                continue
            chunks = self.state.chunks(video.id)
            frames = sum(c.frames for c in chunks if c.state != "done")
            chunk_codec = self.settings.chunk_codec(planned.job, len(chunks))
            needed += frames * planned.width * planned.height * (CODECS[chunk_codec].bytes_per_pixel + FINAL_BYTES_PER_PIXEL)
        free = shutil.disk_usage(self.directory).free
        if needed > free:
            raise SRError(f"the remaining work needs about {needed / 1e9:.1f} GB in {self.directory} (chunks and "
                          f"outputs); {free / 1e9:.1f} GB are free. Free some space"
                          + (", or use --intermediate final (smaller chunks)." if self.settings.intermediate == "ffv1"
                             else "."))

    # the run
    def run(self) -> Outcome:
        frames_total = sum(v.frames or 0 for v in self.state.videos() if v.state != "failed")
        progress = Progress(frames_total, label="vs-sr batch", done=self._verified(), quiet=self.quiet)
        assembling: dict[int, threading.Thread] = {}
        assembled: list[Assembled] = []
        try:
            while True:
                if self.stop.is_set():
                    raise KeyboardInterrupt
                self._start_chunks()
                for event in self.executor.events(timeout=0.5):
                    self._handle(event)
                self._stop_stalled()
                self._start_assemblies(assembling, assembled)
                while assembled:
                    self._assembled(assembled.pop(), assembling)
                progress.update(self._verified(), self._status())
                self.state.record_progress({k: v for k, v in self.encoded.items() if k in self.attempts})
                if not self.attempts and not assembling and not self._pending(due_only=False):
                    break  # (a chunk waiting out its retry back-off is still to do)
        except BaseException:
            self.executor.stop_all()
            for key in list(self.attempts):
                self.state.release_chunk(key, count_attempt=False)
            for thread in assembling.values():
                thread.join()
            raise
        finally:
            progress.finish()
        videos = self.state.videos()
        return Outcome([v for v in videos if v.state == "done"], [v for v in videos if v.state == "failed"])

    def _pending(self, due_only: bool = True) -> list[Chunk]:
        """Chunks to do, longest videos first (they set the batch's end), then in order; with
        `due_only`, only those that may start now (not waiting out a retry's back-off)."""
        frames = {v.id: v.frames or 0 for v in self.state.videos() if v.state not in ("done", "failed")}
        now = time.monotonic()
        waiting = [c for c in self.state.chunks() if c.state == "pending" and c.video in frames
                   and c.video in self.plans and (not due_only or self.retry_at.get(c.key, now) <= now)]
        return sorted(waiting, key=lambda c: (-frames[c.video], c.video, c.idx))

    def _start_chunks(self) -> None:
        for chunk in self._pending()[:max(0, self.executor.slots - len(self.attempts))]:
            attempt = self.state.start_chunk(chunk.key)
            self.attempts[chunk.key] = attempt
            self.last_frame[chunk.key] = time.monotonic() + STARTUP_ALLOWANCE - self.options.stall_seconds
            self.encoded[chunk.key] = 0
            self.executor.submit(self._task(chunk, attempt))

    def _task(self, chunk: Chunk, attempt: int) -> ChunkTask:
        planned = self.plans[chunk.video]
        target = chunk_file(self.directory, chunk)
        target.parent.mkdir(parents=True, exist_ok=True)
        return ChunkTask(chunk.key, attempt, planned.job, planned.options, chunk.first, chunk.last, planned.width,
                         planned.height, target)

    def _handle(self, event: Event) -> None:
        if self.attempts.get(event.key) != event.attempt:
            return  # news of an attempt we already gave up on
        if event.kind == "progress":
            self.encoded[event.key] = event.frames
            self.last_frame[event.key] = time.monotonic()
            return
        self.attempts.pop(event.key)
        self.encoded.pop(event.key, None)
        if event.kind == "done" and event.result is not None:
            self.state.finish_chunk(event.key, event.result.sha256, event.result.size, event.result.node)
            return
        chunk = next(c for c in self.state.chunks(event.key[0]) if c.idx == event.key[1])
        final = not event.transient or chunk.attempts >= self.options.max_tries
        self.state.fail_chunk(event.key, event.error, final)
        video = self.state.video(event.key[0])
        where = f"{video.input.name}: chunk {chunk.idx} (frames {chunk.first}-{chunk.last}), attempt {chunk.attempts}"
        if final:
            self._fail_video(video, f"chunk {chunk.idx} (frames {chunk.first}-{chunk.last}) failed after "
                                    f"{chunk.attempts} attempt(s): {event.error}")
        else:
            delay = min(RETRY_DELAY_CAP, 2.0 ** chunk.attempts)
            self.retry_at[event.key] = time.monotonic() + delay
            self.log(f"{where} failed ({event.error}); retrying in {delay:.0f} s")

    def _stop_stalled(self) -> None:
        now = time.monotonic()
        for key in list(self.attempts):
            if now - self.last_frame[key] > self.options.stall_seconds:
                self.log(f"chunk {key[1]} of video {key[0]}: no frame for {self.options.stall_seconds:.0f} s; stopping it")
                self.last_frame[key] = now  # once; the stop comes back as a failed (transient) attempt
                self.executor.cancel(key)

    def _start_assemblies(self, assembling: dict[int, threading.Thread], done: list[Assembled]) -> None:
        for video in self.state.videos():
            if video.state in ("done", "failed") or video.id in assembling or video.id not in self.plans:
                continue
            chunks = self.state.chunks(video.id)
            if not chunks or any(c.state != "done" for c in chunks):
                continue
            job = self.plans[video.id].job

            def work(video: Video = video, job: Job = job, chunks: list[Chunk] = chunks) -> None:
                # Runs beside the driver's loop; only the driver writes the state (from `done`).
                try:
                    assemble(job, self.settings, chunks, [chunk_file(self.directory, c) for c in chunks])
                    done.append(Assembled(video.id))
                except DamagedChunks as error:
                    done.append(Assembled(video.id, error.message, [c.key for c in error.chunks]))
                except SRError as error:
                    done.append(Assembled(video.id, error.message))
                except Exception as error:  # the video fails with the reason; the batch goes on
                    done.append(Assembled(video.id, f"{type(error).__name__}: {error}"))

            self.state.set_video(video.id, "assembling")
            thread = threading.Thread(target=work, name=f"assemble-{video.id}", daemon=True)
            assembling[video.id] = thread
            thread.start()

    def _assembled(self, result: Assembled, assembling: dict[int, threading.Thread]) -> None:
        assembling.pop(result.video).join()
        video = self.state.video(result.video)
        if result.redo:
            for key in result.redo:
                self.state.redo_chunk(key, "file changed after it was verified")
            self.state.set_video(video.id, "pending")
            self.log(f"{video.input.name}: {result.error}; redoing them")
        elif result.error is not None:
            self._fail_video(video, result.error)
        else:
            self.state.set_video(video.id, "done")
            if not self.options.keep_chunks:
                shutil.rmtree(chunk_dir(self.directory, video.id), ignore_errors=True)
            self.log(f"done: {video.input} -> {video.output} ({video.frames} frames)")

    def _fail_video(self, video: Video, reason: str) -> None:
        self.state.set_video(video.id, "failed", reason)
        for key in [k for k in self.attempts if k[0] == video.id]:
            self.executor.cancel(key)
        self.log(f"failed: {video.input}: {reason}")

    def _verified(self) -> int:
        return sum(c.frames for c in self.state.chunks() if c.state == "done")

    def _status(self) -> str:
        running = len(self.attempts)
        return f"{running} chunk(s) encoding" if running else ""

    def close(self) -> None:
        self.state.close()


# Rough bytes per output pixel and frame of the final output, for the disk-space check (chunks: each
# codec's `bytes_per_pixel`; measured on 854x480 frames: FFV1 level 3 about 1.1, x264/x265 CRF 18-20
# under 0.1).
FINAL_BYTES_PER_PIXEL = 0.15


def lock_directory(directory: Path) -> FileLock:
    """One driver per batch directory; a second is refused at once."""
    lock = FileLock(str(directory / STATE_DIR / "driver.lock"))
    (directory / STATE_DIR).mkdir(parents=True, exist_ok=True)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise SRError(f"another vs-sr batch is running on {directory}; wait for it, or stop it first.") from None
    return lock
