"""What a media file holds, read with ffprobe: tracks, durations, chapters, colour tags."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..children import run_child
from ..errors import SRError
from .tools import file_url, find_tool


@dataclass(frozen=True)
class Track:
    index: int
    kind: str  # video, audio, subtitle, attachment, data
    codec: str
    duration: float | None
    start_time: float
    info: dict[str, Any] = field(repr=False, default_factory=dict)  # ffprobe's JSON for the track


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

    @property
    def quarter_turned(self) -> bool:
        """The video is shown turned by 90 or 270 degrees (a phone's portrait video: landscape frames
        and a display matrix), which bestsource applies: its frames come upright."""
        for item in self.video.info.get("side_data_list", []):
            if "rotation" in item:
                return round(float(item["rotation"])) % 180 != 0
        rotate = str(self.video.info.get("tags", {}).get("rotate", "0"))
        return rotate.lstrip("-").isdigit() and int(rotate) % 180 != 0

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the video's frames as stored (`upright`: as shown)."""
        return int(self.video.info["width"]), int(self.video.info["height"])

    @property
    def upright(self) -> tuple[int, int, tuple[int, int] | None]:
        """(width, height, sample aspect) of the video as shown, the frames vs_sr reads: a quarter
        turn swaps the sides and turns the pixel aspect with them."""
        (width, height), sar = self.frame_size, self.sample_aspect
        if self.quarter_turned:
            return height, width, (sar[1], sar[0]) if sar else None
        return width, height, sar


def _seconds(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _tag_end(tags: dict[str, Any]) -> float | None:
    """Matroska keeps where a track ends in a DURATION tag ("00:00:02.000000000"): its last
    timestamp, not its length (an audio track starting at 1 s and lasting 2 s says 3 s)."""
    text = tags.get("DURATION") or tags.get("duration")
    if not text:
        return None
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _track_duration(info: dict[str, Any]) -> float | None:
    duration = _seconds(info.get("duration"))
    if duration is not None:
        return duration
    end = _tag_end(info.get("tags", {}))
    return None if end is None else max(0.0, end - (_seconds(info.get("start_time")) or 0.0))


def probe(path: Path) -> Media:
    done = run_child(
        [find_tool("ffprobe"), "-v", "error", "-show_format", "-show_streams", "-show_chapters", "-of", "json", file_url(path)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise SRError(_unreadable(path, done.stderr))
    data = json.loads(done.stdout)
    tracks = tuple(
        Track(
            index=s["index"],
            kind=s.get("codec_type", "data"),
            codec=s.get("codec_name", "unknown"),
            duration=_track_duration(s),
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


def _unreadable(path: Path, stderr: str) -> str:
    """ffprobe's reason, without the file name it repeats, and what it likely means."""
    lines = stderr.strip().splitlines()
    reason = lines[-1].replace(f"{file_url(path)}: ", "") if lines else "ffprobe failed"
    return f"cannot read {path} ({reason}): it is empty, damaged or not a media file."


@dataclass(frozen=True)
class Hdr10:
    """A PQ (HDR10) source's static metadata, as its first frame carries it: the mastering display
    (SMPTE ST 2086: chromaticities of red, green, blue and white as x, y; luminance in cd/m²) and
    the content light levels (MaxCLL, MaxFALL in cd/m²); each None when the source has none."""

    primaries: tuple[tuple[float, float], ...] | None  # red, green, blue, white point
    luminance: tuple[float, float] | None  # max, min
    light: tuple[int, int] | None


HDR10_PRIMARIES = ("red", "green", "blue", "white_point")


def hdr10(media: Media) -> Hdr10 | None:
    """The source's HDR10 metadata, read only for a PQ video (None otherwise, or when it has none)."""
    if media.video.info.get("color_transfer") != "smpte2084":
        return None
    done = run_child([find_tool("ffprobe"), "-v", "error", "-select_streams", str(media.video.index), "-read_intervals",
                      "%+#1", "-show_frames", "-show_entries", "frame=side_data_list", "-of", "json",
                      file_url(media.path)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    frames = json.loads(done.stdout or "{}").get("frames") or [{}]
    found = {item.get("side_data_type"): item for item in frames[0].get("side_data_list", [])}
    display, light = found.get("Mastering display metadata"), found.get("Content light level metadata")
    primaries = luminance = None
    if display and all(f"{name}_{axis}" in display for name in HDR10_PRIMARIES for axis in "xy"):
        primaries = tuple((float(Fraction(display[f"{name}_x"])), float(Fraction(display[f"{name}_y"])))
                          for name in HDR10_PRIMARIES)
    if display and "max_luminance" in display and "min_luminance" in display:
        luminance = (float(Fraction(display["max_luminance"])), float(Fraction(display["min_luminance"])))
    levels = (int(light["max_content"]), int(light["max_average"])) if light else None
    return Hdr10(primaries, luminance, levels) if primaries or luminance or levels else None


def packet_duration(path: Path, index: int) -> float:
    """How long the first packet of track `index` lasts: the granularity a stream-copy cut has, and
    how far a copied track's end may move (a container that stores no packet durations, such as
    ALAC in Matroska, ends the track where its last packet starts). From the spacing of the first
    two packets where the duration is not stored; 0 when neither is known."""
    done = run_child(
        [find_tool("ffprobe"), "-v", "error", "-select_streams", str(index), "-read_intervals", "%+#2", "-show_entries",
         "packet=pts_time,duration_time", "-of", "csv=p=0", file_url(path)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    packets = [[_seconds(value) for value in line.split(",")[:2]] for line in done.stdout.split()]
    stored = packets[0][1] if packets else None
    if stored:
        return stored
    if len(packets) == 2 and packets[0][0] is not None and packets[1][0] is not None:
        return max(0.0, packets[1][0] - packets[0][0])
    return 0.0


def packet_span(path: Path, index: int) -> float | None:
    """Seconds from the start of track `index`'s first packet to the end of its last, read from every
    packet: MPEG-TS stores no track durations, and ffprobe's estimate of one was 10% short (a 2.03 s
    track said 1.83 s). None when no packet has a time."""
    done = run_child(
        [find_tool("ffprobe"), "-v", "error", "-select_streams", str(index), "-show_entries",
         "packet=pts_time,duration_time", "-of", "csv=p=0", file_url(path)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    packets = [[_seconds(value) for value in line.split(",")[:2]] for line in done.stdout.split()]
    timed = [(start, length or 0.0) for start, length in packets if start is not None]
    return max(start + length for start, length in timed) - min(start for start, _ in timed) if timed else None


def count_frames(path: Path) -> int:
    """Video frames in a file, counted from its packets (exact for the codecs we write)."""
    done = run_child(
        [find_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
         "stream=nb_read_packets", "-of", "csv=p=0", file_url(path)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    count = done.stdout.strip().split(",")[0]
    if done.returncode != 0 or not count.isdigit():
        raise SRError(f"cannot count the frames of {path}: {done.stderr.strip() or 'no video stream'}")
    return int(count)
