"""Tile plans: one static tile shape per frame, padding to the model's multiple, feathered blending.

Every tile of a frame has the same shape, so a backend compiles one graph (or engine) per clip.
Along each axis tiles are spread evenly from edge to edge, each overlapping its neighbours by at
least `overlap` input pixels; an axis shorter than a tile is padded (reflected) up to the tile and
the padding is cropped from the output. Overlaps are blended with linear ramps normalised to sum
to one, summed in a fixed order, so the result depends on the frame alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SRError
from ..models.architectures import ArchTraits, round_up
from .arguments import Pair


@dataclass(frozen=True)
class AxisPlan:
    """Tile positions along one axis, in input pixels, and each tile's output-space weights."""

    size: int
    tile: int
    starts: tuple[int, ...]
    weights: tuple[np.ndarray | None, ...]
    """Per tile: normalised blend weights over its cropped output span, or None for weight 1."""

    def span(self, index: int) -> tuple[int, int]:
        """Input-pixel span [start, end) of tile `index` inside the frame (padding excluded)."""
        start = self.starts[index]
        return start, min(start + self.tile, self.size)

    @property
    def padding(self) -> int:
        return max(0, self.tile - self.size)


def plan_axis(size: int, tile: int, overlap: int, scale: int) -> AxisPlan:
    """Evenly spread tiles of length `tile` over `size` pixels with at least `overlap` shared."""
    if tile >= size:
        return AxisPlan(size, tile, (0,), (None,))
    count = math.ceil((size - overlap) / (tile - overlap))
    starts = tuple(round(i * (size - tile) / (count - 1)) for i in range(count))
    return AxisPlan(size, tile, starts, _blend_weights(starts, tile, scale))


def _blend_weights(starts: tuple[int, ...], tile: int, scale: int) -> tuple[np.ndarray, ...]:
    """Linear ramps across each actual overlap, normalised so the tiles' weights sum to one."""
    length = (starts[-1] + tile) * scale
    raw = []
    for i, start in enumerate(starts):
        lo, hi = start * scale, (start + tile) * scale
        x = np.arange(lo, hi, dtype=np.float64) + 0.5
        ramp = np.ones(hi - lo)
        prev_end = (starts[i - 1] + tile) * scale if i > 0 else lo
        next_start = starts[i + 1] * scale if i + 1 < len(starts) else hi
        if prev_end > lo:  # rise across the overlap with the previous tile
            ramp = np.minimum(ramp, (x - lo) / (prev_end - lo))
        if next_start < hi:  # fall across the overlap with the next tile
            ramp = np.minimum(ramp, (hi - x) / (hi - next_start))
        raw.append((lo, ramp))
    total = np.zeros(length)
    for lo, ramp in raw:
        total[lo:lo + len(ramp)] += ramp
    return tuple((ramp / total[lo:lo + len(ramp)]).astype(np.float32) for lo, ramp in raw)


@dataclass(frozen=True)
class TilePlan:
    """How one frame of `width` x `height` is cut into tiles of one static shape and put back."""

    width: int
    height: int
    scale: int
    overlap: int
    x: AxisPlan
    y: AxisPlan

    @property
    def tile_shape(self) -> tuple[int, int]:
        """(height, width) of every tile: the network's static input shape."""
        return self.y.tile, self.x.tile

    @property
    def count(self) -> int:
        return len(self.x.starts) * len(self.y.starts)

    @property
    def blends(self) -> bool:
        return self.count > 1

    def split_below(self, side: int) -> bool:
        """Whether an axis that is cut into several tiles has tiles shorter than `side`."""
        return any(len(axis.starts) > 1 and axis.tile < side for axis in (self.x, self.y))

    def _grid(self) -> list[tuple[int, int]]:
        return [(iy, ix) for iy in range(len(self.y.starts)) for ix in range(len(self.x.starts))]

    def extract(self, planes: Sequence[np.ndarray], first: int = 0, count: int | None = None,
                out: np.ndarray | None = None) -> np.ndarray:
        """Tiles [first, first+count) of the frame's three planes as one (N, 3, h, w) float32 batch.

        With `out` (a session's own input buffer, N >= the tiles) the tiles are written there and
        its entries beyond them zeroed: the batch a static shape needs, without a copy.
        """
        grid = self._grid()[first:None if count is None else first + count]
        th, tw = self.tile_shape
        batch = np.empty((len(grid), 3, th, tw), np.float32) if out is None else out
        for n, (iy, ix) in enumerate(grid):
            (y0, y1), (x0, x1) = self.y.span(iy), self.x.span(ix)
            for c, plane in enumerate(planes):
                batch[n, c, : y1 - y0, : x1 - x0] = plane[y0:y1, x0:x1]
        if self.y.padding or self.x.padding:
            _reflect_pad(batch[:len(grid)], self.height if self.y.padding else th, self.width if self.x.padding else tw)
        batch[len(grid):] = 0
        return batch

    def stitch(self, outputs: np.ndarray, first: int, dest: Sequence[np.ndarray], clamped: bool = False) -> None:
        """Put network outputs for tiles [first, first+len(outputs)) into the output planes.

        Unblended tiles are clamped to [0, 1] (unless the network did: `clamped`) and copied;
        blended ones are accumulated with their weights into `dest`, which must start at zero, and
        clamped by `finish`.
        """
        s = self.scale
        for n, (iy, ix) in enumerate(self._grid()[first:first + len(outputs)]):
            (y0, y1), (x0, x1) = self.y.span(iy), self.x.span(ix)
            rows, cols = slice(y0 * s, y1 * s), slice(x0 * s, x1 * s)
            tile = outputs[n, :, : (y1 - y0) * s, : (x1 - x0) * s]
            if not self.blends:
                for c, plane in enumerate(dest):
                    if clamped:
                        np.copyto(plane[rows, cols], tile[c])
                    else:
                        np.clip(tile[c], 0.0, 1.0, out=plane[rows, cols])
                continue
            weight = np.outer(_or_ones(self.y.weights[iy], tile.shape[1]), _or_ones(self.x.weights[ix], tile.shape[2]))
            for c, plane in enumerate(dest):
                plane[rows, cols] += tile[c] * weight

    def finish(self, dest: Sequence[np.ndarray]) -> None:
        if self.blends:
            for plane in dest:
                np.clip(plane, 0.0, 1.0, out=plane)


