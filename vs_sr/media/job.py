"""One file to upscale: the job as the caller gives it, checked before any work, and the plan of
what will be written (frame range, size, rate, tracks)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import vapoursynth as vs

from ..errors import SRError
from ..filter.arguments import backend_and_server
from ..filter.formats import default_matrix, output_size
from ..models import resolve
from .codecs import CODECS, CONTAINERS, Codec
from .probe import Media, Track
from .tools import open_video
from .tracks import TrackPlan, plan_tracks


@dataclass
class Job:
    """One `vs-sr upscale` run; the defaults here are the command's defaults."""

    input: Path
    output: Path
    model: str = "realesr-animevideov3"
    scale: int = 4
    width: int | None = None
    height: int | None = None
    backend: str = "auto"
    precision: str = "auto"
    tile: int | None = None
    overlap: int | None = None
    num_streams: int = 1
    server: str | None = None
    """The Triton server of backend "triton" (None: $VS_SR_TRITON_URL)."""
    codec: str = "x264"
    crf: int | None = None
    preset: str | None = None
    ffmpeg_args: list[str] = field(default_factory=list)
    start: int | None = None
    end: int | None = None
    overwrite: bool = False

    @property
    def video_codec(self) -> Codec:
        return CODECS[self.codec]

    def filter_arguments(self) -> dict[str, object]:
        """What the vspipe script needs to build the clip (see `job_clip`)."""
        return {"input": self.input.resolve(), "model": self.model, "scale": self.scale, "width": self.width,
                "height": self.height, "backend": self.backend, "precision": self.precision, "tile": self.tile,
                "overlap": self.overlap, "num_streams": self.num_streams, "server": self.server}


@dataclass
class OutputPlan:
    """What will be written: the frames, the size, and how every input track is carried."""

    first: int
    last: int
    ranged: bool
    """Only part of the input: the other tracks are cut to the same time span."""
    width: int
    height: int
    rate: Fraction
    tracks: TrackPlan

    @property
    def frames(self) -> int:
        return self.last - self.first + 1

    @property
    def seconds(self) -> float:
        return float(self.frames / self.rate)


def job_clip(args: dict[str, str | None]) -> vs.VideoNode:
    """The clip vspipe outputs for a job (arguments arrive as text: see `media.script`)."""
    from ..filter import Upscale

    def number(key: str) -> int | None:
        value = args.get(key)
        return None if value is None else int(value)

    clip = open_video(str(args["input"]))
    clip = Upscale(clip, str(args["model"]), int(str(args["scale"])), backend=args["backend"],  # type: ignore[arg-type]
                   precision=args["precision"], tile=number("tile"), overlap=number("overlap"),  # type: ignore[arg-type]
                   num_streams=int(str(args["num_streams"])), width=number("width"), height=number("height"),
                   server=args.get("server"))
    if clip.format.color_family == vs.RGB:  # y4m carries YUV only
        yuv = clip.format.replace(color_family=vs.YUV).id
        clip = clip.resize.Spline36(format=yuv, matrix=default_matrix(clip.width, clip.height))
    return clip


def check_job(job: Job) -> str:
    """Validate what can be checked before any work; returns the output muxer."""
    if not job.input.is_file():
        raise SRError(f"input file not found: {job.input}.")
    muxer = CONTAINERS.get(job.output.suffix.lower())
    if muxer is None:
        raise SRError(f"unsupported output container '{job.output.suffix}'; use one of {', '.join(CONTAINERS)}.")
    codec = CODECS.get(job.codec)
    if codec is None:
        raise SRError(f"unknown codec '{job.codec}'; use one of {', '.join(CODECS)}.")
    if muxer not in codec.containers:
        raise SRError(f"{job.codec} cannot be stored in {job.output.suffix}; use .mkv.")
    if codec.lossless and (job.crf is not None or job.preset is not None):
        raise SRError(f"{job.codec} is lossless: --crf and --preset do not apply.")
    if job.output.resolve() == job.input.resolve():
        raise SRError("the output would overwrite the input; choose another output path.")
    if job.output.exists() and not job.overwrite:
        raise SRError(f"{job.output} exists; pass --overwrite to replace it.")
    directory = job.output.parent
    if not directory.is_dir():
        raise SRError(f"output directory {directory} does not exist.")
    try:  # really try: permissions, read-only mounts and full disks all show here
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise SRError(f"cannot write to {directory}: {error.strerror}.") from None
    return muxer


def check_model(job: Job) -> None:
    """A bad model, missing weights, or a Triton server that is down or lacks the model fail here,
    before any work."""
    backend, server = backend_and_server(job.backend, job.server)
    if backend == "triton":
        from ..backends.triton import served_network

        assert server is not None
        served_network(job.model, job.scale, server)
    else:
        resolve(job.model, job.scale)


def plan_job(job: Job, media: Media, muxer: str) -> OutputPlan:
    """Frame range, output size and track mapping, with a note for everything not copied as is."""
    check_model(job)
    clip = open_video(media.path)
    first = job.start if job.start is not None else 0
    last = job.end if job.end is not None else clip.num_frames - 1
    if not 0 <= first <= last < clip.num_frames:
        raise SRError(f"frame range {first}-{last} is outside the input's 0-{clip.num_frames - 1}.")
    width, height = output_size(clip, job.scale, job.width, job.height)
    rate = Fraction(clip.fps_num, clip.fps_den) if clip.fps_num else media.frame_rate
    return OutputPlan(first, last, job.start is not None or job.end is not None, width, height, rate,
                      plan_tracks(media, muxer))


def expected_audio(track: Track, media: Media, plan: OutputPlan) -> float | None:
    """How long an audio track should come out: its own length, cut to the frame range."""
    if track.duration is None or not plan.ranged:
        return track.duration
    video_start = media.video.start_time
    begin = plan.first / plan.rate + video_start
    end = (plan.last + 1) / plan.rate + video_start
    return max(0.0, float(min(end, track.start_time + track.duration) - max(begin, track.start_time)))
