"""Warping error: how much a video changes between consecutive frames beyond what the motion
explains (flicker, shimmer) — the temporal-consistency measure of Lai et al., "Learning Blind
Video Temporal Consistency", ECCV 2018 (E_warp), here as a mean absolute difference of BT.601 Y.

Definition (frames V_1..V_T of a scored video, and a *guide* video G_1..G_T of the same size that
says how the picture moves: the reference, or else the source upscaled bicubic):

- Flow. OpenCV DIS optical flow (preset MEDIUM, finest scale 0: flow at full resolution) on the
  guide's Y rounded to 8 bits, both ways between each pair: b_t = flow(G_t -> G_{t-1}) (pixel x
  of frame t was at x + b_t(x) in frame t-1) and f_t = flow(G_{t-1} -> G_t).
- Valid pixels M_t(x) = 1 unless any of:
  occluded   |b_t(x) + f~_t(x)|^2 > 0.01 (|b_t(x)|^2 + |f~_t(x)|^2) + 0.5, where f~_t(x) =
             f_t(x + b_t(x)) (bilinear): the forward-backward check of Sundaram et al. (ECCV 2010)
             and Ruder et al. (GCPR 2016), as Lai et al. use it;
  boundary   |grad b_t(x)|^2 > 0.01 |b_t(x)|^2 + 0.002 (forward differences of both components:
             motion boundaries, Lai et al.'s second mask);
  outside    x + b_t(x) lies outside the frame;
  border     x within `crop` pixels of the frame's edge (the PSNR border crop).
- Pair error E_t = sum_x M_t(x) |V_t(x) - V_{t-1}(x + b_t(x))| / sum_x M_t(x): frame t-1 warped
  onto t (bicubic, cv2.remap INTER_CUBIC), on Y = 16 + 65.481 R + 128.553 G + 24.966 B (RGB in
  [0, 1], the Y of `metrics`), so E is in 8-bit luma levels. A pair with no valid pixel (a scene
  cut) is skipped (nan).
- Warping error E = the mean of E_t over the scored pairs. Added warping error = E(video) -
  E(guide scored under its own flow): with a reference, the frame-to-frame change the reference
  does not have.

Scale checks (tests/quality/test_temporal.py): a translated image sequence scores about 0; two
aligned frames that differ by i.i.d. Gaussian noise of standard deviation s score 2s/sqrt(pi)
(E|X - Y| for X, Y ~ N(0, s^2)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

OCCLUSION = (0.01, 0.5)  # relative, absolute terms of the forward-backward check (squared pixels)
BOUNDARY = (0.01, 0.002)  # relative, absolute terms of the motion-boundary check
# Bilinear sampling blurs: on a band-limited sub-pixel pan it alone leaves 0.3-0.7 levels, bicubic
# about half that, which would otherwise count against sharp outputs.
FRAME_INTERPOLATION = cv2.INTER_CUBIC

Array = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Motion:
    """The motion from frame t-1 to frame t: where each pixel of t was in t-1, and which pixels
    the warping error may use."""

    backward: Array  # (h, w, 2): pixel x of frame t was at x + backward(x) in frame t-1
    valid: Mask  # (h, w)

    @property
    def valid_fraction(self) -> float:
        return float(self.valid.mean())


@dataclass
class WarpingError:
    """Per-pair warping errors of one video (pair t = frames t-1, t) and their mean."""

    pairs: list[int] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.errors)) if self.errors else float("nan")


def _to_u8(y: np.ndarray) -> npt.NDArray[np.uint8]:
    return np.asarray(np.clip(np.rint(y), 0, 255), dtype=np.uint8)


def _grid(height: int, width: int) -> tuple[Array, Array]:
    gx, gy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return gx, gy


def warp(image: np.ndarray, flow: Array, interpolation: int = cv2.INTER_LINEAR) -> Array:
    """image sampled at x + flow(x) (border replicated), for a (h, w) or (h, w, c) array."""
    gx, gy = _grid(*flow.shape[:2])
    warped = cv2.remap(np.ascontiguousarray(image, dtype=np.float32), gx + flow[..., 0], gy + flow[..., 1],
                       interpolation=interpolation, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(warped, dtype=np.float32)


def occluded(backward: Array, forward: Array) -> Mask:
    """Pixels of frame t whose backward flow the forward flow where it lands does not undo (the
    forward flow sampled bilinearly, as Lai et al. do)."""
    forward_there = warp(forward, backward)
    mismatch = np.sum((backward + forward_there) ** 2, axis=-1)
    size = np.sum(backward**2, axis=-1) + np.sum(forward_there**2, axis=-1)
    return np.asarray(mismatch > OCCLUSION[0] * size + OCCLUSION[1])


def motion_boundaries(flow: Array) -> Mask:
    """Pixels where the flow changes sharply (forward differences, zero at the last row/column)."""
    dx = np.zeros_like(flow)
    dy = np.zeros_like(flow)
    dx[:, :-1] = flow[:, :-1] - flow[:, 1:]
    dy[:-1] = flow[:-1] - flow[1:]
    gradient = np.sum(dx**2 + dy**2, axis=-1)
    return np.asarray(gradient > BOUNDARY[0] * np.sum(flow**2, axis=-1) + BOUNDARY[1])


def outside(flow: Array) -> Mask:
    """Pixels whose source position x + flow(x) is not inside the frame."""
    h, w = flow.shape[:2]
    gx, gy = _grid(h, w)
    x, y = gx + flow[..., 0], gy + flow[..., 1]
    return np.asarray((x < 0) | (x > w - 1) | (y < 0) | (y > h - 1))


def estimate_motion(previous: np.ndarray, current: np.ndarray, crop: int = 0, boundaries: bool = True) -> Motion:
    """The motion between two guide frames (Y on 0-255) and its valid pixels."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]  # not in the stubs
    dis.setFinestScale(0)  # the presets stop at half resolution; full: whole-pixel pans exact, sub-pixel ~0.05 px
    prev8, cur8 = _to_u8(previous), _to_u8(current)
    backward = np.asarray(dis.calc(cur8, prev8, None), dtype=np.float32)
    forward = np.asarray(dis.calc(prev8, cur8, None), dtype=np.float32)
    invalid = occluded(backward, forward) | outside(backward)
    if boundaries:
        invalid |= motion_boundaries(backward)
    if crop:
        invalid[:crop] = invalid[-crop:] = True
        invalid[:, :crop] = invalid[:, -crop:] = True
    return Motion(backward, ~invalid)


