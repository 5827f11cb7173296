"""The ffmpeg command lines: the encoder that turns vspipe's y4m into a video-only file, the
packet-accurate cut of the other tracks to a frame range, and the final mux. Paths go through
`tools.file_url`."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import SRError
from ..filter.formats import corrected_sar, default_matrix
from .codecs import Codec
from .encoders import codec_arguments, device_filters, pixel_format, refusal_of, with_hdr10
from .job import Job, OutputPlan
from .probe import Media
from .tools import file_url, find_tool
from .tracks import Carried

FFMPEG_MATRICES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"}


def ffmpeg_base() -> list[str]:
    return [find_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]


def encode_command(options: Sequence[str], target: Path) -> list[str]:
    """vspipe's y4m on stdin -> the video track alone in Matroska. Its timestamps are the y4m's
    constant rate; the source's come later (mkvmerge)."""
    return [*ffmpeg_base(), "-f", "yuv4mpegpipe", "-i", "pipe:0", "-map", "0:v:0", *options, "-f", "matroska",
            file_url(target)]


def reencode_command(options: Sequence[str], source: Path, target: Path) -> list[str]:
    """A video-only Matroska file (FFV1 intermediates, joined) re-encoded with the encoder `options`
    into `target`, at its own constant rate like `encode_command`'s: the source's times come later."""
    return [*ffmpeg_base(), "-i", file_url(source), "-map", "0:v:0", *options, "-f", "matroska", file_url(target)]


def track_timescale(rate: Fraction | None) -> int:
    """An MP4 video track's ticks per second: a constant rate's frames whole ticks apart (1000 for
    24/1, 1001 for 24000/1001), so its frames keep exact, even times (ffmpeg's own choice from a
    Matroska source, 16000, made 24 fps steps of 656 and 672: a variable rate of 24.02 to players)."""
    if rate is None or rate <= 0:
        return 90000
    return rate.numerator * (1000 if rate.denominator == 1 else 1)


def encoder_options(job: Job, codec: Codec, plan: OutputPlan, media: Media) -> list[str]:
    """The encoder's options for the output video: codec, quality, the output's SAR and colour
    tags, and the caller's extra arguments (plain data: batch chunks carry them to workers).

    The caller's arguments come last (`check_user_options` refuses those that set what ours set),
    and their video filters (-vf) and encoder parameters (-x265-params) join ours instead of
    replacing them: the SAR tag (and a hardware encoder's upload) stay at the end of one chain, and
    the HDR10 metadata in the parameters."""
    video = media.video
    _, depth = codec.layout(job.profile, job.depth, source_depth(video.info))
    user_filters, user_options = split_filters(job.ffmpeg_args)
    command = ["-fps_mode", "passthrough",
               *with_hdr10(codec_arguments(codec, job.crf, job.preset, job.profile, depth), codec, plan.hdr10)]
    filters = list(user_filters)
    tags = _colour_tags(video.info, plan, media.upright[:2])
    if codec.frame_tags and tags:
        filters.append(_frame_tags(tags))
    # The shape as shown: a portrait phone video's landscape frames come upright (bestsource turns them).
    width, height, shown_sar = media.upright
    sar_props = {"_SARNum": shown_sar[0], "_SARDen": shown_sar[1]} if shown_sar else {}
    sar = corrected_sar(sar_props, width, height, plan.width, plan.height) or shown_sar
    if sar:
        filters.append(f"setsar={sar[0]}/{sar[1]}:max=65535")
    filters += device_filters(codec, depth)
    if filters:
        command += ["-vf", ",".join(filters)]
    command += [arg for option, value in tags.items() for arg in (f"-{option}", value)]
    return _with_parameters(command, user_options)


def _with_parameters(command: list[str], options: Sequence[str]) -> list[str]:
    """The caller's options after ours, their encoder parameter list joined to ours: a second
    -x265-params would replace the first, and with it the HDR10 metadata."""
    command, rest = list(command), []
    items = iter(options)
    for item in items:
        if item in PARAMETER_OPTIONS and item in command:
            at = command.index(item) + 1
            command[at] = f"{command[at]}:{next(items, '')}"
        else:
            rest.append(item)
    return [*command, *rest]


