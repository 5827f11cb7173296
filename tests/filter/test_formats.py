"""Every supported format round-trips at the right size and format, colours go through the
right matrix and range, frame props survive and the SAR follows exact output sizes."""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs
from conftest import moving_photo_clip, psnr

import vs_sr as sr
from vs_sr.backends import get_backend
from vs_sr.models import resolve

core = vs.core
MODEL = "realesr-animevideov3"
FORMATS = [
    vs.YUV420P8, vs.YUV420P10, vs.YUV422P10, vs.YUV444P12, vs.YUV420P16, vs.YUV444PH, vs.YUV444PS,
    vs.RGB24, vs.RGB30, vs.RGB48, vs.RGBH, vs.RGBS,
    vs.GRAY8, vs.GRAY10, vs.GRAY16, vs.GRAYH, vs.GRAYS,
]  # fmt: skip


def source(fmt: int, length: int = 2) -> vs.VideoNode:
    rgb = moving_photo_clip(64, 48, length)
    family = core.get_video_format(fmt).color_family
    kwargs = {} if family == vs.RGB else {"matrix": vs.MATRIX_BT709}
    return rgb.resize.Bicubic(format=fmt, **kwargs).std.SetFrameProps(MyProp=42, _Transfer=1, _Primaries=1)


def reference(clip: vs.VideoNode) -> vs.VideoNode:
    """The same upscale built by hand: explicit conversions around the RGBS filter."""
    fmt = clip.format
    to_rgb: dict = {"format": vs.RGBS}
    back: dict = {"format": fmt.id, "dither_type": "error_diffusion"}
    if fmt.color_family != vs.RGB:
        to_rgb["matrix_in"] = back["matrix"] = vs.MATRIX_BT709
    upscaled = sr.Upscale(clip.resize.Spline36(**to_rgb), MODEL, 4, backend="openvino")
    return upscaled.resize.Spline36(**back)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: core.get_video_format(f).name)
def test_format_round_trip(ncnn_models, fmt):
    clip = source(fmt)
    out = sr.Upscale(clip, MODEL, 4, backend="openvino")
    assert (out.format.id, out.width, out.height, out.num_frames) == (fmt, 256, 192, 2)
    frame = out.get_frame(1)
    assert frame.format.id == fmt
    assert frame.props["MyProp"] == 42 and frame.props["_Transfer"] == 1 and frame.props["_Primaries"] == 1
    # the range stays the source's, float formats included (their pixels do not depend on it, but a
    # later conversion to integers reads it)
    assert frame.props.get("_Range") == clip.get_frame(1).props.get("_Range")
    # precision="auto": what the backend picks for this model on this CPU (int8 for this model on most CPUs)
    auto = get_backend("openvino").auto_precision(resolve(MODEL, 4), 0)
    assert frame.props["SRModel"] == f"{MODEL} x4" and frame.props["SRPrecision"] == auto
    fmt_info = core.get_video_format(fmt)
    peak = (1 << fmt_info.bits_per_sample) - 1 if fmt_info.sample_type == vs.INTEGER else 1.0
    got = [np.asarray(frame[p]) for p in range(fmt_info.num_planes)]
    want = reference(clip).get_frame(1)
    for p, plane in enumerate(got):
        assert psnr(plane, np.asarray(want[p]), peak) > 50, f"plane {p}"


def test_matrix_and_range_follow_each_frames_props(ncnn_models):
    """Frames 0-1 are BT.709 limited, frames 2-3 BT.601 full: each comes back in its own."""
    rgb = moving_photo_clip(64, 48, 4)
    bt709 = rgb.resize.Bicubic(format=vs.YUV420P8, matrix=vs.MATRIX_BT709, range_s="limited")
    bt601 = rgb.resize.Bicubic(format=vs.YUV420P8, matrix=vs.MATRIX_ST170_M, range_s="full")
    mixed = bt709[:2] + bt601[2:]
    out = sr.Upscale(mixed, MODEL, 4, backend="openvino")
    for n, (matrix, range_) in enumerate([(1, 0), (1, 0), (6, 1), (6, 1)]):
        frame = out.get_frame(n)
        assert (frame.props["_Matrix"], int(frame.props["_Range"])) == (matrix, range_)
        # The colours match the RGB upscale converted with that frame's own matrix and range.
        expected = sr.Upscale(rgb, MODEL, 4, backend="openvino").resize.Spline36(
            format=vs.YUV420P8, matrix=matrix, range_s="full" if range_ else "limited", dither_type="error_diffusion"
        )
        assert psnr(np.asarray(frame[0]), np.asarray(expected.get_frame(n)[0]), 255) > 45


@pytest.mark.parametrize("fmt", [vs.YUV444P8, vs.YUV444PS, vs.YUV420P10])
def test_the_chroma_location_is_kept_on_every_yuv_format(ncnn_models, fmt):
    """4:4:4 has no use for it, but a later conversion to 4:2:0 siting its chroma does."""
    clip = source(fmt).std.SetFrameProps(_ChromaLocation=2)
    assert sr.Upscale(clip, MODEL, 4, backend="openvino").get_frame(0).props["_ChromaLocation"] == 2


def test_rgb_keeps_its_chroma_location_too(ncnn_models):
    clip = source(vs.RGB24).std.SetFrameProps(_ChromaLocation=2)
    assert sr.Upscale(clip, MODEL, 4, backend="openvino").get_frame(0).props["_ChromaLocation"] == 2