def estimate_motions(guide: Sequence[np.ndarray] | np.ndarray, crop: int = 0) -> list[Motion]:
    """The motion of every consecutive pair of a guide video: entry t-1 for pair (t-1, t)."""
    return [estimate_motion(guide[t - 1], guide[t], crop) for t in range(1, len(guide))]


def pair_error(previous: np.ndarray, current: np.ndarray, motion: Motion) -> float:
    """Mean |current - previous warped onto current| over the valid pixels (nan if none)."""
    if not motion.valid.any():
        return float("nan")
    difference = np.abs(np.asarray(current, np.float32) - warp(previous, motion.backward, FRAME_INTERPOLATION))
    return float(difference[motion.valid].mean(dtype=np.float64))


def warping_error(frames: Sequence[np.ndarray] | np.ndarray, motions: Sequence[Motion]) -> WarpingError:
    """The warping error of a video (Y frames on 0-255) under its guide's motions."""
    if len(motions) != len(frames) - 1:
        raise ValueError(f"{len(frames)} frames need {len(frames) - 1} motions, not {len(motions)}.")
    result = WarpingError()
    for t in range(1, len(frames)):
        error = pair_error(frames[t - 1], frames[t], motions[t - 1])
        if np.isfinite(error):
            result.pairs.append(t)
            result.errors.append(error)
    return result
