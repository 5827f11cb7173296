"""Per-frame work: RGB planes -> tiles -> a free session -> stitched planes -> output frame.

Runs on VapourSynth's worker threads. The runtimes release the GIL while they infer, so frames
on different streams overlap; the result of a frame depends on that frame alone. With several
GPUs, frame n always goes to device n % count. The one exception: a GPU that runs out of memory
in the middle of a clip gets smaller tiles from then on (see `memory.Tiles`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import vapoursynth as vs

from ..backends import OutOfMemory
from ..errors import frame_errors
from .formats import check_progressive, resized_alpha
from .memory import Tiles
from .sessions import SessionPool
from .tiling import TilePlan


class FrameUpscaler:
    """The ModifyFrame selector that turns one planar float RGB frame into its upscaled frame, with
    its alpha plane (_Alpha) resized to `alpha_size` (the clip's output size; default: the scale's)."""

    def __init__(self, tiles: Tiles, pools: Sequence[SessionPool], alpha_size: tuple[int, int] | None = None) -> None:
        self.tiles = tiles
        self.pools = list(pools)
        self.alpha_size = alpha_size

    @frame_errors
    def __call__(self, n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        check_progressive(n, f)
        s = self.tiles.plan.scale
        out = self.tiles.core.create_video_frame(f.format, f.width * s, f.height * s)
        planes = [np.asarray(f[p]) for p in range(3)]
        dest = [np.asarray(out[p]) for p in range(3)]
        pool = self.pools[n % len(self.pools)]
        plan, batch = self.tiles.current()
        while True:
            try:
                upscale_planes(planes, dest, pool, plan, batch)
                break
            except OutOfMemory as error:
                plan, batch = self.tiles.after_out_of_memory(plan, error)
        out.props.update(f.props)
        alpha = f.props.get("_Alpha")
        if isinstance(alpha, vs.VideoFrame):  # the conversions back to the clip's format carry it as it is
            width, height = self.alpha_size or (f.width * s, f.height * s)
            out.props["_Alpha"] = resized_alpha(alpha, width, height, self.tiles.core)
        return out


def upscale_planes(planes: Sequence[np.ndarray], dest: Sequence[np.ndarray], pool: SessionPool, plan: TilePlan,
                   batch: int) -> None:
    """Upscale three float32 planes into three float32 planes `plan.scale` times larger."""
    if plan.blends:  # blended tiles accumulate into the planes
        for plane in dest:
            plane.fill(0)
    for first in range(0, plan.count, batch):
        valid = min(batch, plan.count - first)
        with pool.session() as session:
            buffer = session.input_buffer()  # the tiles go straight into the session's input
            if buffer is not None and buffer.shape == (batch, 3, *plan.tile_shape):
                tiles = plan.extract(planes, first, batch, out=buffer)
            else:
                tiles = plan.extract(planes, first, batch)
                if valid < batch and not session.partial_batches:  # the last batch keeps the static shape
                    tiles = np.concatenate([tiles, np.zeros((batch - valid, *tiles.shape[1:]), np.float32)])
            plan.stitch(session.run(tiles)[:valid], first, dest, clamped=session.clamped and not plan.blends)
    plan.finish(dest)
