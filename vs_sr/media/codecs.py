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
    max_side: int | None = None
    """The most pixels the encoder takes on either side (None: only ffmpeg's own limit)."""
    min_side: int = 1
    """The fewest pixels it takes on either side."""

    @property
    def lossless(self) -> bool:
        return self.crf is None


CRF_RANGE = (0, 51)  # x264 and x265 (8-bit)
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
ANY_CONTAINER = frozenset({"matroska", "mp4", "mov"})
CODECS = {
    "x264": Codec("x264", "libx264", 18, "medium", ANY_CONTAINER, max_side=16384),  # x264's MAX_RESOLUTION
    # ffmpeg's libx265 refuses pictures under 16 pixels a side ("Image size is too small").
    "x265": Codec("x265", "libx265", 20, "medium", ANY_CONTAINER, ("-x265-params", "log-level=error"), min_side=16),
    # Intra-only with per-slice CRCs: robust intermediates that cut and join on any frame.
    "ffv1": Codec("ffv1", "ffv1", None, None, frozenset({"matroska"}), ("-level", "3", "-g", "1", "-slicecrc", "1")),
}

# MP4/MOV store a track's width and height as 16.16 fixed point numbers.
CONTAINER_MAX_SIDE = {"mp4": 65535, "mov": 65535}


def ffmpeg_takes_size(width: int, height: int) -> bool:
    """Whether ffmpeg accepts frames of this size: av_image_check_size, which every frame read from
    vspipe's y4m passes, wants (8 * width + 1024) * (height + 128) below 2^31 (about 268 million
    pixels with their margins, e.g. 16000x16000 or 21000x12000)."""
    return (8 * width + 1024) * (height + 128) < 2**31 - 1
