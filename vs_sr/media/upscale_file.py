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
from pathlib import Path

from ..errors import SRError
from ..filter.upscale_clip import precision_in_line
from ..progress import Progress
from .encode import encode_video
from .ffmpeg import encoder_options
from .job import Job, check_job, plan_job
from .mux import join_video, mux
from .output import OutputSlot
from .probe import probe
from .verify import verify


def upscale_file(job: Job, log: Callable[[str], None] = print, on_tool_log: Callable[[str], None] | None = None,
                 quiet: bool = False) -> Path:
    """Run a job end to end; the output appears only if everything succeeded and checks out.

    `log` gets the plan, notes and the final line; `on_tool_log` vspipe's own log lines (the
    filter says there which backend, precision and tiles it runs); `quiet` hides the progress."""
    check_job(job)
    with OutputSlot(job.output, job.overwrite) as slot:
        media = probe(job.input)
        plan = plan_job(job, media, job.output_muxer)
        log(f"{job.input.name}: frames {plan.first}-{plan.last} -> {plan.width}x{plan.height} {job.codec} "
            f"({job.model} x{job.scale}) into {job.output}")
        for note in plan.tracks.notes:
            log(f"note: {note}")
        progress = Progress(plan.frames, quiet=quiet)
        encoded = slot.work / "encoded.mkv"
        options = encoder_options(job, job.video_codec, plan, media)
        filter_lines = FilterLines(progress, on_tool_log)
        encode_video(job, options, plan.first, plan.last, encoded, progress.update, filter_lines)
        progress.update(plan.frames)  # vspipe's last progress line may come before its last frame
        fps = progress.finish()
        join_video([encoded], plan, slot.work)
        encoded.unlink()
        carried = mux(job, plan, media, slot.work, slot.target)
        verify(slot.target, plan, media)
        slot.commit()
    subtitles = sum(c.track.kind == "subtitle" for c in carried)
    log(f"wrote {job.output}: {plan.frames} frames at {plan.width}x{plan.height}, {len(plan.tracks.audio)} audio, "
        f"{subtitles} subtitle stream(s); {fps:.2f} fps at {filter_lines.precision or 'an unreported precision'}")
    return job.output


class FilterLines:
    """vspipe's log lines go to `on_tool_log`; until the first frame, the filter's own lines
    ("vs_sr: ...") also show as the progress line's status, so a first int8 use (quantizing takes
    a minute or so) or an engine build says what it is doing. The precision the filter ran at is
    kept for the final line."""

    def __init__(self, progress: Progress, on_tool_log: Callable[[str], None] | None) -> None:
        self.progress = progress
        self.on_tool_log = on_tool_log
        self.precision: str | None = None

    def __call__(self, line: str) -> None:
        if self.on_tool_log is not None:
            self.on_tool_log(line)
        _, mark, message = line.partition("vs_sr: ")
        if not mark:
            return
        self.precision = precision_in_line(message) or self.precision
        if self.progress.done == 0:
            self.progress.update(0, message)


def parse_ffmpeg_args(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        return shlex.split(text)
    except ValueError as error:  # an unbalanced quote
        raise SRError(f"--ffmpeg-args {text!r}: {error}; quote it as one shell argument, e.g. "
                      "--ffmpeg-args \"-tune animation\".") from None
