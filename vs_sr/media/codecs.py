"""The video codecs and containers `vs-sr` writes, as typed records: each codec's ffmpeg encoder,
how `--crf`, `--preset`, `--profile` and `--depth` map onto it, the pixel layout it takes, and
the containers that can hold it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CONTAINERS = {".mkv": "matroska", ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".webm": "webm"}
EXTENSIONS = {"matroska": ".mkv", "mp4": ".mp4", "mov": ".mov", "webm": ".webm"}
"""The usual extension of each muxer, for messages."""

Chroma = Literal["420", "422", "444"]
SUBSAMPLING = {"420": (1, 1), "422": (1, 0), "444": (0, 0)}  # log2 of (width, height) per chroma sample


@dataclass(frozen=True)
class Quality:
    """How `--crf` maps onto an encoder: its option, the range it takes, the default, and the
    options that put the encoder in that constant-quality mode."""

    option: str
    low: int
    high: int
    default: int
    mode: tuple[str, ...] = ()

    def arguments(self, value: int | None) -> list[str]:
        return [*self.mode, self.option, str(self.default if value is None else value)]


@dataclass(frozen=True)
class Profile:
    """A named profile of a profile-driven codec (ProRes, DNxHR): its ffmpeg value and the pixel
    layout it encodes."""

    value: str
    chroma: Chroma
    depth: int


@dataclass(frozen=True)
class Codec:
    name: str
    encoder: str
    """ffmpeg's encoder name."""
    containers: frozenset[str]
    """ffmpeg muxers that can hold it."""
    quality: Quality | None = None
    """What --crf sets; None: lossless (FFV1) or quality by profile (ProRes, DNxHR)."""
    presets: tuple[str, ...] = ()
    """The --preset values it takes (its own names); empty: it has none."""
    preset: str | None = None
    """The default preset."""
    preset_option: str = "-preset"
    profiles: dict[str, Profile] = field(default_factory=dict)
    default_profile: str | None = None
    depths: tuple[int, ...] = (8, 10)
    """Bit depths it encodes."""
    chroma: Chroma | None = None
    """The chroma layout it takes; None: the input's."""
    options: tuple[str, ...] = ()
    """Encoder options always passed."""
    hardware: str | None = None
    """What the encoder needs besides ffmpeg (a GPU and its driver); None for software encoders."""
    hardware_formats: dict[int, str] = field(default_factory=dict)
    """The pixel format a hardware encoder is fed per bit depth (converted by ffmpeg)."""
    upload: bool = False
    """Frames go to the device through a filter (VA-API: hwupload)."""
    min_size: tuple[int, int] = (1, 1)
    frame_tags: bool = False
    """It writes the frames' colour tags, not the encoder options' (ProRes): they are set on the frames."""
    bytes_per_pixel: float = 0.15
    """Rough bytes per output pixel and frame (the batch's disk-space estimate)."""
    family: str = ""
    """What ffprobe calls the result (h264, hevc, av1, prores, dnxhd, ffv1)."""
    max_side: int | None = None
    """The most pixels the encoder takes on either side (None: only ffmpeg's own limit)."""

    @property
    def lossless(self) -> bool:
        return self.quality is None and not self.profiles

    def layout(self, profile: str | None, depth: int | None, source_depth: int) -> tuple[Chroma | None, int]:
        """(chroma layout or None for the input's, bit depth) of the frames this codec is given;
        `depth` None keeps the source's depth where the codec takes it."""
        if self.profiles:
            chosen = self.profiles[profile or str(self.default_profile)]
            return chosen.chroma, chosen.depth
        if depth is None:  # the source's, or the nearest below it the codec takes
            below = [d for d in self.depths if d <= source_depth]
            depth = max(below) if below else min(self.depths)
        return self.chroma, depth