def _or_ones(weights: np.ndarray | None, length: int) -> np.ndarray:
    return np.ones(length, np.float32) if weights is None else weights


def _reflect_pad(batch: np.ndarray, height: int, width: int) -> None:
    """Fill batch[..., height:, :] and batch[..., :, width:] by reflecting the valid area."""
    th, tw = batch.shape[2:]
    if width < tw:
        batch[:, :, :height, width:] = np.pad(batch[:, :, :height, :width], ((0, 0), (0, 0), (0, 0), (0, tw - width)),
                                              mode="reflect" if width > 1 else "edge")[:, :, :, width:]
    if height < th:
        batch[:, :, height:, :] = np.pad(batch[:, :, :height, :], ((0, 0), (0, 0), (0, th - height), (0, 0)),
                                         mode="reflect" if height > 1 else "edge")[:, :, height:, :]


def auto_tile(size: int, other: int, budget: int, overlap: int, multiple: int, floor: int = 0) -> int:
    """A tile length for an axis of `size` so that tiles stay within `budget` pixels and balance,
    and are at least `floor` long (networks whose output depends on the tile: `tile_safe`)."""
    side = max(multiple, math.isqrt(budget), floor)
    if size <= side and size * other <= budget:
        return round_up(size, multiple)
    count = max(1, math.ceil((size - overlap) / max(1, side - overlap)))  # an axis within the overlap: one tile
    balanced = round_up(math.ceil((size + (count - 1) * overlap) / count), multiple)
    return max(balanced, round_up(min(floor, size), multiple))


def plan_tiles(
    width: int,
    height: int,
    scale: int,
    traits: ArchTraits,
    tile: Pair | None = None,
    overlap: Pair | None = None,
    fixed_shape: tuple[int, int] | None = None,
    budget: int | None = None,
) -> TilePlan:
    """The tile plan for frames of `width` x `height`, from the caller's tile/overlap ((width,
    height) pairs) or automatically (whole frames up to `budget` input pixels: the model's CPU
    budget unless given; never tiles below `traits.min_tile` for networks that are not tile-safe)."""
    m = traits.multiple
    ov_w, ov_h = overlap if overlap is not None else (traits.overlap, traits.overlap)
    if fixed_shape is not None:
        fh, fw = fixed_shape
        if tile is not None and tile != (fw, fh):
            raise SRError(f"this ONNX graph only accepts {fw}x{fh} tiles; pass tile=({fw}, {fh}) or leave tile unset.")
        tile_w, tile_h = fw, fh
    elif tile is not None:
        if min(tile) < traits.min_size:  # (the least the overlap check below takes too, so both say one size)
            least = max(traits.min_size, 2 * max(ov_w, ov_h))
            raise SRError(f"tile {tile[0]}x{tile[1]} is below the {traits.min_size}-pixel minimum of this network; "
                          f"use tile={least} or more (or leave tile unset).")
        # A tile larger than the frame would only add padding: one tile covers the frame.
        tile_w, tile_h = (round_up(min(t, side), m) for t, side in zip(tile, (width, height), strict=True))
    else:
        budget = budget or traits.tile_pixels
        if width * height <= budget:
            tile_w, tile_h = round_up(width, m), round_up(height, m)
        else:
            floor = 0 if traits.tile_safe else traits.min_tile
            tile_w = auto_tile(width, height, budget, ov_w, m, floor)
            tile_h = auto_tile(height, width, budget, ov_h, m, floor)
    # An overlap only matters on axes that are actually split.
    ov_w = ov_w if tile_w < width else 0
    ov_h = ov_h if tile_h < height else 0
    whose = "the" if overlap is not None else "this network's default"
    for length, ov, axis in ((tile_w, ov_w, "width"), (tile_h, ov_h, "height")):
        if ov and length < 2 * ov:
            raise SRError(f"tile {axis} {length} is less than twice {whose} overlap of {ov} pixels; "
                          f"use a tile of at least {2 * ov}, or a smaller overlap=.")
    return TilePlan(
        width=width,
        height=height,
        scale=scale,
        overlap=max(ov_w, ov_h),
        x=plan_axis(width, tile_w, ov_w, scale),
        y=plan_axis(height, tile_h, ov_h, scale),
    )
