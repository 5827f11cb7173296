"""Frames first..last of a job through vspipe into the encoder: one video-only Matroska file.

`vs-sr upscale` encodes the whole range at once; `vs-sr batch` encodes chunks of it, each with
this same step, and joins them (media.mux).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import SRError
from .codecs import Codec
from .ffmpeg import encode_command
from .job import Job, OutputPlan
from .probe import Media, count_frames
from .processes import EncodePipe
from .script import ERROR_REPORT, vspipe_arguments, write_script
from .tools import find_tool, tool_environment


def encode_video(job: Job, codec: Codec, plan: OutputPlan, media: Media, first: int, last: int, target: Path,
                 progress: Callable[[int], None], on_log: Callable[[str], None] | None = None) -> None:
    """Encode frames first..last (inclusive) of the job's clip into `target`, and check that every
    frame arrived. `progress` gets the number of frames vspipe has output so far."""
    folder = target.parent
    script = write_script(folder, "vs_sr.media.job", "job_clip")
    report = folder / f"{target.stem}.error.txt"
    report.unlink(missing_ok=True)
    arguments = vspipe_arguments({**job.filter_arguments(), ERROR_REPORT: report.resolve()})
    vspipe = [find_tool("vspipe"), "-c", "y4m", "-p", "-s", str(first), "-e", str(last), *arguments, str(script), "-"]
    pipe = EncodePipe(vspipe, encode_command(job, codec, plan, media, target), progress, report,
                      env=tool_environment(), on_log=on_log)
    pipe.wait()
    frames = count_frames(target)
    if frames != last - first + 1:
        raise SRError(f"the encoder wrote {frames} frames for frames {first}-{last} ({last - first + 1}).")
