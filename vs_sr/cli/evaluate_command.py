"""`vs-sr eval`: PSNR/SSIM of videos against a reference and their warping error (flicker), frame
by frame."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..filter.arguments import BACKENDS, PRECISION_CHOICES
from ..quality.evaluate import BASELINES
from .common import folder_of, non_negative, positive


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluate = commands.add_parser("eval", help="PSNR/SSIM against a reference and warping error (flicker), "
                                                "frame by frame")
    evaluate.add_argument("videos", nargs="*", metavar="[RESULT] REFERENCE",
                          help="an upscaled video and its reference; or only the reference, with --source; "
                               "with --no-reference, only the RESULT (or nothing, with --source)")
    evaluate.add_argument("--source", help="the low-resolution video: scored through --model(s) and the baselines")
    evaluate.add_argument("--no-reference", action="store_true",
                          help="there is no ground truth: score only the warping error, under the motion of --source "
                               "upscaled bicubic (--scale, default 4, or the RESULT's size)")
    evaluate.add_argument("--model", action="append", default=[], help="a model to run on --source (repeatable)")
    evaluate.add_argument("--baselines", nargs="+", default=list(BASELINES), choices=[*BASELINES, "none"],
                          help=f"resizers scored beside the models: {', '.join(BASELINES)} (default), or 'none'")
    evaluate.add_argument("--scale", type=positive,
                          help="the models' scale (default: each model's trained scale that reaches the reference's "
                               "size from the source's, its output resized to it; else 4)")
    evaluate.add_argument("--crop", type=non_negative,
                          help="border pixels ignored on each side (default: the sizes' ratio, rounded, or the scale)")
    evaluate.add_argument("--channel", choices=["y", "rgb"], default="y", help="BT.601 luma (default) or RGB")
    evaluate.add_argument("--every", type=positive, default=1, help="score every Nth frame (default 1)")
    evaluate.add_argument("--backend", default="auto", choices=BACKENDS, help="inference runtime for --model")
    evaluate.add_argument("--precision", default="auto", choices=PRECISION_CHOICES, help="precision for --model")
    evaluate.add_argument("--server", metavar="URL",
                          help="Triton server for --backend triton: grpc://host:8001 or http://host:8000 (default "
                               "$VS_SR_TRITON_URL)")
    evaluate.add_argument("--csv", help="write per-frame scores here")
    evaluate.add_argument("--plot", help="write a PNG of per-frame PSNR and warping error for each method here")
    evaluate.add_argument("--json", action="store_true",
                          help="print a JSON summary (psnr, ssim, frames, warp, warp_added, guide) instead")
    evaluate.set_defaults(parser=evaluate, run=run, interrupted="interrupted; a --csv or --plot file is there only if "
                          "it was written whole before the signal")


def writable_report(option: str, path: str | None, inputs: list[Path]) -> None:
    """Refuse, before any scoring, a report path that is one of the videos scored (it would be
    replaced by the report) or a folder."""
    from ..errors import SRError

    if path is None:
        return
    folder_of(path)
    target = Path(path)
    if target.is_dir():
        raise SRError(f"{option} {path} is a folder; give the file to write, e.g. {target / 'scores'}"
                      f"{'.csv' if option == '--csv' else '.png'}.")
    if any(target.resolve() == video.resolve() for video in inputs):
        raise SRError(f"{option} {path} is one of the videos scored, which the report would replace; give another "
                      "file.")
    if option == "--plot" and target.suffix.lower() != ".png":
        raise SRError(f"--plot draws a PNG picture; name it .png, not {path}.")


def check_usage(args: argparse.Namespace) -> None:
    """What the arguments ask for does not fit together: a usage error (exit status 2)."""
    error = args.parser.error
    if args.no_reference and len(args.videos) > 1:
        error("with --no-reference give at most one video, the RESULT")
    if not args.no_reference and not (len(args.videos) == 2 or len(args.videos) == 1 and args.source):
        error("give RESULT REFERENCE, or REFERENCE with --source LOW_RES (or --no-reference)")
    if args.no_reference and not args.source:
        error("without a reference, give the low-resolution --source: the warping error follows the motion of its "
              "bicubic upscale")
    if "none" in args.baselines and len(args.baselines) > 1:
        error(f"--baselines none means no baseline: give it alone, or name them ({' '.join(args.baselines)})")
    if (args.model or args.baselines != list(BASELINES)) and not args.source:
        error("--model and --baselines score what they make of --source LOW_RES: give --source too (without it, eval "
              "scores the RESULT as it is)")
    unused = [option for option, given in (("--backend", args.backend != "auto"),
                                           ("--precision", args.precision != "auto"),
                                           ("--server", args.server is not None)) if given]
    if unused and not args.model:
        error(f"{', '.join(unused)} run --model: give --model too, or drop them")
    result_given = len(args.videos) == (1 if args.no_reference else 2)
    guide_only = args.no_reference and args.source and not result_given  # --scale sizes the bicubic guide
    if args.scale is not None and not args.model and not guide_only:
        error("--scale chooses the network of each --model; without one, the sizes come from the videos (the border "
              "crop is --crop)")
    if args.channel == "rgb" and args.no_reference:
        error("--channel chooses what PSNR and SSIM score, and --no-reference scores the warping error only (on luma)")


def run(args: argparse.Namespace) -> int:
    from ..quality import evaluate as ev

    check_usage(args)
    if args.no_reference:
        result, reference = args.videos, None
    else:
        *result, reference = args.videos
    inputs = [Path(v) for v in [*args.videos, args.source] if v]
    for option, path in (("--csv", args.csv), ("--plot", args.plot)):
        writable_report(option, path, inputs)
    evaluation = ev.evaluate_videos(
        Path(reference) if reference else None, Path(result[0]) if result else None,
        Path(args.source) if args.source else None,
        models=args.model, baselines=[] if args.baselines == ["none"] else args.baselines, scale=args.scale,
        crop=args.crop, channel=args.channel, every=args.every, backend=args.backend, precision=args.precision,
        server=args.server)
    if args.csv:
        ev.write_csv(Path(args.csv), evaluation)
    if args.plot:
        against = f"against {Path(reference).name}" if reference else "(no reference)"
        ev.write_plot(Path(args.plot), evaluation, f"per frame ({args.channel.upper()}, crop {evaluation.crop}) {against}")
    summary = ev.summary_json if args.json else ev.summary_table
    print(summary(evaluation))
    if result and reference:
        note_other_rate(Path(result[0]), Path(reference))
    return 0


def note_other_rate(result: Path, reference: Path) -> None:
    """A result at another frame rate than its reference is scored frame for frame, as numbered;
    said on stderr, since the same pictures at another rate are a different video to watch."""
    import sys

    from ..errors import SRError
    from ..media.probe import probe

    try:
        ours, theirs = probe(result).frame_rate, probe(reference).frame_rate
    except SRError:  # a rate that is not said: nothing to compare
        return
    if ours != theirs:
        print(f"note: {result.name} runs at {float(ours):g} fps and {reference.name} at {float(theirs):g}: their frames "
              "were compared one to one, as numbered.", file=sys.stderr)
