"""Score videos against a reference, frame by frame: an upscaled file, or a low-resolution source
run through models and baselines (bicubic, lanczos) to the reference's exact size, in one run."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import vapoursynth as vs

from ..atomic import atomic_output
from ..errors import SRError
from ..filter.formats import to_rgbs
from ..media.tools import open_video
from ..progress import Progress
from . import metrics

BASELINES = {
    # MATLAB-style bicubic (a = -0.5, i.e. Catmull-Rom), as SR papers compare against.
    "bicubic": lambda clip, w, h: clip.resize.Bicubic(w, h, filter_param_a=0, filter_param_b=0.5),
    "lanczos": lambda clip, w, h: clip.resize.Lanczos(w, h, filter_param_a=3),
}


@dataclass
class Scores:
    method: str
    frames: list[int] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | str]:
        finite = [p for p in self.psnr if math.isfinite(p)]
        return {
            "method": self.method,
            "psnr": float(np.mean(finite)) if finite else float("inf"),
            "ssim": float(np.mean(self.ssim)),
            "frames": len(self.frames),
        }


def source_scale(source: vs.VideoNode, reference: vs.VideoNode) -> int:
    """The integer scale that reaches the reference: the larger of the two axis ratios, rounded."""
    ratio: float = max(reference.width / source.width, reference.height / source.height)
    return max(1, round(ratio))


def candidates(reference: vs.VideoNode, result: vs.VideoNode | None, source: vs.VideoNode | None,
               models: list[str], baselines: list[str], scale: int, **upscale: object) -> dict[str, vs.VideoNode]:
    """The clips to score, by name, each at the reference's size."""
    from ..filter import Upscale

    clips: dict[str, vs.VideoNode] = {}
    if result is not None:
        clips["result"] = result
    if source is not None:
        for name in baselines:
            if name not in BASELINES:
                raise SRError(f"unknown baseline '{name}'; use {', '.join(BASELINES)}.")
            clips[name] = BASELINES[name](source, reference.width, reference.height)
        for model in models:
            clip = Upscale(source, model, scale, width=reference.width, height=reference.height, **upscale)  # type: ignore[arg-type]
            clips[_method_name(model)] = clip
    for name, clip in clips.items():
        if (clip.width, clip.height) != (reference.width, reference.height):
            raise SRError(f"{name} is {clip.width}x{clip.height} but the reference is {reference.width}x"
                           f"{reference.height}; compare same-size videos, or pass the low-resolution --source.")
        if clip.num_frames != reference.num_frames:
            raise SRError(f"{name} has {clip.num_frames} frames, the reference {reference.num_frames}: the videos "
                           "are not frame-aligned (cut them to the same frames first).")
    return clips


def _method_name(model: str) -> str:
    """A registry name as is; a weight file by its folder and name (runs all save model.pth)."""
    path = Path(model)
    return model if path.suffix == "" else str(Path(path.parent.name) / path.name)


def _rgb(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(3)])


def evaluate(reference: vs.VideoNode, clips: dict[str, vs.VideoNode], channel: str = "y", crop: int = 4,
             every: int = 1, progress: Callable[[str, int, int], None] | None = None) -> list[Scores]:
    """Per-frame PSNR/SSIM of each clip against the reference, every `every`-th frame.

    progress(name, frames scored for that clip, frames to score per clip) is called after each frame.
    """
    if channel not in ("y", "rgb"):
        raise SRError(f"channel must be 'y' or 'rgb', not {channel!r}.")
    if crop < 0 or 2 * crop >= min(reference.width, reference.height) - metrics.WINDOW:
        raise SRError(f"crop {crop} leaves nothing to compare in {reference.width}x{reference.height} frames.")
    sampled = list(range(0, reference.num_frames, every))
    ref = to_rgbs(reference)[::every]
    scores = []
    for name, clip in clips.items():
        score = Scores(name)
        for n, (want, got) in zip(sampled, zip(ref.frames(), to_rgbs(clip)[::every].frames(), strict=True), strict=True):
            a = metrics.prepare(_rgb(want), channel, crop)
            b = metrics.prepare(_rgb(got), channel, crop)
            score.frames.append(n)
            score.psnr.append(metrics.psnr(a, b))
            score.ssim.append(metrics.ssim(a, b))
            if progress:
                progress(name, len(score.frames), len(sampled))
        scores.append(score)
    return scores


