"""Tile sizes from free device memory, the retry with smaller tiles after running out of memory,
and frames spread over several devices deterministically.

The inference is real (ONNX Runtime / PyTorch on the CPU); only the memory limit of a device is
played by a session wrapper, since this machine has no GPU to run out of."""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs
from conftest import frame_hash, frame_planes, moving_photo_clip, photo, psnr, rgb_clip

import vs_sr as sr
from vs_sr.backends import OutOfMemory, Session, SessionSpec, get_backend
from vs_sr.filter.frames import FrameUpscaler
from vs_sr.filter.memory import Tiles, halved, memory_budget
from vs_sr.filter.sessions import SessionPool
from vs_sr.filter.tiling import plan_tiles
from vs_sr.filter.upscale_clip import upscaled_rgbs
from vs_sr.models import arch_traits, resolve

COMPACT_TRAITS, HAT_TRAITS = arch_traits("compact", 4), arch_traits("hat", 4)

core = vs.core


def test_tiles_follow_free_device_memory():
    gib = 1 << 30
    hat = memory_budget(8 * gib, HAT_TRAITS, "bf16")
    assert hat == int(8 * gib * 0.5 / 35_000)
    plan = plan_tiles(1920, 1080, 4, HAT_TRAITS, budget=hat)
    th, tw = plan.tile_shape
    assert th * tw <= hat and th % 16 == 0 and tw % 16 == 0 and plan.count > 1
    big = plan_tiles(1920, 1080, 4, COMPACT_TRAITS, budget=memory_budget(70 * gib, COMPACT_TRAITS, "fp16"))
    assert big.count == 1  # an 80 GB GPU takes a compact net's whole 1080p frame at once
    assert memory_budget(8 * gib, HAT_TRAITS, "fp32") == hat // 2


@pytest.mark.parametrize(("width", "height", "overlap"), [(11000, 24, None), (16400, 64, (100, 100)),
                                                      (60, 20000, (60, 16))])
def test_a_strip_thinner_than_the_overlap_is_one_tile_across(ncnn_models, width, height, overlap):
    """A frame too big for one tile whose short side is within the overlap (a 24-row strip beside
    RRDBNet's 32): one tile across that side, the long side split within the budget (was a
    ZeroDivisionError while the filter was made)."""
    traits = arch_traits("rrdbnet", 4) if overlap is None else COMPACT_TRAITS
    plan = plan_tiles(width, height, 4, traits, overlap=overlap)
    th, tw = plan.tile_shape
    across = (th, height) if width > height else (tw, width)
    assert across[0] == across[1] and plan.count > 1 and th * tw <= traits.tile_pixels
    clip = core.std.BlankClip(format=vs.RGBS, width=width, height=height, length=1)
    upscaled = sr.Upscale(clip, "realesrgan-x4plus" if overlap is None else "faithful", 4, overlap=overlap,
                          precision="fp32")
    assert (upscaled.width, upscaled.height) == (4 * width, 4 * height)


def test_halving_tiles_until_it_cannot():
    plan = plan_tiles(640, 360, 4, HAT_TRAITS, tile=(256, 256), overlap=(32, 32))
    smaller = halved(plan, HAT_TRAITS)
    assert smaller.tile_shape == (128, 128) and smaller.overlap == 32
    smallest = halved(halved(smaller, HAT_TRAITS), HAT_TRAITS)
    assert smallest.tile_shape == (32, 32) and smallest.overlap == 16  # the overlap shrinks with the tiles
    assert halved(smallest, HAT_TRAITS) is None  # below 32 pixels: give up


class LimitedMemory(Session):
    """A real session on a 'device' that runs out of memory above `limit` input pixels per run."""

    dynamic_shapes = True

    def __init__(self, inner: Session, limit: int) -> None:
        self.inner, self.limit = inner, limit

    def run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] * batch.shape[2] * batch.shape[3] > self.limit:
            raise OutOfMemory("CUDA out of memory (a smaller device)")
        return self.inner.run(batch)


