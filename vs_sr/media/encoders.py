"""The video encoder of a job, checked before any frame is upscaled: the options fit the codec and
the container, and the local ffmpeg can really encode with it.

Whether ffmpeg can is asked the one reliable way: a one-frame encode of a generated picture with
the job's encoder options (a hardware encoder fails there when its GPU or driver is missing). The
answer is cached per ffmpeg binary (path, size, modification time), options and, for hardware
encoders, the device nodes present: a second run does not ask again, and a new ffmpeg or a GPU
that appears is asked afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..atomic import atomic_output
from ..children import run_child
from ..errors import SRError
from ..paths import cache_dir
from .codecs import CODECS, CONTAINERS, EXTENSIONS, VAAPI_DEVICE_ENV, Codec
from .probe import Hdr10, count_frames, probe
from .processes import plain_line
from .tools import file_url, find_tool

PROBE_SIZE = "320x240"  # above every encoder's minimum (DNxHR: 256x120)
DEVICE_NODES = ("dev/dri/*", "dev/nvidia*")  # under /
# ffmpeg's generic lines after an encoder's own reason; the reason is the line before them.
GENERIC = ("Error initializing output stream", "Error while opening encoder", "Conversion failed", "Svt[",
           "Error parsing global options")


def check_encoding(codec_name: str, extension: str, crf: int | None, preset: str | None, profile: str | None,
                   depth: int | None) -> Codec:
    """Refuse options the codec or the container (named by the output's `extension`, ".mkv") cannot take, then
    make sure ffmpeg can encode."""
    codec = CODECS.get(codec_name)
    if codec is None:
        raise SRError(f"unknown codec '{codec_name}'; use one of {', '.join(CODECS)}.")
    _check_container(codec, extension.lower())
    _check_quality(codec, crf, preset)
    _check_profile_and_depth(codec, profile, depth)
    probe_encoder(codec, profile, depth)
    return codec


def _check_container(codec: Codec, extension: str) -> None:
    muxer = CONTAINERS[extension]
    if muxer == "webm" and muxer not in codec.containers:
        raise SRError(f"{extension} holds AV1 video of the codecs vs-sr writes: use --codec svt-av1 or aom-av1, or "
                      "another container (.mkv holds every codec).")
    if muxer not in codec.containers:
        fits = [EXTENSIONS[m] for m in ("matroska", "mp4", "mov", "webm") if m in codec.containers]
        listed = fits[0] if len(fits) == 1 else f"{', '.join(fits[:-1])} or {fits[-1]}"
        raise SRError(f"{codec.name} cannot be stored in {extension}; use {listed}.")


def _check_quality(codec: Codec, crf: int | None, preset: str | None) -> None:
    if codec.lossless and (crf is not None or preset is not None):
        raise SRError(f"{codec.name} is lossless: --crf and --preset do not apply.")
    if crf is not None:
        if codec.quality is None:
            raise SRError(f"{codec.name} takes no --crf: its quality is set by --profile "
                          f"({', '.join(codec.profiles)}; default {codec.default_profile}).")
        if not codec.quality.low <= crf <= codec.quality.high:
            raise SRError(f"{codec.name} takes --crf {codec.quality.low}-{codec.quality.high} "
                          f"(ffmpeg's {codec.quality.option}), not {crf}.")
    if preset is not None:
        if not codec.presets:
            raise SRError(f"{codec.name} has no speed presets; drop --preset.")
        if preset not in codec.presets:
            raise SRError(f"{codec.name} presets are {_listing(codec.presets)}, not '{preset}'.")


def _check_profile_and_depth(codec: Codec, profile: str | None, depth: int | None) -> None:
    if profile is not None and not codec.profiles:
        owners = "; ".join(f"{c.name}: {', '.join(c.profiles)}" for c in CODECS.values() if c.profiles)
        raise SRError(f"{codec.name} has no --profile (profiles belong to {owners}).")
    if profile is not None and profile not in codec.profiles:
        raise SRError(f"{codec.name} profiles are {', '.join(codec.profiles)}, not '{profile}'.")
    if depth is None:
        return
    if codec.profiles:
        chosen = profile or str(codec.default_profile)
        bits = codec.profiles[chosen].depth
        if depth != bits:
            others = [name for name, p in codec.profiles.items() if p.depth == depth]
            hint = f"use --profile {' or '.join(others)} for {depth}-bit" if others else "drop --depth"
            raise SRError(f"{codec.name} {chosen} is {bits}-bit; {hint}.")
    elif depth not in codec.depths:
        deeper = [c.name for c in CODECS.values() if c.hardware == codec.hardware and depth in c.depths]
        hint = f"use --codec {deeper[0]} for {depth}-bit" if deeper else "drop --depth"
        raise SRError(f"{codec.name} encodes {'/'.join(map(str, codec.depths))}-bit only, not {depth}-bit; {hint}.")


def _listing(values: tuple[str, ...]) -> str:
    if all(v.isdigit() for v in values):
        return f"{values[0]}-{values[-1]} ({values[0]} slowest)"
    return ", ".join(values)


def codec_arguments(codec: Codec, crf: int | None, preset: str | None, profile: str | None, depth: int) -> list[str]:
    """The encoder and its settings: quality, preset, profile, fixed options, and for hardware
    encoders the pixel format (and device) they are fed."""
    command = ["-c:v", codec.encoder]
    if codec.quality is not None:
        command += codec.quality.arguments(crf)
    if codec.presets:
        command += [codec.preset_option, preset or str(codec.preset)]
    if codec.profiles:
        command += ["-profile:v", codec.profiles[profile or str(codec.default_profile)].value]
    command += codec.options
    if codec.upload:
        command += ["-vaapi_device", os.environ.get(VAAPI_DEVICE_ENV) or "/dev/dri/renderD128"]
    elif codec.hardware_formats:
        command += ["-pix_fmt", codec.hardware_formats[depth]]
    return command


# The encoders that write HDR10 metadata, and the option whose key=value list takes it.
HDR10_ENCODERS = {"libx265": "-x265-params", "libsvtav1": "-svtav1-params"}


def with_hdr10(command: list[str], codec: Codec, hdr: Hdr10 | None) -> list[str]:
    """The encoder's options with the source's HDR10 metadata added to its parameter list (joined
    to what the codec sets there already: a second -x265-params would replace the first)."""
    option = HDR10_ENCODERS.get(codec.encoder)
    if hdr is None or option is None:
        return command
    parameters = ":".join(hdr10_parameters(codec.encoder == "libx265", hdr))
    if option in command:
        at = command.index(option) + 1
        return [*command[:at], f"{command[at]}:{parameters}", *command[at + 1:]]
    return [*command, option, parameters]


def hdr10_parameters(x265: bool, hdr: Hdr10) -> list[str]:
    """x265's (or SVT-AV1's) key=value items for the metadata. x265 counts chromaticity in steps of
    0.00002 and luminance in steps of 0.0001 cd/m²; SVT-AV1 takes the numbers themselves."""
    def point(xy: tuple[float, float]) -> str:
        return f"({round(xy[0] * 50000)},{round(xy[1] * 50000)})" if x265 else f"({xy[0]:.4f},{xy[1]:.4f})"

    parameters = ["hdr10=1"] if x265 else []
    if hdr.primaries and hdr.luminance:
        red, green, blue, white = hdr.primaries
        high, low = hdr.luminance
        light = f"L({round(high * 10000)},{round(low * 10000)})" if x265 else f"L({high:.4f},{low:.4f})"
        key = "master-display" if x265 else "mastering-display"
        parameters.append(f"{key}=G{point(green)}B{point(blue)}R{point(red)}WP{point(white)}{light}")
    if hdr.light:
        parameters.append(f"{'max-cll' if x265 else 'content-light'}={hdr.light[0]},{hdr.light[1]}")
    return parameters


def device_filters(codec: Codec, depth: int) -> list[str]:
    """Video filters that hand frames to the device (last in the chain)."""
    return [f"format={codec.hardware_formats[depth]}", "hwupload"] if codec.upload else []


def pixel_format(chroma: str | None, depth: int) -> str:
    """ffmpeg's name of planar YUV with this chroma layout (None: 4:2:0) and bit depth."""
    return f"yuv{chroma or '420'}p" + (f"{depth}le" if depth > 8 else "")


