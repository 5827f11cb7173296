"""Score videos frame by frame: PSNR/SSIM against a reference, and the warping error (flicker) of
each pair of consecutive frames under the motion of the reference, or without a reference under
the motion of the source upscaled bicubic. The videos: an upscaled file, and/or a low-resolution
source run through models and baselines (bicubic, lanczos) to the reference's exact size."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import vapoursynth as vs

from ..atomic import atomic_output
from ..errors import SRError, frame_errors
from ..filter.formats import MATRIX_UNSPECIFIED, default_matrix, int_prop, to_rgbs, yuv_matrix
from ..media.integrity import open_complete
from ..progress import Progress
from . import metrics

if TYPE_CHECKING:  # temporal imports OpenCV: loaded when a score needs it, not with the CLI
    from .temporal import Motion

BASELINES = {
    # MATLAB-style bicubic (a = -0.5, i.e. Catmull-Rom), as SR papers compare against.
    "bicubic": lambda clip, w, h: clip.resize.Bicubic(w, h, filter_param_a=0, filter_param_b=0.5),
    "lanczos": lambda clip, w, h: clip.resize.Lanczos(w, h, filter_param_a=3),
}
# Whose motion the warping error follows, by whether there is a reference.
GUIDES = {True: "reference", False: "source upscaled bicubic"}
PSNR_CAP = 100.0  # dB a frame identical to the reference counts as in a mean (its own PSNR is infinite)

Summary = dict[str, float | int | str | None]


@dataclass
class Scores:
    """Per-frame scores of one video: PSNR/SSIM of frame n (with a reference), and the warping
    error of the pair (n-1, n) (`pairs` holds the n of each pair scored)."""

    method: str
    frames: list[int] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    pairs: list[int] = field(default_factory=list)
    warp: list[float] = field(default_factory=list)

    @property
    def warp_mean(self) -> float:
        return float(np.mean(self.warp)) if self.warp else float("nan")

    def summary(self, guide_warp: float = float("nan")) -> Summary:
        """Means over the frames; psnr/ssim None without a reference; warp nan without a pair."""
        if not self.psnr:
            psnr = None
        elif all(math.isinf(p) for p in self.psnr):
            psnr = float("inf")  # every frame identical: said as such ("identical": true)
        else:  # an identical frame counts, at the cap: left out, it would favour whoever missed it least
            psnr = float(np.mean(np.minimum(self.psnr, PSNR_CAP)))
        return {
            "method": self.method,
            "psnr": psnr,
            "ssim": float(np.mean(self.ssim)) if self.ssim else None,
            "frames": len(self.frames),
            "warp": self.warp_mean,
            "warp_added": self.warp_mean - guide_warp,
            "pairs": len(self.pairs),
        }


@dataclass
class Evaluation:
    """The scores of every method, the guide's own warping error, and how they were computed."""

    scores: list[Scores]
    channel: str
    crop: int
    guide: Scores  # the reference (or the source upscaled bicubic) scored under its own motion

    @property
    def has_reference(self) -> bool:
        return self.guide.method == GUIDES[True]


def size_ratio(source: vs.VideoNode, reference: vs.VideoNode) -> float:
    """How much larger the reference is: the larger of the two axis ratios."""
    return float(max(reference.width / source.width, reference.height / source.height))


def source_scale(source: vs.VideoNode, reference: vs.VideoNode) -> int:
    """The integer scale that reaches the reference: the size ratio, rounded."""
    return max(1, round(size_ratio(source, reference)))


def model_scale(model: str, ratio: float, scale: int | None) -> int:
    """The scale `model` runs at to reach a reference `ratio` times the source's size (its output
    is then resized to the reference's): `scale` when given; else, for a named model, the smallest
    of its trained scales that reaches the ratio (its largest when none does: 854x480 from 256x144
    is x4 for a model that has only x4), for a weight file its network's own (the ratio rounded
    where the file leaves it open)."""
    from ..models.registry import REGISTRY
    from ..models.resolve import file_scale, model_file

    have = sorted(REGISTRY[model]) if model in REGISTRY else None
    if scale is not None:
        if have is not None and scale not in have:
            listed = ", ".join(f"x{s}" for s in have)
            raise SRError(f"model '{model}' has no trained x{scale} network (it has {listed}); pass scale={have[-1]}, "
                          "or leave the scale unset: each model then runs at its own scale nearest the sizes and is "
                          "resized to the reference.")
        return scale
    path = model_file(model)
    if have is None:
        return (file_scale(path) if path is not None else None) or max(1, round(ratio))
    needed = max(1, math.ceil(ratio - 0.1))  # (a ratio a shade over an integer, from odd sizes, is that integer)
    return next((s for s in have if s >= needed), have[-1])


