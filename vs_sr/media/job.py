"""One file to upscale: the job as the caller gives it, checked before any work, and the plan of
what will be written (frame range, size, timeline, tracks)."""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import vapoursynth as vs

from ..backends import network_for
from ..errors import SRError
from ..filter.arguments import Arguments, BackendName, PrecisionName, backend_name, normalise, precision_name
from ..filter.formats import output_size
from ..filter.memory import check_frame_memory
from ..filter.tiling import plan_tiles
from ..filter.upscale_clip import check_runtime
from ..models import DEFAULT_MODEL, Network
from ..models.resolve import portable_model
from ..paths import check_name, shown
from .codecs import CODECS, CONTAINER_MAX_SIDE, CONTAINERS, SUBSAMPLING, Codec, ffmpeg_takes_size
from .encoders import HDR10_ENCODERS, check_encoding
from .integrity import decodable
from .probe import Hdr10, Media, Track, hdr10
from .timeline import Timeline, read_timeline
from .tools import check_input
from .tracks import TrackPlan, plan_tracks


@dataclass
class Job:
    """One `vs-sr upscale` run; the defaults here are the command's defaults."""

    input: Path
    output: Path
    model: str = DEFAULT_MODEL
    scale: int = 4
    width: int | None = None
    height: int | None = None
    backend: BackendName = "auto"
    precision: PrecisionName = "auto"
    tile: int | tuple[int, int] | None = None
    """Input pixels: N (N x N) or (width, height); None: automatic."""
    overlap: int | None = None
    num_streams: int = 2
    """Frames in flight. Two, not one: the encoder shares the CPU, and with one stream it steals a
    core from one of OpenVINO's lock-stepped threads (measured faster with x264 on 2 cores:
    docs/benchmarks.md, "The platform case")."""
    server: str | None = None
    """The Triton server of backend "triton" (None: $VS_SR_TRITON_URL)."""
    noise: int | None = None
    """Denoise level of models that have levels (realcugan, waifu2x-*); None: the model's default."""
    codec: str = "x264"
    crf: int | None = None
    preset: str | None = None
    ffmpeg_args: list[str] = field(default_factory=list)
    start: int | None = None
    end: int | None = None
    overwrite: bool = False
    deinterlace: str | None = None
    """For interlaced sources: "bwdif" (BobWeaver, same frame rate) or "progressive" (the flags
    are wrong: treat the frames as progressive). None refuses interlaced input."""
    salvage: bool = False
    """An input that decodes short of what its container declares (cut off, damaged frames) is
    refused unless this is set; then what decodes is upscaled, and the plan says what was missing."""
    profile: str | None = None
    """The codec's profile where quality is a profile (ProRes, DNxHR); None: the codec's default."""
    depth: int | None = None
    """Output bit depth; None: the input's where the codec takes it (ProRes and DNxHR: the profile's)."""

    @property
    def video_codec(self) -> Codec:
        return CODECS[self.codec]

    @property
    def output_muxer(self) -> str:
        """ffmpeg's muxer for the output's extension (checked by `check_job`)."""
        return CONTAINERS[self.output.suffix.lower()]

    def filter_arguments(self) -> dict[str, object]:
        """What the vspipe script needs to build the clip (read back by `from_script_arguments`)."""
        return {"input": self.input.resolve(), "output": self.output, "model": portable_model(self.model),
                "scale": self.scale, "width": self.width, "height": self.height, "backend": self.backend,
                "precision": self.precision, "tile": tile_text(self.tile), "overlap": self.overlap,
                "num_streams": self.num_streams, "server": self.server, "noise": self.noise,
                "deinterlace": self.deinterlace, "codec": self.codec, "profile": self.profile, "depth": self.depth}

    @classmethod
    def from_script_arguments(cls, arguments: Mapping[str, str | None]) -> Job:
        """The job as `filter_arguments` sent it through vspipe, where every value arrives as text."""
        def text(name: str) -> str:
            value = arguments.get(name)
            if value is None:
                raise SRError(f"the vspipe script was given no {name} (it is run by vs-sr, with its arguments).")
            return value

        def number(name: str) -> int | None:
            value = arguments.get(name)
            return None if value is None else int(value)

        return cls(Path(text("input")), Path(text("output")), model=text("model"), scale=int(text("scale")),
                   width=number("width"), height=number("height"), backend=backend_name(text("backend")),
                   precision=precision_name(text("precision")), tile=tile_value(arguments.get("tile")),
                   overlap=number("overlap"),
                   num_streams=int(text("num_streams")), server=arguments.get("server"), noise=number("noise"),
                   deinterlace=arguments.get("deinterlace"), codec=arguments.get("codec") or "x264",
                   profile=arguments.get("profile"), depth=number("depth"))


