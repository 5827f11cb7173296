"""What a media file holds, read with ffprobe: tracks, durations, chapters, colour tags."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import SRError
from .tools import find_tool


@dataclass(frozen=True)
class Track:
    index: int
    kind: str  # video, audio, subtitle, attachment, data
    codec: str
    duration: float | None
    start_time: float
    info: dict = field(repr=False, default_factory=dict)


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float
    title: str


@dataclass(frozen=True)
class Media:
    path: Path
    container: str
    duration: float | None
    start_time: float
    tracks: tuple[Track, ...]
    chapters: tuple[Chapter, ...]

    def of_kind(self, kind: str) -> list[Track]:
        return [t for t in self.tracks if t.kind == kind]

    @property
    def video(self) -> Track:
        videos = [s for s in self.of_kind("video") if not s.info.get("disposition", {}).get("attached_pic")]
        if not videos:
            raise SRError(f"{self.path} has no video track.")
        return videos[0]

    @property
    def frame_rate(self) -> Fraction:
        for key in ("avg_frame_rate", "r_frame_rate"):
            rate = self.video.info.get(key, "0/0")
            if rate not in ("0/0", "0/1"):
                return Fraction(rate)
        raise SRError(f"{self.path} does not say its frame rate.")

    @property
    def sample_aspect(self) -> tuple[int, int] | None:
        sar = self.video.info.get("sample_aspect_ratio", "0:1")
        num, den = (int(x) for x in sar.split(":"))
        return (num, den) if num > 0 and den > 0 else None


def _seconds(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _tag_duration(tags: dict) -> float | None:
    """Matroska keeps stream durations in a DURATION tag ("00:00:02.000000000")."""
    text = tags.get("DURATION") or tags.get("duration")
    if not text:
        return None
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def probe(path: Path) -> Media:
    done = subprocess.run(
        [find_tool("ffprobe"), "-v", "error", "-show_format", "-show_streams", "-show_chapters", "-of", "json", str(path)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise SRError(f"cannot read {path}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'ffprobe failed'}.")
    data = json.loads(done.stdout)
    tracks = tuple(
        Track(
            index=s["index"],
            kind=s.get("codec_type", "data"),
            codec=s.get("codec_name", "unknown"),
            duration=_seconds(s.get("duration")) or _tag_duration(s.get("tags", {})),
            start_time=_seconds(s.get("start_time")) or 0.0,
            info=s,
        )
        for s in data.get("streams", [])
    )
    fmt = data.get("format", {})
    chapters = tuple(
        Chapter(float(c["start_time"]), float(c["end_time"]), c.get("tags", {}).get("title", ""))
        for c in data.get("chapters", [])
    )
    return Media(path, fmt.get("format_name", ""), _seconds(fmt.get("duration")), _seconds(fmt.get("start_time")) or 0.0,
                 tracks, chapters)


def count_frames(path: Path) -> int:
    """Video frames in a file, counted from its packets (exact for the codecs we write)."""
    done = subprocess.run(
        [find_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
         "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    count = done.stdout.strip().split(",")[0]
    if done.returncode != 0 or not count.isdigit():
        raise SRError(f"cannot count the frames of {path}: {done.stderr.strip() or 'no video stream'}")
    return int(count)