def candidates(reference: vs.VideoNode, result: vs.VideoNode | None, source: vs.VideoNode | None,
               models: list[str], baselines: list[str], scale: int | None, target: str = "the reference",
               **upscale: object) -> dict[str, vs.VideoNode]:
    """The clips to score, by name, each at the size of `reference` (called `target` in errors:
    without a reference, the clip that sets the size); the models run at `scale`, or unset, at
    each one's scale for the sizes (`model_scale`)."""
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
            model_at = model_scale(model, size_ratio(source, reference), scale)
            name = _method_name(model)
            if name in clips:
                raise SRError(f"--model {model} is given twice, or names the same method as another; give each model "
                              "once.")
            clips[name] = Upscale(source, model, model_at, width=reference.width, height=reference.height,
                                  **upscale)  # type: ignore[arg-type]
    if not clips:
        raise SRError("nothing to score: give a --model, or leave the --baselines on.")
    for name, clip in clips.items():
        if (clip.width, clip.height) != (reference.width, reference.height):
            raise SRError(f"{name} is {clip.width}x{clip.height} but {target} is {reference.width}x"
                          f"{reference.height}; compare same-size videos, or pass the low-resolution --source.")
        if clip.num_frames != reference.num_frames:
            raise SRError(f"{name} has {clip.num_frames} frames, {target} {reference.num_frames}: the videos "
                          "are not frame-aligned (cut them to the same frames first).")
    return clips


def in_colours_of(reference: vs.VideoNode, source: vs.VideoNode) -> vs.VideoNode:
    """`source` with the reference's matrix on every frame that names none. The source is the
    reference made smaller, so its colours are the reference's; the default for its own size would
    read an untagged 1280x720 BT.709 reference's 640x360 copy as BT.601, and a model's output
    (tagged with the matrix it was read in) would then be compared in other colours than the
    reference (in one measured case 3.5 dB lower), while the baselines, resized in YUV, would not."""
    if reference.format.color_family != vs.YUV or source.format.color_family != vs.YUV:
        return source
    matrix = yuv_matrix(reference.get_frame(0).props, default_matrix(reference.width, reference.height))

    @frame_errors
    def tag(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        if int_prop(f.props, "_Matrix", MATRIX_UNSPECIFIED) != MATRIX_UNSPECIFIED:
            return f
        tagged = f.copy()
        tagged.props["_Matrix"] = matrix
        return tagged

    return source.std.ModifyFrame(source, tag)


def _method_name(model: str) -> str:
    """A registry name as is; a weight file by its folder and name (runs all save model.pth)."""
    path = Path(model)
    return model if path.suffix == "" else str(Path(path.parent.name) / path.name)


def _rgb(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(3)])


def _y(rgb: np.ndarray) -> npt.NDArray[np.float32]:
    """The Y (0-255) of planar RGB, as the warping error reads it."""
    return metrics.luma(rgb).astype(np.float32)


def luma_frames(clip: vs.VideoNode, every: int = 1) -> list[npt.NDArray[np.float32]]:
    """The Y of every `every`-th frame of a clip, as the scores see it (for studies beside them)."""
    return [_y(_rgb(frame)) for frame in to_rgbs(clip)[::every].frames()]


Frame = tuple[np.ndarray, np.ndarray, np.ndarray | None]  # (RGB, Y, the previous frame's Y or None)


