#!/usr/bin/env python3
"""Produce docs/quality.md's results with the tools themselves: generate paired clips from real
photographs, score bicubic, lanczos and every named model whose weights install offline (x4 and
x2; but `faithful`, which trained on these photographs) with `vs-sr eval` at fp32, fine-tune a
model with `vs-sr train` on one clip and score it on another.

    .venv/bin/python scripts/quality_report.py --workdir /tmp/vs_sr_quality --iterations 300
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from vs_sr.models.registry import offline_models
from vs_sr.quality.samples import make_pair

VS_SR = str(Path(sys.executable).with_name("vs-sr"))


def scored_models(scale: int) -> list[str]:
    """The offline models but faithful: it trained on scikit-image's photographs, these clips'
    sources among them (its held-out figures are in docs/quality.md, "The faithful model")."""
    return [model for model in offline_models(scale) if model != "faithful"]


def vs_sr(*args: str) -> str:
    done = subprocess.run([VS_SR, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        sys.exit(done.stderr)
    return done.stdout


def score(reference: Path, source: Path, models: list[str], every: int, plot: Path | None = None) -> list[dict]:
    # fp32: the models' own figures, whatever precision `auto` picks on this CPU (each at its default noise level)
    args = ["eval", str(reference), "--source", str(source), "--every", str(every), "--json", "--precision", "fp32"]
    for model in models:
        args += ["--model", model]
    if plot:
        args += ["--plot", str(plot)]
    return json.loads(vs_sr(*args))["methods"]


def table(title: str, rows: list[dict]) -> str:
    lines = [f"**{title}**", "", "| method | frames | PSNR-Y (dB) | SSIM-Y |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['method']} | {r['frames']} | {r['psnr']:.2f} | {r['ssim']:.4f} |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/vs_sr_quality")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--plot", default="docs/quality_psnr.png")
    parser.add_argument("--models-only", action="store_true", help="score the models, skip the fine-tuning runs")
    args = parser.parse_args()
    work = Path(args.workdir)

    train_hr, train_lr = make_pair(work, "retina", (640, 480), (160, 120), frames=60)
    test_hr, test_lr = make_pair(work, "hubble_deep_field", (640, 480), (160, 120), frames=40)
    exact_hr, exact_lr = make_pair(work / "exact", "retina", (856, 480), (214, 144), frames=12)

    x2_hr, x2_lr = make_pair(work / "x2", "hubble_deep_field", (640, 480), (320, 240), frames=40)

    sections = []
    rows = score(test_hr, test_lr, scored_models(4), every=4)
    sections.append(table("Held-out clip (hubble_deep_field pan, 160x120 x264 CRF 28 -> 640x480)", rows))
    rows = score(x2_hr, x2_lr, scored_models(2), every=4)
    sections.append(table("x2: the same pan at 320x240 x264 CRF 28 -> 640x480", rows))
    if args.models_only:
        print("\n\n".join(sections))
        return 0

    runs = {
        # the training clip's own low-res video (the hackathon's 144p/480p pairs)
        "paired": ["--hr", str(train_hr), "--lr", str(train_lr)],
        # high-res footage only: synthetic blur, downscale, noise and x264 CRF 28 frames
        "degraded": ["--hr", str(train_hr)],
    }
    tuned_models, minutes = [], {}
    for name, data in runs.items():
        start = time.monotonic()
        vs_sr("train", "--model", "realesr-animevideov3", *data, "--val-hr", str(test_hr), "--val-lr", str(test_lr),
              "--every", "2", "--iterations", str(args.iterations), "--batch", "8", "--patch", "128",
              "--learning-rate", "1e-4", "--milestones", str(args.iterations * 3 // 4), "--ema", "0.99",
              "--val-every", str(max(1, args.iterations // 5)), "--output", str(work / name))
        minutes[name] = (time.monotonic() - start) / 60
        tuned_models.append(str(work / name / "model.pth"))
    tuned = score(test_hr, test_lr, ["realesr-animevideov3", *tuned_models], every=4, plot=Path(args.plot))
    sections.append(table(
        f"realesr-animevideov3 fine-tuned on the retina clip ({args.iterations} iterations each: paired "
        f"{minutes['paired']:.1f} min, degraded {minutes['degraded']:.1f} min on this machine's CPU), "
        "scored on the held-out hubble clip", tuned))
    for name in runs:
        history = (work / name / "history.csv").read_text().strip()
        sections.append(f"Validation history of the {name} run (`history.csv`):\n\n```\n{history}\n```")

    rows = score(exact_hr, exact_lr, ["realesr-animevideov3"], every=1)
    sections.append(table("Non-integer ratio (retina pan, 214x144 -> 856x480: x4, then resized to 480 lines)", rows))
    print("\n\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