@dataclass
class Evaluation:
    """The scores of every method, and how they were computed."""

    scores: list[Scores]
    channel: str
    crop: int


def evaluate_videos(reference: Path, result: Path | None = None, source: Path | None = None,
                    models: Sequence[str] = (), baselines: Sequence[str] = tuple(BASELINES), scale: int | None = None,
                    crop: int | None = None, channel: str = "y", every: int = 1, backend: str = "auto",
                    precision: str = "auto", label: str = "vs-sr eval") -> Evaluation:
    """Score an upscaled `result` and/or a low-resolution `source` run through `models` and
    `baselines` against `reference`, with a progress display.

    scale: the models' scale (default: from the sizes of source and reference, else 4);
    crop: border pixels ignored on each side (default: the scale).
    """
    if result is None and source is None:
        raise SRError("give RESULT REFERENCE, or REFERENCE with --source LOW_RES (scored with models and baselines).")
    reference_clip = open_video(reference)
    result_clip = open_video(result) if result else None
    source_clip = open_video(source) if source else None
    scale = scale or (source_scale(source_clip, reference_clip) if source_clip else 4)
    crop = crop if crop is not None else scale
    clips = candidates(reference_clip, result_clip, source_clip, list(models), list(baselines) if source_clip else [],
                       scale, backend=backend, precision=precision)
    progress = Progress(len(range(0, reference_clip.num_frames, every)) * len(clips), label=label)
    done = [0]

    def advance(name: str, count: int, of: int) -> None:
        done[0] += 1
        progress.update(done[0])

    scores = evaluate(reference_clip, clips, channel, crop, every, advance)
    progress.finish()
    return Evaluation(scores, channel, crop)


def write_csv(path: Path, scores: list[Scores]) -> None:
    with atomic_output(path) as temp, open(temp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", "method", "psnr", "ssim"])
        for score in scores:
            for n, p, s in zip(score.frames, score.psnr, score.ssim, strict=True):
                writer.writerow([n, score.method, f"{p:.4f}", f"{s:.6f}"])


def write_plot(path: Path, scores: list[Scores], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(10, 4.5), dpi=100)
    for score in scores:
        summary = score.summary()
        axis.plot(score.frames, score.psnr, label=f"{score.method} ({summary['psnr']:.2f} dB)", linewidth=1.2)
    axis.set_xlabel("frame")
    axis.set_ylabel("PSNR (dB)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    with atomic_output(path) as temp:
        figure.savefig(temp, format="png")
    plt.close(figure)


def summary_json(scores: list[Scores], channel: str, crop: int) -> str:
    """The first method's psnr/ssim/frames at the top level (for scripts), every method below.

    Strict JSON: where every frame is identical to the reference, PSNR is infinite, which JSON
    cannot write; it is then null with "identical": true.
    """
    rows = [_json_row(s.summary()) for s in scores]
    head = {k: rows[0][k] for k in ("psnr", "identical", "ssim", "frames")}
    return json.dumps({**head, "channel": channel, "crop": crop, "methods": rows}, indent=2, allow_nan=False)


def _json_row(row: dict[str, float | int | str]) -> dict[str, float | int | str | bool | None]:
    identical = row["psnr"] == float("inf")
    return {**row, "psnr": None if identical else row["psnr"], "identical": identical}


def summary_table(scores: list[Scores], channel: str, crop: int) -> str:
    lines = [f"{'method':<28} {'frames':>6} {'PSNR (dB)':>10} {'SSIM':>8}   ({channel.upper()}, crop {crop})"]
    for score in scores:
        row = score.summary()
        lines.append(f"{row['method']:<28} {row['frames']:>6} {row['psnr']:>10.3f} {row['ssim']:>8.4f}")
    return "\n".join(lines)
