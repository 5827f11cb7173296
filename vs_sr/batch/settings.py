"""What a batch does to every video: the filter and encoder options of `vs-sr upscale` plus how
videos are cut into chunks. A batch directory remembers its settings; a run with others is refused
(naming what changed) unless it starts over."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..media.codecs import CODECS
from ..media.job import Job
from ..models.resolve import portable_model

# Job fields that are per video or per run, not settings of the batch (--salvage is a run's choice:
# a later run may salvage the inputs an earlier one refused, keeping everything else).
PER_VIDEO = ("input", "output", "start", "end", "overwrite", "salvage")
CONTAINERS = {"mkv": ".mkv", "mp4": ".mp4", "mov": ".mov", "webm": ".webm"}
INTERMEDIATES = ("ffv1", "final")
AUTO_CHUNK_MINIMUM = 1000  # frames: model start-up (seconds) amortised over minutes of work


@dataclass(frozen=True)
class BatchSettings:
    job: dict[str, Any] = field(default_factory=dict)
    """`vs-sr upscale` options (Job fields other than PER_VIDEO); missing ones take Job's defaults
    when a video's job is made (the command line always gives them all)."""
    container: str = "mkv"
    chunk_frames: int | None = None
    """Frames per chunk; None: max(AUTO_CHUNK_MINIMUM, a quarter of a video per worker)."""
    intermediate: str = "ffv1"
    """Chunks in FFV1 (lossless; the final codec encodes the joined video) or in the final codec
    (each chunk an independent encode, joined as is). See `chunk_codec`."""

    def __post_init__(self) -> None:
        known = {f.name for f in dataclasses.fields(Job)} - set(PER_VIDEO)
        unknown = set(self.job) - known
        if unknown:
            raise ValueError(f"not batch settings: {', '.join(sorted(unknown))}")
        if "model" in self.job:
            # A file by its absolute path: the settings are read again by a run started in another
            # folder, and one stored before paths were kept absolute ('~/m.pth', 'runs/m.pth') is
            # the same file. (object.__setattr__: the dataclass is frozen.)
            object.__setattr__(self, "job", {**self.job, "model": portable_model(self.job["model"])})

    def job_for(self, source: Path, output: Path) -> Job:
        return Job(input=source, output=output, overwrite=True, **self.job)

    def chunk_codec(self, job: Job, chunks: int) -> str:
        """The codec a video's chunks are written in: FFV1 where the joined video is encoded again
        (--intermediate ffv1 and several chunks), else the final codec. A video that is one chunk
        (every short file) has nothing to join, so it is encoded once, as `vs-sr upscale` does:
        an FFV1 pass and a second encode would cost it a noticeable share on a small CPU (docs/benchmarks.md)."""
        return "ffv1" if self.intermediate == "ffv1" and chunks > 1 else job.codec

    def chunk_length(self, frames: int, workers: int) -> int:
        if self.chunk_frames is not None:
            return self.chunk_frames
        return max(AUTO_CHUNK_MINIMUM, -(-frames // (4 * max(1, workers))))

    def as_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BatchSettings:
        return cls(**json.loads(text))

    def differences(self, other: BatchSettings) -> list[str]:
        """What changed from `self` to `other` that changes what a video becomes, as command-line
        options (`--crf 18 -> 20`). Not a change: a default given as its value (`--crf 18` for
        x264), the number of streams (frames are the same bits however many run at once), and a
        deinterlacer named where none was, or dropped (a video made without one was progressive,
        which it passes as it is, and without one an interlaced video is refused, not made otherwise:
        a batch whose interlaced files failed asking for one continues, either way)."""
        mine, theirs = _flat(self), _flat(other)
        if mine.get("codec") == theirs.get("codec"):  # (another codec is a change of its own, its defaults with it)
            mine, theirs = _with_codec_defaults(mine), _with_codec_defaults(theirs)
        return [f"--{name.replace('_', '-')} {_shown(mine.get(name))} -> {_shown(theirs.get(name))}"
                for name in sorted(set(mine) | set(theirs)) if name not in FREE and mine.get(name) != theirs.get(name)
                and not (name == "deinterlace" and None in (mine.get(name), theirs.get(name)))]


FREE = ("num_streams",)
"""Settings a batch may change between runs: they change no frame on a CPU (the filter's frame
accuracy). On a GPU (never run yet) automatic tiles are sized from the VRAM a stream has, so with
a tile-dependent network (HAT) and no --tile, other streams may mean other tiles."""


def _flat(settings: BatchSettings) -> dict[str, Any]:
    values = {**settings.job, **{k: v for k, v in dataclasses.asdict(settings).items() if k != "job"}}
    return {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()}


def _with_codec_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """The codec's defaults by value: `--crf 18` for x264 is what no --crf gives."""
    codec = CODECS.get(values.get("codec") or Job.codec)
    if codec is None:
        return values
    defaults = {"crf": codec.quality.default if codec.quality else None, "preset": codec.preset,
                "profile": codec.default_profile}
    return {**values, **{name: value for name, value in defaults.items() if values.get(name) is None}}


def _shown(value: Any) -> str:
    if value is None:
        return "(default)"
    if isinstance(value, list):
        return " ".join(map(str, value)) or "(none)"
    return str(value)
