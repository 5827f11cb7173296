"""Each bad input gives a vs.Error that names the problem and what to do."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

import vs_sr as sr

core = vs.core


def small(fmt: int = vs.YUV420P8, width: int = 64, height: int = 48) -> vs.VideoNode:
    return core.std.BlankClip(format=fmt, width=width, height=height, length=2)


def expect_error(match: str, *args, **kwargs) -> None:
    with pytest.raises(vs.Error, match=match):
        sr.Upscale(*args, **kwargs)


def test_not_a_clip():
    expect_error(r"clip must be a video clip \(vs.VideoNode\), not str", "video.mkv", "realesr-animevideov3")


def test_variable_format(ncnn_models):
    mixed = core.std.Splice([small(vs.YUV420P8), small(vs.YUV444P8)], mismatch=True)
    expect_error(r"variable format; convert it to one format first", mixed, "realesr-animevideov3")


def test_variable_size(ncnn_models):
    mixed = core.std.Splice([small(width=64), small(width=80)], mismatch=True)
    expect_error(r"variable frame size; resize it to one size first", mixed, "realesr-animevideov3")


def test_unknown_model():
    expect_error(r"unknown model 'nope'. Known models: faithful, hat, hat-l, hat-s", small(), "nope")
    expect_error(r"unknown model 'realesr-animevideo3'. Did you mean 'realesr-animevideov3'\? Known models: ", small(),
                 "realesr-animevideo3")  # a typo: the nearest name


def test_missing_weights_of_the_default_model_name_the_one_command(isolated_dirs):
    """The default model="hat" on a fresh install: the command that fetches it, and the official
    pages for a download by hand."""
    with pytest.raises(vs.Error) as error:
        sr.Upscale(small())
    message = str(error.value)
    assert message.startswith("weights for model 'hat' x4 not found: HAT_SRx4_ImageNet-pretrain.pth. Run "
                              "`vs-sr models download hat`: it fetches https://huggingface.co/Acly/hat/resolve/main/"
                              f"HAT_SRx4_ImageNet-pretrain.pth (a copy of the official file) into {isolated_dirs['models']}"
                              " and checks its sha256.")
    assert "https://drive.google.com/drive/folders/" in message and "pan.baidu.com" in message
    assert "VS_SR_MODEL_DIR" in message


def test_missing_weights_without_an_address_name_the_pages_and_directory(isolated_dirs):
    with pytest.raises(vs.Error) as error:
        sr.Upscale(small(), "hat-l", 2)
    message = str(error.value)
    assert "HAT-L_SRx2_ImageNet-pretrain.pth" in message and "https://drive.google.com/drive/folders/" in message
    assert "`vs-sr models download hat-l --scale 2 --mirror URL`" in message
    assert str(isolated_dirs["models"]) in message and "VS_SR_MODEL_DIR" in message


def test_missing_downloadable_weights_name_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("VS_SR_MODEL_DIR", str(tmp_path))
    expect_error(r"RealESRGAN_x2plus.pth. Run `vs-sr models download realesrgan-x2plus`: it fetches "
                 r"https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth into "
                 rf"{tmp_path} and checks its sha256. VS_SR_MODEL_DIR", small(), "realesrgan-x2plus", 2)


def test_scale_the_model_does_not_have(ncnn_models):
    expect_error(r"'realesr-animevideov3' has no trained x2 network \(it has x4\)", small(), "realesr-animevideov3", 2)
    expect_error(r"'real-hat-gan' has no trained x3 network", small(), "real-hat-gan", 3)


def test_scale_of_a_weight_file(hat_s_pth):
    expect_error(r"is a x4 network; pass scale=4", small(), hat_s_pth, 2)


def test_an_ncnn_file_is_named_as_one(ncnn_models):
    """The path `vs-sr models path faithful` prints is no model= value: the error says what is."""
    expect_error(r"'/somewhere/faithful-x2\.param' is an ncnn file: vs_sr reads ncnn weights through a model's "
                 r"registry name \(e\.g\. model='faithful'", small(), "/somewhere/faithful-x2.param", 2)


def test_a_file_that_is_not_weights_is_named_as_such(tmp_path):
    """A video passed where the model goes (`vs-sr models path in.mkv`, a swapped argument) is no
    "unknown model": the error says the file is not weights and which files are."""
    video = tmp_path / "in.mkv"
    video.write_bytes(b"\x1aE\xdf\xa3")
    expect_error(r"in\.mkv is not a weight file: vs_sr reads \.pth/\.safetensors/\.onnx files, or a registry name "
                 r"\(faithful, ", small(), str(video), 2)


def test_an_output_size_beyond_the_memory_is_refused_at_once(ncnn_models):
    """width=100000, height=100000 (a typo's worth of zeros) would take 120 GB per frame in flight."""
    expect_error(r"a 100000x100000 output needs at least \d+\.\d GiB of memory \(\d frames of 111\.8 GiB in float "
                 r"RGB\) and \d+\.\d GiB are available; choose a smaller width=/height= \(or fewer num_streams=\)\.",
                 small(), "realesr-animevideov3", width=100000, height=100000)


def test_missing_model_file():
    expect_error(r"model file not found: .*missing\.pth", small(), "/nonexistent/missing.pth")


def test_tile_smaller_than_twice_the_overlap(ncnn_models):
    expect_error(r"tile width 24 is less than twice the overlap of 16 pixels; use a tile of at least 32, or a "
                 "smaller overlap=", small(), "realesr-animevideov3", tile=24, overlap=16)
    expect_error(r"tile width 24 is less than twice this network's default overlap of 16 pixels",
                 small(), "realesr-animevideov3", tile=24)


def test_bad_tile_and_overlap_types(ncnn_models):
    expect_error(r"tile must be an int or a \(width, height\) pair", small(), "realesr-animevideov3", tile="big")
    expect_error(r"overlap must not be negative", small(), "realesr-animevideov3", overlap=-1)


def test_frame_smaller_than_the_model_minimum(hat_s_pth):
    expect_error(r"needs frames of at least 16x16 pixels; the clip is 64x8", small(vs.RGBS, 64, 8), hat_s_pth, 4)


def test_unknown_backend(ncnn_models):
    expect_error(r"unknown backend 'cuda'; use one of auto, trt, torch, ort, openvino", small(), "realesr-animevideov3", backend="cuda")


def test_backend_not_installed(ncnn_models):
    from vs_sr.backends.tensorrt import installed_version

    if installed_version() is not None:
        pytest.skip("TensorRT is installed on this machine")
    from vs_sr.devices import cuda_device_count

    # What to do about it: without a GPU another backend (installing TensorRT would not help), else what to install
    reason = r"no CUDA GPU here \(TensorRT needs an NVIDIA GPU and its driver\); use backend='auto'" \
        if cuda_device_count() == 0 else r"TensorRT is not installed: pip install 'vs_sr\[tensorrt\]'"
    expect_error(rf"backend 'trt' cannot run here: {reason}", small(), "realesr-animevideov3", backend="trt")


def test_precision_the_backend_cannot_run(ncnn_models):
    expect_error(r"backend 'ort' runs fp32 on this machine, not bf16", small(), "realesr-animevideov3", backend="ort", precision="bf16")
    expect_error(r"unknown precision 'half'", small(), "realesr-animevideov3", precision="half")


def test_bad_stream_count_device_and_size(ncnn_models):
    expect_error(r"num_streams must be a positive integer", small(), "realesr-animevideov3", num_streams=0)
    expect_error(r"device_id must be a GPU index", small(), "realesr-animevideov3", device_id=-1)
    expect_error(r"YUV420P8 needs width= a multiple of 2 and height= a multiple of 2; got 855x480: pass width=854 or "
                 r"width=856\.", small(), "realesr-animevideov3", width=855, height=480)
    expect_error(r"height must be a positive integer", small(), "realesr-animevideov3", height=0)


def test_onnx_backend_mismatch(tmp_path):
    onnx_path = tmp_path / "net.onnx"
    onnx_path.write_bytes(b"not an onnx file")
    expect_error(r"is not a readable ONNX file", small(vs.RGBS), onnx_path, 4)


def test_onnx_file_with_half_precision_io(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    image = [helper.make_tensor_value_info(name, TensorProto.FLOAT16, [1, 3, 8, 8]) for name in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", image[:1], image[1:])
    onnx.save(helper.make_model(graph), str(tmp_path / "half.onnx"))
    expect_error(r"half.onnx takes float16 and gives float16; vs_sr needs float32 input and output .* "
                 r"export the model with float32 I/O", small(vs.RGBS), tmp_path / "half.onnx", 1)


def test_official_file_with_wrong_content(isolated_dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("VS_SR_MODEL_DIR", str(tmp_path))
    (tmp_path / "RealESRGAN_x4plus_anime_6B.pth").write_bytes(b"truncated download")
    expect_error(r"is not the published RealESRGAN_x4plus_anime_6B.pth .* Replace it "
                 r"\(`vs-sr models download realesrgan-x4plus-anime`\)",
                 small(), "realesrgan-x4plus-anime")


def test_bad_scale_and_tile_types(ncnn_models):
    import numpy as np

    expect_error(r"scale must be a positive integer, not 0", small(), "realesr-animevideov3", 0, width=100)
    expect_error(r"scale must be a positive integer, not '4'", small(), "realesr-animevideov3", "4", width=100)
    expect_error(r"tile must be an int or a \(width, height\) pair of ints, not 32.0", small(), "realesr-animevideov3",
                 tile=32.0)
    assert sr.Upscale(small(), "realesr-animevideov3", tile=np.int64(32), overlap=8).width == 256  # numpy ints are ints


def test_a_tile_larger_than_the_frame_is_capped(ncnn_models):
    messages: list[str] = []
    handler = core.add_log_handler(lambda kind, text: messages.append(text))
    try:
        out = sr.Upscale(small(vs.RGBS, 176, 144), "realesr-animevideov3", tile=4096)
        out.get_frame(0)
    finally:
        core.remove_log_handler(handler)
    assert any("1x1 tiles of 176x144" in m for m in messages)  # not one padded 4096x4096 tile


def test_a_gpu_index_on_a_cpu_backend_runs_and_says_it_is_ignored(ncnn_models):
    messages: list[str] = []
    handler = core.add_log_handler(lambda kind, text: messages.append(text))
    try:
        assert sr.Upscale(small(), "realesr-animevideov3", backend="openvino", device_id=1).get_frame(0).width == 256
    finally:
        core.remove_log_handler(handler)
    assert "vs_sr: device_id=1 names a GPU; backend 'openvino' runs on the CPU here, so it is ignored" in messages


def test_a_tile_below_the_model_minimum_is_refused(ncnn_models, hat_s_pth):
    expect_error(r"tile 1x1 is below the 4-pixel minimum of this network", small(), "realesr-animevideov3", tile=1,
                 overlap=0)
    expect_error(r"tile 8x8 is below the 16-pixel minimum", small(vs.RGBS, 64, 64), hat_s_pth, 4, tile=8, overlap=0)
    # One least size whichever check meets it: twice the overlap where that is more than the minimum.
    expect_error(r"tile 1x1 is below the 4-pixel minimum of this network; use tile=32 or more", small(),
                 "realesr-animevideov3", tile=1, overlap=16)
    expect_error(r"tile width 4 is less than twice the overlap of 16 pixels; use a tile of at least 32", small(),
                 "realesr-animevideov3", tile=4, overlap=16)


def frame_error(clip: vs.VideoNode) -> str:
    """The text of the vs.Error that asking for frame 0 gives: VapourSynth puts a newline before
    the text of an error raised in a Python frame callback; the rest must be our one line."""
    with pytest.raises(vs.Error) as raised:
        clip.get_frame(0)
    text = str(raised.value)
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    return text.strip()


def test_interlaced_frames_are_refused_with_advice(ncnn_models):
    clip = small().std.SetFieldBased(2)
    assert re.fullmatch(r"vs_sr: frame 0 is interlaced \(_FieldBased=2, top field first\).*"
                        r"core.bwdif.Bwdif\(clip, field=1\).*core.std.SetFieldBased\(clip, 0\)\.",
                        frame_error(sr.Upscale(clip, "realesr-animevideov3")))
    assert sr.Upscale(clip.std.SetFieldBased(0), "realesr-animevideov3").get_frame(0).width == 256


BAD_PROPS = [
    (vs.YUV420P8, {"_Matrix": "bt709"}, "frame 0: frame prop _Matrix is 'bt709'; VapourSynth's _Matrix is an integer "
     "(e.g. _Matrix=1 for BT.709): fix it with clip.std.SetFrameProps(_Matrix=...)"),
    (vs.YUV420P8, {"_Range": "full"}, "frame 0: frame prop _Range is 'full'; VapourSynth's _Range is an integer "
     "(e.g. _Range=0 for limited range)"),
    (vs.RGB24, {"_SARNum": "x", "_SARDen": 1}, "frame 0: frame prop _SARNum is 'x'; VapourSynth's _SARNum is an integer "
     "(e.g. _SARNum=1, _SARDen=1 for square pixels)"),
    (vs.YUV420P8, {"_FieldBased": "tff"}, "frame 0: frame prop _FieldBased is 'tff'; VapourSynth's _FieldBased is an integer"),
    (vs.RGBS, {"_FieldBased": 7}, "frame 0 has _FieldBased=7; VapourSynth's _FieldBased is 0 (progressive), "
     "1 (bottom field first) or 2 (top field first): fix it with clip.std.SetFieldBased(...)."),
    # values the conversion to RGB would refuse in resize's own words are refused in ours first
    (vs.YUV420P8, {"_FieldBased": 7}, "frame 0 has _FieldBased=7; VapourSynth's _FieldBased is 0 (progressive)"),
    (vs.YUV420P8, {"_Matrix": 0}, "frame 0 is YUV420P8 but its _Matrix is 0 (RGB); set the matrix it was made with, "
     "e.g. clip.std.SetFrameProps(_Matrix=1) for BT.709"),
    (vs.RGB24, {"_Matrix": 1}, "frame 0 is RGB24 but its _Matrix is 1, a YUV matrix (planes shuffled from a YUV clip "
     "keep its props); mark it RGB with clip.std.SetFrameProps(_Matrix=0)"),
    (vs.YUV420P8, {"_Matrix": 3}, "frame 0 has _Matrix=3, which VapourSynth does not define (it takes 0-2, 4-10, "
     "12-14): set the right one with clip.std.SetFrameProps(_Matrix=...) or remove it with "
     "clip.std.RemoveFrameProps('_Matrix')."),
    (vs.YUV420P8, {"_Transfer": 99}, "frame 0 has _Transfer=99, which VapourSynth does not define (it takes 1-2, "
     "4-11, 13-18)"),
    (vs.RGBS, {"_Primaries": 0}, "frame 0 has _Primaries=0, which VapourSynth does not define"),
    (vs.YUV444P16, {"_Range": 5}, "frame 0 has _Range=5, which VapourSynth does not define (it takes 0-1)"),
    (vs.YUV420P10, {"_ChromaLocation": 9}, "frame 0 has _ChromaLocation=9, which VapourSynth does not define (it "
     "takes 0-5)"),
    # matrices defined by the transfer or the primaries, without them (resize: "error 3074")
    (vs.YUV420P10, {"_Matrix": 12}, "frame 0 has _Matrix=12 (MATRIX_CHROMATICITY_DERIVED_NCL), which is defined only "
     "with _Primaries (e.g. _Primaries=9 for BT.2020): set them with clip.std.SetFrameProps(...), or set the matrix "
     "the video was made with instead (e.g. _Matrix=9 for BT.2020, 1 for BT.709)."),
    (vs.YUV420P10, {"_Matrix": 10, "_Transfer": 16}, "frame 0 has _Matrix=10 (MATRIX_BT2020_CL), which is defined "
     "only with an SDR _Transfer"),
    (vs.YUV420P10, {"_Matrix": 13, "_Primaries": 9}, "frame 0 has _Matrix=13 (MATRIX_CHROMATICITY_DERIVED_CL), which "
     "is defined only with _Primaries and _Transfer"),
    (vs.YUV444P16, {"_Matrix": 14, "_Primaries": 9, "_Transfer": 1}, "frame 0 has _Matrix=14 (MATRIX_ICTCP), which "
     "is defined only with _Primaries=9 (BT.2020) and _Transfer=16 (PQ) or 18 (HLG)"),
]


@pytest.mark.parametrize("props", [{"_Matrix": 12, "_Primaries": 9}, {"_Matrix": 10, "_Transfer": 14},
                                   {"_Matrix": 13, "_Primaries": 1, "_Transfer": 1},
                                   {"_Matrix": 14, "_Primaries": 9, "_Transfer": 16}])
def test_those_matrices_with_what_defines_them_are_upscaled(ncnn_models, props):
    clip = small(vs.YUV444P16).std.SetFrameProps(**props)
    assert sr.Upscale(clip, "realesr-animevideov3", precision="fp32").get_frame(0).props["_Matrix"] == props["_Matrix"]


def test_a_sample_aspect_ratio_beyond_what_props_hold_is_one_line(ncnn_models):
    clip = small(vs.YUV420P8).std.SetFrameProps(_SARNum=2**62, _SARDen=1)
    assert frame_error(sr.Upscale(clip, "realesr-animevideov3", width=300, height=200)) == \
        "vs_sr: the sample aspect ratio 4611686018427387904:1 cannot be kept at 300x200: set the frames' real one, " \
        "e.g. clip.std.SetFrameProps(_SARNum=1, _SARDen=1) for square pixels."
    for width, height in ((300, 200), (100, 400)):  # a correction below 1, and one above it
        near = small(vs.YUV420P8).std.SetFrameProps(_SARNum=2**31 - 2, _SARDen=2**31 - 3)  # kept, within 1e-18
        props = sr.Upscale(near, "realesr-animevideov3", width=width, height=height).get_frame(0).props
        assert max(props["_SARNum"], props["_SARDen"]) < 2**31


@pytest.mark.parametrize(("fmt", "props", "message", "size"), [
    (*case, size) for case in BAD_PROPS for size in ({"width": 300, "height": 200}, {})
    if size or "_SARNum" not in case[1]])  # (the SAR is read only where the shape changes)
def test_a_bad_frame_prop_is_named_in_one_line(ncnn_models, fmt, props, message, size):
    """Resized or at the model's scale alike (an RGBS clip at its scale, which needs no conversion,
    passed any props on to the next resize, which refused them in its own words)."""
    clip = small(fmt).std.SetFrameProps(**props)
    assert frame_error(sr.Upscale(clip, "realesr-animevideov3", **size)).startswith(f"vs_sr: {message}")


def test_a_script_error_shows_the_scripts_line_not_vs_srs_insides(ncnn_models):
    """vspipe and previewers print a script error's whole traceback: fifteen lines through
    vs_sr's modules for a mistyped scale."""
    with pytest.raises(vs.Error) as raised:
        sr.Upscale(small(), "realesr-animevideov3", scale=2)
    files = [Path(frame.filename).name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert files == [Path(__file__).name, "errors.py"], files


def test_a_grey_plane_of_an_rgb_clip_is_upscaled_whatever_its_matrix_says(ncnn_models):
    """A plane shuffled out of an RGB clip keeps its _Matrix=0: resize refused it, and so did vs_sr,
    asking for "the matrix it was made with", which a grey picture does not depend on."""
    rgb = small(vs.RGB24).std.SetFrameProps(_Matrix=0)
    grey = vs.core.std.ShufflePlanes(rgb, 1, vs.GRAY)
    made = sr.Upscale(grey, "realesr-animevideov3", precision="fp32").get_frame(0)
    plain = sr.Upscale(grey.std.RemoveFrameProps("_Matrix"), "realesr-animevideov3", precision="fp32").get_frame(0)
    assert made.format.name == "Gray8" and np.array_equal(np.asarray(made[0]), np.asarray(plain[0]))


def test_an_onnx_file_whose_output_is_not_an_image(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 192])
    graph = helper.make_graph([helper.make_node("Flatten", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "flat.onnx"))
    expect_error(r"flat.onnx's output \(1x192\) is not an image: vs_sr needs NCHW output with 3 channels",
                 small(vs.RGBS), tmp_path / "flat.onnx", 1)
