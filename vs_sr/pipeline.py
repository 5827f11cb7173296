"""File to file: source (bestsource) -> Upscale -> vspipe y4m -> ffmpeg, keeping every other stream.

The video goes through vspipe, exactly as a user's own `vspipe -c y4m ... | ffmpeg` would; audio,
subtitles, attachments, chapters and metadata come straight from the input file, copied where
the output container can hold them and re-encoded (with a note saying so) where it cannot. The
result is written under a temporary name, checked (frame count, size, audio duration) and only
then renamed to the output path.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import vapoursynth as vs

from .atomic import atomic_output
from .errors import sr_error
from .formats import corrected_sar, default_matrix, output_size
from .models import resolve
from .probe import Media, Stream, count_frames, probe
from .progress import Progress
from .tools import find_tool, open_video

CONTAINERS = {".mkv": "matroska", ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov"}
VIDEO_CODECS = {
    "x264": {"encoder": "libx264", "crf": 18, "preset": "medium", "containers": {"matroska", "mp4", "mov"}},
    "x265": {"encoder": "libx265", "crf": 20, "preset": "medium", "containers": {"matroska", "mp4", "mov"}},
    "ffv1": {"encoder": "ffv1", "crf": None, "preset": None, "containers": {"matroska"}},
}
# What MP4/MOV can carry as is; everything else is re-encoded (audio) or converted (text subtitles).
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}
TEXT_SUBTITLES = {"subrip", "ass", "ssa", "mov_text", "webvtt", "text"}
SCRIPT = """\
from vs_sr.pipeline import script_clip
from vs_sr.tools import script_args
script_clip(script_args(globals(), "sr_")).set_output()
"""


@dataclass
class Job:
    """One `vs-sr upscale` run."""

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
    codec: str = "x264"
    crf: int | None = None
    preset: str | None = None
    ffmpeg_args: list[str] = field(default_factory=list)
    start: int | None = None
    end: int | None = None
    overwrite: bool = False


@dataclass
class OutputPlan:
    """What will be written: the frames, the size, and how every input stream is carried."""

    first: int
    last: int
    ranged: bool
    """Only part of the input: the other streams are cut to the same time span."""
    width: int
    height: int
    rate: Fraction
    maps: list[int] = field(default_factory=list)
    """Input-1 stream indices carried over, in output order after the video (output stream 0)."""
    codecs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    audio: list[float | None] = field(default_factory=list)
    """Expected length in seconds of each carried audio stream (None: unknown)."""
    subtitles: int = 0

    @property
    def frames(self) -> int:
        return self.last - self.first + 1

    @property
    def seconds(self) -> float:
        return float(self.frames / self.rate)


def script_clip(args: dict[str, str]) -> vs.VideoNode:
    """The clip vspipe outputs for a job (arguments arrive as strings through `vspipe -a`)."""
    from .filter import Upscale

    def number(key: str) -> int | None:
        return int(args[key]) if args.get(key, "") not in ("", "none") else None

    clip = open_video(args["sr_input"])
    clip = Upscale(clip, args["sr_model"], int(args["sr_scale"]), backend=args["sr_backend"],
                   precision=args["sr_precision"], tile=number("sr_tile"), overlap=number("sr_overlap"),
                   num_streams=int(args["sr_num_streams"]), width=number("sr_width"), height=number("sr_height"))
    if clip.format.color_family == vs.RGB:  # y4m carries YUV only
        yuv = clip.format.replace(color_family=vs.YUV).id
        clip = clip.resize.Spline36(format=yuv, matrix=default_matrix(clip.width, clip.height))
    return clip


def check_job(job: Job) -> str:
    """Validate what can be checked before any work; returns the output muxer."""
    if not job.input.is_file():
        raise sr_error(f"input file not found: {job.input}.")
    muxer = CONTAINERS.get(job.output.suffix.lower())
    if muxer is None:
        raise sr_error(f"unsupported output container '{job.output.suffix}'; use one of {', '.join(CONTAINERS)}.")
    codec = VIDEO_CODECS.get(job.codec)
    if codec is None:
        raise sr_error(f"unknown codec '{job.codec}'; use one of {', '.join(VIDEO_CODECS)}.")
    if muxer not in codec["containers"]:
        raise sr_error(f"{job.codec} cannot be stored in {job.output.suffix}; use .mkv.")
    if codec["crf"] is None and (job.crf is not None or job.preset is not None):
        raise sr_error(f"{job.codec} is lossless: --crf and --preset do not apply.")
    if job.output.resolve() == job.input.resolve():
        raise sr_error("the output would overwrite the input; choose another output path.")
    if job.output.exists() and not job.overwrite:
        raise sr_error(f"{job.output} exists; pass --overwrite to replace it.")
    directory = job.output.parent
    if not directory.is_dir():
        raise sr_error(f"output directory {directory} does not exist.")
    try:  # really try: permissions, read-only mounts and full disks all show here
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise sr_error(f"cannot write to {directory}: {error.strerror}.") from None
    return muxer


def plan_job(job: Job, media: Media, muxer: str) -> OutputPlan:
    """Frame range, output size and stream mapping, with a note for everything not copied as is."""
    resolve(job.model, job.scale)  # a bad model or missing weights fail here, before any work
    clip = open_video(media.path)
    first = job.start if job.start is not None else 0
    last = job.end if job.end is not None else clip.num_frames - 1
    if not 0 <= first <= last < clip.num_frames:
        raise sr_error(f"frame range {first}-{last} is outside the input's 0-{clip.num_frames - 1}.")
    width, height = output_size(clip, job.scale, job.width, job.height)
    rate = Fraction(clip.fps_num, clip.fps_den) if clip.fps_num else media.frame_rate
    plan = OutputPlan(first, last, job.start is not None or job.end is not None, width, height, rate)
    _plan_streams(plan, media, muxer)
    return plan


def _plan_streams(plan: OutputPlan, media: Media, muxer: str) -> None:
    mp4 = muxer in ("mp4", "mov")
    out_index = 1  # 0 is the upscaled video
    for stream in media.streams:
        label = f"{stream.kind} #{stream.index} ({stream.codec})"
        if stream.kind == "video":
            continue  # the first is replaced by the upscaled video; others (cover art, angles) are not carried
        if stream.kind == "audio":
            plan.maps.append(stream.index)
            if mp4 and stream.codec not in MP4_AUDIO:
                plan.codecs += [f"-c:{out_index}", "aac", f"-b:{out_index}", "192k"]
                plan.notes.append(f"{label}: re-encoded to AAC ({muxer} cannot hold {stream.codec})")
            else:
                plan.codecs += [f"-c:{out_index}", "copy"]
            plan.audio.append(_expected_audio(stream, media, plan))
        elif stream.kind == "subtitle":
            if mp4 and stream.codec not in TEXT_SUBTITLES:
                plan.notes.append(f"{label}: dropped ({muxer} holds text subtitles only; use .mkv to keep it)")
                continue
            plan.maps.append(stream.index)
            codec = "mov_text" if mp4 and stream.codec != "mov_text" else "copy"
            plan.codecs += [f"-c:{out_index}", codec]
            if codec != "copy":
                plan.notes.append(f"{label}: converted to mov_text ({muxer} subtitles); styling may be lost")
            plan.subtitles += 1
        elif stream.kind == "attachment":
            if mp4:
                plan.notes.append(f"{label}: dropped ({muxer} cannot hold attachments; use .mkv to keep it)")
                continue
            plan.maps.append(stream.index)
            plan.codecs += [f"-c:{out_index}", "copy"]
        else:
            plan.notes.append(f"{label}: not carried over")
            continue
        out_index += 1


def _expected_audio(stream: Stream, media: Media, plan: OutputPlan) -> float | None:
    """How long an audio stream should come out: its own length, cut to the frame range."""
    if stream.duration is None or not plan.ranged:
        return stream.duration
    video_start = media.video.start_time
    begin = plan.first / plan.rate + video_start
    end = (plan.last + 1) / plan.rate + video_start
    return max(0.0, min(end, stream.start_time + stream.duration) - max(begin, stream.start_time))


def vspipe_command(job: Job, plan: OutputPlan, script: Path) -> list[str]:
    values = {"sr_input": job.input.resolve(), "sr_model": job.model, "sr_scale": job.scale,
              "sr_width": job.width, "sr_height": job.height, "sr_backend": job.backend,
              "sr_precision": job.precision, "sr_tile": job.tile, "sr_overlap": job.overlap,
              "sr_num_streams": job.num_streams}
    command = [find_tool("vspipe"), "-c", "y4m", "-p", "-s", str(plan.first), "-e", str(plan.last)]
    for key, value in values.items():
        command += ["-a", f"{key}={'none' if value is None else value}"]
    return [*command, str(script), "-"]


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


def range_start(media: Media, plan: OutputPlan) -> float:
    """Where the first frame of the range sits on the input's timeline (seconds from its start)."""
    return float(plan.first / plan.rate) + media.video.start_time - media.start_time