def probe_encoder(codec: Codec, profile: str | None, depth: int | None) -> None:
    """A one-frame encode with the codec's options, answered from the cache when it was asked
    before; raises an SRError naming what is missing when ffmpeg cannot encode."""
    chroma, bits = codec.layout(profile, depth, 8)
    ffmpeg = find_tool("ffmpeg")
    filters = device_filters(codec, bits)
    command = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
               f"color=c=gray:s={PROBE_SIZE}:r=25:d=0.04,format={pixel_format(chroma, bits)}", "-frames:v", "1",
               *codec_arguments(codec, None, None, profile, bits), *(["-vf", ",".join(filters)] if filters else []),
               "-f", "null", "-"]
    cached = _cache_file(ffmpeg, command, codec)
    answer = _read_answer(cached)
    if answer is None:
        answer = _ask(command)
        try:
            with atomic_output(cached) as temp:
                temp.write_text(json.dumps({"encoder": codec.encoder, "command": command, **answer}), encoding="utf-8")
        except OSError:  # a cache we cannot write (shared read-only, full): the answer holds for this run
            pass
    if not answer["ok"]:
        raise SRError(_refusal(codec, ffmpeg, str(answer["reason"])))


CHECK_FRAMES = 4  # frames of the --ffmpeg-args check: a filter that drops or adds frames shows in the count


