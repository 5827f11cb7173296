#!/usr/bin/env python3
"""Draw docs/comparison.png: one crop of a real photograph, upscaled x4 by bicubic, lanczos and
every named x4 model whose weights install offline but `faithful` (which trained on this
photograph), side by side with labels and PSNR-Y.

The photograph is scikit-image's `astronaut` (Eileen Collins, NASA; public domain). It goes the
way of docs/quality.md's sample clips: stored losslessly as the reference (512x512), and
bicubic-downscaled x4 and x264-compressed at CRF 28 like an uploaded video (128x128) as the input.
Every method then brings that input back to 512x512; the PSNR-Y in each label is over the whole
frame (4-pixel border crop), the picture shows one crop, enlarged with nearest neighbour.

    .venv/bin/python scripts/comparison_picture.py                 # writes docs/comparison.png
    .venv/bin/python scripts/comparison_picture.py --crop 180,60,120 --zoom 2 --output /tmp/c.png
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import vapoursynth as vs
from PIL import Image, ImageDraw, ImageFont

from vs_sr.filter.formats import to_rgbs
from vs_sr.media.tools import open_video
from vs_sr.models.registry import offline_models
from vs_sr.quality import metrics
from vs_sr.quality.evaluate import candidates
from vs_sr.quality.samples import make_pair

ROOT = Path(__file__).resolve().parents[1]
# faithful trained on scikit-image's photographs, the astronaut among them: no fair comparison here
# (its held-out figures are in docs/quality.md, "The faithful model").
MODELS = [model for model in offline_models(4) if model != "faithful"]
BASELINES = ["bicubic", "lanczos"]
LABEL_HEIGHT = 22
COLUMNS = 4


def frames(workdir: Path) -> tuple[vs.VideoNode, vs.VideoNode]:
    """(reference 512x512, input 128x128) of the astronaut, as docs/quality.md's clips are made."""
    high, low = make_pair(workdir, "astronaut", hr=(512, 512), lr=(128, 128), frames=1, crf=28)
    return open_video(high), open_video(low)


def rgb(clip: vs.VideoNode) -> np.ndarray:
    """Frame 0 as (3, h, w) float32 RGB in [0, 1]."""
    frame = to_rgbs(clip).get_frame(0)
    return np.stack([np.asarray(frame[p]) for p in range(3)])


def results(reference: vs.VideoNode, source: vs.VideoNode, backend: str) -> dict[str, np.ndarray]:
    """Each method's 512x512 frame, by name (fp32: the same bits on every CPU)."""
    clips = candidates(reference, None, source, MODELS, BASELINES, 4, backend=backend, precision="fp32")
    return {name: rgb(clip) for name, clip in clips.items()}


def psnr_y(reference: np.ndarray, image: np.ndarray) -> float:
    return metrics.psnr(metrics.prepare(reference, "y", 4), metrics.prepare(image, "y", 4))


def tile(image: np.ndarray, crop: tuple[int, int, int], zoom: int, label: str) -> Image.Image:
    """The crop (x, y, size in reference pixels) of a (3, h, w) image, enlarged, under its label."""
    x, y, size = crop
    pixels = np.clip(image[:, y : y + size, x : x + size].transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels).resize((size * zoom, size * zoom), Image.Resampling.NEAREST)
    framed = Image.new("RGB", (picture.width, picture.height + LABEL_HEIGHT), "white")
    framed.paste(picture, (0, LABEL_HEIGHT))
    ImageDraw.Draw(framed).text((4, 4), label, fill="black", font=ImageFont.load_default(size=13))
    return framed


def sheet(tiles: list[Image.Image], gap: int = 4) -> Image.Image:
    """The tiles in rows of COLUMNS, `gap` pixels apart."""
    width, height = tiles[0].size
    rows = -(-len(tiles) // COLUMNS)
    canvas = Image.new("RGB", (COLUMNS * width + (COLUMNS - 1) * gap, rows * height + (rows - 1) * gap), "white")
    for index, picture in enumerate(tiles):
        canvas.paste(picture, ((index % COLUMNS) * (width + gap), (index // COLUMNS) * (height + gap)))
    return canvas


def draw(crop: tuple[int, int, int], zoom: int, backend: str) -> Image.Image:
    with tempfile.TemporaryDirectory(prefix="vs_sr_comparison_") as workdir:
        reference, source = frames(Path(workdir))
        truth, small = rgb(reference), rgb(source)
        outputs = results(reference, source, backend)
    nearest = small.repeat(4, axis=1).repeat(4, axis=2)  # the input's own pixels, at the output's scale
    tiles = [tile(truth, crop, zoom, "original (reference)"),
             tile(nearest, crop, zoom, "input 128px, x264 (nearest)")]
    tiles += [tile(image, crop, zoom, f"{name} {psnr_y(truth, image):.2f} dB") for name, image in outputs.items()]
    return sheet(tiles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crop", default="176,64,112", help="X,Y,SIZE of the crop in the 512x512 frame")
    parser.add_argument("--zoom", type=int, default=2, help="nearest-neighbour enlargement of the crops")
    parser.add_argument("--backend", default="openvino", help="the vs_sr backend that runs the models")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "comparison.png")
    args = parser.parse_args()
    x, y, size = (int(part) for part in args.crop.split(","))
    picture = draw((x, y, size), args.zoom, args.backend)
    picture.save(args.output, optimize=True)
    print(f"wrote {args.output} ({picture.width}x{picture.height}, {args.output.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
