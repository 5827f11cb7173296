"""`vs-sr upscale`: one video file to an upscaled one, its other tracks kept."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..filter.arguments import BACKENDS, PRECISION_CHOICES
from ..media.codecs import CODECS, CRF_LIMITS, DEPTHS, PRESETS, PROFILES
from ..media.job import DEINTERLACERS, Job, check_output_name
from ..progress import clear_live_line
from .common import TILE_METAVAR, add_noise_option, default, non_negative, positive, tile


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the network and how it runs (shared with `vs-sr batch`)."""
    parser.add_argument("--model", default=default(Job, "model"),
                        help=f"registry name or weight/ONNX file (default {default(Job, 'model')})")
    parser.add_argument("--scale", type=positive, default=default(Job, "scale"),
                        help="the network's scale (default 4; `vs-sr models list` shows each model's)")
    add_noise_option(parser)
    parser.add_argument("--width", type=positive, help="exact output width (e.g. 854 for 144p -> 480p)")
    parser.add_argument("--height", type=positive, help="exact output height")
    parser.add_argument("--backend", default=default(Job, "backend"), choices=BACKENDS,
                        help="inference runtime (default auto: GPU runtimes first, then OpenVINO)")
    parser.add_argument("--precision", default=default(Job, "precision"), choices=PRECISION_CHOICES,
                        help="compute precision (default auto, by the device: on CPUs int8 for the Compact models "
                        "(realesr-animevideov3, faithful) where the CPU has VNNI, AMX or AVX2 without AVX-512, bf16 "
                        "for conv nets where it has native bf16, else fp32; fp16/bf16 on GPUs; `vs-sr info` says "
                        "what it picks). int8: OpenVINO, the network quantized once on first use; the 'ran' line says "
                        "which precision ran")
    parser.add_argument("--tile", type=tile, metavar=TILE_METAVAR,
                        help="tile size in input pixels: N (NxN) or WIDTHxHEIGHT (default: automatic)")
    parser.add_argument("--overlap", type=non_negative, help="tile overlap in input pixels (default: the model's)")
    parser.add_argument("--num-streams", type=positive, default=default(Job, "num_streams"),
                        help="frames in flight (default 2: the encoder shares the CPU)")
    parser.add_argument("--server", default=default(Job, "server"), metavar="URL",
                        help="Triton server for --backend triton: grpc://host:8001 or http://host:8000 (default "
                        "$VS_SR_TRITON_URL); giving it with --backend auto means triton")


def add_encoder_options(parser: argparse.ArgumentParser) -> None:
    """The options of the source and the video encoder (shared with `vs-sr batch`)."""
    from .common import INCOMPLETE

    parser.add_argument("--deinterlace", choices=DEINTERLACERS,
                        help="interlaced sources are refused unless told: bwdif deinterlaces them (BobWeaver, same "
                        "frame rate); progressive treats frames flagged interlaced as progressive")
    parser.add_argument("--salvage", action="store_true",
                        help="upscale what decodes of an input that is cut short or has damaged frames (refused by "
                        f"default, with the numbers); the result is incomplete and the exit status is {INCOMPLETE}")
    parser.add_argument("--codec", default=default(Job, "codec"), choices=list(CODECS), metavar="CODEC",
                        help="video codec: x264 (default), x265, svt-av1, aom-av1 (AV1: .mkv/.mp4/.webm), prores, "
                        "dnxhr (editing intermediates: .mov/.mkv), ffv1 (lossless, .mkv), or a hardware encoder: "
                        "h264-nvenc, hevc-nvenc (NVIDIA), h264-qsv, hevc-qsv (Intel), h264-vaapi, hevc-vaapi (VA-API). "
                        "Checked with a one-frame encode before any work")
    parser.add_argument("--crf", type=crf, help="constant quality, lower is better: x264/x265 0-51 (default 18/20), "
                        "svt-av1 1-63 and aom-av1 0-63 (default 25); the hardware encoders' -cq/-global_quality/-qp, "
                        "1-51 (default 21). ProRes and DNxHR take --profile instead")
    parser.add_argument("--preset", type=preset, help="speed preset: x264/x265 ultrafast ... placebo (default medium); "
                        "svt-av1 0-13 (default 6) and aom-av1 0-8 (-cpu-used, default 6), 0 slowest; NVENC p1-p7 "
                        "(default p5); QSV veryfast ... veryslow (default medium)")
    parser.add_argument("--profile", choices=PROFILES, metavar="PROFILE",
                        help="ProRes: proxy, lt, standard, hq (default), 4444; DNxHR: lb, sq, hq (default; 8-bit 4:2:2), "
                        "hqx (10-bit 4:2:2), 444 (10-bit 4:4:4)")
    parser.add_argument("--depth", type=int, choices=DEPTHS,
                        help="output bit depth: 10 for 10-bit x264/x265/AV1/FFV1 or HEVC hardware encoding, upscaled "
                        "in 10 bits (default: the input's; ProRes is 10-bit, DNxHR follows --profile)")
    parser.add_argument("--ffmpeg-args", type=ffmpeg_arguments, metavar="'ARGS'",
                        help="extra ffmpeg output options for the video, after vs-sr's own, e.g. '-tune animation' or "
                        "'-vf hqdn3d' (video filters run before the SAR tag is set, which they cannot lose); not what "
                        "vs-sr sets: -c:v (--codec), -s (--width/--height), -t/-ss/-frames/-r (every frame is kept)")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """How much the command prints (shared with `vs-sr batch`)."""
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="also print the filter's own lines (backend, precision, tiles) and vspipe's log (in "
                          "chunks: each chunk's, once it is made)")


