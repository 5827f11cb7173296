"""The ncnn-imported named models in the filter: each runs on OpenVINO and ONNX Runtime with the
network's own output, scale x1 works end to end, denoise levels are checked with sharp errors,
and tiles stay within 45 dB of whole frames at the sizes the filter picks (Real-CUGAN: whole
frames, and tiles of at least 512 pixels)."""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs
from conftest import ffmpeg, frame_planes, photo, psnr, rgb_clip, vs_sr

import vs_sr as sr
from vs_sr.filter.tiling import plan_tiles
from vs_sr.models import arch_traits, resolve
from vs_sr.models.onnx_export import export_onnx

NEW_MODELS = [("realcugan", 2), ("realcugan", 3), ("realcugan", 4), ("realcugan-pro", 2), ("realcugan-pro", 3),
              ("waifu2x-cunet", 1), ("waifu2x-cunet", 2), ("waifu2x-anime", 2), ("waifu2x-photo", 2)]


def graph_output(name: str, scale: int, noise: int | None, image: np.ndarray) -> np.ndarray:
    """The converted network alone (ONNX Runtime, no tiling), clamped like the filter."""
    import onnxruntime

    path = export_onnx(resolve(name, scale, noise), 1, *image.shape[1:])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": image[None]})[0][0].clip(0, 1)


@pytest.mark.parametrize("backend", ["openvino", "ort"])
@pytest.mark.parametrize("name,scale", NEW_MODELS)
def test_new_models_run_the_network_itself(name, scale, backend):
    image = photo(40, 52)
    out = sr.Upscale(rgb_clip([image]), name, scale, backend=backend, precision="fp32")
    frame = out.get_frame(0)
    got = frame_planes(frame)
    assert (out.width, out.height) == (52 * scale, 40 * scale)
    assert np.abs(got - graph_output(name, scale, None, image)).max() < 1e-4
    default = resolve(name, scale).noise
    assert frame.props["SRModel"] == f"{name} x{scale} noise {default}"


def test_every_denoise_level_loads_and_differs():
    image = photo(32, 40)
    clip = rgb_clip([image])
    outputs = {level: frame_planes(sr.Upscale(clip, "realcugan", 2, noise=level, backend="openvino").get_frame(0))
               for level in (-1, 0, 1, 2, 3)}
    assert all(psnr(outputs[level], outputs[-1]) < 60 for level in (0, 1, 2, 3))  # five different networks
    assert np.array_equal(outputs[-1], frame_planes(sr.Upscale(clip, "realcugan", 2, backend="openvino").get_frame(0)))


def test_scale_one_denoises_at_the_same_size_and_resizes_like_any_model():
    image = photo(36, 44)
    clip = rgb_clip([image]).resize.Bicubic(format=vs.YUV444P16, matrix_s="709")
    out = sr.Upscale(clip, "waifu2x-cunet", 1, noise=3)
    assert (out.width, out.height, out.format.id) == (44, 36, vs.YUV444P16)
    exact = sr.Upscale(clip, "waifu2x-cunet", 1, noise=3, width=88)  # a larger exact size from a x1 model
    assert (exact.width, exact.height) == (88, 72)
    rgb = sr.Upscale(rgb_clip([image]), "waifu2x-cunet", 1, noise=3, backend="ort")
    denoised = frame_planes(rgb.get_frame(0))
    assert denoised.shape == image.shape and 25 < psnr(denoised, image) < 60  # changed, but the same picture


@pytest.mark.parametrize("noise,message", [
    (2, r"model 'realcugan' x3 has no noise=2; its levels are -1 \(conservative / none\), 0 \(no denoise\), "
        r"3 \(strong\) \(unset: -1\)"),
    (-1, r"model 'waifu2x-cunet' x1 has no noise=-1; its levels are 0 .* 3 \(strong\) \(unset: 0\)"),
    (7, r"noise must be None \(the model's default\) or a level from -1 \(conservative\) to 3"),
    ("1", r"noise must be None .* not '1'"),
    (True, r"noise must be None .* not True"),
], ids=["level-missing", "x1-has-no-minus-one", "out-of-range", "text", "bool"])
def test_noise_errors_name_the_levels(noise, message):
    name, scale = ("waifu2x-cunet", 1) if noise == -1 else ("realcugan", 3)
    with pytest.raises(vs.Error, match=message):
        sr.Upscale(rgb_clip([photo(32, 32)]), name, scale, noise=noise)


