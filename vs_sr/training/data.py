"""Training data: frames decoded once into a cache, low/high-res pairs, random patches.

Pairs come from two videos of the same footage (low-res source, high-res reference) or from
high-res video alone with synthesized degradations. When the sizes are not an exact multiple of
each other (a 214x144 upload against an 856x480 one), the high-res frames are resized (Spline36)
to exactly `scale` times the low-res size: the network learns its own scale, and `Upscale(...,
width=, height=)` resizes its output to the exact size at inference, the inverse step.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import build_once, cache_file
from ..errors import SRError
from ..filter.formats import to_rgbs
from ..media.tools import open_video
from ..paths import cache_dir
from .degrade import Degradation, degrade

if TYPE_CHECKING:
    import torch

RECIPE = 1  # bump when decoding or degrading changes what the cache holds


@dataclass
class FramePairs:
    lr: np.ndarray
    """(n, h, w, 3) uint8 RGB."""
    hr: np.ndarray
    """(n, h * scale, w * scale, 3) uint8 RGB."""
    frames: list[int]
    """Frame numbers in the source video."""

    def take(self, keep: np.ndarray) -> FramePairs:
        return FramePairs(self.lr[keep], self.hr[keep], [f for f, k in zip(self.frames, keep, strict=True) if k])


def _cache_path(kind: str, path: Path, **params: object) -> Path:
    stat = path.stat()
    text = json.dumps({"path": str(path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns,
                       "recipe": RECIPE, **params}, sort_keys=True, default=str)
    return cache_file(cache_dir("frames"), path.stem, f"-{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.npz")


def _load(cached: Path) -> tuple[np.ndarray, list[int]]:
    with np.load(cached) as data:
        return data["frames"], data["indices"].tolist()


def read_frames(path: Path, every: int, size: tuple[int, int] | None = None) -> tuple[np.ndarray, list[int]]:
    """Every `every`-th frame of a video as (n, h, w, 3) uint8 RGB, optionally resized; decoded once."""
    if every < 1:
        raise SRError(f"every must be at least 1, not {every}.")

    def decode(target: Path) -> None:
        clip = open_video(path)
        if size is not None and (clip.width, clip.height) != size:
            clip = to_rgbs(clip).resize.Spline36(*size)
        rgb = to_rgbs(clip)[::every]
        indices = list(range(0, clip.num_frames, every))
        frames = np.empty((len(indices), rgb.height, rgb.width, 3), np.uint8)
        for n, frame in enumerate(rgb.frames()):
            planes = np.stack([np.asarray(frame[p]) for p in range(3)], axis=-1)
            frames[n] = (np.clip(planes, 0, 1) * 255).round()
        with open(target, "wb") as handle:
            np.savez(handle, frames=frames, indices=np.array(indices))

    return _load(build_once(_cache_path("frames", path, every=every, size=size), decode))


RESIZE_ALLOWANCE = 1.5  # most a paired high-res frame is resized to `scale` times its low-res one (144p/480p: 1.2)


def paired(lr_path: Path, hr_path: Path, every: int, scale: int) -> FramePairs:
    """Pairs from a low-res video and the high-res video of the same footage, frame-aligned."""
    check_pair(lr_path, hr_path, scale)
    lr, frames = read_frames(lr_path, every)
    hr, hr_frames = read_frames(hr_path, every, (lr.shape[2] * scale, lr.shape[1] * scale))
    if frames != hr_frames:
        raise SRError(f"{lr_path.name} and {hr_path.name} have different frame counts; paired videos must be "
                       "frame-aligned (the same frames at two resolutions).")
    return FramePairs(lr, hr, frames)


def synthesized(hr_path: Path, every: int, scale: int, degradation: Degradation, seed: int) -> FramePairs:
    """Pairs from high-res video alone: each frame degraded as an upload would be (cached)."""
    hr, frames = read_frames(hr_path, every)
    step = 2 * scale  # the low-res frames must be even for 4:2:0 x264
    height, width = hr.shape[1] // step * step, hr.shape[2] // step * step
    hr = np.ascontiguousarray(hr[:, :height, :width])

    def build(target: Path) -> None:
        with open(target, "wb") as handle:
            np.savez(handle, frames=degrade(hr, scale, degradation, seed), indices=np.array(frames))

    cached = _cache_path("degraded", hr_path, every=every, scale=scale, degradation=degradation.key(), seed=seed)
    lr, _ = _load(build_once(cached, build))
    return FramePairs(lr, hr, frames)


def check_pair(lr_path: Path, hr_path: Path, scale: int) -> None:
    """Refuse a pair that is not the same frames `scale` times apart, before any frame is read:
    frame counts differ, or the high-res frames would be resized far to reach `scale` times the
    low-res ones (a x2 pair at --scale 4, or --hr and --lr swapped)."""
    low, high = open_video(lr_path), open_video(hr_path)
    if low.num_frames != high.num_frames:
        raise SRError(f"{lr_path.name} has {low.num_frames} frames and {hr_path.name} {high.num_frames}; paired "
                      "videos must be frame-aligned (the same frames at two resolutions).")
    ratio = high.height / low.height
    if not 1 / RESIZE_ALLOWANCE <= scale / ratio <= RESIZE_ALLOWANCE:
        raise SRError(f"{hr_path.name} ({high.width}x{high.height}) is {ratio:.2g} times {lr_path.name} "
                      f"({low.width}x{low.height}), far from --scale {scale}: its frames would be resized "
                      f"{scale / ratio:.2g}x to make the targets. Pass --scale {max(1, round(ratio))}, or check that "
                      "--hr and --lr are not swapped.")


class PatchSampler:
    """Random aligned patches with random flips/rotations, from a seeded, checkpointable generator."""

    def __init__(self, pairs: list[FramePairs], patch: int, scale: int, batch: int, seed: int) -> None:
        self.pairs = [p for p in pairs if len(p.frames)]
        self.scale = scale
        self.lr_patch = patch // scale
        self.batch = batch
        self.rng = np.random.default_rng(seed)
        if not self.pairs:
            raise SRError("no training frames: check the videos and --every.")
        smallest = min(min(p.lr.shape[1:3]) for p in self.pairs)
        if self.lr_patch < 1:
            raise SRError(f"--patch {patch} is smaller than the scale, {scale}: a patch is cut from the high-res "
                          f"frames, {scale} times the low-res one; use --patch {scale} or more.")
        if self.lr_patch > smallest:
            raise SRError(f"patch {patch} needs low-res frames of at least {self.lr_patch} pixels (have {smallest}); "
                           "use a smaller --patch.")
        self.weights = np.array([len(p.frames) for p in self.pairs], np.float64)
        self.weights /= self.weights.sum()

    def state(self) -> dict[str, Any]:
        return dict(self.rng.bit_generator.state)

    def restore(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(lr, hr) float32 tensors of shape (batch, 3, p, p) and (batch, 3, p*s, p*s) in [0, 1]."""
        import torch

        p, s = self.lr_patch, self.scale
        lows, highs = [], []
        for _ in range(self.batch):
            pairs = self.pairs[self.rng.choice(len(self.pairs), p=self.weights)]
            n = self.rng.integers(len(pairs.frames))
            y = self.rng.integers(pairs.lr.shape[1] - p + 1)
            x = self.rng.integers(pairs.lr.shape[2] - p + 1)
            low = pairs.lr[n, y : y + p, x : x + p]
            high = pairs.hr[n, y * s : (y + p) * s, x * s : (x + p) * s]
            turns, flip = int(self.rng.integers(4)), int(self.rng.integers(2))
            low, high = np.rot90(low, turns), np.rot90(high, turns)
            if flip:
                low, high = low[:, ::-1], high[:, ::-1]
            lows.append(np.ascontiguousarray(low))
            highs.append(np.ascontiguousarray(high))

        def tensor(images: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255)

        return tensor(lows), tensor(highs)