def _frames(clip: vs.VideoNode, every: int) -> Iterator[Frame]:
    """Every `every`-th frame n of the clip as planar RGB in [0, 1] and Y (float32, 0-255, for the
    warping error), with the Y of frame n-1 (None for frame 0), each frame decoded once when
    every is 1."""
    rgbs = to_rgbs(clip)
    before = rgbs[every - 1 :: every].frames() if 1 < every < clip.num_frames else None  # frames n-1 of n = every..
    previous: np.ndarray | None = None
    for n, frame in zip(range(0, clip.num_frames, every), rgbs[::every].frames(), strict=True):
        rgb = _rgb(frame)
        y = _y(rgb)
        if every > 1:
            previous = _y(_rgb(next(before))) if n and before is not None else None
        yield rgb, y, previous
        previous = y


def _check_settings(channel: str, crop: int, clip: vs.VideoNode) -> None:
    if channel not in ("y", "rgb"):
        raise SRError(f"channel must be 'y' or 'rgb', not {channel!r}.")
    if crop < 0 or 2 * crop >= min(clip.width, clip.height) - metrics.WINDOW:
        raise SRError(f"a border crop of {crop} leaves nothing to compare in {clip.width}x{clip.height} frames; give "
                      "a smaller --crop.")


def _score_warp(score: Scores, n: int, frame: Frame, motion: Motion | None) -> None:
    """The warping error of the pair (n-1, n) under the guide's motion (none for frame 0; a pair
    with no valid pixel, a scene cut, is left out)."""
    from . import temporal

    _, y, previous = frame
    if previous is None or motion is None:
        return
    error = temporal.pair_error(previous, y, motion)
    if math.isfinite(error):
        score.pairs.append(n)
        score.warp.append(error)


def evaluate(reference: vs.VideoNode | None, clips: dict[str, vs.VideoNode], channel: str = "y", crop: int = 4,
             every: int = 1, progress: Callable[[str, int, int], None] | None = None,
             guide: vs.VideoNode | None = None) -> Evaluation:
    """Per-frame PSNR/SSIM of each clip against the reference, every `every`-th frame n, and the
    warping error of each pair (n-1, n) under the reference's motion; without a reference, under
    the motion of `guide` (the source upscaled bicubic) and with no PSNR/SSIM.

    progress(name, frames scored for that clip, frames to score per clip) is called after each frame.
    """
    from . import temporal

    motion_clip = reference if reference is not None else guide
    if motion_clip is None:
        raise SRError("the warping error needs a reference, or a guide video that shows the motion.")
    _check_settings(channel, crop, motion_clip)
    sampled = range(0, motion_clip.num_frames, every)
    own = Scores(GUIDES[reference is not None])
    scores = [Scores(name) for name in clips]
    streams = [_frames(motion_clip, every), *(_frames(clip, every) for clip in clips.values())]
    for n, (want, *got) in zip(sampled, zip(*streams, strict=True), strict=True):
        motion = None if want[2] is None else temporal.estimate_motion(want[2], want[1], crop)
        own.frames.append(n)
        _score_warp(own, n, want, motion)
        for score, frame in zip(scores, got, strict=True):
            score.frames.append(n)
            if reference is not None:
                a, b = metrics.prepare(want[0], channel, crop), metrics.prepare(frame[0], channel, crop)
                score.psnr.append(metrics.psnr(a, b))
                score.ssim.append(metrics.ssim(a, b))
            _score_warp(score, n, frame, motion)
            if progress:
                progress(score.method, len(score.frames), len(sampled))
    return Evaluation(scores, channel, crop, own)


@dataclass
class EvalInputs:
    """What `evaluate` scores, opened from files: the reference (None without one), the guide
    whose motion the warping error follows without one (the source upscaled bicubic), the clips
    by name, each at the size of the reference (or of the result), and the border crop."""

    reference: vs.VideoNode | None
    guide: vs.VideoNode | None
    clips: dict[str, vs.VideoNode]
    crop: int

    @property
    def motion(self) -> vs.VideoNode:
        """The clip whose motion the warping error follows: the reference, else the guide."""
        clip = self.reference if self.reference is not None else self.guide
        assert clip is not None
        return clip


