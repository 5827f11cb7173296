"""Device memory and tiles: tiles sized from free memory, and the one rule for running out of it.

A GPU that runs out of memory gets tiles of half the size, down to a floor; below it the error
says what to change. Running out while the sessions open shrinks the tiles before any frame
is made (every frame keeps the same tiles); running out in the middle of a clip moves the tile
seams of the frames after it, which is logged.
"""

from __future__ import annotations

import threading

import vapoursynth as vs

from ..devices import available_memory
from ..errors import SRError
from ..log import warn
from ..models.architectures import ArchTraits, round_up
from .arguments import Pair
from .tiling import TilePlan, plan_tiles

MEMORY_FRACTION = 0.5  # of free device memory that tiles in flight may use


def check_frame_memory(width: int, height: int, streams: int, fix: str) -> None:
    """Refuse, before any frame is made, an output size whose frames in flight (a float RGB frame
    per stream, and one converted back) would not fit in the memory available; `fix` says what to
    change, in the caller's words."""
    needed = 12 * width * height * (streams + 1)
    available = available_memory()
    if available is not None and needed > available:
        raise SRError(f"a {width}x{height} output needs at least {needed / 2**30:.1f} GiB of memory ({streams + 1} "
                      f"frames of {12 * width * height / 2**30:.1f} GiB in float RGB) and {available / 2**30:.1f} GiB "
                      f"are available; {fix}.")


def memory_budget(free_bytes: int, traits: ArchTraits, precision: str) -> int:
    """Input pixels that fit in MEMORY_FRACTION of `free_bytes` at this precision (GPU tile sizing)."""
    per_pixel = traits.bytes_per_pixel * (1.0 if precision == "fp32" else 0.5)
    return max(64 * 64, int(free_bytes * MEMORY_FRACTION / per_pixel))


def halved(plan: TilePlan, traits: ArchTraits, overlap: Pair | None = None) -> TilePlan | None:
    """The same frame in tiles of half the size (for a retry after running out of memory), or
    None when the tiles cannot shrink any more. `overlap` is the caller's, if they gave one."""
    th, tw = plan.tile_shape
    smaller = (max(traits.multiple, round_up(tw // 2, traits.multiple)), max(traits.multiple, round_up(th // 2, traits.multiple)))
    wanted = traits.overlap if overlap is None else max(overlap)
    shared = min(wanted, min(smaller) // 2)
    if smaller == (tw, th) or min(smaller) < max(32, 2 * shared):
        return None
    if not traits.tile_safe and plan_tiles(plan.width, plan.height, plan.scale, traits, smaller).split_below(
            traits.min_tile):
        return None  # smaller tiles would change the picture, not just the seams
    return plan_tiles(plan.width, plan.height, plan.scale, traits, smaller, (shared, shared))


class Tiles:
    """The tiles frames are cut into now, and the batch of tiles per inference call.

    Shared by every frame of a clip; `after_out_of_memory` is the only place they change.
    """

    def __init__(self, plan: TilePlan, batch: int, traits: ArchTraits, overlap: Pair | None, resizable: bool) -> None:
        self.plan = plan
        self.batch = batch
        self.traits = traits
        self.overlap = overlap
        self.resizable = resizable
        """False where tiles cannot change: an ONNX graph with a fixed shape, or sessions that
        only run the shape they were opened for."""
        self._lock = threading.Lock()
        # The core of the script that built the filter: frames run on worker threads, where the
        # `vs.core` proxy may name another environment (previewers reload scripts).
        self.core = vs.core.core

    def current(self) -> tuple[TilePlan, int]:
        with self._lock:
            return self.plan, self.batch

    def after_out_of_memory(self, failed: TilePlan, error: Exception) -> tuple[TilePlan, int]:
        """The tiles to retry with after `failed` ran out of memory (halved, one per call); a
        clear error when they cannot shrink. Other frames that failed with the same tiles get
        the same answer."""
        with self._lock:
            if self.plan is not failed:
                return self.plan, self.batch
            smaller = halved(failed, self.traits, self.overlap) if self.resizable else None
            th, tw = failed.tile_shape
            if smaller is None:
                raise SRError(f"out of device memory with {tw}x{th} tiles ({error}); pass a smaller tile=, "
                              "fewer num_streams, or precision='fp16'/'bf16'.")
            sh, sw = smaller.tile_shape
            warn(f"out of device memory with {tw}x{th} tiles: retrying with {sw}x{sh} tiles, one at a time "
                 "(frames from here on use them too)", self.core)
            self.plan, self.batch = smaller, 1
            return self.plan, self.batch
