"""The video codecs and containers `vs-sr` writes, as typed records."""

from __future__ import annotations

from dataclasses import dataclass

CONTAINERS = {".mkv": "matroska", ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}


@dataclass(frozen=True)
class Codec:
    name: str
    encoder: str
    """ffmpeg's encoder name."""
    crf: int | None
    """Default quality; None for a lossless codec (no --crf/--preset)."""
    preset: str | None
    containers: frozenset[str]
    """ffmpeg muxers that can hold it."""
    options: tuple[str, ...] = ()
    """Encoder options always passed."""

    @property
    def lossless(self) -> bool:
        return self.crf is None


CRF_RANGE = (0, 51)  # x264 and x265 (8-bit)
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
ANY_CONTAINER = frozenset({"matroska", "mp4", "mov"})
CODECS = {
    "x264": Codec("x264", "libx264", 18, "medium", ANY_CONTAINER),
    "x265": Codec("x265", "libx265", 20, "medium", ANY_CONTAINER, ("-x265-params", "log-level=error")),
    # Intra-only with per-slice CRCs: robust intermediates that cut and join on any frame.
    "ffv1": Codec("ffv1", "ffv1", None, None, frozenset({"matroska"}), ("-level", "3", "-g", "1", "-slicecrc", "1")),
}
