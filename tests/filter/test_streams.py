"""num_streams: frames take whichever session is free and run at the same time, whatever order
or subset of frames VapourSynth asks for; a frame waits only when every session is busy."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import vapoursynth as vs
from conftest import moving_photo_clip

from vs_sr.backends import Session, SessionSpec, get_backend
from vs_sr.filter.frames import FrameUpscaler
from vs_sr.filter.memory import Tiles
from vs_sr.filter.sessions import SessionPool
from vs_sr.filter.tiling import plan_tiles
from vs_sr.filter.upscale_clip import upscaled_rgbs
from vs_sr.models import resolve

core = vs.core


class Recording(Session):
    """A real ONNX Runtime session that records how many sessions run at once."""

    active = 0
    peak = 0
    lock = threading.Lock()

    def __init__(self, inner: Session) -> None:
        self.inner = inner

    def run(self, batch: np.ndarray) -> np.ndarray:
        with Recording.lock:
            Recording.active += 1
            Recording.peak = max(Recording.peak, Recording.active)
        try:
            return self.inner.run(batch)
        finally:
            with Recording.lock:
                Recording.active -= 1


@pytest.mark.parametrize("pick", ["all", "even"])
def test_frames_use_every_free_stream(ncnn_models, pick):
    network = resolve("realesr-animevideov3", 4)
    plan = plan_tiles(64, 48, 4, network.traits)
    sessions = get_backend("ort").open(SessionSpec(network, 1, *plan.tile_shape, "fp32", 2, 0))
    pool = SessionPool([Recording(s) for s in sessions])
    tiles = Tiles(plan, 1, network.traits, None, resizable=False)
    clip = upscaled_rgbs(moving_photo_clip(64, 48, 12), 4, FrameUpscaler(tiles, [pool]), 2)
    if pick == "even":  # a downstream filter that only wants every other frame
        clip = clip.std.SelectEvery(2, 0)
    threads = core.num_threads
    core.num_threads = 4
    try:
        Recording.peak = 0
        frames = list(clip.frames(prefetch=4))
    finally:
        core.num_threads = threads
    assert len(frames) == clip.num_frames
    assert Recording.peak == 2  # both sessions busy at once, never more