def cut_command(job: Job, plan: OutputPlan, media: Media, target: Path) -> list[str]:
    """Copy the carried streams' packets within the frame range into `target` (Matroska), from 0.

    A plain input seek with stream copy starts at the demuxer's seek point (a video keyframe),
    which puts audio before the range; keeping the real timestamps (-copyts) and cutting on
    the output side drops exactly the packets outside the range.
    """
    begin = range_start(media, plan)
    command = [find_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{begin:.6f}",
               "-i", str(job.input), "-copyts", "-ss", f"{begin + media.start_time:.6f}", "-t", f"{plan.seconds:.6f}",
               "-output_ts_offset", f"{-(begin + media.start_time):.6f}"]
    for index in plan.maps:
        command += ["-map", f"0:{index}"]
    return [*command, "-c", "copy", "-map_chapters", "-1", "-f", "matroska", str(target)]


def ffmpeg_command(job: Job, plan: OutputPlan, media: Media, muxer: str, target: Path,
                   cut: Path | None = None, chapters: Path | None = None) -> list[str]:
    """The encoder: the y4m video from stdin, everything else from the input (or its cut)."""
    codec = VIDEO_CODECS[job.codec]
    video = media.video
    command = [find_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    # Whole file: the video keeps its delay against the other streams. A range: the other
    # streams were cut from the start frame's time, so the video starts at zero with them.
    offset = video.start_time - media.start_time
    if offset > 0 and cut is None:
        command += ["-itsoffset", f"{offset:.6f}"]
    command += ["-f", "yuv4mpegpipe", "-i", "pipe:0", "-i", str(job.input)]  # input 1: tags, chapters
    streams, indices = 1, list(plan.maps)
    if cut is not None:
        command += ["-i", str(cut)]
        streams, indices = 2, list(range(len(plan.maps)))
    if chapters is not None:
        command += ["-f", "ffmetadata", "-i", str(chapters)]
    command += ["-map", "0:v:0", "-map_metadata", "1", "-map_chapters", str(streams + 1) if chapters else "1"]
    # Any per-stream -map_metadata turns off ffmpeg's default copying of stream tags, so every
    # stream's tags (language, title, an attachment's mimetype) are mapped explicitly.
    command += ["-map_metadata:s:0", f"1:s:{video.index}"]
    for out_index, (in_index, original) in enumerate(zip(indices, plan.maps, strict=True), start=1):
        command += ["-map", f"{streams}:{in_index}", f"-map_metadata:s:{out_index}", f"1:s:{original}"]
    # Exactly vspipe's frames: no duplicates or drops to fit a muxer's idea of the frame rate.
    command += ["-fps_mode:v:0", "passthrough", "-c:v:0", codec["encoder"]]
    if codec["crf"] is not None:
        command += ["-crf", str(job.crf if job.crf is not None else codec["crf"]),
                    "-preset", job.preset or codec["preset"]]
    if job.codec == "x265":
        command += ["-x265-params", "log-level=error"]
    if job.codec == "ffv1":
        command += ["-level", "3", "-g", "1", "-slicecrc", "1"]
    sar = corrected_sar(_sar_props(media), video.info["width"], video.info["height"], plan.width, plan.height)
    sar = sar or media.sample_aspect
    if sar:
        command += ["-vf", f"setsar={sar[0]}/{sar[1]}:max=65535"]
    command += _colour_tags(video.info, plan)
    command += [*plan.codecs, *job.ffmpeg_args, "-f", muxer, str(target)]
    return command


FFMPEG_MATRICES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"}


def _colour_tags(info: dict, plan: OutputPlan) -> list[str]:
    """The input's colour tags for the encoder; for an RGB input, those of the YUV it becomes
    (y4m carries YUV only: `script_clip` converts with the default matrix, limited range)."""
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


class EncodePipe:
    """vspipe piped into ffmpeg, with progress, clean termination and the tools' error messages."""

    def __init__(self, vspipe: list[str], ffmpeg: list[str], progress: Progress) -> None:
        self.progress = progress
        self.vspipe = subprocess.Popen(vspipe, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.ffmpeg = subprocess.Popen(ffmpeg, stdin=self.vspipe.stdout, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE)
        except OSError:
            self.vspipe.kill()
            self.vspipe.wait()
            raise
        assert self.vspipe.stdout is not None
        self.vspipe.stdout.close()  # ffmpeg owns the pipe: vspipe sees it break if ffmpeg dies
        self.vspipe_log: list[str] = []
        self.ffmpeg_log: list[str] = []
        self.readers = [
            threading.Thread(target=self._read_vspipe, daemon=True),
            threading.Thread(target=self._read, args=(self.ffmpeg.stderr, self.ffmpeg_log), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read_vspipe(self) -> None:
        assert self.vspipe.stderr is not None
        buffer = b""
        for chunk in iter(lambda: self.vspipe.stderr.read1(4096), b""):  # type: ignore[union-attr]
            buffer += chunk
            *lines, buffer = re.split(rb"[\r\n]", buffer)
            for line in lines:
                self._vspipe_line(line.decode(errors="replace"))
        self._vspipe_line(buffer.decode(errors="replace"))

    def _vspipe_line(self, line: str) -> None:
        match = re.match(r"Frame: (\d+)/(\d+)", line)
        if match:
            self.progress.update(int(match.group(1)))
        elif line.strip():
            self.vspipe_log.append(line)

    @staticmethod
    def _read(pipe: Any, log: list[str]) -> None:
        for line in pipe:
            log.append(line.decode(errors="replace").rstrip())

    def wait(self) -> None:
        ffmpeg_code = self.ffmpeg.wait()
        vspipe_code = self.vspipe.wait()
        for reader in self.readers:
            reader.join()
        # When one side dies the other fails too (broken pipe, empty input): report the cause.
        vspipe_error = _vspipe_error(self.vspipe_log) if vspipe_code != 0 else None
        if vspipe_code != 0 and (ffmpeg_code == 0 or vspipe_error):
            raise sr_error(f"vspipe failed: {vspipe_error or f'exit code {vspipe_code}'}")
        if ffmpeg_code != 0:
            raise sr_error(f"ffmpeg failed: {' / '.join(self.ffmpeg_log[-3:]) or f'exit code {ffmpeg_code}'}")

    def stop(self) -> None:
        for process in (self.vspipe, self.ffmpeg):
            if process.poll() is None:
                process.terminate()
        for process in (self.vspipe, self.ffmpeg):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _vspipe_error(log: list[str]) -> str:
    """The useful line of vspipe's output: our own error message if there is one."""
    problems = [line for line in log if not line.startswith(("Information:", "Script evaluation done"))]
    for line in reversed(problems):
        if "vs_sr: " in line:
            return line[line.index("vs_sr: ") + len("vs_sr: "):]
    return " / ".join(problems[-3:])


def verify(target: Path, plan: OutputPlan) -> None:
    """The written file has the frames, size and audio length the plan promised."""
    frames = count_frames(target)
    if frames != plan.frames:
        raise sr_error(f"the output has {frames} frames, expected {plan.frames}; nothing was written.")
    written = probe(target)
    video = written.video
    if (video.info["width"], video.info["height"]) != (plan.width, plan.height):
        raise sr_error(f"the output is {video.info['width']}x{video.info['height']}, expected "
                       f"{plan.width}x{plan.height}; nothing was written.")
    audio = written.of_kind("audio")
    if len(audio) != len(plan.audio):
        raise sr_error(f"the output has {len(audio)} audio streams, expected {len(plan.audio)}; nothing was written.")
    frame = float(1 / plan.rate)
    for stream, expected in zip(audio, plan.audio, strict=True):
        if expected is not None and stream.duration is not None and abs(stream.duration - expected) > frame:
            raise sr_error(f"audio stream {stream.index} lasts {stream.duration:.3f} s, expected {expected:.3f} s "
                           "(more than a frame off); nothing was written.")


def run(job: Job, log: Any = print) -> Path:
    """Run a job end to end; the output appears only if everything succeeded and checks out."""
    muxer = check_job(job)
    media = probe(job.input)
    plan = plan_job(job, media, muxer)
    log(f"{job.input.name}: frames {plan.first}-{plan.last} -> {plan.width}x{plan.height} {job.codec} "
        f"({job.model} x{job.scale}) into {job.output}")
    for note in plan.notes:
        log(f"note: {note}")
    with tempfile.TemporaryDirectory(prefix="vs-sr-") as workdir, atomic_output(job.output) as target:
        script = Path(workdir) / "upscale.vpy"
        script.write_text(SCRIPT)
        cut = chapters = None
        if plan.ranged and plan.maps:
            cut = Path(workdir) / "streams.mkv"
            _run_quietly(cut_command(job, plan, media, cut), "cutting the other streams to the range")
            if media.chapters:
                chapters = Path(workdir) / "chapters.txt"
                chapters.write_text(chapters_for_range(media, plan), encoding="utf-8")
        progress = Progress(plan.frames)
        runner = EncodePipe(vspipe_command(job, plan, script),
                        ffmpeg_command(job, plan, media, muxer, target, cut, chapters), progress)
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            runner.wait()
        except BaseException:
            runner.stop()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        progress.update(plan.frames)  # vspipe's last progress line may come before its last frame
        fps = progress.finish()
        verify(target, plan)
    log(f"wrote {job.output}: {plan.frames} frames at {plan.width}x{plan.height}, {len(plan.audio)} audio, "
        f"{plan.subtitles} subtitle stream(s); {fps:.2f} fps")
    return job.output


def _run_quietly(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise sr_error(f"ffmpeg failed {what}: {' / '.join(done.stderr.strip().splitlines()[-3:])}")


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def parse_ffmpeg_args(text: str | None) -> list[str]:
    return shlex.split(text) if text else []
