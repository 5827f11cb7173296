"""The warping error against hand-computed cases: translated images score about zero, per-frame
Gaussian noise of standard deviation s scores 2s/sqrt(pi), occlusions and the frame's edge are
left out, and the checks are the published ones."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from scipy.ndimage import fourier_shift
from skimage import data

from vs_sr.quality import temporal

HEIGHT, WIDTH, FRAMES = 144, 176, 6


def _luma() -> np.ndarray:
    """A natural photo's BT.601 Y on 0-255 (scikit-image's astronaut, 512x512)."""
    rgb = data.astronaut().astype(np.float64) / 255
    return 16 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


def translated(step: tuple[float, float], frames: int = FRAMES, blur: float = 0.0) -> np.ndarray:
    """Crops of the photo whose content moves by `step` (dx, dy) pixels per frame: an exact
    (band-limited, Fourier) shift, so no interpolation kernel is favoured. `blur` (Gaussian sigma)
    first, as an upscaler's output is smooth at the pixel scale."""
    image = _luma()
    if blur:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    spectrum = np.fft.fft2(image)
    out = []
    for n in range(frames):
        shifted = np.fft.ifft2(fourier_shift(spectrum, (n * step[1], n * step[0]))).real
        out.append(shifted[100 : 100 + HEIGHT, 100 : 100 + WIDTH])
    return np.stack(out).astype(np.float32)


def test_warp_follows_opencv_flow_convention():
    """Pixel x of frame t was at x + b(x) in frame t-1: warping t-1 by b rebuilds frame t."""
    frames = translated((3, -2), frames=2)
    flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    flow[..., 0], flow[..., 1] = -3, 2
    inner = (slice(10, -10), slice(10, -10))
    assert np.abs(temporal.warp(frames[0], flow) - frames[1])[inner].max() < 1e-3


@pytest.mark.parametrize("step", [(3, -2), (0, 5), (1, 1)])
def test_integer_translation_scores_about_zero(step):
    frames = translated(step)
    motions = temporal.estimate_motions(frames)
    assert all(m.valid_fraction > 0.85 for m in motions)
    error = temporal.warping_error(frames, motions).mean
    unaligned = float(np.mean(np.abs(np.diff(frames, axis=0))))  # the same frames, motion ignored
    assert error < 0.05 and unaligned > 5, (error, unaligned)  # DIS at full resolution: ~exact


@pytest.mark.parametrize("step", [(0.5, 0.0), (1.25, -0.75), (0.3, 0.3)])
def test_subpixel_translation_scores_about_zero(step):
    """Interpolating a sub-pixel position costs a little: on an image as smooth as an upscaler's
    output (blur 1.0) about 0.1-0.3 levels, a fifth or less of the change the motion makes."""
    frames = translated(step, blur=1.0)
    motions = temporal.estimate_motions(frames)
    error = temporal.warping_error(frames, motions).mean
    unaligned = float(np.mean(np.abs(np.diff(frames, axis=0))))
    assert error < 0.35 and error < unaligned / 5, (error, unaligned)


@pytest.mark.parametrize("sigma", [1.0, 4.0])
@pytest.mark.parametrize("step", [(0, 0), (3, -2)])
def test_per_frame_noise_scores_its_expected_absolute_difference(sigma, step):
    """Frames = aligned content + i.i.d. N(0, sigma^2) per frame; flow from the clean frames (the
    reference). E|X - Y| for independent X, Y ~ N(0, s^2) is 2s/sqrt(pi); the reference itself
    scores about 0, so the added warping error is the noise's."""
    clean = translated(step)
    noisy = clean + np.random.default_rng(1).normal(0, sigma, clean.shape).astype(np.float32)
    motions = temporal.estimate_motions(clean)
    expected = 2 * sigma / math.sqrt(math.pi)
    method = temporal.warping_error(noisy, motions).mean
    reference = temporal.warping_error(clean, motions).mean
    assert reference < 0.05
    assert abs(method - expected) < 0.02 * expected, (method, expected)
    assert abs((method - reference) - expected) < 0.02 * expected


def test_noise_on_a_half_pixel_pan_scores_what_the_cubic_kernel_predicts():
    """Warping t-1 by half a pixel (x) mixes four noise samples with OpenCV's cubic weights
    (a = -0.75 at 0.5: -0.09375, 0.59375, 0.59375, -0.09375); their squares sum to k = 0.72266, so
    X - Y has variance s^2 (1 + k) and E|X - Y| = sqrt(2/pi) s sqrt(1 + k): exactly so with the
    true flow, within 5% with DIS's (about 0.03 px off, which moves the weights)."""
    sigma = 4.0
    clean = translated((0.5, 0), blur=1.0)
    noisy = clean + np.random.default_rng(3).normal(0, sigma, clean.shape).astype(np.float32)
    motions = temporal.estimate_motions(clean)
    k = 2 * 0.59375**2 + 2 * 0.09375**2
    expected = math.sqrt(2 / math.pi) * sigma * math.sqrt(1 + k)
    true = [temporal.Motion(np.broadcast_to(np.float32([-0.5, 0]), m.backward.shape).copy(), m.valid) for m in motions]
    exact = temporal.warping_error(noisy, true).mean
    assert abs(exact - expected) < 0.01 * expected, (exact, expected)
    estimated = temporal.warping_error(noisy, motions).mean
    assert abs(estimated - expected) < 0.05 * expected, (estimated, expected)
    # Absolute differences do not add: the clean frames' own interpolation residual (~0.1) hides
    # inside the noise (E|N + a| is about E|N| for small a), so method - reference undershoots.
    assert temporal.warping_error(clean, true).mean > 0.05