def open_inputs(reference: Path | None, result: Path | None = None, source: Path | None = None,
                models: Sequence[str] = (), baselines: Sequence[str] = tuple(BASELINES), scale: int | None = None,
                crop: int | None = None, backend: str = "auto", precision: str = "auto",
                server: str | None = None) -> EvalInputs:
    """The clips `evaluate_videos` scores (its arguments, the same meanings), ready for `evaluate`."""
    if reference is None and source is None:
        raise SRError("without a reference, give the low-resolution --source: the warping error follows the motion "
                      "of its bicubic upscale.")
    if result is None and source is None:
        raise SRError("give RESULT REFERENCE, or REFERENCE with --source LOW_RES (scored with models and baselines).")
    instead = "scores of a part would not be the video's: score a complete copy."
    reference_clip = open_complete(reference, instead) if reference else None
    result_clip = open_complete(result, instead) if result else None
    source_clip = open_complete(source, instead) if source else None
    if reference_clip and source_clip:
        source_clip = in_colours_of(reference_clip, source_clip)
    sized = reference_clip or result_clip
    sizes_scale = source_scale(source_clip, sized) if source_clip and sized else scale or 4
    crop = crop if crop is not None else sizes_scale
    guide = None
    if reference_clip is None:
        assert source_clip is not None
        width, height = ((sized.width, sized.height) if sized
                         else (source_clip.width * sizes_scale, source_clip.height * sizes_scale))
        guide = BASELINES["bicubic"](source_clip, width, height)
    target, target_name = (reference_clip, "the reference") if reference_clip else (result_clip or guide, "the result")
    assert target is not None
    clips = candidates(target, result_clip, source_clip, list(models), list(baselines) if source_clip else [],
                       scale, target_name, backend=backend, precision=precision, server=server)
    return EvalInputs(reference_clip, guide, clips, crop)


def evaluate_inputs(inputs: EvalInputs, channel: str = "y", every: int = 1, label: str = "vs-sr eval") -> Evaluation:
    """`evaluate` on opened inputs, with a progress display."""
    progress = Progress(len(range(0, inputs.motion.num_frames, every)) * len(inputs.clips), label=label)
    done = [0]

    def advance(name: str, count: int, of: int) -> None:
        done[0] += 1
        progress.update(done[0])

    evaluation = evaluate(inputs.reference, inputs.clips, channel, inputs.crop, every, advance, inputs.guide)
    progress.finish()
    return evaluation


def evaluate_videos(reference: Path | None, result: Path | None = None, source: Path | None = None,
                    models: Sequence[str] = (), baselines: Sequence[str] = tuple(BASELINES), scale: int | None = None,
                    crop: int | None = None, channel: str = "y", every: int = 1, backend: str = "auto",
                    precision: str = "auto", server: str | None = None, label: str = "vs-sr eval") -> Evaluation:
    """Score an upscaled `result` and/or a low-resolution `source` run through `models` and
    `baselines` against `reference`, with a progress display. Without a reference (None) only the
    warping error is scored, under the motion of the source upscaled bicubic, which is then needed.

    scale: the models' scale (default: each model's trained scale that reaches the size of the
    reference or result from the source's, its output resized to that size; else 4);
    crop: border pixels ignored on each side (default: the sizes' ratio, rounded; else the scale);
    server: the Triton server for backend "triton" (default $VS_SR_TRITON_URL).
    """
    inputs = open_inputs(reference, result, source, models, baselines, scale, crop, backend, precision, server)
    return evaluate_inputs(inputs, channel, every, label)