def tile_text(tile: int | Sequence[int] | None) -> str | None:
    """A job's tile as vspipe's argument text: "N", or "WxH" for a pair (a list once a batch's
    settings went through JSON)."""
    if tile is None or isinstance(tile, int):
        return None if tile is None else str(tile)
    return "x".join(str(side) for side in tile)


def tile_value(text: str | None) -> int | tuple[int, int] | None:
    """The tile `tile_text` wrote."""
    if text is None:
        return None
    if "x" not in text:
        return int(text)
    width, height = text.split("x")
    return int(width), int(height)


@dataclass
class OutputPlan:
    """What will be written: the frames, the size, their times, and how every input track is carried."""

    first: int
    last: int
    ranged: bool
    """Only part of the input: the other tracks are cut to the same time span."""
    width: int
    height: int
    timeline: Timeline
    """The source's frame times: the output keeps them (variable frame rates included)."""
    tracks: TrackPlan
    salvaged: str | None = None
    """What the input lacked (Decodable.shortfall) when only what decodes is upscaled (Job.salvage);
    frames that do not decode are left out and the frames after them keep their times."""
    hdr10: Hdr10 | None = None
    """The source's HDR10 metadata, written by the encoders that take it (x265, SVT-AV1)."""

    @property
    def frames(self) -> int:
        return self.last - self.first + 1

    @property
    def begin(self) -> float:
        """When the first frame of the range is shown, on the input's clock."""
        return self.timeline.starts[self.first]

    @property
    def end(self) -> float:
        return self.timeline.stop(self.last)

    @property
    def seconds(self) -> float:
        return self.end - self.begin


FIELD_ORDERS = {1: "bottom field first", 2: "top field first"}
DEINTERLACERS = ("bwdif", "progressive")


def check_output_name(job: Job) -> None:
    """An output that names a folder (".", "/", an existing one), or that the tools cannot be given
    or the file system cannot make."""
    if job.output.name:
        check_name(job.output, "the output")  # (first: a name too long fails every look at the file)
    if job.output.is_dir() or not job.output.name:
        raise SRError(f"{shown(job.output)} is a folder; give the output file's name, e.g. "
                      f"{shown(job.output / job.input.stem)}.mkv.")


def check_job(job: Job) -> str:
    """Validate what can be checked before any work (the encoder included: ffmpeg is asked once
    whether it can encode with it); returns the output muxer."""
    check_input(job.input)
    check_output_name(job)
    muxer = CONTAINERS.get(job.output.suffix.lower())
    if muxer is None and not job.output.suffix:
        raise SRError(f"{job.output} has no extension to name its container; end it in one of {', '.join(CONTAINERS)}.")
    if muxer is None:
        raise SRError(f"unsupported output container '{job.output.suffix}'; use one of {', '.join(CONTAINERS)}.")
    if job.deinterlace is not None and job.deinterlace not in DEINTERLACERS:
        raise SRError(f"unknown deinterlacer '{job.deinterlace}'; use one of {', '.join(DEINTERLACERS)}.")
    if job.output.resolve() == job.input.resolve():
        raise SRError("the output would overwrite the input; choose another output path.")
    if job.output.exists() and not job.overwrite:
        raise SRError(f"{job.output} exists; pass --overwrite (-y) to replace it.")
    directory = job.output.parent
    if not directory.is_dir():
        raise SRError(f"output directory {directory} does not exist; create it first "
                      f"(mkdir -p {shlex.quote(str(directory))}).")
    try:  # really try: permissions, read-only mounts and full disks all show here
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise SRError(f"cannot write to {directory}: {error.strerror}.") from None
    check_encoding(job.codec, job.output.suffix, job.crf, job.preset, job.profile, job.depth)
    return muxer