def test_guide_from_noisy_frames_still_gives_the_noise_level():
    """Without a reference the flow comes from the (noisy) video itself; on a static scene the
    flow is still about zero and the score is the noise's."""
    clean = translated((0, 0))
    noisy = clean + np.random.default_rng(2).normal(0, 3.0, clean.shape).astype(np.float32)
    error = temporal.warping_error(noisy, temporal.estimate_motions(noisy)).mean
    assert abs(error - 2 * 3.0 / math.sqrt(math.pi)) < 0.05 * 2 * 3.0 / math.sqrt(math.pi), error


def test_occlusion_check_is_the_published_inequality():
    """|b + f~|^2 > 0.01 (|b|^2 + |f~|^2) + 0.5, per pixel, with f~ = f sampled at x + b(x)."""
    h, w = 8, 8
    backward = np.zeros((h, w, 2), np.float32)
    backward[..., 0] = -2.0  # everything moved right by 2
    forward = np.zeros_like(backward)
    forward[..., 0] = 2.0
    assert not temporal.occluded(backward, forward).any()  # consistent: b + f~ = 0
    # mismatch just below / above threshold: |b + f~|^2 = d^2 vs 0.01 * (4 + (2 + d)^2) + 0.5
    for d, expect in [(0.77, False), (0.80, True)]:
        forward[..., 0] = 2.0 + d
        got = temporal.occluded(backward, forward)[h // 2, w // 2]
        assert bool(got) is expect, (d, d**2, 0.01 * (4 + (2 + d) ** 2) + 0.5)


def test_motion_boundary_check_is_the_published_inequality():
    """|grad b|^2 > 0.01 |b|^2 + 0.002 with forward differences."""
    flow = np.zeros((6, 6, 2), np.float32)
    flow[:, 3:, 0] = 0.04  # a step of 0.04 px: 0.0016 < 0.002 + 0.01 * 0.0016 -> no boundary
    assert not temporal.motion_boundaries(flow).any()
    flow[:, 3:, 0] = 0.05  # 0.0025 > 0.002 -> the column before the step is a boundary
    assert temporal.motion_boundaries(flow)[:, 2].all() and temporal.motion_boundaries(flow).sum() == 6


def test_a_moving_object_leaves_its_occlusions_out():
    """A bright square moves over a static textured background: the pixels it uncovers have no
    match in the previous frame and are masked, so the exact frames score about zero."""
    background = translated((0, 0), frames=1)[0]
    frames = []
    for n in range(4):
        frame = background.copy()
        frame[40:90, 30 + 12 * n : 80 + 12 * n] = 220 + 10 * np.sin(np.arange(50) / 3)[None, :]
        frames.append(frame)
    frames = np.stack(frames)
    motions = temporal.estimate_motions(frames)
    assert all(0.5 < m.valid_fraction < 0.99 for m in motions)
    assert temporal.warping_error(frames, motions).mean < 1.0
    everything = [temporal.Motion(m.backward, np.ones_like(m.valid)) for m in motions]
    assert temporal.warping_error(frames, everything).mean > 3 * temporal.warping_error(frames, motions).mean


def test_crop_and_frame_edge_are_left_out():
    frames = translated((4, 0))
    motion = temporal.estimate_motion(frames[0], frames[1], crop=2)
    assert not motion.valid[:2].any() and not motion.valid[-2:].any() and not motion.valid[:, -2:].any()
    assert not motion.valid[:, 2:4].any()  # content that came in from the left edge: x + b(x) < 0
    assert motion.valid[2:-2, 4:-2].mean() > 0.9


def test_a_scene_cut_pair_is_skipped_or_small():
    """Two unrelated pictures: almost nothing passes the checks; a pair with no valid pixel is
    not averaged in (nan), so one cut does not dominate the mean."""
    a = translated((0, 0), frames=1)[0]
    motion = temporal.Motion(np.zeros((HEIGHT, WIDTH, 2), np.float32), np.zeros((HEIGHT, WIDTH), bool))
    assert math.isnan(temporal.pair_error(a, a[::-1], motion))
    result = temporal.warping_error(np.stack([a, a[::-1]]), [motion])
    assert result.pairs == [] and math.isnan(result.mean)


def test_frame_and_motion_counts_must_agree():
    frames = translated((1, 0), frames=3)
    with pytest.raises(ValueError, match="3 frames need 2 motions"):
        temporal.warping_error(frames, temporal.estimate_motions(frames[:2]))
