"""A video's verified chunks into its output: joined with the source's frame times, encoded to
the final codec when the chunks are FFV1 intermediates, muxed with every other track of the
input (the mapping `vs-sr upscale` uses), checked, and renamed into place.

Assembly can be repeated: it writes beside the output (media.output.OutputSlot) and only the
final rename makes the result visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import SRError
from ..media.ffmpeg import encoder_options, reencode_command
from ..media.job import Job, OutputPlan, plan_job
from ..media.mux import append_parts, join_video, mux
from ..media.output import OutputSlot
from ..media.probe import Media, probe
from ..media.processes import check_cancelled, run_tool
from ..media.verify import verify
from ..models.weights import file_digest
from .settings import BatchSettings
from .state import Chunk


class DamagedChunks(SRError):
    """Chunk files that no longer match their recorded hash (they are redone)."""

    def __init__(self, chunks: list[Chunk]) -> None:
        super().__init__(f"{len(chunks)} chunk file(s) changed since they were verified")
        self.chunks = chunks


def damaged(chunks: Sequence[Chunk], files: Sequence[Path], full: bool) -> list[Chunk]:
    """Chunks whose file is missing or not what was verified: by size, and (`full`) by sha256."""
    bad = []
    for chunk, path in zip(chunks, files, strict=True):
        check_cancelled()  # hashing every chunk of a long video takes a while
        if not path.is_file() or path.stat().st_size != chunk.size or (full and file_digest(path) != chunk.sha256):
            bad.append(chunk)
    return bad


def assemble(job: Job, settings: BatchSettings, chunks: Sequence[Chunk], files: Sequence[Path],
             replace: bool) -> None:
    """Write `job.output` from the chunk `files` (in frame order); raises DamagedChunks first if
    any chunk file changed since it was verified. `replace`: a file at the output is the batch's
    own (an earlier output of it); without it, a file that appeared there meanwhile is kept and the
    video fails."""
    bad = damaged(chunks, files, full=True)
    if bad:
        raise DamagedChunks(bad)
    with OutputSlot(job.output, overwrite=replace, appeared="it is not the batch's to replace: move it away and "
                    "run the batch again") as slot:
        media = probe(job.input)
        plan = plan_job(job, media, job.output_muxer)
        if settings.chunk_codec(job, len(chunks)) != job.codec:
            files = [encoded_intermediates(job, plan, media, files, slot.work)]
        join_video(files, plan, slot.work)
        mux(job, plan, media, slot.work, slot.target)
        verify(slot.target, plan, media)
        check_cancelled()  # a run stopped meanwhile leaves no output
        slot.commit()


def encoded_intermediates(job: Job, plan: OutputPlan, media: Media, files: Sequence[Path], folder: Path) -> Path:
    """The FFV1 intermediate chunks as one file in the final codec, at the constant rate the chunks
    have, as `vs-sr upscale` encodes: the source's frame times are applied after (`join_video`). An
    encoder fed the timed file would round them to its time base, 1/rate: a 24 fps source, whose
    Matroska times are whole milliseconds, came out 2 ms off at frame 5."""
    joined = append_parts(files, folder / "intermediate.mkv")
    target = folder / "encoded.mkv"
    run_tool(reencode_command(encoder_options(job, job.video_codec, plan, media), joined, target),
             "encoding the intermediate chunks")
    joined.unlink()
    return target