def check_extra_arguments(job: Job, codec: Codec, plan: OutputPlan, media: Media) -> None:
    """The caller's --ffmpeg-args, tried before any frame is upscaled: a few frames encoded at the
    output's size and pixel format with the whole `encoder_options` (an unknown option or filter,
    a filter that does not fit the frame, a value left out, a filter that resizes or drops frames).
    Only when there are such arguments."""
    if not job.ffmpeg_args:
        return
    _check_codec_options(job.ffmpeg_args, codec)
    chroma, depth = codec.layout(job.profile, job.depth, source_depth(media.video.info))
    reason = refusal_of(encoder_options(job, codec, plan, media), plan.width, plan.height, pixel_format(chroma, depth))
    if reason is None:
        return
    last = job.ffmpeg_args[-1]
    dangling = f"; its last option, {last}, may lack its value" if re.fullmatch(r"-[A-Za-z_][\w:-]*", last) else ""
    raise SRError(f"--ffmpeg-args '{shlex.join(job.ffmpeg_args)}': {reason}{dangling}. Fix or drop them.")


# Options that set what vs-sr's own options set for some codecs only: a profile where the codec has
# --profile (ProRes, DNxHR; x264's -profile:v is the caller's), a quantiser where it has --crf
# (ProRes's -q:v is the caller's).
PROFILE_OPTIONS = ("-profile", "-profile:v")
QUANTISER_OPTIONS = ("-q:v", "-qscale:v", "-global_quality")


def _check_codec_options(arguments: Sequence[str], codec: Codec) -> None:
    for item in arguments:
        if item in PROFILE_OPTIONS and codec.profiles or item in QUANTISER_OPTIONS and codec.quality is not None:
            owner = "--profile" if item in PROFILE_OPTIONS else "--crf"
            raise SRError(f"--ffmpeg-args: {item} is set by {owner} for {codec.name}; drop it from --ffmpeg-args.")


FILTER_OPTIONS = ("-vf", "-filter:v", "-filter:v:0", "-filter")
# What --ffmpeg-args may not set, and what sets it: vs-sr picks the encoder and the container, keeps
# every frame at its source time, and checks the output against them.
OWNED_OPTIONS = {**dict.fromkeys(("-c", "-codec", "-c:v", "-codec:v", "-c:v:0", "-codec:v:0", "-vcodec"), "--codec"),
                 "-f": "the output's extension", "-s": "--width/--height",
                 **dict.fromkeys(("-t", "-to", "-ss", "-frames", "-frames:v", "-vframes", "-r", "-fpsmax"),
                                 "--start/--end (every frame is kept at its source time)"),
                 **dict.fromkeys(("-crf", "-crf:v", "-qp"), "--crf"),
                 **dict.fromkeys(("-preset", "-preset:v"), "--preset"),
                 **dict.fromkeys(("-pix_fmt", "-pix_fmt:v"), "--depth and the codec (its chroma)"),
                 "-aspect": "the source's shape (vs-sr writes the pixel aspect that keeps it)",
                 "-vn": "vs-sr (the video is what it writes)"}
# Output options for other tracks: the video encoder's command has no audio or subtitles to apply
# them to (vs-sr carries those over itself, as they are), so they would do nothing without a word.
OTHER_TRACKS = re.compile(r"-(an|sn|dn|map|acodec|scodec|ar|ac|af|aq|ab|[a-z_]+:[asdt](:\d+)?)")
# Tags and chapters: the encoder writes a file of its own, whose tags the mux leaves behind.
METADATA_OPTIONS = ("-metadata", "-map_metadata", "-map_chapters")
# Encoder-private parameter lists, and their keys that set what vs-sr's options set.
PARAMETER_OPTIONS = ("-x264-params", "-x264opts", "-x265-params", "-svtav1-params")
OWNED_PARAMETERS = {"crf": "--crf", "qp": "--crf", "bitrate": "--crf", "preset": "--preset",
                    "input-depth": "--depth", "output-depth": "--depth", "input-csp": "--depth and the codec",
                    "sar": "the source's shape", "fps": "the source's frame times", "frames": "--start/--end"}
