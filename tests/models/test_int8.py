"""precision="int8": quality against fp32 and ground truth on photographs the calibration never
saw, the same bits whatever the order or streams, one quantization per shape (cached, redone
when the graph or recipe changes), clear refusals, and a killed quantizer leaves nothing."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import vapoursynth as vs
from conftest import frame_hash, frame_planes, processes, psnr, rgb_clip, wait_until

import vs_sr as sr
from vs_sr.quality import metrics

pytest.importorskip("nncf")

core = vs.core
WIDTH, HEIGHT = 176, 144  # one tile shape for every test here: one quantization serves them all


def held_out_frames() -> dict[str, np.ndarray]:
    """Photographs not among the worker's calibration images, as (3, 144, 176) float32: a crop at
    full resolution and the whole picture shrunk (bicubic)."""
    from PIL import Image
    from skimage import data

    frames = {}
    for name, image in (("retina", data.retina()), ("stereo_motorcycle", data.stereo_motorcycle()[0])):
        height, width = image.shape[:2]
        top, left = (height - HEIGHT) // 2, (width - WIDTH) // 2
        crop = image[top:top + HEIGHT, left:left + WIDTH]
        shrunk = np.asarray(Image.fromarray(image).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC))
        for kind, picture in (("crop", crop), ("shrunk", shrunk)):
            frames[f"{name}-{kind}"] = np.ascontiguousarray(picture.transpose(2, 0, 1).astype(np.float32) / 255)
    return frames


def outputs(clip: vs.VideoNode) -> list[np.ndarray]:
    return [frame_planes(frame) for frame in clip.frames()]


@pytest.fixture(scope="module")
def int8_log(ncnn_models) -> list[str]:
    """vs_sr's log lines while the tests of this module run (the quantizer reports there)."""
    lines: list[str] = []
    handle = core.add_log_handler(lambda kind, message: lines.append(message) if "vs_sr: " in message else None)
    yield lines
    core.remove_log_handler(handle)


def test_int8_holds_40_db_from_fp32_on_unseen_photographs(int8_log):
    frames = held_out_frames()
    clip = rgb_clip(list(frames.values()))
    int8 = outputs(sr.Upscale(clip, "realesr-animevideov3", 4, precision="int8"))
    fp32 = outputs(sr.Upscale(clip, "realesr-animevideov3", 4, precision="fp32"))
    scores = {name: psnr(a, b) for name, a, b in zip(frames, int8, fp32, strict=True)}
    assert min(scores.values()) >= 40.0, scores
    assert any("int8: quantizing" in line for line in int8_log)


def test_int8_scores_as_fp32_against_ground_truth(int8_log):
    """A sample pair of three 704x576 crops of a photograph the calibration never saw, shrunk to
    176x144 (bicubic) and upscaled back: PSNR-Y over the pair within 0.1 dB of fp32's."""
    from PIL import Image
    from skimage import data

    photo = data.retina()
    truths = [photo[y:y + 4 * HEIGHT, x:x + 4 * WIDTH] for y, x in ((300, 300), (500, 150), (700, 600))]
    smalls = [np.asarray(Image.fromarray(t).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)) for t in truths]
    clip = rgb_clip([np.ascontiguousarray(s.transpose(2, 0, 1).astype(np.float32) / 255) for s in smalls])
    reference = np.stack([metrics.prepare(t.transpose(2, 0, 1) / 255, "y", 4) for t in truths])

    def psnr_y(precision: str) -> float:
        outs = outputs(sr.Upscale(clip, "realesr-animevideov3", 4, precision=precision))
        return metrics.psnr(np.stack([metrics.prepare(np.clip(o, 0, 1), "y", 4) for o in outs]), reference)

    int8, fp32 = psnr_y("int8"), psnr_y("fp32")
    assert int8 >= fp32 - 0.1, (int8, fp32)


def test_int8_frames_are_the_same_bits_in_any_order_and_stream_count(int8_log):
    frames = list(held_out_frames().values())
    clip = rgb_clip(frames)
    one = sr.Upscale(clip, "realesr-animevideov3", 4, precision="int8", num_streams=1)
    forward = [frame_hash(one.get_frame(n)) for n in range(len(frames))]
    two = sr.Upscale(clip, "realesr-animevideov3", 4, precision="int8", num_streams=2)
    backward = [frame_hash(two.get_frame(n)) for n in reversed(range(len(frames)))][::-1]
    together = [frame_hash(f) for f in two.frames()]  # frames requested concurrently
    assert forward == backward == together
    assert one.get_frame(0).props["SRPrecision"] == "int8" and one.get_frame(0).props["SRBackend"] == "openvino"


