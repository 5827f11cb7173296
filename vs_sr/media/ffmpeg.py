"""The ffmpeg command lines: the encoder that takes vspipe's y4m and every other track from the
input, and the packet-accurate cut of the other tracks to a frame range."""

from __future__ import annotations

from pathlib import Path

from ..filter.formats import corrected_sar, default_matrix
from .chapters import range_start
from .job import Job, OutputPlan
from .probe import Media
from .tools import find_tool

FFMPEG_MATRICES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"}


def ffmpeg_base() -> list[str]:
    return [find_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]


def cut_command(job: Job, plan: OutputPlan, media: Media, target: Path) -> list[str]:
    """Copy the carried tracks' packets within the frame range into `target` (Matroska), from 0.

    A plain input seek with stream copy starts at the demuxer's seek point (a video keyframe),
    which puts audio before the range; keeping the real timestamps (-copyts) and cutting on
    the output side drops exactly the packets outside the range.
    """
    begin = range_start(media, plan)
    command = [*ffmpeg_base(), "-ss", f"{begin:.6f}", "-i", str(job.input), "-copyts",
               "-ss", f"{begin + media.start_time:.6f}", "-t", f"{plan.seconds:.6f}",
               "-output_ts_offset", f"{-(begin + media.start_time):.6f}"]
    for index in plan.tracks.maps:
        command += ["-map", f"0:{index}"]
    return [*command, "-c", "copy", "-map_chapters", "-1", "-f", "matroska", str(target)]


def encode_command(job: Job, plan: OutputPlan, media: Media, muxer: str, target: Path,
                   cut: Path | None = None, chapters: Path | None = None) -> list[str]:
    """The encoder: the y4m video from stdin, everything else from the input (or its cut)."""
    codec = job.video_codec
    video = media.video
    command = ffmpeg_base()
    # Whole file: the video keeps its delay against the other tracks. A range: the other
    # tracks were cut from the start frame's time, so the video starts at zero with them.
    offset = video.start_time - media.start_time
    if offset > 0 and cut is None:
        command += ["-itsoffset", f"{offset:.6f}"]
    command += ["-f", "yuv4mpegpipe", "-i", "pipe:0", "-i", str(job.input)]  # input 1: tags, chapters
    source, indices = 1, list(plan.tracks.maps)
    if cut is not None:
        command += ["-i", str(cut)]
        source, indices = 2, list(range(len(plan.tracks.maps)))
    if chapters is not None:
        command += ["-f", "ffmetadata", "-i", str(chapters)]
    command += ["-map", "0:v:0", "-map_metadata", "1", "-map_chapters", str(source + 1) if chapters else "1"]
    # Any per-track -map_metadata turns off ffmpeg's default copying of track tags, so every
    # track's tags (language, title, an attachment's mimetype) are mapped explicitly.
    command += ["-map_metadata:s:0", f"1:s:{video.index}"]
    for out_index, (in_index, original) in enumerate(zip(indices, plan.tracks.maps, strict=True), start=1):
        command += ["-map", f"{source}:{in_index}", f"-map_metadata:s:{out_index}", f"1:s:{original}"]
    # Exactly vspipe's frames: no duplicates or drops to fit a muxer's idea of the frame rate.
    command += ["-fps_mode:v:0", "passthrough", "-c:v:0", codec.encoder]
    if not codec.lossless:
        command += ["-crf", str(job.crf if job.crf is not None else codec.crf), "-preset", job.preset or str(codec.preset)]
    command += codec.options
    sar = corrected_sar(_sar_props(media), video.info["width"], video.info["height"], plan.width, plan.height)
    sar = sar or media.sample_aspect
    if sar:
        command += ["-vf", f"setsar={sar[0]}/{sar[1]}:max=65535"]
    command += _colour_tags(video.info, plan)
    command += [*plan.tracks.codecs, *job.ffmpeg_args, "-f", muxer, str(target)]
    return command


def _colour_tags(info: dict, plan: OutputPlan) -> list[str]:
    """The input's colour tags for the encoder; for an RGB input, those of the YUV it becomes
    (y4m carries YUV only: `job_clip` converts with the default matrix, limited range)."""
    tags = {"color_range": info.get("color_range"), "color_primaries": info.get("color_primaries"),
            "color_trc": info.get("color_transfer"), "colorspace": info.get("color_space")}
    if info.get("color_space") in ("gbr", "rgb") or str(info.get("pix_fmt", "")).startswith(("gbr", "rgb", "bgr")):
        tags["colorspace"] = FFMPEG_MATRICES.get(default_matrix(plan.width, plan.height))
        tags["color_range"] = "tv"
    return [arg for option, value in tags.items() if value and value not in ("unknown", "reserved")
            for arg in (f"-{option}", value)]


def _sar_props(media: Media) -> dict:
    sar = media.sample_aspect
    return {"_SARNum": sar[0], "_SARDen": sar[1]} if sar else {}
