"""File to file: source (bestsource) -> Upscale -> vspipe y4m -> ffmpeg, keeping every other track.

The video goes through vspipe, exactly as a user's own `vspipe -c y4m ... | ffmpeg` would; it gets
the source's own frame times (variable frame rates included), and audio, subtitles, attachments,
chapters and metadata come from the input file, copied where the output container can hold them
and converted (with a note saying so) where it cannot. Everything is built in a work folder beside
the output, checked (frames, size, frame times, audio) and only then renamed into place.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import SRError
from ..progress import Progress
from .encode import encode_video, filter_message
from .ffmpeg import check_extra_arguments, check_user_options, encoder_options
from .job import Job, check_job, check_tiles, plan_job
from .mux import join_video, mux
from .output import OutputSlot
from .probe import probe
from .verify import verify


@dataclass(frozen=True)
class Upscaled:
    output: Path
    salvaged: str | None
    """What the input lacked when only what decodes was upscaled (Job.salvage); None: it was complete."""


def upscale_file(job: Job, log: Callable[[str], None] = print, on_tool_log: Callable[[str], None] | None = None,
                 quiet: bool = False) -> Upscaled:
    """Run a job end to end; the output appears only if everything succeeded and checks out.

    `log` gets the plan, notes and the final line; `on_tool_log` vspipe's own log lines (the
    filter says there which backend, precision and tiles it runs); `quiet` hides the progress."""
    check_job(job)
    with OutputSlot(job.output, job.overwrite) as slot:
        media = probe(job.input)
        plan = plan_job(job, media, job.output_muxer)
        check_tiles(job, media.upright[:2])
        check_extra_arguments(job, job.video_codec, plan, media)
        log(plan_line(job, plan.first, plan.last, plan.width, plan.height))
        for note in plan.tracks.notes:
            log(f"note: {note}")
        progress = Progress(plan.frames, quiet=quiet)
        encoded = slot.work / "encoded.mkv"
        options = encoder_options(job, job.video_codec, plan, media)
        running = encode_video(job, options, plan.first, plan.last, encoded, progress.update,
                               loading_status(progress, on_tool_log))
        progress.update(plan.frames)  # vspipe's last progress line may come before its last frame
        fps = progress.finish()
        if running:  # model, device, precision (the one `auto` chose), tiles, streams
            log(f"ran {running}")
        join_video([encoded], plan, slot.work)
        encoded.unlink()
        planned = len(plan.tracks.notes)
        carried = mux(job, plan, media, slot.work, slot.target)
        for note in plan.tracks.notes[planned:]:  # what the cut to a frame range found
            log(f"note: {note}")
        verify(slot.target, plan, media)
        slot.commit()
    subtitles = sum(c.track.kind == "subtitle" for c in carried)
    log(wrote_line(job.output, plan.frames, (plan.width, plan.height), len(plan.tracks.audio), subtitles)
        + f"; {fps:.2f} fps" + ("; salvaged: incomplete" if plan.salvaged else ""))
    return Upscaled(job.output, plan.salvaged)


def plan_line(job: Job, first: int, last: int, width: int, height: int) -> str:
    """What a run is about to make, said before any frame is made."""
    return f"{job.input.name}: frames {first}-{last} -> {width}x{height} {job.codec} ({job.model} x{job.scale}) into " \
           f"{job.output}"


def wrote_line(output: Path, frames: int, size: tuple[int, int], audio: int, subtitles: int) -> str:
    """The line a written output is announced with, in one pass or in resumable chunks."""
    return f"wrote {output}: {frames} frames at {size[0]}x{size[1]}, {audio} audio, {subtitles} subtitle stream(s)"


def loading_status(progress: Progress, on_tool_log: Callable[[str], None] | None) -> Callable[[str], None]:
    """vspipe's log lines go to `on_tool_log`; until the first frame, the filter's own lines
    ("vs_sr: ...") also show as the progress line's status, so a first int8 use (quantizing takes
    a minute or more) or an engine build says what it is doing."""
    def relay(line: str) -> None:
        if on_tool_log is not None:
            on_tool_log(line)
        message = filter_message(line)
        if message is not None and progress.done == 0:
            progress.update(0, message)

    return relay


def parse_ffmpeg_args(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        arguments = shlex.split(text)
    except ValueError as error:  # an unbalanced quote
        raise SRError(f"--ffmpeg-args {text!r}: {error}; quote it as one shell argument, e.g. "
                      "--ffmpeg-args \"-tune animation\".") from None
    check_user_options(arguments)
    return arguments
