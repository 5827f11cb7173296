"""When each frame of a video is shown, as the source file says: the timestamps every output keeps.

y4m, which vspipe writes, carries a single frame rate, so a variable-frame-rate file (phone video)
would lose sync. The timeline comes from bestsource's index (the same source the render uses) and
is written as a timecodes v2 file that mkvmerge applies to the encoded video; frame ranges, chunk
joins and the output check all read it, so every output frame keeps its source time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import vapoursynth as vs

from ..errors import SRError
from .tools import open_video


@dataclass(frozen=True)
class Timeline:
    starts: tuple[float, ...]
    """Presentation time of each frame in seconds, on the file's own clock."""
    end: float
    """When the last frame stops being shown."""
    rate: Fraction | None = None
    """The rate the file declares, where every frame starts within half a millisecond of it (Matroska
    stores whole milliseconds, so 1/24 s steps read as 42, 41, 42 ms): the timecodes are written
    from it, or mkvmerge declares the rate of the first step (23.81 fps for 24)."""

    @property
    def frames(self) -> int:
        return len(self.starts)

    def stop(self, last: int) -> float:
        """When frame `last` stops being shown."""
        return self.starts[last + 1] if last + 1 < self.frames else self.end

    def duration(self, first: int, last: int) -> float:
        return self.stop(last) - self.starts[first]

    def is_constant(self, tolerance: float = 0.0015) -> bool:
        """Every frame lasts the same, within `tolerance` seconds (millisecond-rounded stamps)."""
        times = [*self.starts, self.end]
        steps = [b - a for a, b in zip(times, times[1:], strict=False)]
        return not steps or max(steps) - min(steps) <= tolerance

    def write_timecodes(self, target: Path, first: int, last: int) -> None:
        """A timecodes v2 file for frames first..last, starting at 0 (milliseconds, one line per
        frame plus one for the end of the last, which mkvmerge uses as its duration)."""
        origin = self.starts[first]
        stamps = [t - origin for t in (*self.starts[first:last + 1], self.stop(last))]
        if self.rate:
            stamps = [float(i / self.rate) for i in range(last - first + 2)]
        lines = ["# timecode format v2", *(f"{t * 1000:.6f}" for t in stamps)]
        target.write_text("\n".join(lines) + "\n", encoding="ascii")


def read_timeline(path: Path) -> tuple[vs.VideoNode, Timeline]:
    """The source clip and its timeline, read from bestsource's index (no frame is decoded but
    the last, whose duration ends the timeline)."""
    with tempfile.TemporaryDirectory(prefix="vs-sr-timecodes-") as folder:
        timecodes = Path(folder) / "timecodes.txt"
        clip = open_video(path, timecodes)
        starts = parse_timecodes(timecodes.read_text(encoding="ascii"))
    if len(starts) != clip.num_frames:
        raise SRError(f"{path}: bestsource indexed {clip.num_frames} frames but gave {len(starts)} timestamps; "
                      "the file is damaged.")
    props = clip.get_frame(clip.num_frames - 1).props
    num, den = int(props.get("_DurationNum", 0)), int(props.get("_DurationDen", 0))
    last = float(Fraction(num, den)) if num > 0 and den > 0 else float(Fraction(clip.fps_den, clip.fps_num or 1))
    return clip, Timeline(tuple(starts), starts[-1] + last, declared_rate(clip, starts))


def declared_rate(clip: vs.VideoNode, starts: Sequence[float]) -> Fraction | None:
    """The clip's frame rate if every frame starts within half a millisecond of where it puts it (the
    rounding of a container that stores milliseconds), else None: written from the rate, a frame then
    stays well within the output check's 2 ms of its source time, whichever frame a range starts at."""
    if clip.fps_num <= 0 or clip.fps_den <= 0:
        return None
    step = clip.fps_den / clip.fps_num
    return clip.fps if all(abs(t - starts[0] - i * step) <= ROUNDING for i, t in enumerate(starts)) else None


ROUNDING = 0.0005 + 1e-6  # seconds: half a millisecond, and the float error of reading it back


def parse_timecodes(text: str) -> Sequence[float]:
    """Seconds from a timecodes v2 document (milliseconds per line)."""
    lines = [line.strip() for line in text.splitlines()]
    if not lines or not lines[0].startswith("# timecode format v2"):
        raise SRError("not a timecodes v2 file.")
    return [float(line) / 1000 for line in lines[1:] if line and not line.startswith("#")]