def check_tiles(job: Job, frame_size: tuple[int, int]) -> None:
    """--tile and --overlap that do not fit the network or each other, refused before the plan is
    said (vspipe found them, after it) by one command's pre-flight; a batch's workers judge their
    own (the driver may not run the model: a Ray head, a Triton server down at assembly)."""
    if job.tile is not None or job.overlap is not None:
        args, network = _filter_network(job)  # (the filter plans the same tiles once vspipe has loaded it)
        plan_tiles(*frame_size, network.scale, network.traits, args.tile, args.overlap, network.fixed_shape)


def check_model(job: Job) -> None:
    """A bad model, missing weights, a runtime or precision that cannot run it here, or a Triton
    server that is down or lacks the model fail here, before any work."""
    args, network = _filter_network(job)
    check_runtime(network, args)


def _filter_network(job: Job) -> tuple[Arguments, Network]:
    """The job's filter arguments, checked as `Upscale` checks them, and the network they name."""
    args = normalise(job.model, job.scale, job.backend, job.precision, job.tile, job.overlap, job.num_streams, 0,
                     job.width, job.height, job.server, job.noise)
    return args, network_for(args.model, args.scale, args.noise, args.backend, args.server)


def chroma_lost(clip: vs.VideoNode, job: Job) -> str | None:
    """A note when the codec encodes less colour resolution than the source has (4:2:2 into
    SVT-AV1's 4:2:0): done as the codec needs, but said."""
    codec = job.video_codec
    chroma, _ = codec.layout(job.profile, job.depth, 8)
    fmt = clip.format
    if chroma is None or fmt.color_family == vs.GRAY:
        return None
    have = (0, 0) if fmt.color_family == vs.RGB else (fmt.subsampling_w, fmt.subsampling_h)
    names = {value: f"{key[0]}:{key[1]}:{key[2]}" for key, value in SUBSAMPLING.items()}
    width, height = SUBSAMPLING[chroma]
    if width <= have[0] and height <= have[1]:
        return None
    source = f"the source's {names[have]}" if have in names else "the source's colour"
    chosen = f"--codec {codec.name}" + (f" --profile {job.profile}" if job.profile else "")
    return f"{chosen} encodes {names[(width, height)]} colour: {source} is subsampled (x265 and ffv1 keep it)"