def refusal_of(options: Sequence[str], width: int, height: int, pix_fmt: str) -> str | None:
    """What is wrong with the encoder `options`, found by encoding CHECK_FRAMES gray
    `width`x`height` frames in `pix_fmt` with them (into Matroska, as the real encode does):
    ffmpeg's reason for refusing them, or what they change that the output check would refuse only
    after the whole upscale (the frame size, the number of frames); None when they encode as they
    should."""
    with tempfile.TemporaryDirectory(prefix="vs-sr-args-") as folder:
        target = Path(folder) / "check.mkv"
        command = [find_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                   f"color=c=gray:s={width}x{height}:r=25:d={CHECK_FRAMES / 25},format={pix_fmt}", "-map", "0:v:0",
                   *options, "-f", "matroska", file_url(target)]
        answer = _ask(command)
        if not answer["ok"]:
            return f"ffmpeg refuses them ({answer['reason']})"
        written = probe(target).video.info
        frames = count_frames(target)
    if (written["width"], written["height"]) != (width, height):
        return (f"they change the frame size ({width}x{height} becomes {written['width']}x{written['height']}): "
                "--width/--height set it")
    if frames != CHECK_FRAMES:
        return (f"they change the number of frames ({CHECK_FRAMES} become {frames}): every frame is kept at its "
                "source time (--start/--end choose a range)")
    return None


def _ask(command: list[str]) -> dict[str, object]:
    try:
        done = run_child(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    except subprocess.TimeoutExpired:
        return {"ok": False, "reason": "a one-frame encode did not finish in 120 s"}
    if done.returncode == 0:
        return {"ok": True, "reason": ""}
    return {"ok": False, "reason": _reason(done.stderr) or f"exit code {done.returncode}"}


def _reason(stderr: str) -> str:
    """The encoder's own words: the first line that is not one of ffmpeg's generic ones, without
    its `[h264_nvenc @ 0x...]` prefix."""
    for line in stderr.splitlines():
        line = plain_line(line)
        if line and not line.startswith(GENERIC):
            return line.rstrip(".")
    return ""


def _refusal(codec: Codec, ffmpeg: str, reason: str) -> str:
    if reason.startswith("Unknown encoder"):
        return (f"{ffmpeg} has no {codec.encoder} encoder, which --codec {codec.name} needs: install an ffmpeg built "
                "with it (Debian/Ubuntu's ffmpeg package has it), or choose another --codec.")
    if codec.hardware:
        return (f"--codec {codec.name} cannot encode here ({codec.encoder}: {reason}): it needs {codec.hardware}; "
                "choose a software --codec (x264, x265, svt-av1).")
    return f"--codec {codec.name} fails in {ffmpeg} ({codec.encoder}: {reason}); choose another --codec."


def _cache_file(ffmpeg: str, command: list[str], codec: Codec) -> Path:
    stat = Path(ffmpeg).stat()
    devices = sorted(str(p) for pattern in DEVICE_NODES for p in Path("/").glob(pattern)) \
        if codec.hardware else []
    key = json.dumps([ffmpeg, stat.st_size, stat.st_mtime_ns, command[1:], devices])
    return cache_dir("encoders") / f"{codec.encoder}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def _read_answer(path: Path) -> dict[str, object] | None:
    try:
        answer = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not asked yet, or a damaged entry: ask again
    return answer if isinstance(answer, dict) and isinstance(answer.get("ok"), bool) else None

