"""`vs-sr train`: fine-tune a network on your own footage."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..training.degrade import Degradation
from ..training.trainer import TrainConfig
from .common import bounded, default, deprecated, integer, positive


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def train_default(name: str) -> object:
        return default(TrainConfig, name)

    degradation = train_default("degradation")
    training = commands.add_parser("train", help="fine-tune a network on your own footage (paired or high-res only)")
    training.add_argument("--model", required=True, help="starting weights: registry name or .pth/.safetensors")
    training.add_argument("--scale", type=positive, default=train_default("scale"), help="the network's scale")
    training.add_argument("--hr", action="append", required=True, help="high-res video (repeatable)")
    training.add_argument("--lr", action="append", default=[], help="low-res video of the same footage, one per "
                          "--hr; without it the high-res frames are degraded (blur, downscale, noise, x264)")
    training.add_argument("--val-hr", action="append", default=[], help="held-out high-res video(s) for validation")
    training.add_argument("--val-lr", action="append", default=[], help="their low-res videos (paired validation)")
    training.add_argument("--output", required=True, help="run directory (checkpoint, model.pth, history.csv)")
    training.add_argument("--every", type=positive, default=train_default("every"),
                          help="use every Nth frame (default %(default)s; a short clip needs a lower N to hold "
                          "frames out for validation)")
    training.add_argument("--iterations", type=positive, default=train_default("iterations"),
                          help="training steps in all (default %(default)s; a --resume may raise it to go on)")
    training.add_argument("--batch", type=positive, default=train_default("batch"),
                          help="patches per step (default %(default)s)")
    training.add_argument("--patch", type=positive, default=train_default("patch"),
                          help="high-res crop size, at least the scale (default %(default)s)")
    training.add_argument("--learning-rate", type=bounded(0, 1, low_open=True), default=train_default("learning_rate"),
                          help="Adam's learning rate, in (0, 1] (default %(default)s)")
    training.add_argument("--milestones", type=positive, nargs="*", default=list(train_default("milestones")),  # type: ignore[call-overload]
                          help="iterations at which the learning rate is multiplied by --gamma (default: %(default)s)")
    training.add_argument("--gamma", type=bounded(0, 1, low_open=True), default=train_default("gamma"),
                          help="learning-rate factor at each milestone, in (0, 1] (default %(default)s)")
    training.add_argument("--ema", type=bounded(0, 1, high_open=True), default=train_default("ema"),
                          help="EMA decay of the saved weights, in [0, 1) (0: no averaging; default %(default)s)")
    training.add_argument("--val-every", type=positive, default=train_default("val_every"),
                          help="iterations between validations (default %(default)s)")
    training.add_argument("--checkpoint-every", type=positive, default=train_default("checkpoint_every"),
                          help="iterations between checkpoints, what --resume continues from (default %(default)s)")
    training.add_argument("--blur", type=bounded(0, 10), nargs=2, default=list(degradation.blur),  # type: ignore[attr-defined]
                          metavar=("MIN", "MAX"), help="range of the Gaussian blur sigma before downscaling, 0-10")
    training.add_argument("--noise-sigma", type=bounded(0, 255), default=degradation.noise,  # type: ignore[attr-defined]
                          help="largest Gaussian noise sigma added to synthesized low-res frames (8-bit levels), 0-255")
    # Its name until 0.1: `--noise` is the denoise level in every other command.
    training.add_argument("--noise", dest="noise_sigma", type=bounded(0, 255), action=deprecated("--noise-sigma", "0.2"),
                          help="the old name of --noise-sigma (works until vs_sr 0.2)")
    training.add_argument("--crf", type=crf_or_none, default=degradation.crf,  # type: ignore[attr-defined]
                          help="x264 CRF of synthesized low-res frames, 0-51 (-1: no compression)")
    training.add_argument("--seed", type=integer, default=train_default("seed"),
                          help="seed of the patches, augmentations and degradations (default %(default)s)")
    training.add_argument("--device", default=train_default("device"), help="auto, cpu, cuda, cuda:1, ...")
    training.add_argument("--resume", action="store_true", help="continue the run in --output")
    training.set_defaults(run=run, interrupted=interrupted)


def interrupted(args: argparse.Namespace) -> str:
    """What a Ctrl-C leaves: a checkpoint to resume from, or (before the first) nothing to keep."""
    if (Path(args.output) / "checkpoint.pt").is_file():
        return "interrupted; the last checkpoint in --output continues with --resume"
    return "interrupted before the first checkpoint; nothing to resume: run the same command again (without --resume)"


def crf_or_none(text: str) -> int:
    value = integer(text)
    if not -1 <= value <= 51:
        raise argparse.ArgumentTypeError(f"must be 0-51, or -1 for none, not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from ..errors import SRError
    from ..training.trainer import train

    if args.blur[0] > args.blur[1]:
        raise SRError(f"--blur MIN MAX: {args.blur[0]:g} is above {args.blur[1]:g}.")
    config = TrainConfig(
        model=args.model, output=Path(args.output), hr=[Path(p) for p in args.hr], lr=[Path(p) for p in args.lr],
        val_hr=[Path(p) for p in args.val_hr], val_lr=[Path(p) for p in args.val_lr], scale=args.scale,
        every=args.every, iterations=args.iterations, batch=args.batch, patch=args.patch,
        learning_rate=args.learning_rate, milestones=tuple(args.milestones), gamma=args.gamma, ema=args.ema,
        val_every=args.val_every, checkpoint_every=args.checkpoint_every, seed=args.seed, device=args.device,
        degradation=Degradation(blur=tuple(args.blur), noise=args.noise_sigma, crf=None if args.crf < 0 else args.crf),
    )
    train(config, resume=args.resume, log=lambda line: print(line, flush=True))
    return 0