def test_out_of_memory_retries_the_frame_with_smaller_tiles(ncnn_models, capsys):
    network = resolve("realesr-animevideov3", 4)
    torch_sessions = get_backend("torch").open(SessionSpec(network, 1, 96, 128, "fp32", 1, 0))
    plan = plan_tiles(128, 96, 4, network.traits)  # the whole frame: 12288 pixels
    tiles = Tiles(plan, 1, network.traits, None, resizable=True)
    upscaler = FrameUpscaler(tiles, [SessionPool([LimitedMemory(torch_sessions[0], 6000)])])
    messages = []
    handler = core.add_log_handler(lambda kind, text: messages.append(text))
    try:
        clip = upscaled_rgbs(moving_photo_clip(128, 96, 3), 4, upscaler, 1)
        frames = [frame_planes(f) for f in clip.frames()]
    finally:
        core.remove_log_handler(handler)
    assert tiles.plan.tile_shape == (48, 64) and tiles.plan.count > 1  # later frames keep the smaller tiles
    assert any("out of device memory with 128x96 tiles: retrying with 64x48 tiles" in m for m in messages)
    whole = sr.Upscale(rgb_clip([photo(96, 128, 0)]), "realesr-animevideov3", 4, backend="torch").get_frame(0)
    assert psnr(frames[0], frame_planes(whole)) > 45


def test_out_of_memory_where_tiles_cannot_shrink_is_a_clear_error(ncnn_models):
    network = resolve("realesr-animevideov3", 4)
    sessions = get_backend("ort").open(SessionSpec(network, 1, 48, 64, "fp32", 1, 0))
    plan = plan_tiles(64, 48, 4, network.traits)
    tiles = Tiles(plan, 1, network.traits, None, resizable=False)
    upscaler = FrameUpscaler(tiles, [SessionPool([LimitedMemory(sessions[0], 100)])])
    clip = upscaled_rgbs(moving_photo_clip(64, 48, 1), 4, upscaler, 1)
    with pytest.raises(vs.Error, match=r"out of device memory with 64x48 tiles .* pass a smaller tile="):
        clip.get_frame(0)


class Tagged(Session):
    """A real session that records which 'device' ran it."""

    def __init__(self, inner: Session, device: int, log: list[int]) -> None:
        self.inner, self.device, self.log = inner, device, log

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.log.append(self.device)
        return self.inner.run(batch)


def test_frames_are_spread_over_devices_by_frame_number(ncnn_models):
    network = resolve("realesr-animevideov3", 4)
    plan = plan_tiles(64, 48, 4, network.traits)
    log: list[int] = []
    pools = [SessionPool([Tagged(s, device, log) for s in get_backend("ort").open(
        SessionSpec(network, 1, 48, 64, "fp32", 1, 0))]) for device in (0, 1)]
    tiles = Tiles(plan, 1, network.traits, None, resizable=False)
    clip = upscaled_rgbs(moving_photo_clip(64, 48, 6), 4, FrameUpscaler(tiles, pools), 2)
    for n in (5, 2, 3):  # any order: frame n on device n % 2
        log.clear()
        clip.get_frame(n)
        assert log == [n % 2]
    single = sr.Upscale(moving_photo_clip(64, 48, 6), "realesr-animevideov3", 4, backend="ort")
    assert [frame_hash(clip.get_frame(n)) for n in range(6)] == [frame_hash(single.get_frame(n)) for n in range(6)]


def test_device_lists_are_checked(ncnn_models):
    clip = moving_photo_clip(64, 48, 1)
    for bad in (-1, [0, 0], [], ["0"], True):
        with pytest.raises(vs.Error, match="device_id must be a GPU index"):
            sr.Upscale(clip, "realesr-animevideov3", 4, device_id=bad)
    with pytest.raises(vs.Error, match="device_id lists spread frames over GPUs; backend 'openvino' runs on the CPU"):
        sr.Upscale(clip, "realesr-animevideov3", 4, backend="openvino", device_id=[0, 1])
    assert sr.Upscale(clip, "realesr-animevideov3", 4, backend="openvino", device_id=[0]).width == 256
