"""The batch's driver: plan videos into chunks, run the chunks on an executor with retries and
stall detection, assemble each video when its chunks are verified, and keep the state on disk so
that running the same command again continues where it stopped.

Chunks need no overlap: output frame n depends only on input frame n, so a video's chunks,
concatenated, are exactly the full run. A failed video is tried again by the next run; a full disk
stops the run (nothing is marked failed), so the same command continues once space is freed.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import SRError
from ..media.codecs import CODECS
from ..media.ffmpeg import check_extra_arguments, encoder_options
from ..media.job import Job, OutputPlan, check_job, plan_job
from ..media.output import DiskFull, readable_size
from ..media.probe import Media, probe
from ..media.processes import cancelled_by
from ..models.weights import file_digest
from ..progress import STEP_DELAY, Progress
from .assemble import DamagedChunks, assemble, damaged
from .chunk import ChunkResult, ChunkTask, space_note
from .executors import Event, Executor
from .inputs import Source
from .records import (
    ChunkRecord,
    Origin,
    OutputRecord,
    chunk_record_path,
    chunk_records,
    matches,
    output_record,
    output_record_path,
    recorded_output,
    write_record,
)
from .settings import BatchSettings
from .state import DRIVER_LOCK, STATE_DIR, Chunk, State, StateError, Video, make_state_dir, remove_state, state_path

STARTUP_ALLOWANCE = 1800.0  # seconds before a chunk's first frame (an ONNX export, a TensorRT build)
RETRY_DELAY_CAP = 60.0
# How tools and the system say a disk is full (the C library's words and this locale's; SQLite's;
# mkvmerge's "No space left to write to ... The drive may be full").
OUT_OF_SPACE = {"No space left", "Disk quota exceeded", "database or disk is full", "drive may be full",
                os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT)}


class OutOfSpace(SRError):
    """The batch directory's disk is full: the run stops, and the same command continues later."""


def out_of_space(error: str) -> bool:
    """Whether a message (a tool's, or the batch state's own "no space left to write ...") is a full disk's."""
    return any(words.lower() in error.lower() for words in OUT_OF_SPACE)


@dataclass
class RunOptions:
    max_tries: int = 3
    stall_seconds: float = 600.0
    """A running chunk that produces no frame for this long is stopped and retried."""
    keep_chunks: bool = False
    salvage: bool = False
    """Upscale what decodes of damaged or cut-short inputs (media.job.Job.salvage) instead of failing them."""
    label: str = "vs-sr batch"
    """The progress line's name: the command the user typed (`vs-sr upscale` runs long files here)."""
    tool_log: Callable[[str], None] | None = None
    """Gets each verified chunk's vspipe log, a line at a time, named by video and chunk (`-v`)."""


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
    written: tuple[str, int] | None = None
    """The output's sha256 and size (for its record)."""
    no_space: bool = False
    """The error is a full disk: the video waits for the next run, which assembles it again."""


@dataclass
class Outcome:
    done: list[Video] = field(default_factory=list)
    failed: list[Video] = field(default_factory=list)

    @property
    def salvaged(self) -> list[Video]:
        """Done from damaged or cut-short inputs (--salvage): written, but not complete."""
        return [v for v in self.done if v.salvaged]

    @property
    def ok(self) -> bool:
        """Every input was made completely."""
        return not self.failed and not self.salvaged


def chunk_dir(directory: Path, video_id: int) -> Path:
    return directory / STATE_DIR / "chunks" / f"video-{video_id:05d}"


def chunk_file(directory: Path, chunk: Chunk) -> Path:
    return chunk_dir(directory, chunk.video) / f"chunk-{chunk.idx:05d}.mkv"


def staged_chunks(directory: Path) -> Path:
    """Where --restart puts the chunks of the forgotten state until verified ones are taken back."""
    return directory / STATE_DIR / "chunks.restart"


