"""Frames first..last of a job through vspipe into the encoder: one video-only Matroska file.

`vs-sr upscale` encodes the whole range at once; `vs-sr batch` encodes chunks of it, each with
this same step, and joins them (media.mux).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..errors import SRError
from .ffmpeg import encode_command
from .job import Job
from .probe import count_frames
from .processes import EncodePipe
from .script import ERROR_REPORT, vspipe_arguments, write_script
from .tools import find_tool, tool_environment


def encode_video(job: Job, options: Sequence[str], first: int, last: int, target: Path,
                 progress: Callable[[int], None], on_log: Callable[[str], None] | None = None,
                 cancel: threading.Event | None = None, environment: Mapping[str, str] | None = None) -> None:
    """Encode frames first..last (inclusive) of the job's clip into `target` with the encoder
    `options` (`ffmpeg.encoder_options`), and check that every frame arrived. `progress` gets the
    number of frames vspipe has output so far; setting `cancel` stops the tools; `environment`
    adds variables for vspipe (a worker pinned to one GPU: CUDA_VISIBLE_DEVICES)."""
    folder = target.parent
    script = write_script(folder, "vs_sr.media.job_clip", "job_clip")
    report = folder / f"{target.stem}.error.txt"
    report.unlink(missing_ok=True)
    arguments = vspipe_arguments({**job.filter_arguments(), ERROR_REPORT: report.resolve()})
    vspipe = [find_tool("vspipe"), "-c", "y4m", "-p", "-s", str(first), "-e", str(last), *arguments, str(script), "-"]
    pipe = EncodePipe(vspipe, encode_command(options, target), progress, report,
                      env={**tool_environment(), **(environment or {})}, on_log=on_log)
    pipe.wait(cancel)
    frames = count_frames(target)
    if frames != last - first + 1:
        raise SRError(f"the encoder wrote {frames} frames for frames {first}-{last} ({last - first + 1}).")
