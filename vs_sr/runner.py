"""Per-frame work: RGB planes -> tiles -> a free stream -> stitched planes -> output frame.

Runs on VapourSynth's worker threads. The runtimes release the GIL while they infer, so frames
on different streams overlap; the result of a frame depends on that frame alone.
"""

from __future__ import annotations

import numpy as np
import vapoursynth as vs

from .streams import StreamPool
from .tiling import TilePlan


class FrameUpscaler:
    """The ModifyFrame selector that turns one planar float RGB frame into its upscaled frame."""

    def __init__(self, plan: TilePlan, pool: StreamPool, batch: int) -> None:
        self.plan = plan
        self.pool = pool
        self.batch = batch

    def __call__(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        blank, source = f
        out = blank.copy()
        self.upscale_planes([np.asarray(source[p]) for p in range(3)], [np.asarray(out[p]) for p in range(3)])
        out.props.clear()
        out.props.update(source.props)
        return out

    def upscale_planes(self, planes: list[np.ndarray], dest: list[np.ndarray]) -> None:
        """Upscale three float32 planes into three zeroed float32 planes `scale` times larger."""
        plan, batch = self.plan, self.batch
        with self.pool.session() as session:
            for first in range(0, plan.count, batch):
                tiles = plan.extract(planes, first, batch)
                valid = len(tiles)
                if valid < batch:  # the last batch keeps the static shape
                    tiles = np.concatenate([tiles, np.zeros((batch - valid, *tiles.shape[1:]), np.float32)])
                plan.stitch(session.run(tiles)[:valid], first, dest)
        plan.finish(dest)
