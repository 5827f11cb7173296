"""Chapters of a frame range: cut to it and shifted so the range starts at zero."""

from __future__ import annotations

import re

from .job import OutputPlan
from .probe import Media


def range_start(media: Media, plan: OutputPlan) -> float:
    """Where the first frame of the range sits on the input's timeline (seconds from its start)."""
    return float(plan.first / plan.rate) + media.video.start_time - media.start_time


def chapters_for_range(media: Media, plan: OutputPlan) -> str:
    """An FFMETADATA document with the chapters that overlap the frame range, cut and shifted to it.

    ffmpeg would shift chapters by where its seek landed, not by the range.
    """
    begin = range_start(media, plan)
    end = begin + plan.seconds
    lines = [";FFMETADATA1"]
    for chapter in media.chapters:
        lo, hi = max(chapter.start - media.start_time, begin), min(chapter.end - media.start_time, end)
        if hi > lo:
            title = re.sub(r"([=;#\\\n])", r"\\\1", chapter.title)
            lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={round((lo - begin) * 1000)}",
                      f"END={round((hi - begin) * 1000)}", f"title={title}"]
    return "\n".join(lines) + "\n"
