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
                 cancel: threading.Event | None = None, environment: Mapping[str, str] | None = None) -> str:
    """Encode frames first..last (inclusive) of the job's clip into `target` with the encoder
    `options` (`ffmpeg.encoder_options`), and check that every frame arrived. `progress` gets the
    number of frames vspipe has output so far; `on_log` vspipe's log lines; setting `cancel` stops
    the tools; `environment` adds variables for vspipe (a worker pinned to one GPU:
    CUDA_VISIBLE_DEVICES). Returns what the filter said it runs (`FilterSaid.running`)."""
    folder = target.parent
    script = write_script(folder, "vs_sr.media.job_clip", "job_clip")
    report = folder / f"{target.stem}.error.txt"
    report.unlink(missing_ok=True)
    arguments = vspipe_arguments({**job.filter_arguments(), ERROR_REPORT: report.resolve()})
    vspipe = [find_tool("vspipe"), "-c", "y4m", "-p", "-s", str(first), "-e", str(last), *arguments, str(script), "-"]
    said = FilterSaid(progress, on_log)
    pipe = EncodePipe(vspipe, encode_command(options, target), said.progress, report,
                      env={**tool_environment(), **(environment or {})}, on_log=said.log)
    pipe.wait(cancel)
    frames = count_frames(target)
    if frames != last - first + 1:
        raise SRError(f"the encoder wrote {frames} frames for frames {first}-{last} ({last - first + 1}).")
    return said.running()


def filter_message(line: str) -> str | None:
    """The filter's own words on a vspipe log line ("Information: vs_sr: ..."); None on another's."""
    _, mark, message = line.partition("vs_sr: ")
    return message if mark else None


class FilterSaid:
    """The filter's information lines before the first frame, heard between vspipe and the caller.
    The last says what runs: model, device, backend, precision (the one `auto` chose), tiles and
    streams; a later line is news (a Triton server's restart), not what the run was made with."""

    def __init__(self, progress: Callable[[int], None], on_log: Callable[[str], None] | None) -> None:
        self._progress, self._on_log = progress, on_log
        self._started = threading.Event()
        self._lines: list[str] = []

    def progress(self, frames: int) -> None:
        if frames > 0:
            self._started.set()
        self._progress(frames)

    def log(self, line: str) -> None:
        message = filter_message(line)
        if message is not None and line.startswith("Information") and not self._started.is_set():
            self._lines.append(message)
        if self._on_log is not None:
            self._on_log(line)

    def running(self) -> str:
        return self._lines[-1] if self._lines else ""
