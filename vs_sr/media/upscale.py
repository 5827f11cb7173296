"""File to file: source (bestsource) -> Upscale -> vspipe y4m -> ffmpeg, keeping every other track.

The video goes through vspipe, exactly as a user's own `vspipe -c y4m ... | ffmpeg` would; audio,
subtitles, attachments, chapters and metadata come straight from the input file, copied where
the output container can hold them and re-encoded (with a note saying so) where it cannot. The
result is written under a temporary name, checked (frame count, size, audio duration) and only
then renamed to the output path.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import atomic_output
from ..errors import SRError
from .chapters import chapters_for_range
from .ffmpeg import cut_command, encode_command
from .job import Job, OutputPlan, check_job, plan_job
from .probe import probe
from .processes import EncodePipe
from .progress import Progress
from .script import ERROR_REPORT, vspipe_arguments, write_script
from .tools import find_tool
from .verify import verify


def vspipe_command(job: Job, plan: OutputPlan, script: Path, error_report: Path) -> list[str]:
    arguments = vspipe_arguments({**job.filter_arguments(), ERROR_REPORT: error_report})
    return [find_tool("vspipe"), "-c", "y4m", "-p", "-s", str(plan.first), "-e", str(plan.last), *arguments,
            str(script), "-"]


def upscale_file(job: Job, log: Callable[[str], None] = print) -> Path:
    """Run a job end to end; the output appears only if everything succeeded and checks out."""
    muxer = check_job(job)
    media = probe(job.input)
    plan = plan_job(job, media, muxer)
    log(f"{job.input.name}: frames {plan.first}-{plan.last} -> {plan.width}x{plan.height} {job.codec} "
        f"({job.model} x{job.scale}) into {job.output}")
    for note in plan.tracks.notes:
        log(f"note: {note}")
    with tempfile.TemporaryDirectory(prefix="vs-sr-") as workdir, atomic_output(job.output) as target:
        folder = Path(workdir)
        script = write_script(folder, "vs_sr.media.job", "job_clip")
        cut = chapters = None
        if plan.ranged and plan.tracks.maps:
            cut = folder / "tracks.mkv"
            _run_quietly(cut_command(job, plan, media, cut), "cutting the other tracks to the range")
            if media.chapters:
                chapters = folder / "chapters.txt"
                chapters.write_text(chapters_for_range(media, plan), encoding="utf-8")
        progress = Progress(plan.frames)
        pipe = EncodePipe(vspipe_command(job, plan, script, folder / "error.txt"),
                          encode_command(job, plan, media, muxer, target, cut, chapters), progress,
                          folder / "error.txt")
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            pipe.wait()
        except BaseException:
            pipe.stop()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        progress.update(plan.frames)  # vspipe's last progress line may come before its last frame
        fps = progress.finish()
        verify(target, plan, media)
    log(f"wrote {job.output}: {plan.frames} frames at {plan.width}x{plan.height}, {len(plan.tracks.audio)} audio, "
        f"{plan.tracks.subtitles} subtitle stream(s); {fps:.2f} fps")
    return job.output


def _run_quietly(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SRError(f"ffmpeg failed {what}: {' / '.join(done.stderr.strip().splitlines()[-3:])}")


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def parse_ffmpeg_args(text: str | None) -> list[str]:
    return shlex.split(text) if text else []