def test_noise_on_models_without_levels(ncnn_models, hat_s_pth, tmp_path):
    clip = rgb_clip([photo(32, 32)])
    with pytest.raises(vs.Error, match=r"model 'realesr-animevideov3' has no denoise levels; leave noise= unset"):
        sr.Upscale(clip, "realesr-animevideov3", 4, noise=0)
    with pytest.raises(vs.Error, match=r"noise= chooses a denoise level of a named model .* leave noise= unset"):
        sr.Upscale(clip, hat_s_pth, 4, noise=0)
    source = tmp_path / "in.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=25:duration=0.1", "-c:v", "ffv1", str(source))
    done = vs_sr("upscale", str(source), str(tmp_path / "out.mkv"), "--noise", "0")  # (it said "noise")
    assert done.stderr == "vs-sr: error: model 'realesr-animevideov3' has no denoise levels; leave --noise unset.\n"


def test_realcugan_on_torch_says_which_backends_run_it():
    with pytest.raises(vs.Error, match=r"realcugan x2 noise -1 runs from its ncnn weights as an ONNX graph .* "
                                       r"use backend='openvino', 'ort' or 'trt'"):
        sr.Upscale(rgb_clip([photo(32, 32)]), "realcugan", 2, backend="torch")


@pytest.mark.parametrize("name,scale,tile", [("waifu2x-cunet", 2, 48), ("waifu2x-cunet", 1, 40),
                                             ("waifu2x-anime", 2, 40), ("waifu2x-photo", 2, 32)])
def test_tile_safe_models_tile_within_45_db(name, scale, tile):
    image = photo(80, 104)
    clip = rgb_clip([image])
    whole = frame_planes(sr.Upscale(clip, name, scale, backend="openvino").get_frame(0))
    tiled = frame_planes(sr.Upscale(clip, name, scale, backend="openvino", tile=tile).get_frame(0))
    assert psnr(tiled, whole) >= 45


@pytest.mark.parametrize("width,height,tiles", [(1280, 720, 1), (960, 720, 1), (1920, 1080, 6), (3840, 2160, 15),
                                                (2560, 600, 3), (700, 3000, 4)])
def test_realcugan_gets_whole_frames_or_large_tiles(width, height, tiles):
    """Automatic tiles of a tile-dependent network: whole frames up to 720p, never below 512 pixels."""
    traits = arch_traits("realcugan", 2)
    assert not traits.tile_safe
    plan = plan_tiles(width, height, 2, traits)
    assert plan.count == tiles
    th, tw = plan.tile_shape
    assert tw >= min(512, width) and th >= min(512, height)
    assert tw * th <= traits.tile_pixels and not plan.split_below(traits.min_tile)


def test_realcugan_at_its_smallest_automatic_tiles_stays_within_45_db():
    """Two 512-pixel tiles across a 600x400 photograph (the smallest tiles the filter picks for
    Real-CUGAN) against the whole frame."""
    from skimage import data

    image = np.ascontiguousarray(data.coffee()[:, :600].astype(np.float32).transpose(2, 0, 1) / 255)
    clip = rgb_clip([image])
    whole = frame_planes(sr.Upscale(clip, "realcugan", 2, noise=0, backend="openvino").get_frame(0))
    tiled = frame_planes(sr.Upscale(clip, "realcugan", 2, noise=0, backend="openvino", tile=512).get_frame(0))
    assert psnr(tiled, whole) >= 45


def test_small_forced_tiles_of_realcugan_are_warned_about():
    messages: list[str] = []
    handle = vs.core.add_log_handler(lambda kind, message: messages.append(message))
    try:
        sr.Upscale(rgb_clip([photo(64, 96)]), "realcugan", 2, backend="openvino", tile=48, overlap=16)
    finally:
        vs.core.remove_log_handler(handle)
    assert any("48x48 tiles are smaller than the 512-pixel tiles this network needs" in m for m in messages)