def chunk_ranges(frames: int, length: int, kept: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ranges of at most `length` frames over 0..frames-1 that use the `kept` ranges (chunks made
    earlier, perhaps with another length) where they fit."""
    starts = {first: last for first, last in kept if 0 <= first <= last < frames}
    ranges: list[tuple[int, int]] = []
    first = 0
    while first < frames:
        last = starts.get(first)
        if last is None:
            last = min([first + length - 1, frames - 1, *(start - 1 for start in starts if start > first)])
        ranges.append((first, last))
        first = last + 1
    return ranges


class BatchRun:
    """One run over a batch directory; `run()` returns when every video is done or failed."""

    def __init__(self, directory: Path, settings: BatchSettings, executor: Executor, options: RunOptions,
                 log: Callable[[str], None] = print, quiet: bool = False, stop: threading.Event | None = None,
                 restart: bool = False) -> None:
        """restart: forget the directory's state (damaged, lost or of other settings); what still
        verifies against its record is taken back while planning (records.py)."""
        self.directory = directory.resolve()
        self.settings = settings
        self.executor = executor
        self.options = options
        self.log = log
        self.quiet = quiet
        self.stop = stop or threading.Event()
        """Set from another thread to end the run as Ctrl-C would (the studio's cancel)."""
        self.stop_assembly = threading.Event()  # set when the run is interrupted: assemblies stop
        if restart:
            self._forget_state()
        self.state = State(state_path(self.directory))
        self.plans: dict[int, Planned] = {}
        self.absent: set[int] = set()
        """Videos of the batch whose input file is gone and not among this run's inputs: left out."""
        self.ran: set[str] = set()
        """What the filter said it runs, as said so far (see _chunk_made)."""
        self.retry_at: dict[tuple[int, int], float] = {}
        self.last_frame: dict[tuple[int, int], float] = {}
        self.encoded: dict[tuple[int, int], int] = {}
        self.attempts: dict[tuple[int, int], int] = {}

    # setup
    def _forget_state(self) -> None:
        """--restart: the state goes; its chunks wait aside, to be taken back where they verify."""
        remove_state(state_path(self.directory))
        chunks = self.directory / STATE_DIR / "chunks"
        if chunks.is_dir():
            staged = staged_chunks(self.directory)
            staged.mkdir(parents=True, exist_ok=True)
            os.replace(chunks, Path(tempfile.mkdtemp(dir=staged)) / "chunks")

    def prepare(self, sources: Sequence[Source]) -> None:
        """Check the settings against the directory's, record new videos, recover from a crash,
        and give videos that failed last time another try."""
        stored = self.state.setting("settings")
        changes = BatchSettings.from_json(stored).differences(self.settings) if stored is not None else []
        if changes and self._nothing_made():  # (a run refused at its start: too little space, say)
            self.log(f"nothing was made with the batch's earlier settings ({'; '.join(changes)}); it starts with these")
            for video in self.state.videos():
                self.state.reset_video(video.id)
        elif changes:
            raise SRError(f"{self.directory} holds a batch with other settings ({'; '.join(changes)}); run it with "
                          "the same options to continue, or pass --restart to start over with the new ones.")
        self._check_outputs(sources)
        self.state.set_setting("settings", self.settings.as_json())
        for source in sources:
            if self.state.add_video(source.path, source.output):
                self.log(f"{source.path} changed since the batch last saw it; it is done again from the start")
        for video in self.state.videos():
            lost = self._output_lost(video) if video.state == "done" else None
            if lost:
                self.log(f"{lost}; it is made again")
                self.state.reset_video(video.id)
        present = {source.path for source in sources}
        self.absent = {video.id for video in self.state.videos()
                       if video.state != "done" and video.input not in present and not video.input.exists()}
        for video in self.state.retry_failed(left_out=self.absent):
            self.log(f"{video.input.name}: failed last time ({video.error}); trying again")
        for video_id in sorted(self.absent):
            self.log(f"{self.state.video(video_id).input}: gone, and not among the inputs; left out of this run (what "
                     "the batch made of it is kept, for when it is back)")
        self.state.recover()
        self._remove_dead_attempts()

    def _check_outputs(self, sources: Sequence[Source]) -> None:
        """A source written to an output the batch makes of another input: refused while that input is
        there (the second video's output replaced the first's, and both read "done"); taken as that
        video, moved, when it is gone (a library's folder renamed)."""
        made = {video.output: video for video in self.state.videos()}
        clashes = []
        for source in sources:
            other = made.get(source.output)
            if other is None or other.input == source.path:
                continue
            if other.input.exists():
                clashes.append(f"{source.path} would be written to {source.output}, which this batch makes of "
                               f"{other.input}")
            else:
                self.log(f"{source.path}: taken as {other.input}, moved (its output is the same)")
                self.state.move_input(other.id, source.path)
        if clashes:
            raise SRError(f"{'; '.join(clashes)}; rename one of each, or give it another --output-dir.")

    def _remove_dead_attempts(self) -> None:
        """The work folders of chunk attempts a killed run left (a whole chunk of video each, with
        --keep-chunks for ever): under the driver's lock no attempt runs yet, so every one is dead."""
        for folder in (self.directory / STATE_DIR / "chunks").glob("*/.chunk-*.attempt*"):
            self.log(f"removing {folder.name}, left by a chunk attempt that was stopped")
            shutil.rmtree(folder, ignore_errors=True)

    def plan(self, workers: int) -> None:
        """Frames and chunks of every video not planned yet, through the same source the render
        uses (bestsource, whose index is built once here); a bad input fails its video only.
        Chunks made earlier that still verify against their records are taken back."""
        records = chunk_records([self.directory / STATE_DIR / "chunks", staged_chunks(self.directory)])
        waiting = [v for v in self.state.videos() if v.state not in ("done", "failed") and v.id not in self.absent]
        progress = Progress(len(waiting), label=f"{self.options.label}: planning", unit="videos", quiet=self.quiet,
                            delay=STEP_DELAY)  # (each video is read and indexed: a library's take minutes)
        for count, video in enumerate(waiting):
            progress.update(count)
            try:
                if self._output_kept(video):
                    continue
                job = dataclasses.replace(self.settings.job_for(video.input, video.output), salvage=self.options.salvage)
                video.output.parent.mkdir(parents=True, exist_ok=True)
                check_job(job)
                media = probe(video.input)
                plan = plan_job(job, media, job.output_muxer)
            except StateError:
                raise
            except SRError as error:
                self._fail_video(video, error.message)
                continue
            self._plan_chunks(video, job, media, plan, workers, records)
        progress.update(len(waiting))
        progress.finish()
        shutil.rmtree(staged_chunks(self.directory), ignore_errors=True)  # what was not taken back
        self._check_chunk_files()

    def _origin(self, video: Video) -> Origin:
        return Origin(str(video.input), video.signature or "", self.settings.as_json())

    def _nothing_made(self) -> bool:
        """No video done and no chunk verified: changing the settings loses no work."""
        return not any(v.state == "done" for v in self.state.videos()) and \
            not any(c.state == "done" for c in self.state.chunks())

    def _output_lost(self, video: Video) -> str | None:
        """Why a done video's output is no longer what the batch wrote: gone, or of another size
        than its record's (cut short by a copy or a failing disk, or changed); None while it is.
        (The size is read on every run; the whole file is hashed only where a record is judged.)"""
        if not video.output.exists():
            return f"{video.output} is gone"
        record = recorded_output(self.directory, video.output)
        size = video.output.stat().st_size
        if record is not None and size != record.size:
            return f"{video.output} is {size} bytes, not the {record.size} this batch wrote (cut short or changed)"
        return None

    def _output_kept(self, video: Video) -> bool:
        """An output the state does not know as the batch's is refused, unless its record shows
        this batch made it: then it is the video's result if made from this input with these
        settings (the state was lost), else the batch's to replace."""
        if video.written or not video.output.exists():
            return False
        record = output_record(self.directory, video.output)
        if record is None:
            raise SRError(f"{video.output} exists and was not written by this batch; move it away or choose another "
                          "--output-dir.")
        if record.origin != self._origin(video):
            self.state.set_written(video.id)
            return False
        self.state.adopt_output(video.id, record.frames, record.salvaged)
        self.log(f"kept {video.output}: this batch made it from the same input with the same settings")
        return True

    def _plan_chunks(self, video: Video, job: Job, media: Media, plan: OutputPlan, workers: int,
                     records: list[tuple[ChunkRecord, Path]]) -> None:
        """The video's chunks (new ones reuse the ranges of chunks made earlier), their encoder
        options, and the earlier chunks taken back."""
        check_extra_arguments(job, job.video_codec, plan, media)
        origin = self._origin(video)
        mine = [(record, file) for record, file in records if record.origin == origin]
        if not self.state.chunks(video.id):
            length = self.settings.chunk_length(plan.frames, workers)
            kept = [(record.first, record.last) for record, file in mine if file.is_file()]
            self.state.plan_video(video.id, plan.frames, chunk_ranges(plan.frames, length, kept))
        self.state.set_salvaged(video.id, plan.salvaged)
        chunks = self.state.chunks(video.id)
        chunk_codec = self.settings.chunk_codec(job, len(chunks))
        chunk_job = job
        if chunk_codec != job.codec:  # lossless chunks; the final codec encodes the joined video
            chunk_job = dataclasses.replace(job, codec=chunk_codec, crf=None, preset=None, ffmpeg_args=[])
        options = tuple(encoder_options(chunk_job, CODECS[chunk_job.codec], plan, media))
        self.plans[video.id] = Planned(job, options, plan.width, plan.height)
        for note in plan.tracks.notes:
            self.log(f"{video.input.name}: note: {note}")
        self._take_back(video, [c for c in chunks if c.state == "pending"], list(options), mine)

    def _take_back(self, video: Video, chunks: list[Chunk], options: list[str],
                   records: list[tuple[ChunkRecord, Path]]) -> None:
        """Pending chunks made and verified before (a record of the same range and encoder options
        whose file still has its size and sha256) are done without running again."""
        taken = 0
        for chunk in chunks:
            for record, file in records:
                if (record.first, record.last, record.options) != (chunk.first, chunk.last, options) or \
                        not matches(file, record.size, record.sha256):
                    continue
                target = chunk_file(self.directory, chunk)
                if file != target:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(file, target)
                    os.replace(chunk_record_path(file), chunk_record_path(target))
                self.state.finish_chunk(chunk.key, record.sha256, record.size, record.node)
                taken += 1
                break
        if taken:
            self.log(f"{video.input.name}: {taken} chunk(s) made earlier still verify; they are kept")

    def _check_chunk_files(self) -> None:
        """A verified chunk whose file is missing or truncated is redone (hashes are checked again
        before assembly). A finished video's chunks are gone on purpose."""
        for video in self.state.videos():
            if video.id not in self.plans:
                continue
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
            smaller = ", or use --intermediate final (smaller chunks)" if self.settings.intermediate == "ffv1" else ""
            raise OutOfSpace(f"the remaining work needs about {readable_size(needed)} in {self.directory} (chunks and "
                             f"outputs); {readable_size(free)} are free. Free some space{smaller}.")

    # the run
    def run(self) -> Outcome:
        done, total = self._frame_counts()
        progress = Progress(total, label=self.options.label, done=done, quiet=self.quiet)
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
                done, total = self._frame_counts()
                progress.total = max(1, total)  # videos counted once planned, dropped when failed
                progress.update(done, self._status())
                self.state.record_progress({k: v for k, v in self.encoded.items() if k in self.attempts})
                if not self.attempts and not assembling and not self._pending(due_only=False):
                    break  # (a chunk waiting out its retry back-off is still to do)
        except BaseException:
            self.executor.stop_all()
            try:
                for key in list(self.attempts):
                    self.state.release_chunk(key, count_attempt=False)
            except StateError:  # a full disk: the next run recovers them as interrupted chunks
                pass
            self.stop_assembly.set()  # their tools stop, their work folders go: no output appears after this
            for thread in assembling.values():
                thread.join()
            raise
        finally:
            progress.finish()
        videos = [video for video in self.state.videos() if video.id not in self.absent]
        # Every video ends done or failed; one that did not (a state write lost to a full disk) is
        # not made, whatever else: it counts as failed, so the exit status cannot say "all done".
        return Outcome([v for v in videos if v.state == "done"],
                       [v if v.state == "failed" else dataclasses.replace(v, error=v.error or "not finished: run the same "
                                                                            "command again") for v in videos
                        if v.state != "done"])

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
            self._chunk_made(event.key, event.result)
            return
        if self.state.video(event.key[0]).state == "failed":  # stopped because another chunk failed the video:
            self.state.release_chunk(event.key, count_attempt=False)  # its "stopped" must not replace that reason
            return
        chunk = next(c for c in self.state.chunks(event.key[0]) if c.idx == event.key[1])
        if out_of_space(event.error):  # not the chunk's fault: it waits for the next run
            self.state.release_chunk(event.key, count_attempt=False)
            raise self._no_space(f"chunk {chunk.idx} of {self.state.video(event.key[0]).input.name}: {event.error}")
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

    def _chunk_made(self, key: tuple[int, int], result: ChunkResult) -> None:
        """A verified chunk: its record beside its file first, then the state."""
        chunk = next(c for c in self.state.chunks(key[0]) if c.idx == key[1])
        record = ChunkRecord(self._origin(self.state.video(key[0])), chunk.first, chunk.last,
                             list(self.plans[key[0]].options), result.sha256, result.size, result.node)
        self._write_record(chunk_record_path(chunk_file(self.directory, chunk)), record)
        self.state.finish_chunk(key, result.sha256, result.size, result.node)
        if result.ran and result.ran not in self.ran:  # once per run, and again wherever a node runs otherwise
            self.ran.add(result.ran)
            self.log(f"ran {result.ran}")
        if self.options.tool_log is not None:  # (after the chunk: chunks run at once, and on other nodes)
            name = self.state.video(key[0]).input.name
            for line in result.log:
                self.options.tool_log(f"{name}: chunk {chunk.idx}: {line}")

    def _write_record(self, path: Path, record: ChunkRecord | OutputRecord) -> None:
        try:
            write_record(path, record)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise self._no_space(f"writing {path.name}: {error.strerror}") from None
            raise

    def _no_space(self, what: str) -> OutOfSpace:
        what = " / ".join(line.strip() for line in what.splitlines() if line.strip())  # a tool's lines: one line
        return OutOfSpace(f"no space left on the disk of {self.directory} ({what}); free some space and run the same "
                          "command again: every verified chunk is kept.")

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
            # The batch replaces a file at the output only when it is its own: one an earlier
            # assembly of this video wrote (or began to), or one the batch's record vouches for.
            replace = video.written or (video.output.exists() and output_record(self.directory, video.output) is not None)

            def work(video: Video = video, job: Job = job, chunks: list[Chunk] = chunks, replace: bool = replace) -> None:
                # Runs beside the driver's loop; only the driver writes the state (from `done`).
                try:
                    with cancelled_by(self.stop_assembly):
                        assemble(job, self.settings, chunks, [chunk_file(self.directory, c) for c in chunks], replace)
                    done.append(Assembled(video.id, written=(file_digest(job.output), job.output.stat().st_size)))
                except DamagedChunks as error:
                    done.append(Assembled(video.id, error.message, [c.key for c in error.chunks]))
                except DiskFull as error:
                    done.append(Assembled(video.id, error.message, no_space=True))
                except SRError as error:
                    noted = space_note(error, job.output.parent).message
                    done.append(Assembled(video.id, noted, no_space=out_of_space(noted)))
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
            if result.no_space:  # assembled again by the next run
                self.state.set_video(video.id, "pending")
                raise self._no_space(f"assembling {video.input.name}: {result.error}")
            self._fail_video(video, result.error)
        else:
            sha256, size = result.written or ("", 0)
            self._write_record(output_record_path(self.directory, video.output),
                               OutputRecord(self._origin(video), video.frames or 0, sha256, size, video.salvaged))
            self.state.set_video(video.id, "done")
            if not self.options.keep_chunks:
                shutil.rmtree(chunk_dir(self.directory, video.id), ignore_errors=True)
            self.log(f"done: {video.input} -> {video.output} ({video.frames} frames)")

    def _fail_video(self, video: Video, reason: str) -> None:
        if output_record(self.directory, video.output) is not None:  # so nobody takes it for this run's result
            reason += f"; the {video.output.name} there is an earlier output of this batch, left as it was"
        self.state.set_video(video.id, "failed", reason)
        for key in [k for k in self.attempts if k[0] == video.id]:
            self.executor.cancel(key)
        self.log(f"failed: {video.input}: {reason}")

    def _frame_counts(self) -> tuple[int, int]:
        """Frames done and frames in all, over the videos not failed (a video's count is known once
        it is planned): finished videos count whole (their chunks may be gone), the others by their
        verified chunks and what their running chunks have encoded so far (counting only verified
        chunks, two that end together, as with --jobs 2, jumped the count and made the rate absurd)."""
        videos = [video for video in self.state.videos() if video.id not in self.absent]
        going = {v.id for v in videos if v.state not in ("done", "failed")}
        total = sum(v.frames or 0 for v in videos if v.state != "failed")
        done = sum(v.frames or 0 for v in videos if v.state == "done") + sum(
            c.frames for c in self.state.chunks() if c.state == "done" and c.video in going)
        running = sum(frames for (video, _), frames in self.encoded.items() if video in going)
        return min(total, done + running), total

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
    lock = FileLock(str(make_state_dir(directory) / DRIVER_LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise SRError(f"another vs-sr batch is running on {directory}; wait for it, or stop it first.") from None
    return lock
