"""Per-frame work: RGB planes -> tiles -> a free stream -> stitched planes -> output frame.

Runs on VapourSynth's worker threads. The runtimes release the GIL while they infer, so frames
on different streams overlap; the result of a frame depends on that frame alone. With several
GPUs, frame n always goes to device n % count. The one exception: a GPU that runs out of memory
in the middle of a clip gets smaller tiles from then on (logged), which moves the tile seams of
the frames after it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import vapoursynth as vs

from .backends.base import OutOfMemory
from .errors import sr_error
from .log import warn
from .streams import StreamPool
from .tiling import TilePlan

Shrink = Callable[[TilePlan], TilePlan | None]


class FrameUpscaler:
    """The ModifyFrame selector that turns one planar float RGB frame into its upscaled frame."""

    def __init__(self, plan: TilePlan, pools: Sequence[StreamPool], batch: int, shrink: Shrink | None = None) -> None:
        self.plan = plan
        self.pools = list(pools)
        self.batch = batch
        self.shrink = shrink
        """Smaller tiles to retry a frame with after running out of memory (backends whose
        sessions take any shape); None where tiles cannot change."""
        self._lock = threading.Lock()
        # The core of the script that built the filter: callbacks run on worker threads, where
        # the `vs.core` proxy may name another environment (previewers reload scripts).
        self.core = vs.core.core

    def __call__(self, n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        s = self.plan.scale
        out = self.core.create_video_frame(f.format, f.width * s, f.height * s)
        planes = [np.asarray(f[p]) for p in range(3)]
        dest = [np.asarray(out[p]) for p in range(3)]
        pool = self.pools[n % len(self.pools)]
        with self._lock:
            plan, batch = self.plan, self.batch
        while True:
            try:
                self.upscale_planes(planes, dest, pool, plan, batch)
                break
            except OutOfMemory as error:
                plan, batch = self._smaller(plan, error)
        out.props.update(f.props)
        return out

    def upscale_planes(self, planes: list[np.ndarray], dest: list[np.ndarray], pool: StreamPool | None = None,
                       plan: TilePlan | None = None, batch: int | None = None) -> None:
        """Upscale three float32 planes into three float32 planes `scale` times larger."""
        plan, batch, pool = plan or self.plan, batch or self.batch, pool or self.pools[0]
        if plan.blends:  # blended tiles accumulate into the planes
            for plane in dest:
                plane.fill(0)
        for first in range(0, plan.count, batch):
            tiles = plan.extract(planes, first, batch)
            valid = len(tiles)
            if valid < batch:  # the last batch keeps the static shape
                tiles = np.concatenate([tiles, np.zeros((batch - valid, *tiles.shape[1:]), np.float32)])
            with pool.session() as session:
                plan.stitch(session.run(tiles)[:valid], first, dest)
        plan.finish(dest)

    def _smaller(self, failed: TilePlan, error: OutOfMemory) -> tuple[TilePlan, int]:
        """The plan to retry with after `failed` ran out of memory; later frames keep using it."""
        smaller = self.shrink(failed) if self.shrink else None
        th, tw = failed.tile_shape
        if smaller is None:
            raise sr_error(f"out of device memory with {tw}x{th} tiles ({error}); pass a smaller tile=, "
                           "fewer num_streams, or precision='fp16'/'bf16'.")
        with self._lock:
            if self.plan is failed:
                self.plan, self.batch = smaller, 1
                sh, sw = smaller.tile_shape
                warn(f"out of device memory with {tw}x{th} tiles: retrying with {sw}x{sh} tiles, one at a time "
                     "(frames from here on use them too)", self.core)
            return self.plan, self.batch
