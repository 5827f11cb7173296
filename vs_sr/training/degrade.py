"""Synthetic degradations typical of user uploads: blur, downscale, noise, real x264 compression.

Each frame gets its own random blur, kernel and noise from a generator seeded by (seed, frame),
so a dataset is reproducible; the low-resolution frames then go through libx264 at the chosen
CRF as one video, as an upload would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..children import run_child
from ..errors import SRError
from ..media.tools import find_tool

if TYPE_CHECKING:
    import torch

KERNELS = ("bicubic", "bilinear", "area")


@dataclass(frozen=True)
class Degradation:
    blur: tuple[float, float] = (0.0, 1.2)
    """Range of the Gaussian blur sigma (high-res pixels) applied before downscaling."""
    noise: float = 3.0
    """Largest Gaussian noise sigma, in 8-bit levels."""
    crf: int | None = 28
    """x264 CRF of the low-res video; None for no compression."""
    kernels: tuple[str, ...] = KERNELS

    def key(self) -> str:
        return f"blur{self.blur[0]}-{self.blur[1]}_noise{self.noise}_crf{self.crf}_{'+'.join(self.kernels)}"


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(image.dtype)
    padded = F.pad(image, (radius, radius, radius, radius), mode="reflect")
    channels = image.shape[1]
    horizontal = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(horizontal, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def degrade_frame(hr: np.ndarray, scale: int, degradation: Degradation, rng: np.random.Generator) -> np.ndarray:
    """One high-res RGB uint8 frame (h*scale, w*scale, 3) -> blurred, downscaled, noisy (h, w, 3) uint8."""
    import torch
    import torch.nn.functional as F

    image = torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255
    sigma = rng.uniform(*degradation.blur)
    if sigma > 0.1:
        image = _gaussian_blur(image, sigma)
    size = (hr.shape[0] // scale, hr.shape[1] // scale)
    kernel = degradation.kernels[rng.integers(len(degradation.kernels))]
    if kernel == "area":
        image = F.interpolate(image, size=size, mode="area")
    else:
        image = F.interpolate(image, size=size, mode=kernel, antialias=True, align_corners=False)
    noise = rng.uniform(0, degradation.noise) / 255
    if noise > 0:
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        image = image + torch.randn(image.shape, generator=generator) * noise
    return (image[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def x264_roundtrip(frames: np.ndarray, crf: int, fps: int = 25) -> np.ndarray:
    """Encode (n, h, w, 3) uint8 RGB frames with libx264 (yuv420p) at `crf` and decode them back."""
    ffmpeg = find_tool("ffmpeg")
    n, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise SRError(f"x264 (4:2:0) needs even low-res sizes, got {w}x{h}; adjust the patch or frame size.")
    encode = run_child(
        [ffmpeg, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0",
         "-c:v", "libx264", "-crf", str(crf), "-preset", "medium", "-pix_fmt", "yuv420p", "-f", "matroska", "pipe:1"],
        input=frames.tobytes(), capture_output=True,
    )
    if encode.returncode != 0:
        raise SRError(f"x264 degradation failed: {encode.stderr.decode(errors='replace').strip()}")
    decode = run_child(
        [ffmpeg, "-v", "error", "-f", "matroska", "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        input=encode.stdout, capture_output=True,
    )
    if decode.returncode != 0:
        raise SRError(f"x264 degradation failed decoding: {decode.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(decode.stdout, np.uint8).reshape(n, h, w, 3).copy()


def degrade(hr_frames: np.ndarray, scale: int, degradation: Degradation, seed: int) -> np.ndarray:
    """Low-res frames for (n, H, W, 3) high-res frames, reproducible from `seed`."""
    low = np.stack([degrade_frame(frame, scale, degradation, np.random.default_rng([seed, n]))
                    for n, frame in enumerate(hr_frames)])
    return low if degradation.crf is None else x264_roundtrip(low, degradation.crf)