def test_the_quantized_model_is_reused_and_redone_when_graph_or_recipe_change(int8_log, tmp_path):
    from vs_sr.models import resolve
    from vs_sr.models.architectures import Int8Recipe
    from vs_sr.models.int8 import cache_key, quantized_model
    from vs_sr.models.onnx_export import export_onnx

    clip = rgb_clip([held_out_frames()["retina-crop"]])
    sr.Upscale(clip, "realesr-animevideov3", 4, precision="int8").get_frame(0)  # quantized (here or before)
    int8_log.clear()
    sr.Upscale(clip, "realesr-animevideov3", 4, precision="int8").get_frame(0)
    assert not any("quantizing" in line for line in int8_log), int8_log

    network = resolve("realesr-animevideov3", 4)
    graph = export_onnx(network, 1, HEIGHT, WIDTH)
    recipe = network.traits.precision.int8
    assert recipe is not None
    changed_graph = tmp_path / graph.name
    changed_graph.write_bytes(graph.read_bytes() + b"\0")  # other bytes: another key
    assert cache_key(changed_graph, HEIGHT, WIDTH, recipe) != cache_key(graph, HEIGHT, WIDTH, recipe)
    # A new recipe quantizes again (a small calibration keeps this quick).
    quick = dataclasses.replace(recipe, samples=4)
    traits = dataclasses.replace(network.traits, precision=dataclasses.replace(network.traits.precision, int8=quick))
    messages: list[str] = []
    first = quantized_model(dataclasses.replace(network, traits=traits), graph, HEIGHT, WIDTH, messages.append)
    assert any("quantizing" in m for m in messages) and first.is_file()
    messages.clear()
    assert quantized_model(dataclasses.replace(network, traits=traits), graph, HEIGHT, WIDTH, messages.append) == first
    assert not messages
    assert cache_key(graph, HEIGHT, WIDTH, quick) != cache_key(graph, HEIGHT, WIDTH, Int8Recipe())


def test_networks_without_a_measured_recipe_refuse_int8(ncnn_models, hat_s_pth, rrdb_pth):
    clip = core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=1)
    with pytest.raises(vs.Error, match=r"realcugan x2 noise -1 has no int8: quantized, it lands further from the "
                                       r"ground truth .*docs/benchmarks.md, \"Networks that refuse int8\""):
        sr.Upscale(clip, "realcugan", 2, precision="int8")
    with pytest.raises(vs.Error, match="no tested int8 recipe for transformers"):
        sr.Upscale(clip, str(hat_s_pth), 4, precision="int8")
    with pytest.raises(vs.Error, match=r"has no int8: the best recipe found moves its output too far from fp32's "
                                       r"\(docs/benchmarks.md.*precision=.bf16."):
        sr.Upscale(clip, str(rrdb_pth), 4, precision="int8")
    with pytest.raises(vs.Error, match="precision='int8' runs on OpenVINO's CPU device, not backend 'ort'"):
        sr.Upscale(clip, "realesr-animevideov3", 4, backend="ort", precision="int8")


def test_a_killed_script_leaves_no_quantizer_and_no_cached_model(ncnn_models, tmp_path):
    cache = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import vapoursynth as vs, vs_sr as sr
        clip = vs.core.std.BlankClip(format=vs.RGBS, width={WIDTH}, height={HEIGHT}, length=1)
        sr.Upscale(clip, "realesr-animevideov3", 4, precision="int8")
    """)
    env = {**os.environ, "VS_SR_CACHE_DIR": str(cache)}
    parent = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        worker = wait_until(lambda: [p for p in processes("int8_worker.py") if p.parent == parent.pid], timeout=300,
                            what="the quantizer to start")[0]
        wait_until(lambda: list((cache / "int8").glob(".*.part.onnx")), timeout=60, what="the quantizer's output file")
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        wait_until(lambda: not [p for p in processes("int8_worker.py") if p.pid == worker.pid], timeout=30,
                   what="the quantizer to die with its parent")
    finally:
        parent.kill()
        parent.wait()
    assert not [p for p in (cache / "int8").iterdir() if p.suffix == ".onnx" and not p.name.startswith(".")]
