"""Whether a video decodes in full: the length its container declares against what the decoder
produces. A copy that stopped half-way (a faststart MP4 whose media data ends early, a Matroska
file cut short), frames that do not decode, or a hole in the middle of a constant-rate stream
(a transport stream whose packets were lost) are refused by default; salvaging what decodes is the
caller's explicit choice (--salvage), and its result still says what was missing.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import vapoursynth as vs

from ..children import run_child
from ..errors import SRError
from .probe import Media, probe
from .timeline import Timeline, read_timeline
from .tools import file_url, find_tool

SHORT_BY = 0.1  # seconds of declared length that may be missing (durations rounded, a last frame's length unknown)
HOLE = 0.5  # seconds between two frames of a constant-rate stream that are taken for lost frames (with 5 frames)
STAMP_TOLERANCE = 0.0015  # seconds: millisecond-rounded timestamps


@dataclass(frozen=True)
class Decodable:
    """The video track's declared length beside what decodes."""

    name: str
    declared_seconds: float | None
    """The track's duration as the container says, or the file's when it holds nothing else; None if unsaid."""
    declared_frames: int | None
    readable: int
    """Frames the demuxer can read (packets, less those an edit list discards)."""
    frames: int
    """Frames the decoder produces."""
    seconds: float
    """From the first decoded frame to the end of the last."""
    rate: float
    """Frames per second on average (the allowance for rounding is two frames)."""
    holes: tuple[tuple[float, float], ...] = ()
    """(last frame before, first frame after) each run of frames missing inside the stream, in seconds
    from the first frame."""
    backwards: int = 0
    """Frames whose time is not after the one before: damaged data, which no container takes back."""

    @property
    def damaged(self) -> int:
        """Frames that were read but did not decode."""
        return max(0, self.readable - self.frames)

    @property
    def cut_short(self) -> bool:
        allowance = max(SHORT_BY, 2 / self.rate) if self.rate > 0 else SHORT_BY
        return self.declared_seconds is not None and self.declared_seconds - self.seconds > allowance

    @property
    def missing_inside(self) -> int:
        """Frames missing in the holes."""
        return sum(round((after - before) * self.rate) - 1 for before, after in self.holes)

    @property
    def complete(self) -> bool:
        return not self.damaged and not self.cut_short and not self.holes and not self.backwards

    def shortfall(self) -> str:
        """What is missing, with the numbers: declared vs decodable frames and seconds."""
        declared = self.declared_frames if self.declared_frames is not None else self.readable
        if self.declared_seconds is not None and self.cut_short:
            declared = max(declared, round(self.declared_seconds * self.rate))
            what = f"its container declares {declared} frames ({self.declared_seconds:.2f} s)"
        else:
            what = f"it holds {declared} frames"
        problems = []
        if self.cut_short or self.damaged:
            problems.append(f"{what} but only {self.frames} ({self.seconds:.2f} s) decode")
        if self.damaged:
            problems.append(f"{self.damaged} of the {self.readable} frames that could be read are damaged")
        if self.holes:
            spans = ", ".join(f"{before:.2f} s and {after:.2f} s" for before, after in self.holes[:3])
            problems.append(f"{self.missing_inside} frames are missing inside the stream (none between {spans}"
                            f"{', ...' if len(self.holes) > 3 else ''})")
        if self.backwards:
            problems.append(f"the times of {self.backwards} frames go backwards")
        return f"{self.name} is incomplete or damaged: {'; '.join(problems)}"


def open_complete(path: Path, instead: str) -> vs.VideoNode:
    """A video file as a clip, or an SRError saying what it lacks and what to do `instead` when it
    does not decode whole (a copy cut off, damaged frames)."""
    clip, timeline = read_timeline(path)
    found = decodable(probe(path), clip.num_frames, timeline)
    if not found.complete:
        raise SRError(f"{found.shortfall()}; {instead}")
    return clip


def decodable(media: Media, frames: int, timeline: Timeline) -> Decodable:
    """Compare the video track of `media` with the `frames` and `timeline` the decoder gave."""
    video = media.video
    declared = video.duration
    if declared is None and len(media.tracks) == 1:
        declared = media.duration
    listed = str(video.info.get("nb_frames", ""))
    readable, discarded = readable_frames(media.path, video.index)
    seconds = timeline.end - timeline.starts[0]
    try:
        rate = float(media.frame_rate)  # the container's (a cut file's decoded average is skewed by its end)
    except SRError:
        rate = frames / seconds if seconds > 0 else 0.0
    return Decodable(media.path.name, declared, int(listed) - discarded if listed.isdigit() else None, readable, frames,
                     seconds, rate, holes(timeline, rate),
                     sum(after <= before for before, after in zip(timeline.starts, timeline.starts[1:], strict=False)))


def holes(timeline: Timeline, rate: float) -> tuple[tuple[float, float], ...]:
    """Where a constant-rate stream skips `HOLE` seconds or more (and 5 frames) by a whole number of
    frames: lost packets (a damaged transport stream) leave such a gap while the ends stay in place.
    A variable-rate stream (a screen recording that pauses on still pictures) may mean a long frame:
    only streams whose frames nearly all last 1/rate are judged."""
    if rate <= 0 or timeline.frames < 10:
        return ()
    step = 1 / rate
    pairs = list(zip(timeline.starts, timeline.starts[1:], strict=False))
    if sum(abs(after - before - step) <= STAMP_TOLERANCE for before, after in pairs) < 0.9 * len(pairs):
        return ()
    origin = timeline.starts[0]
    return tuple((before - origin, after - origin) for before, after in pairs
                 if after - before >= max(HOLE, 5 * step)
                 and abs(after - before - round((after - before) * rate) * step) <= STAMP_TOLERANCE)


def readable_frames(path: Path, index: int) -> tuple[int, int]:
    """(packets of track `index` a demuxer reads, less those marked to be discarded; the discarded
    ones). An MP4 cut without re-encoding keeps the frames before its start, marked by its edit
    list: they are not meant to be shown."""
    done = run_child(
        [find_tool("ffprobe"), "-v", "error", "-select_streams", str(index), "-show_entries", "packet=flags", "-of",
         "csv=p=0", file_url(path)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise SRError(f"cannot read the frames of {path}: {done.stderr.strip() or 'ffprobe failed'}")
    flags = done.stdout.split()
    discarded = sum("D" in flag for flag in flags)
    return len(flags) - discarded, discarded
