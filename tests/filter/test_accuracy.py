"""The filter computes exactly the network: untiled output equals the bare network to fp32
accuracy on every backend, and tiled output stays within 45 dB of untiled without seams."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import bare_network, frame_planes, photo, psnr, rgb_clip

import vs_sr as sr

CPU_BACKENDS = ["openvino", "ort", "torch"]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_untiled_output_equals_bare_network(ncnn_models, backend):
    image = photo(48, 64)
    expected = bare_network("realesr-animevideov3", 4, image)
    out = sr.Upscale(rgb_clip([image]), "realesr-animevideov3", 4, backend=backend, precision="fp32")
    got = frame_planes(out.get_frame(0))
    assert got.shape == expected.shape == (3, 192, 256)
    assert np.abs(got - expected).max() < 1e-4
    assert psnr(got, expected) > 90


@pytest.mark.parametrize("backend", ["openvino", "torch"])
def test_hat_file_output_equals_bare_network(hat_s_pth, backend):
    image = photo(32, 32)  # HAT pads to its 16-pixel window: 32x32 is one static tile
    expected = bare_network(str(hat_s_pth), 4, image)
    out = sr.Upscale(rgb_clip([image]), hat_s_pth, 4, backend=backend, precision="fp32")
    got = frame_planes(out.get_frame(0))
    assert np.abs(got - expected).max() < 1e-4


def test_padding_to_the_model_multiple_is_cropped(hat_s_pth):
    """A 40x24 frame is padded (reflected) to 48x32 for HAT, and the padding cropped again."""
    image = photo(24, 40)
    expected = bare_network(str(hat_s_pth), 4, image)  # spandrel's HAT pads by reflection too
    out = sr.Upscale(rgb_clip([image]), hat_s_pth, 4, backend="openvino", precision="fp32")
    got = frame_planes(out.get_frame(0))
    assert got.shape == (3, 96, 160)
    assert np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize(
    ("model", "tile", "overlap"),
    [("realesr-animevideov3", 48, 16), ("realesr-animevideov3", (40, 32), 12), ("realesrgan-x4plus-anime", 80, 40)],
)
def test_tiled_output_close_to_untiled_without_seams(ncnn_models, model, tile, overlap):
    image = photo(96, 128)
    clip = rgb_clip([image])
    whole = frame_planes(sr.Upscale(clip, model, 4, backend="openvino", precision="fp32").get_frame(0))
    tiled_clip = sr.Upscale(clip, model, 4, backend="openvino", precision="fp32", tile=tile, overlap=overlap)
    tiled = frame_planes(tiled_clip.get_frame(0))
    assert psnr(tiled, whole) >= 45
    # No seam: the error next to tile borders is not worse than 40 dB anywhere along a border.
    error = np.abs(tiled - whole).max(axis=0)
    for band in np.array_split(error, 16, axis=1):
        assert psnr(band, np.zeros_like(band)) >= 40


def test_tiles_of_one_frame_share_one_static_shape():
    from vs_sr.filter.tiling import plan_tiles
    from vs_sr.models import arch_traits

    plan = plan_tiles(1920, 1080, 4, arch_traits("compact", 4), tile=(512, 512), overlap=(16, 16))
    assert plan.tile_shape == (512, 512)
    assert plan.count == len(plan.x.starts) * len(plan.y.starts) == 4 * 3
    assert plan.x.starts[0] == 0 and plan.x.starts[-1] + 512 == 1920  # edge tiles shifted inward
    gaps = np.diff(plan.x.starts)
    assert (512 - gaps >= 16).all()  # every neighbour pair overlaps by at least the overlap