def _number(value: float | None, digits: int) -> str:
    if value is not None and math.isinf(value):
        return "inf"  # (a frame identical to the reference)
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def write_csv(path: Path, evaluation: Evaluation) -> None:
    """Rows frame,method,psnr,ssim,warp: the guide's own rows first (no PSNR/SSIM), then every
    method's; warp is the pair (frame-1, frame), empty where not scored (frame 0, a scene cut)."""
    with atomic_output(path) as temp, open(temp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", "method", "psnr", "ssim", "warp"])
        for score in [evaluation.guide, *evaluation.scores]:
            psnr = dict(zip(score.frames, score.psnr, strict=False))
            ssim = dict(zip(score.frames, score.ssim, strict=False))
            warp = dict(zip(score.pairs, score.warp, strict=True))
            for n in score.frames:
                writer.writerow([n, score.method, _number(psnr.get(n), 4), _number(ssim.get(n), 6),
                                 _number(warp.get(n), 4)])


def write_plot(path: Path, evaluation: Evaluation, title: str) -> None:
    """Per-frame PSNR per method (with a reference) above the warping error of each pair, the
    guide's own as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 if evaluation.has_reference else 1
    figure, axes = plt.subplots(rows, 1, figsize=(10, 3.2 + 2.8 * rows), dpi=100, sharex=True, squeeze=False)
    if evaluation.has_reference:
        for score in evaluation.scores:
            psnr = score.summary()["psnr"]
            axes[0, 0].plot(score.frames, score.psnr, label=f"{score.method} ({psnr:.2f} dB)", linewidth=1.2)
        axes[0, 0].set_ylabel("PSNR (dB)")
    warp = axes[-1, 0]
    guide = evaluation.guide
    warp.plot(guide.pairs, guide.warp, "k--", label=f"{guide.method} ({guide.warp_mean:.3f})", linewidth=1.2)
    for score in evaluation.scores:
        warp.plot(score.pairs, score.warp, label=f"{score.method} ({score.warp_mean:.3f})", linewidth=1.2)
    warp.set_ylabel("warping error (Y levels)")
    warp.set_xlabel("frame (pairs: frame - 1, frame)")
    axes[0, 0].set_title(title)
    for axis in axes[:, 0]:
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    with atomic_output(path) as temp:
        figure.savefig(temp, format="png")
    plt.close(figure)


def summary_json(evaluation: Evaluation) -> str:
    """The first method's scores at the top level (for scripts), every method below, the guide's
    own warping error under "guide".

    Strict JSON: where every frame is identical to the reference, PSNR is infinite, which JSON
    cannot write; it is then null with "identical": true. Without a reference psnr, ssim and
    identical are null; a warping error with no pair to score is null.
    """
    guide_warp = evaluation.guide.warp_mean
    rows = [_json_row(s.summary(guide_warp)) for s in evaluation.scores]
    head = {k: rows[0][k] for k in ("psnr", "identical", "ssim", "frames", "warp", "warp_added")}
    guide = {"video": evaluation.guide.method, "warp": _finite(guide_warp), "pairs": len(evaluation.guide.pairs)}
    return json.dumps({**head, "channel": evaluation.channel, "crop": evaluation.crop, "guide": guide,
                       "methods": rows}, indent=2, allow_nan=False)


def _finite(value: float | int | str | None) -> float | int | str | None:
    return None if isinstance(value, float) and math.isnan(value) else value


def _json_row(row: Summary) -> dict[str, float | int | str | bool | None]:
    identical = None if row["psnr"] is None else row["psnr"] == float("inf")
    return {**{k: _finite(v) for k, v in row.items()}, "psnr": None if identical else row["psnr"],
            "identical": identical}


def summary_table(evaluation: Evaluation) -> str:
    guide = evaluation.guide
    lines = [f"{'method':<28} {'frames':>6} {'PSNR (dB)':>10} {'SSIM':>8} {'warp':>7} {'added':>7}   "
             f"({evaluation.channel.upper()}, crop {evaluation.crop})"]
    for score in evaluation.scores:
        row = score.summary(guide.warp_mean)
        lines.append(f"{row['method']:<28} {row['frames']:>6} {_cell(row['psnr'], 10, '.3f')} "
                     f"{_cell(row['ssim'], 8, '.4f')} {_cell(row['warp'], 7, '.3f')} {_cell(row['warp_added'], 7, '+.3f')}")
    if not evaluation.has_reference:
        lines.append("no reference: PSNR/SSIM not scored.")
    lines.append(f"warp: warping error (mean |frame - previous frame motion-compensated|, Y levels) under the motion "
                 f"of the {guide.method}, whose own is {_cell(guide.warp_mean, 0, '.3f').strip()}; added = warp - that.")
    return "\n".join(lines)


def _cell(value: float | int | str | None, width: int, spec: str) -> str:
    if not isinstance(value, float) or math.isnan(value):
        return "–".rjust(width)
    return format(value, spec).rjust(width)