CRF_RANGE = (0, 51)  # x264 and x265 (8-bit): also the studio's range
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
NVENC_PRESETS = tuple(f"p{n}" for n in range(1, 8))
QSV_PRESETS = ("veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
EVERYWHERE = frozenset({"matroska", "mp4", "mov"})
AV1_CONTAINERS = frozenset({"matroska", "mp4", "webm"})
EDITING = frozenset({"matroska", "mov"})
NVIDIA = "an NVIDIA GPU with its driver (libcuda, libnvidia-encode)"
INTEL = "an Intel GPU with its media runtime (oneVPL or Media SDK)"
VAAPI = "a VA-API device (/dev/dri/renderD128, or $VS_SR_VAAPI_DEVICE) with its driver"
VAAPI_DEVICE_ENV = "VS_SR_VAAPI_DEVICE"

PRORES = {"proxy": Profile("0", "422", 10), "lt": Profile("1", "422", 10), "standard": Profile("2", "422", 10),
          "hq": Profile("3", "422", 10), "4444": Profile("4", "444", 10)}
DNXHR = {"lb": Profile("dnxhr_lb", "422", 8), "sq": Profile("dnxhr_sq", "422", 8), "hq": Profile("dnxhr_hq", "422", 8),
         "hqx": Profile("dnxhr_hqx", "422", 10), "444": Profile("dnxhr_444", "444", 10)}


def _hardware(name: str, encoder: str, needs: str, quality: Quality, depths: tuple[int, ...], family: str,
              presets: tuple[str, ...] = (), preset: str | None = None, upload: bool = False) -> Codec:
    return Codec(name, encoder, EVERYWHERE, quality, presets, preset, depths=depths, chroma="420", hardware=needs,
                 hardware_formats={8: "nv12", 10: "p010le"}, upload=upload, family=family)


NVENC_QUALITY = Quality("-cq", 1, 51, 21, ("-rc", "vbr", "-b:v", "0"))
QSV_QUALITY = Quality("-global_quality", 1, 51, 21)
VAAPI_QUALITY = Quality("-qp", 0, 51, 21, ("-rc_mode", "CQP"))
CODECS = {
    "x264": Codec("x264", "libx264", EVERYWHERE, Quality("-crf", *CRF_RANGE, 18), X264_PRESETS, "medium", family="h264",
                  max_side=16384),  # x264's MAX_RESOLUTION
    # ffmpeg's libx265 refuses pictures under 16 pixels a side ("Image size is too small").
    "x265": Codec("x265", "libx265", EVERYWHERE, Quality("-crf", *CRF_RANGE, 20), X264_PRESETS, "medium",
                  options=("-x265-params", "log-level=error"), depths=(8, 10, 12), bytes_per_pixel=0.1, family="hevc",
                  min_size=(16, 16)),
    "svt-av1": Codec("svt-av1", "libsvtav1", AV1_CONTAINERS, Quality("-crf", 1, 63, 25),
                     tuple(str(n) for n in range(14)), "6", chroma="420", bytes_per_pixel=0.08, family="av1"),
    "aom-av1": Codec("aom-av1", "libaom-av1", AV1_CONTAINERS, Quality("-crf", 0, 63, 25, ("-b:v", "0")),
                     tuple(str(n) for n in range(9)), "6", "-cpu-used", options=("-row-mt", "1"), depths=(8, 10, 12),
                     bytes_per_pixel=0.08, family="av1"),
    "prores": Codec("prores", "prores_ks", EDITING, profiles=PRORES, default_profile="hq", depths=(10,),
                    options=("-vendor", "apl0"), frame_tags=True, bytes_per_pixel=1.3, family="prores"),
    "dnxhr": Codec("dnxhr", "dnxhd", EDITING, profiles=DNXHR, default_profile="hq", depths=(8, 10),
                   min_size=(256, 120), bytes_per_pixel=1.3, family="dnxhd"),
    # Intra-only with per-slice CRCs: robust intermediates that cut and join on any frame.
    "ffv1": Codec("ffv1", "ffv1", frozenset({"matroska"}), options=("-level", "3", "-g", "1", "-slicecrc", "1"),
                  depths=(8, 9, 10, 12, 14, 16), bytes_per_pixel=1.2, family="ffv1"),
    "h264-nvenc": _hardware("h264-nvenc", "h264_nvenc", NVIDIA, NVENC_QUALITY, (8,), "h264", NVENC_PRESETS, "p5"),
    "hevc-nvenc": _hardware("hevc-nvenc", "hevc_nvenc", NVIDIA, NVENC_QUALITY, (8, 10), "hevc", NVENC_PRESETS, "p5"),
    "h264-qsv": _hardware("h264-qsv", "h264_qsv", INTEL, QSV_QUALITY, (8,), "h264", QSV_PRESETS, "medium"),
    "hevc-qsv": _hardware("hevc-qsv", "hevc_qsv", INTEL, QSV_QUALITY, (8, 10), "hevc", QSV_PRESETS, "medium"),
    "h264-vaapi": _hardware("h264-vaapi", "h264_vaapi", VAAPI, VAAPI_QUALITY, (8,), "h264", upload=True),
    "hevc-vaapi": _hardware("hevc-vaapi", "hevc_vaapi", VAAPI, VAAPI_QUALITY, (8, 10), "hevc", upload=True),
}
WEBM_VIDEO = frozenset(name for name, codec in CODECS.items() if "webm" in codec.containers)
PRESETS = tuple(dict.fromkeys(p for codec in CODECS.values() for p in codec.presets))
"""Every --preset value some codec takes (each codec checks its own)."""
CRF_LIMITS = (min(c.quality.low for c in CODECS.values() if c.quality), max(c.quality.high for c in CODECS.values()
                                                                              if c.quality))
PROFILES = tuple(dict.fromkeys(p for codec in CODECS.values() for p in codec.profiles))
DEPTHS = (8, 10)

# MP4/MOV store a track's width and height as 16.16 fixed point numbers.
CONTAINER_MAX_SIDE = {"mp4": 65535, "mov": 65535}


def ffmpeg_takes_size(width: int, height: int) -> bool:
    """Whether ffmpeg accepts frames of this size: av_image_check_size, which every frame read from
    vspipe's y4m passes, wants (8 * width + 1024) * (height + 128) below 2^31 (about 268 million
    pixels with their margins, e.g. 16000x16000 or 21000x12000)."""
    return (8 * width + 1024) * (height + 128) < 2**31 - 1
