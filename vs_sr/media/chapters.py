"""Chapters of a frame range: cut to it and shifted so the range starts at zero."""

from __future__ import annotations

import re

from .job import OutputPlan
from .probe import Media


def chapters_for_range(media: Media, plan: OutputPlan) -> str:
    """An FFMETADATA document with the chapters that overlap the frame range, cut and shifted to it.

    ffmpeg would shift chapters by where its seek landed, not by the range.
    """
    lines = [";FFMETADATA1"]
    for chapter in media.chapters:
        lo, hi = max(chapter.start, plan.begin), min(chapter.end, plan.end)
        if hi > lo:
            title = re.sub(r"([=;#\\\n])", r"\\\1", chapter.title)
            lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={round((lo - plan.begin) * 1000)}",
                      f"END={round((hi - plan.begin) * 1000)}", f"title={title}"]
    return "\n".join(lines) + "\n"