@pytest.mark.parametrize("matrix", [None, 0, 6])
def test_grey_keeps_its_own_matrix_and_its_planes_go_back_into_rgb(ncnn_models, matrix):
    """Each plane of an RGB clip upscaled as GRAY and shuffled back: resize's YUV matrix on the
    planes made the RGB clip one that resize (error 1026) and vs_sr refused."""
    rgb = source(vs.RGB24).std.RemoveFrameProps("_Matrix")
    planes = [core.std.ShufflePlanes(rgb, p, vs.GRAY) for p in range(3)]
    planes = [p if matrix is None else p.std.SetFrameProps(_Matrix=matrix) for p in planes]
    up = [sr.Upscale(p, MODEL, 4, backend="openvino", precision="fp32", width=200) for p in planes]
    assert up[0].get_frame(0).props.get("_Matrix") == matrix
    if matrix != 6:  # (planes a caller marked YUV make an RGB clip resize refuses, as they would unscaled)
        back = core.std.ShufflePlanes(up, [0, 0, 0], vs.RGB)
        assert back.resize.Bicubic(format=vs.YUV420P8, matrix=1).get_frame(0).width == 200


@pytest.mark.parametrize("matrix", [10, 12, 13, 14])
def test_grey_tagged_with_a_matrix_defined_by_transfer_or_primaries_is_upscaled(ncnn_models, matrix):
    """A luma plane shuffled out of such a YUV clip failed in resize's words ("error 3074")."""
    grey = source(vs.GRAY8).std.SetFrameProps(_Matrix=matrix)
    assert sr.Upscale(grey, MODEL, 4, backend="openvino", width=200).get_frame(0).props["_Matrix"] == matrix


def test_an_alpha_frame_of_another_format_has_every_plane_resized(ncnn_models):
    alpha = core.std.BlankClip(width=64, height=48, format=vs.YUV420P8, length=2, color=[200, 50, 90])
    out = sr.Upscale(source(vs.YUV420P8).std.ClipToProp(alpha, "_Alpha"), MODEL, 4, backend="openvino")
    got = out.get_frame(0).props["_Alpha"]
    assert [int(np.asarray(got[p]).min()) for p in range(3)] == [200, 50, 90]
    assert [int(np.asarray(got[p]).max()) for p in range(3)] == [200, 50, 90]


@pytest.mark.parametrize(("fmt", "alpha_format", "size"), [(vs.RGB24, vs.GRAY8, {}),
                                                       (vs.YUV420P10, vs.GRAY10, {"width": 200})])
def test_an_alpha_plane_is_resized_with_its_picture(ncnn_models, fmt, alpha_format, size):
    """_Alpha (an alpha plane, e.g. from bs.VideoSource(alpha=True)) comes out at the output's size,
    close to VapourSynth's own bicubic resize of it (resize itself leaves it at the source's size)."""
    picture = source(fmt)
    alpha = moving_photo_clip(64, 48, 2).resize.Bicubic(format=alpha_format, matrix=1)
    out = sr.Upscale(picture.std.ClipToProp(alpha, "_Alpha"), MODEL, 4, backend="openvino", **size)
    frame = out.get_frame(1)
    got = frame.props["_Alpha"]
    assert (got.width, got.height, got.format.id) == (frame.width, frame.height, alpha_format)
    expected = alpha.resize.Bicubic(frame.width, frame.height).get_frame(1)
    peak = (1 << got.format.bits_per_sample) - 1
    assert psnr(np.asarray(got[0]), np.asarray(expected[0]), peak) > 35


def test_missing_matrix_defaults_by_resolution(ncnn_models):
    clip = source(vs.YUV420P8).std.RemoveFrameProps(["_Matrix"])
    frame = sr.Upscale(clip, MODEL, 4, backend="openvino").get_frame(0)
    assert frame.props["_Matrix"] == vs.MATRIX_ST170_M  # 64x48 is SD


def test_exact_size_keeps_display_aspect():
    from vs_sr.filter.formats import corrected_sar, output_size

    props = {"_SARNum": 128, "_SARDen": 107}
    clip = core.std.BlankClip(format=vs.YUV420P8, width=214, height=144, length=1)
    assert output_size(clip, 4, 856, 480) == (856, 480)
    assert corrected_sar(props, 214, 144, 856, 480) == (320, 321)
    display_in = 214 * 128 / 107 / 144
    assert abs(856 * 320 / 321 / 480 - display_in) < 1e-9
    assert output_size(clip, 4, None, 480) == (714, 480)  # width follows, rounded to chroma steps
    assert corrected_sar(props, 214, 144, 856, 576) is None  # plain x4: shape unchanged, SAR untouched


def test_exact_size_through_the_filter(ncnn_models):
    clip = core.std.BlankClip(format=vs.YUV420P8, width=214, height=144, length=2, color=[90, 100, 150])
    clip = clip.std.SetFrameProps(_SARNum=128, _SARDen=107)
    # fp32: int8, which auto picks on most CPUs, moves flat colours by up to 3 levels
    # (docs/benchmarks.md, "Quality"); this is about the conversions and the SAR.
    out = sr.Upscale(clip, MODEL, 4, width=856, height=480, backend="openvino", precision="fp32")
    frame = out.get_frame(1)
    assert (out.width, out.height, out.format.id) == (856, 480, vs.YUV420P8)
    assert (frame.props["_SARNum"], frame.props["_SARDen"]) == (320, 321)
    # A flat colour stays that colour through network, anamorphic resize and conversions.
    assert abs(float(np.asarray(frame[0]).mean()) - 90) < 2
    no_sar = sr.Upscale(clip.std.RemoveFrameProps(["_SARNum", "_SARDen"]), MODEL, 4, width=856, height=480)
    props = no_sar.get_frame(0).props
    assert (props["_SARNum"], props["_SARDen"]) == (5, 6)  # square input pixels, now 5:6