def plan_job(job: Job, media: Media, muxer: str) -> OutputPlan:
    """Frame range, output size, timeline and track mapping, with a note for everything not
    copied as is; refuses interlaced input without a --deinterlace choice, and an input that does
    not decode in full unless the job salvages it."""
    _ = media.video  # an input without a video track is refused here, before the model loads
    check_model(job)
    clip, timeline = read_timeline(media.path)
    frames = clip.num_frames
    first = job.start if job.start is not None else 0
    last = job.end if job.end is not None else frames - 1
    for option, value in (("--start", job.start), ("--end", job.end)):
        if value is not None and value >= frames:
            raise SRError(f"{option} {value} is past the input's last frame, {frames - 1} (it has {frames} frames).")
    if first > last:
        raise SRError(f"frame range {first}-{last} runs backwards: its first frame must not come after its last.")
    if not 0 <= first <= last < frames:
        raise SRError(f"frame range {first}-{last} is outside the input's 0-{frames - 1}.")
    check_interlacing(clip, media, job)
    width, height = output_size(clip, job.scale, job.width, job.height)
    check_output_size(job, width, height)
    plan = OutputPlan(first, last, job.start is not None or job.end is not None, width, height, timeline,
                      plan_tracks(media, muxer), hdr10=hdr10(media))
    subsampled = chroma_lost(clip, job)
    if subsampled:
        plan.tracks.notes.append(subsampled)
    if plan.hdr10 is not None and job.video_codec.encoder not in HDR10_ENCODERS:
        plan.tracks.notes.append(f"the source's HDR10 metadata (mastering display, light levels) is not written by "
                                 f"--codec {job.video_codec.name}; --codec x265 or svt-av1 keeps it")
    found = decodable(media, clip.num_frames, timeline)
    if found.backwards:  # its frames cannot be put in order (a container takes ordered times): refused, even salvaged
        raise SRError(f"{found.shortfall()}. Re-encode what decodes first (ffmpeg -i {media.path.name} -map 0 -c:v "
                      "ffv1 -c:a copy repaired.mkv puts the frames in order, losslessly), then upscale that.")
    if not found.complete:
        if not job.salvage:
            raise SRError(f"{found.shortfall()}. Pass --salvage to upscale what decodes (the result is then "
                          "incomplete, and the exit status says so).")
        plan.salvaged = found.shortfall()
        plan.tracks.notes.append(f"salvaged: {plan.salvaged}; what is missing is left out, and the frames after a "
                                 "gap keep their times")
    return plan


def check_output_size(job: Job, width: int, height: int) -> None:
    """Refuse, before any frame is made, an output size the encoder, the container, ffmpeg or this
    machine's memory cannot take (each would otherwise fail only once vspipe sends its first frame)."""
    size = f"a {width}x{height} output"
    codec = job.video_codec
    if codec.max_side is not None and max(width, height) > codec.max_side:
        raise SRError(f"{size} is too large for {codec.name}, which takes at most {codec.max_side} pixels a side; "
                      "choose a smaller --width/--height, or --codec x265 or ffv1.")
    least_w, least_h = codec.min_size
    if width < least_w or height < least_h:
        raise SRError(f"{size} is too small for {codec.name}, which takes at least {least_w}x{least_h}; choose a "
                      "larger --width/--height, or --codec x264 or ffv1.")
    container = CONTAINER_MAX_SIDE.get(job.output_muxer)
    if container is not None and max(width, height) > container:
        raise SRError(f"{size} is too large for {job.output.suffix}, which holds at most {container} pixels a side; "
                      "choose a smaller --width/--height, or write .mkv.")
    if not ffmpeg_takes_size(width, height):
        raise SRError(f"{size} is larger than ffmpeg takes ((width + 128) x (height + 128) must stay under "
                      "268 million pixels, e.g. 16000x16000); choose a smaller --width/--height.")
    check_frame_memory(width, height, job.num_streams, "choose a smaller --width/--height (or fewer --num-streams)")


def check_interlacing(clip: vs.VideoNode, media: Media, job: Job) -> None:
    """Refuse an interlaced source (first frame, or the container's field order) unless the job
    says what to do with it."""
    field_based = int(clip.get_frame(0).props.get("_FieldBased", 0))
    order = FIELD_ORDERS.get(field_based) or INTERLACED_ORDERS.get(str(media.video.info.get("field_order")))
    if order and job.deinterlace is None:
        raise SRError(f"{media.path.name} is interlaced ({order}); upscaling it as is turns combing into artefacts. "
                      "Pass --deinterlace bwdif to deinterlace it (BobWeaver, same frame rate), or "
                      "--deinterlace progressive if its frames are really progressive.")


INTERLACED_ORDERS = {"tt": "top field first", "tb": "top field first", "bb": "bottom field first",
                     "bt": "bottom field first"}


def expected_audio(track: Track, plan: OutputPlan) -> float | None:
    """How long an audio track should come out: its own length, cut to the frame range; unknown
    for a salvaged input (its audio may be cut short as well)."""
    if plan.salvaged:
        return None
    if track.duration is None or not plan.ranged:
        return track.duration
    return max(0.0, min(plan.end, track.start_time + track.duration) - max(plan.begin, track.start_time))