# Output options that take no value (a word after one of them would be a second output file).
VALUELESS_OPTIONS = {"-an", "-vn", "-sn", "-dn", "-shortest", "-bitexact", "-copyts", "-start_at_zero", "-y", "-n"}


def check_user_options(arguments: Sequence[str]) -> None:
    """Refuse, as they are given, --ffmpeg-args that set what vs-sr sets, or that hold a word no
    option takes: ffmpeg would write that word as a second output file (the whole video again)."""
    takes_value = False
    for item, following in zip(arguments, [*arguments[1:], ""], strict=True):
        if item in OWNED_OPTIONS:
            raise SRError(f"--ffmpeg-args: {item} is set by {OWNED_OPTIONS[item]}; drop it from --ffmpeg-args.")
        if item.split(":")[0] in METADATA_OPTIONS:
            raise SRError(f"--ffmpeg-args: {item} would set tags on the video encoder's own file, which vs-sr then "
                          "joins with the source's tracks, tags and chapters (kept as they are); set tags on the "
                          "output afterwards (mkvpropedit, or ffmpeg -i OUT -c copy -metadata ...).")
        if OTHER_TRACKS.fullmatch(item):
            raise SRError(f"--ffmpeg-args: {item} is not an option for the video, and they go to its encoder only "
                          "(vs-sr carries the audio and subtitles over as they are); drop it from --ffmpeg-args.")
        if item in PARAMETER_OPTIONS:
            _check_parameters(item, following)
        if item.startswith("-") and not re.fullmatch(r"-[\d.]+", item):  # an option (a negative number is a value)
            takes_value = item not in VALUELESS_OPTIONS
        elif takes_value:
            takes_value = False
        else:
            raise SRError(f"--ffmpeg-args: '{item}' is no option's value, so ffmpeg would write a second output file "
                          "of that name; give options with their values only, e.g. '-tune animation'.")


def _check_parameters(option: str, value: str) -> None:
    """An encoder's parameter list (`-x264-params crf=40:aq-mode=3`) that sets what vs-sr sets."""
    for pair in re.split(r"[:,]", value):
        key = pair.partition("=")[0].strip()
        if key in OWNED_PARAMETERS:
            raise SRError(f"--ffmpeg-args: {option} {key}= is set by {OWNED_PARAMETERS[key]}; drop it from "
                          "--ffmpeg-args.")


