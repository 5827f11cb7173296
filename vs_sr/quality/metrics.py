"""PSNR and SSIM the way super-resolution papers report them.

Y is BT.601 luma of RGB in [0, 1], scaled to [16, 235] (MATLAB's rgb2ycbcr, as BasicSR and the
HAT/Real-ESRGAN papers use); values are on a 0-255 scale. SSIM is Wang et al.'s: an 11x11
Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, averaged over the valid region. A border
of `crop` pixels is removed from every side first (the usual choice is the scale).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

PEAK = 255.0
WINDOW = 11
SIGMA = 1.5


def luma(rgb: np.ndarray) -> npt.NDArray[np.float64]:
    """BT.601 Y on 0-255 (16-235 nominal) from (3, h, w) RGB in [0, 1]."""
    r, g, b = (rgb[i].astype(np.float64) for i in range(3))
    y: npt.NDArray[np.float64] = 16.0 + 65.481 * r + 128.553 * g + 24.966 * b  # numpy types rgb[i] as Any
    return y


def prepare(rgb: np.ndarray, channel: str, crop: int) -> npt.NDArray[np.float64]:
    """(c, h, w) float64 on 0-255: Y alone, or R, G, B; with `crop` pixels removed at each border."""
    planes = luma(rgb)[None] if channel == "y" else rgb.astype(np.float64) * PEAK
    if crop:
        planes = planes[:, crop:-crop, crop:-crop]
    return planes


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all given planes (inf for identical images)."""
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(PEAK**2 / mse)


def _gaussian() -> npt.NDArray[np.float64]:
    x = np.arange(WINDOW) - WINDOW // 2
    kernel: npt.NDArray[np.float64] = np.exp(-(x**2) / (2 * SIGMA**2))
    return kernel / float(kernel.sum())


def _blur(plane: npt.NDArray[np.float64], kernel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Separable 'valid' filtering: only where the whole window fits."""
    rows: npt.NDArray[np.float64] = sliding_window_view(plane, WINDOW, axis=0) @ kernel
    filtered: npt.NDArray[np.float64] = sliding_window_view(rows, WINDOW, axis=1) @ kernel
    return filtered


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over the planes of (c, h, w) images on 0-255."""
    kernel = _gaussian()
    c1, c2 = (0.01 * PEAK) ** 2, (0.03 * PEAK) ** 2
    values = []
    for x, y in zip(a, b, strict=True):
        mx, my = _blur(x, kernel), _blur(y, kernel)
        vx = _blur(x * x, kernel) - mx * mx
        vy = _blur(y * y, kernel) - my * my
        cov = _blur(x * y, kernel) - mx * my
        ssim_map = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(float(ssim_map.mean()))
    return float(np.mean(values))
