"""Text subtitles cut to a frame range, event by event.

ffmpeg cuts subtitle tracks at packet starts: an event already on screen when the range begins
is dropped, and one still on screen when it ends keeps its full length (stretching the file).
Text subtitles are therefore extracted as SRT or ASS on the file's own clock, and each event is
clipped to the range and shifted to start with it. Bitmap subtitles (PGS, DVD) have no editable
text; they are cut by packet, which a note says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from .processes import run_tool
from .tools import file_url

# Text codecs and the format their events are edited in (ASS keeps ASS styling).
TEXT_FORMATS = {"subrip": "srt", "srt": "srt", "mov_text": "srt", "webvtt": "srt", "text": "srt",
                "ass": "ass", "ssa": "ass"}
SRT_TIME = re.compile(r"(\d+):(\d\d):(\d\d)[,.](\d{3})")
ASS_TIME = re.compile(r"(\d+):(\d\d):(\d\d)\.(\d\d)")


def is_text(codec: str) -> bool:
    return codec in TEXT_FORMATS


# A text track with no event, as ffmpeg reads it (an empty .srt is not a subtitle file to it) and
# encodes it into any text codec: what a range with no subtitle in it keeps of the track.
EMPTY_TRACK = ("[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
               "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n")


def cut_text_subtitles(ffmpeg: list[str], source: Path, index: int, codec: str, begin: float, end: float,
                       folder: Path) -> tuple[Path, int]:
    """Track `index` of `source` with its events clipped to [begin, end) (seconds on the file's clock)
    and shifted so that `begin` is 0, as an .srt or .ass file in `folder`, and how many events it
    holds. With none left it is an empty track, kept as such: the output has the same tracks, in
    the same order, as a cut by ffmpeg or mkvmerge would have."""
    fmt = TEXT_FORMATS[codec]
    extracted = folder / f"subtitle-{index}-full.{fmt}"
    # -copyts: the events keep the file's own clock, the one `begin` and `end` are on.
    run_tool([*ffmpeg, "-copyts", "-i", file_url(source), "-map", f"0:{index}", "-c:s", fmt, "-f", fmt,
              file_url(extracted)],
             f"extracting subtitle track {index}")
    text = extracted.read_text(encoding="utf-8", errors="replace")
    cut, events = cut_srt(text, begin, end) if fmt == "srt" else cut_ass(text, begin, end)
    if not events and fmt == "srt":
        cut, fmt = EMPTY_TRACK, "ass"
    target = folder / f"subtitle-{index}.{fmt}"
    target.write_text(cut, encoding="utf-8")
    return target, events


def _clip(start: float, stop: float, begin: float, end: float) -> tuple[float, float] | None:
    """An event's times clipped to [begin, end) and shifted to it; None if it does not overlap."""
    if stop <= begin or start >= end:
        return None
    return max(start, begin) - begin, min(stop, end) - begin


def cut_srt(text: str, begin: float, end: float) -> tuple[str, int]:
    """The SRT document with its events clipped to the range, and how many are left."""
    blocks: list[str] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = block.split("\n")
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue
        start_text, _, stop_text = lines[timing].partition("-->")
        clipped = _clip(_seconds(SRT_TIME, start_text), _seconds(SRT_TIME, stop_text), begin, end)
        if clipped is not None:
            timing_line = f"{_srt_time(clipped[0])} --> {_srt_time(clipped[1])}"
            blocks.append("\n".join([str(len(blocks) + 1), timing_line, *lines[timing + 1:]]))
    return "\n\n".join(blocks) + "\n", len(blocks)


def cut_ass(text: str, begin: float, end: float) -> tuple[str, int]:
    """The ASS document with its Dialogue events clipped to the range, and how many are left."""
    lines, events = [], 0
    for line in text.splitlines():
        if not line.startswith("Dialogue:"):
            lines.append(line)
            continue
        head, body = line.split(":", 1)
        fields = body.split(",", 3)  # Layer, Start, End, the rest
        clipped = _clip(_seconds(ASS_TIME, fields[1]), _seconds(ASS_TIME, fields[2]), begin, end)
        if clipped is not None:
            fields[1], fields[2] = _ass_time(clipped[0]), _ass_time(clipped[1])
            lines.append(f"{head}:{','.join(fields)}")
            events += 1
    return "\n".join(lines) + "\n", events


def _seconds(pattern: re.Pattern[str], text: str) -> float:
    match = pattern.search(text)
    if match is None:
        raise ValueError(f"not a subtitle time: {text!r}")
    hours, minutes, seconds, fraction = match.groups()
    scale: int = 10 ** len(fraction)  # int ** int is typed Any (a negative power is a float); len() is not negative
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction) / scale


def _formatter(separator: str, digits: int) -> Callable[[float], str]:
    def format_time(seconds: float) -> str:
        units = round(seconds * 10**digits)
        whole, fraction = divmod(units, 10**digits)
        return f"{whole // 3600:0{2 if digits == 3 else 1}d}:{whole // 60 % 60:02d}:{whole % 60:02d}{separator}{fraction:0{digits}d}"

    return format_time


_srt_time = _formatter(",", 3)
_ass_time = _formatter(".", 2)