def crf(text: str) -> int:
    value = non_negative(text)
    if not CRF_LIMITS[0] <= value <= CRF_LIMITS[1]:
        raise argparse.ArgumentTypeError(f"takes {CRF_LIMITS[0]}-{CRF_LIMITS[1]} (x264/x265 0-51, AV1 up to 63), "
                                         f"not {value}")
    return value


def preset(text: str) -> str:
    """Any codec's preset name (each codec checks its own when the job is checked)."""
    if text not in PRESETS:
        raise argparse.ArgumentTypeError(f"'{text}' is no encoder's preset (x264/x265: ultrafast ... placebo; "
                                         "svt-av1 0-13; aom-av1 0-8; NVENC p1-p7; QSV veryfast ... veryslow)")
    return text


def ffmpeg_arguments(text: str) -> list[str]:
    from ..errors import SRError
    from ..media.upscale_file import parse_ffmpeg_args

    try:
        return parse_ffmpeg_args(text)
    except SRError as error:
        # (argparse names the option itself: "argument --ffmpeg-args: ...")
        raise argparse.ArgumentTypeError(error.message.removeprefix("--ffmpeg-args: ").removeprefix("--ffmpeg-args ")) \
            from None


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    upscale = commands.add_parser(
        "upscale", help="upscale a video file (vspipe -> ffmpeg), keeping audio, subtitles, attachments, chapters and "
        "metadata", description="Upscale INPUT into OUTPUT. Inputs longer than 10 minutes run in verified chunks "
        "(OUTPUT.vs-sr-resume/ beside the output): if the run is stopped or killed, the same command continues where "
        "it stopped.")
    upscale.add_argument("input", help="the video file to upscale")
    upscale.add_argument("output", help="the file to write: .mkv, .mp4, .m4v, .mov or .webm")
    add_filter_options(upscale)
    add_encoder_options(upscale)
    upscale.add_argument("--start", type=non_negative, help="first frame (inclusive), as vspipe -s")
    upscale.add_argument("--end", type=non_negative, help="last frame (inclusive), as vspipe -e")
    upscale.add_argument("--resume", action=argparse.BooleanOptionalAction,
                         help="--resume: render in chunks kept in OUTPUT.vs-sr-resume/ until the output is written, so "
                         "that the same command, run again after a crash or kill, continues where it stopped; "
                         "--no-resume: one pass. Default: resumable for inputs longer than 10 minutes "
                         "($VS_SR_RESUME_MINUTES) or when an interrupted resumable run of OUTPUT exists; "
                         "--start/--end always run in one pass")
    upscale.add_argument("--chunk-frames", type=positive,
                         help="frames per chunk of a resumable run (giving it makes the run resumable; default: 2%% of "
                         "the video, at least 2000)")
    upscale.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    add_output_options(upscale)
    upscale.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..batch.single import resume_folder, upscale_resumable, wants_resume
    from ..batch.status import driver_running
    from ..errors import SRError
    from ..media.upscale_file import upscale_file
    from .common import INCOMPLETE

    job = Job(
        input=Path(args.input), output=Path(args.output), model=args.model, scale=args.scale,
        width=args.width, height=args.height, backend=args.backend, precision=args.precision,
        tile=args.tile, overlap=args.overlap, num_streams=args.num_streams, server=args.server, noise=args.noise,
        codec=args.codec, crf=args.crf, preset=args.preset, ffmpeg_args=args.ffmpeg_args or [], start=args.start,
        end=args.end, overwrite=args.overwrite, deinterlace=args.deinterlace, profile=args.profile, depth=args.depth,
        salvage=args.salvage,
    )
    check_output_name(job)  # (before its resume folder is named after it)
    if args.chunk_frames is not None:  # chunks are asked for: a resumable run, or a refusal that says why not
        if args.resume is False:
            raise SRError("--chunk-frames sizes the chunks of a resumable run; drop it, or drop --no-resume.")
        if args.start is not None or args.end is not None:
            raise SRError("--chunk-frames sizes the chunks of a resumable run, which works on whole files: drop it, or "
                          "drop --start/--end.")
        args.resume = True
    if wants_resume(job, args.resume):
        folder = resume_folder(job.output)
        args.interrupted = f"interrupted; run the same command again to continue ({folder} keeps the finished chunks)"
        result = upscale_resumable(job, args.chunk_frames, printer(args), args.quiet, tool_printer(args))
    else:
        folder = resume_folder(job.output)
        # A running resumable run is no interrupted one: the output's lock refuses this run, and says why.
        if folder.is_dir() and not driver_running(folder) and not args.quiet:
            print(f"note: {resume_folder(job.output)} holds an interrupted resumable run; it is left as it is (run "
                  "without --no-resume to continue it, or delete it)", flush=True)
        result = upscale_file(job, log=printer(args), on_tool_log=tool_printer(args), quiet=args.quiet)
    if result.salvaged:
        print(f"vs-sr: incomplete: {result.salvaged}; wrote what decodes (--salvage)", file=sys.stderr)
        return INCOMPLETE
    return 0


def printer(args: argparse.Namespace) -> Callable[[str], None]:
    """Where progress lines go: stdout, or nowhere with --quiet."""
    return (lambda line: None) if args.quiet else (lambda line: said(line, sys.stdout))


def tool_printer(args: argparse.Namespace) -> Callable[[str], None] | None:
    """vspipe's log lines (the filter's own line among them) on stderr with --verbose."""
    return (lambda line: said(line, sys.stderr)) if args.verbose else None


def said(line: str, stream: TextIO) -> None:
    """A line on its own terminal row: a live progress bar's row is wiped first (it is drawn again)."""
    clear_live_line()
    print(line, file=stream, flush=True)
