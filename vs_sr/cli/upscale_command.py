"""`vs-sr upscale`: one video file to an upscaled one, its other tracks kept."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from ..filter.arguments import BACKENDS, PRECISION_CHOICES
from ..media.codecs import CODECS, CRF_RANGE, PRESETS
from ..media.job import DEINTERLACERS, Job
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
                        help="compute precision (default auto, by the device: on CPUs int8 for realesr-animevideov3 "
                        "where the CPU has VNNI or AMX, bf16 for conv nets where it has native bf16, else fp32; "
                        "fp16/bf16 on GPUs; `vs-sr info` says what it picks). int8: OpenVINO, the network quantized "
                        "once on first use; the last line says which precision ran")
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
    parser.add_argument("--deinterlace", choices=DEINTERLACERS,
                        help="interlaced sources are refused unless told: bwdif deinterlaces them (BobWeaver, same "
                        "frame rate); progressive treats frames flagged interlaced as progressive")
    parser.add_argument("--codec", default=default(Job, "codec"), choices=list(CODECS),
                        help="video codec (default x264; ffv1 is lossless)")
    parser.add_argument("--crf", type=crf, help=f"quality for x264/x265, {CRF_RANGE[0]}-{CRF_RANGE[1]}, lower is better "
                        "(default 18/20)")
    parser.add_argument("--preset", choices=PRESETS, help="x264/x265 speed preset (default medium)")
    parser.add_argument("--ffmpeg-args", type=ffmpeg_arguments,
                        help="extra ffmpeg output options for the video, e.g. \"-tune animation\"")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """How much the command prints (shared with `vs-sr batch`)."""
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="also print the filter's own lines (backend, precision, tiles) and vspipe's log")


def crf(text: str) -> int:
    value = non_negative(text)
    if not CRF_RANGE[0] <= value <= CRF_RANGE[1]:
        raise argparse.ArgumentTypeError(f"x264/x265 take {CRF_RANGE[0]}-{CRF_RANGE[1]}, not {value}")
    return value


def ffmpeg_arguments(text: str) -> list[str]:
    from ..errors import SRError
    from ..media.upscale_file import parse_ffmpeg_args

    try:
        return parse_ffmpeg_args(text)
    except SRError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    upscale = commands.add_parser("upscale", help="upscale a video file (vspipe -> ffmpeg), keeping audio, "
                                  "subtitles, attachments, chapters and metadata")
    upscale.add_argument("input", help="the video file to upscale")
    upscale.add_argument("output", help="the file to write: .mkv, .mp4, .m4v or .mov")
    add_filter_options(upscale)
    add_encoder_options(upscale)
    upscale.add_argument("--start", type=non_negative, help="first frame (inclusive), as vspipe -s")
    upscale.add_argument("--end", type=non_negative, help="last frame (inclusive), as vspipe -e")
    upscale.add_argument("-y", "--overwrite", action="store_true", help="replace OUTPUT if it exists")
    add_output_options(upscale)
    upscale.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..media.upscale_file import upscale_file

    job = Job(
        input=Path(args.input), output=Path(args.output), model=args.model, scale=args.scale,
        width=args.width, height=args.height, backend=args.backend, precision=args.precision,
        tile=args.tile, overlap=args.overlap, num_streams=args.num_streams, server=args.server, noise=args.noise,
        codec=args.codec, crf=args.crf, preset=args.preset, ffmpeg_args=args.ffmpeg_args or [], start=args.start,
        end=args.end,
        overwrite=args.overwrite, deinterlace=args.deinterlace,
    )
    upscale_file(job, log=printer(args), on_tool_log=tool_printer(args), quiet=args.quiet)
    return 0


def printer(args: argparse.Namespace) -> Callable[[str], None]:
    """Where progress lines go: stdout, or nowhere with --quiet."""
    return (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))


def tool_printer(args: argparse.Namespace) -> Callable[[str], None] | None:
    """vspipe's log lines (the filter's own line among them) on stderr with --verbose."""
    return (lambda line: print(line, file=sys.stderr, flush=True)) if args.verbose else None
