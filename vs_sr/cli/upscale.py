"""`vs-sr upscale`: one video file to an upscaled one, its other tracks kept."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..filter.arguments import BACKENDS, PRECISION_CHOICES
from ..media.codecs import CODECS
from ..media.job import Job
from .common import default, non_negative, positive


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the network and how it runs (shared with `vs-sr batch`)."""
    parser.add_argument("--model", default=default(Job, "model"),
                        help=f"registry name or weight/ONNX file (default {default(Job, 'model')})")
    parser.add_argument("--scale", type=positive, default=default(Job, "scale"), help="the network's scale (default 4)")
    parser.add_argument("--width", type=positive, help="exact output width (e.g. 854 for 144p -> 480p)")
    parser.add_argument("--height", type=positive, help="exact output height")
    parser.add_argument("--backend", default=default(Job, "backend"), choices=BACKENDS,
                        help="inference runtime (default auto: GPU runtimes first, then OpenVINO)")
    parser.add_argument("--precision", default=default(Job, "precision"), choices=PRECISION_CHOICES,
                        help="compute precision (default auto: fp32 on CPUs)")
    parser.add_argument("--tile", type=positive, help="tile size in input pixels (default: automatic)")
    parser.add_argument("--overlap", type=non_negative, help="tile overlap in input pixels (default: the model's)")
    parser.add_argument("--num-streams", type=positive, default=default(Job, "num_streams"),
                        help="concurrent inference instances (default 1)")
    parser.add_argument("--server", default=default(Job, "server"), metavar="URL",
                        help="Triton server for --backend triton: grpc://host:8001 or http://host:8000 (default "
                        "$VS_SR_TRITON_URL); giving it with --backend auto means triton")


def add_encoder_options(parser: argparse.ArgumentParser) -> None:
    """The options of the video encoder (shared with `vs-sr batch`)."""
    parser.add_argument("--codec", default=default(Job, "codec"), choices=list(CODECS),
                        help="video codec (default x264; ffv1 is lossless)")
    parser.add_argument("--crf", type=non_negative, help="quality for x264/x265 (default 18/20)")
    parser.add_argument("--preset", help="x264/x265 preset (default medium)")
    parser.add_argument("--ffmpeg-args", help="extra ffmpeg output options, e.g. \"-tune animation\"")


def add_parser(commands: argparse._SubParsersAction) -> None:
    upscale = commands.add_parser("upscale", help="upscale a video file (vspipe -> ffmpeg), keeping audio, "
                                  "subtitles, attachments, chapters and metadata")
    upscale.add_argument("input", help="the video file to upscale")
    upscale.add_argument("output", help="the file to write: .mkv, .mp4, .m4v or .mov")
    add_filter_options(upscale)
    add_encoder_options(upscale)
    upscale.add_argument("--start", type=non_negative, help="first frame (inclusive), as vspipe -s")
    upscale.add_argument("--end", type=non_negative, help="last frame (inclusive), as vspipe -e")
    upscale.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    upscale.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..media.upscale import parse_ffmpeg_args, upscale_file

    job = Job(
        input=Path(args.input), output=Path(args.output), model=args.model, scale=args.scale,
        width=args.width, height=args.height, backend=args.backend, precision=args.precision,
        tile=args.tile, overlap=args.overlap, num_streams=args.num_streams, server=args.server, codec=args.codec,
        crf=args.crf,
        preset=args.preset, ffmpeg_args=parse_ffmpeg_args(args.ffmpeg_args), start=args.start, end=args.end,
        overwrite=args.overwrite,
    )
    upscale_file(job, log=lambda line: print(line, flush=True))
    return 0
