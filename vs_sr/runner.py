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
        # The core of the script that built the filter: callbacks run on worker threads, where
        # the `vs.core` proxy may name another environment (previewers reload scripts).
        self.core = vs.core.core

    def __call__(self, n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        s = self.plan.scale
        out = self.core.create_video_frame(f.format, f.width * s, f.height * s)
        dest = [np.asarray(out[p]) for p in range(3)]
        if self.plan.blends:  # blended tiles accumulate into the planes
            for plane in dest:
                plane.fill(0)
        self.upscale_planes([np.asarray(f[p]) for p in range(3)], dest)
        out.props.update(f.props)
        return out

    def upscale_planes(self, planes: list[np.ndarray], dest: list[np.ndarray]) -> None:
        """Upscale three float32 planes into three float32 planes `scale` times larger
        (zeroed beforehand when the plan blends tiles)."""
        plan, batch = self.plan, self.batch
        for first in range(0, plan.count, batch):
            tiles = plan.extract(planes, first, batch)
            valid = len(tiles)
            if valid < batch:  # the last batch keeps the static shape
                tiles = np.concatenate([tiles, np.zeros((batch - valid, *tiles.shape[1:]), np.float32)])
            with self.pool.session() as session:
                plan.stitch(session.run(tiles)[:valid], first, dest)
        plan.finish(dest)