def split_filters(arguments: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the video filter chains among ffmpeg output options, the other options)."""
    filters: list[str] = []
    others: list[str] = []
    items = iter(arguments)
    for item in items:
        if item in FILTER_OPTIONS:
            value = next(items, None)
            if value is None:
                raise SRError(f"--ffmpeg-args: {item} needs a filter chain after it, e.g. \"{item} hqdn3d\".")
            filters.append(value)
        else:
            others.append(item)
    return filters, others


def source_depth(info: dict[str, Any]) -> int:
    """Bits per sample of a video track (ffprobe's JSON), 8 when it does not say."""
    bits = str(info.get("bits_per_raw_sample", ""))
    if bits.isdigit() and int(bits) > 0:
        return int(bits)
    match = re.search(r"p(\d+)(le|be)?$", str(info.get("pix_fmt", "")))
    return int(match.group(1)) if match else 8


def cut_command(job: Job, plan: OutputPlan, media: Media, indices: Sequence[int], target: Path) -> list[str]:
    """Copy the packets of tracks `indices` within the frame range into `target` (Matroska), on a
    clock where the range starts at 0.

    A plain input seek with stream copy starts at the demuxer's seek point (a video keyframe),
    which puts audio before the range; keeping the real timestamps (-copyts) and cutting on the
    output side drops exactly the packets outside the range (and, for copied packets, subtracts the
    range start). Nothing else shifts them: an audio track that starts after the range start
    keeps its delay (-avoid_negative_ts disabled).
    """
    seek = max(0.0, plan.begin - media.start_time)
    command = [*ffmpeg_base(), "-ss", f"{seek:.6f}", "-i", file_url(job.input), "-copyts",
               "-ss", f"{plan.begin:.6f}", "-t", f"{plan.seconds:.6f}"]
    for index in indices:
        command += ["-map", f"0:{index}"]
    return [*command, "-c", "copy", "-map_chapters", "-1", "-avoid_negative_ts", "disabled", "-f", "matroska",
            file_url(target)]


@dataclass(frozen=True)
class Input:
    """A file the final mux reads, and how far its content must be delayed on the output's clock
    (ffmpeg starts every input at 0; -itsoffset puts it back where it belongs)."""

    path: Path
    offset: float = 0.0
    format: str | None = None

    def arguments(self) -> list[str]:
        offset = ["-itsoffset", f"{self.offset:.6f}"] if abs(self.offset) > 1e-9 else []
        fmt = ["-f", self.format] if self.format else []
        return [*offset, *fmt, "-i", file_url(self.path)]


@dataclass(frozen=True)
class Source:
    """Where the final mux takes one carried track from: an input number and a track index in it."""

    input: int
    index: int




def mux_command(job: Job, media: Media, muxer: str, inputs: Sequence[Input],
                sources: Sequence[tuple[Source, Carried]], chapters_input: int, target: Path,
                rate: Fraction | None = None) -> list[str]:
    """The output: the video (input 0, encoded and timed: copied) and each carried track from where
    its source says, with the input's tags (input 1 is the input file itself) and chapters from
    `chapters_input`. `rate`: the source's constant frame rate, which an MP4/MOV clock keeps exactly."""
    command = ffmpeg_base()
    for item in inputs:
        command += item.arguments()
    command += ["-map", "0:v:0", "-map_metadata", "1", "-map_chapters", str(chapters_input)]
    # Any per-track -map_metadata turns off ffmpeg's default copying of track tags, so every
    # track's tags (language, title, an attachment's mimetype) are mapped explicitly.
    command += ["-map_metadata:s:0", f"1:s:{media.video.index}", "-c:v", "copy"]
    if muxer in ("mp4", "mov"):  # a clock that counts whole frames (24 fps: 1000 ticks of 1/24000 s), else 90 kHz
        command += ["-video_track_timescale", str(track_timescale(rate))]
    if muxer in ("mp4", "mov") and job.video_codec.family == "hevc":
        command += ["-tag:v", "hvc1"]  # (ffmpeg's default, hev1, is what Apple's players and editors do not open)
    for out, (source, carried) in enumerate(sources, start=1):
        command += ["-map", f"{source.input}:{source.index}", f"-map_metadata:s:{out}", f"1:s:{carried.track.index}",
                    f"-c:{out}", carried.codec]
        for option, value in zip(carried.options[::2], carried.options[1::2], strict=True):
            command += [f"{option}:{out}", value]
    return [*command, "-f", muxer, file_url(target)]


def _colour_tags(info: dict[str, Any], plan: OutputPlan, source_size: tuple[int, int]) -> dict[str, str]:
    """The input's colour tags (ffmpeg's option names and values) for the encoder; for an RGB
    input, those of the YUV it becomes (y4m carries YUV only: `job_clip` converts with the default
    matrix, limited range); for a YUV input that names no matrix, the one the filter took for it (the
    default for the source's size): players take an untagged HD output for BT.709, and an SD
    source's BT.601 colours came out shifted."""
    tags = {"color_range": info.get("color_range"), "color_primaries": info.get("color_primaries"),
            "color_trc": info.get("color_transfer"), "colorspace": info.get("color_space")}
    if info.get("color_space") in ("gbr", "rgb") or str(info.get("pix_fmt", "")).startswith(("gbr", "rgb", "bgr")):
        tags["colorspace"] = FFMPEG_MATRICES.get(default_matrix(plan.width, plan.height))
        tags["color_range"] = "tv"
    elif tags["colorspace"] in (None, "unknown", "reserved") and not str(info.get("pix_fmt", "")).startswith("gray"):
        tags["colorspace"] = FFMPEG_MATRICES.get(default_matrix(*source_size))
    return {option: value for option, value in tags.items() if value and value not in ("unknown", "reserved")}


def _frame_tags(tags: dict[str, str]) -> str:
    """The colour tags as a `setparams` filter: for encoders that write the frames' own tags
    (ProRes) rather than the encoder options'."""
    names = {"color_range": "range"}
    return "setparams=" + ":".join(f"{names.get(option, option)}={value}" for option, value in tags.items())


