"""Output frame n is a pure function of input frame n: the same bits whatever the request order,
VapourSynth thread count, stream count or tiling batch."""

from __future__ import annotations

import random

import pytest
import vapoursynth as vs
from conftest import frame_hash, moving_photo_clip

import vs_sr as sr

core = vs.core
LENGTH = 8


def hashes(clip: vs.VideoNode, order: list[int]) -> dict[int, str]:
    return {n: frame_hash(clip.get_frame(n)) for n in order}


def upscaled(backend: str, num_streams: int, **kwargs) -> vs.VideoNode:
    # YUV in and out, so the conversions (and their dithering) are covered as well.
    clip = moving_photo_clip(64, 48, LENGTH).resize.Bicubic(format=vs.YUV420P10, matrix=1)
    return sr.Upscale(clip, "realesr-animevideov3", 4, backend=backend, num_streams=num_streams, **kwargs)


@pytest.fixture
def restore_threads():
    threads = core.num_threads
    yield
    core.num_threads = threads


@pytest.mark.parametrize("backend", ["openvino", "ort", "torch"])
def test_same_bits_for_any_order_threads_and_streams(ncnn_models, backend, restore_threads):
    order = list(range(LENGTH))
    shuffled = order[:]
    random.Random(7).shuffle(shuffled)
    core.num_threads = 1
    reference = hashes(upscaled(backend, 1), order)
    assert len(set(reference.values())) == LENGTH  # the frames really differ
    for threads in (1, 2):
        core.num_threads = threads
        for streams in (1, 2):
            clip = upscaled(backend, streams)
            for requested in (order, order[::-1], shuffled):
                assert hashes(clip, requested) == reference, (threads, streams, requested)
            # vspipe-style: many frames requested at once from VapourSynth's thread pool
            assert {n: frame_hash(f) for n, f in enumerate(clip.frames(prefetch=4))} == reference


@pytest.mark.parametrize("backend", ["openvino", "ort"])
def test_same_bits_when_tiles_are_batched(ncnn_models, backend):
    """Tiles of a frame run one by one on the CPU and as one batch on GPUs: same result."""
    import numpy as np
    from conftest import photo

    from vs_sr.backends import SessionSpec, get_backend
    from vs_sr.filter.frames import upscale_planes
    from vs_sr.filter.sessions import SessionPool
    from vs_sr.filter.tiling import plan_tiles
    from vs_sr.models import resolve

    network = resolve("realesr-animevideov3", 4)
    plan = plan_tiles(64, 48, 4, network.traits, tile=(32, 32), overlap=(8, 8))
    planes = list(photo(48, 64))
    results = []
    for batch in (1, 3, 4, plan.count):  # 4: the last batch is short (zeros after the tiles)
        sessions = get_backend(backend).open(SessionSpec(network, batch, *plan.tile_shape, "fp32", 1, 0))
        dest = [np.zeros((48 * 4, 64 * 4), np.float32) for _ in range(3)]
        upscale_planes(planes, dest, SessionPool(sessions), plan, batch)
        results.append(np.stack(dest))
    assert plan.count == 6
    assert all(np.array_equal(results[0], other) for other in results[1:])
