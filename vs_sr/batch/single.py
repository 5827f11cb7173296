"""One long file through the batch's verified chunks, so that a `vs-sr upscale` that is killed
(a crash, a reboot, SIGKILL) continues where it stopped when the same command runs again.

The work lives in a folder beside the output, `OUTPUT.vs-sr-resume/`: a batch of one video whose
chunks are encoded in the final codec and joined as they are (the folder holds about one
output's worth), assembled with the track mapping and checks of `vs-sr upscale`, and renamed onto
the output. The folder is removed once the output is in place. Short files keep the one-pass
path (`media.upscale_file`): chunks only pay off where there is much to lose.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..atomic import fitting_name
from ..errors import SRError
from ..filter.formats import output_size
from ..media.job import Job, check_job, check_tiles
from ..media.output import OutputSlot
from ..media.probe import Media, probe
from ..media.tools import open_video
from ..media.upscale_file import Upscaled, plan_line, wrote_line
from .driver import RunOptions
from .launch import run_batch
from .settings import PER_VIDEO, BatchSettings
from .state import State, state_path
from .status import batch_status

RESUME_SUFFIX = ".vs-sr-resume"
RESUME_MINUTES_ENV = "VS_SR_RESUME_MINUTES"
RESUME_MINUTES = 10.0
"""Inputs longer than this (minutes) run resumable unless told otherwise."""
CHUNK_MINIMUM = 2000  # frames: start-up (seconds) stays small against a chunk's work
CHUNKS_PER_VIDEO = 50  # a kill loses at most ~2% of a long video
BATCH_CONTAINERS = {".mkv": "mkv", ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".webm": "webm"}


def resume_folder(output: Path) -> Path:
    """Where a resumable run of `output` keeps its work: beside it, named after it (a name too long
    for the suffix is shortened with a hash, as the one-pass work folder's is)."""
    return output.with_name(fitting_name(output.name, len(RESUME_SUFFIX)) + RESUME_SUFFIX)


def resume_minutes() -> float:
    text = os.environ.get(RESUME_MINUTES_ENV)
    if not text:
        return RESUME_MINUTES
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise SRError(f"${RESUME_MINUTES_ENV} must be a number of minutes (e.g. 10), not {text!r}.")
    return value


def wants_resume(job: Job, choice: bool | None) -> bool:
    """Whether `vs-sr upscale` runs `job` in resumable chunks: as asked (--resume/--no-resume);
    else when an interrupted resumable run of this output exists, or the input is longer than
    $VS_SR_RESUME_MINUTES (default 10). A frame range (--start/--end) runs in one pass."""
    if choice is False:
        return False
    if job.start is not None or job.end is not None:
        if choice:
            raise SRError("--resume works on whole files: drop --start/--end, or run the range without --resume.")
        return False
    if choice or resume_folder(job.output).is_dir():
        return True
    check_job(job)
    duration = probe(job.input).duration
    return duration is not None and duration > resume_minutes() * 60


def upscale_resumable(job: Job, chunk_frames: int | None = None, log: Callable[[str], None] = print,
                      quiet: bool = False, on_tool_log: Callable[[str], None] | None = None) -> Upscaled:
    """`media.upscale_file`'s result, made in verified chunks under `resume_folder(job.output)`:
    run again after any interruption, it does only the chunks not yet done. `on_tool_log` gets
    each chunk's vspipe log once the chunk is made."""
    check_job(job)
    folder = resume_folder(job.output)
    media = probe(job.input)
    settings = BatchSettings(job={f.name: getattr(job, f.name) for f in dataclasses.fields(Job)
                                  if f.name not in PER_VIDEO},
                             container=BATCH_CONTAINERS[job.output.suffix.lower()],
                             chunk_frames=chunk_frames or default_chunk_frames(media), intermediate="final")
    _check_earlier_run(folder, settings, job)
    with OutputSlot(job.output, job.overwrite) as slot:
        # (the batch plans it in full, and says its notes, itself: the line only, from the source's size)
        clip = open_video(job.input)
        check_tiles(job, (clip.width, clip.height))
        log(plan_line(job, 0, clip.num_frames - 1, *output_size(clip, job.scale, job.width, job.height)))
        _say_where(folder, settings, log)
        _retry_failed(folder)
        # The batch's own "done: INPUT -> its work file" line would name a file about to move.
        options = RunOptions(salvage=job.salvage, label="vs-sr upscale", tool_log=on_tool_log)
        outcome = run_batch([job.input], folder, settings, options, quiet=quiet,
                            log=lambda line: None if line.startswith("done: ") else log(line))
        if outcome.failed:
            raise SRError(f"{outcome.failed[0].error} (the finished chunks stay in {folder}: the same command "
                          "retries the rest)")
        result = outcome.done[0]
        os.replace(result.output, slot.target)
        slot.commit()
    shutil.rmtree(folder, ignore_errors=True)
    written = probe(job.output)
    tracks = len(written.of_kind("audio")), len(written.of_kind("subtitle"))
    salvaged = "; salvaged: incomplete" if result.salvaged else ""
    log(f"{wrote_line(job.output, result.frames or 0, written.frame_size, *tracks)} (in chunks of "
        f"{settings.chunk_frames}){salvaged}")
    return Upscaled(job.output, result.salvaged)


def default_chunk_frames(media: Media) -> int:
    """About 2% of the video (from its duration and rate: the same every run), at least CHUNK_MINIMUM."""
    try:
        frames = (media.duration or 0.0) * float(media.frame_rate)
    except SRError:  # no frame rate given: one size for all
        frames = 0.0
    return max(CHUNK_MINIMUM, math.ceil(frames / CHUNKS_PER_VIDEO))


def _check_earlier_run(folder: Path, settings: BatchSettings, job: Job) -> None:
    """An interrupted run of another input, or with other options, is not continued by this one
    (its chunks would not belong): refused, naming what differs."""
    if not state_path(folder).is_file():
        return
    state = State(state_path(folder), readonly=True)
    try:
        stored = state.setting("settings")
        inputs = {video.input for video in state.videos()}
    finally:
        state.close()
    start_over = f"or delete {folder} to start over"
    others = sorted(str(path) for path in inputs - {job.input.resolve()})
    if others:
        raise SRError(f"{folder} holds an interrupted run of {others[0]} to {job.output.name}; run that to continue it, "
                      f"{start_over}.")
    changes = BatchSettings.from_json(stored).differences(settings) if stored else []
    if changes:
        raise SRError(f"{folder} holds an interrupted run of {job.output.name} with other options "
                      f"({'; '.join(changes)}); run it with the same options to continue, {start_over}.")


def _retry_failed(folder: Path) -> None:
    """A run that failed (a chunk's last attempt, the assembly) is tried again: what failed goes
    back to pending, the verified chunks stay."""
    if not state_path(folder).is_file():
        return
    state = State(state_path(folder))
    try:
        for video in state.videos():
            if video.state == "failed":
                for chunk in state.chunks(video.id):
                    if chunk.state == "failed":
                        state.redo_chunk(chunk.key, "retried")
                state.set_video(video.id, "pending")
    finally:
        state.close()


def _say_where(folder: Path, settings: BatchSettings, log: Callable[[str], None]) -> None:
    if state_path(folder).is_file():
        done = batch_status(folder)
        log(f"continuing the interrupted run in {folder}: {done['frames_done']}/{done['frames_total']} frames "
            "already done")
    else:
        log(f"resumable run in chunks of {settings.chunk_frames} frames, kept in {folder} until the output is written; "
            "if it is stopped, the same command continues it")
