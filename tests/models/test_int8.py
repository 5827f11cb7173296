"""precision="int8": quality against fp32 and ground truth on photographs the calibration never
saw, the same bits whatever the order or streams, one quantization per network for every tile
shape (cached, redone when the graph or recipe changes), clear refusals, a killed quantizer
leaves nothing; and what OpenVINO really runs: every convolution on an int8 kernel, computing the
graph's arithmetic exactly (no saturated sums), on this CPU and on the CPUs its ISA caps emulate,
and int8 faster than the default reduced precision."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from conftest import frame_hash, frame_planes, isa_capped_environment, processes, psnr, rgb_clip, wait_until

import vs_sr as sr
from vs_sr.quality import metrics

pytest.importorskip("skimage")  # the [int8] extra: the calibration photographs

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


def test_one_quantized_model_serves_every_frame_size(int8_log, isolated_dirs):
    """Quantized once per network (whichever test or module did it first): other frame sizes and
    tile shapes find it in the cache, and hold the quality bar there too."""
    from PIL import Image
    from skimage import data

    sr.Upscale(rgb_clip([held_out_frames()["retina-crop"]]), "realesr-animevideov3", 4, precision="int8").get_frame(0)
    int8_log.clear()
    before = cached_graphs(isolated_dirs["cache"])  # other tests may have quantized other networks
    image = data.stereo_motorcycle()[0]
    large = np.asarray(Image.fromarray(image).resize((320, 240), Image.Resampling.BICUBIC))
    clip = rgb_clip([np.ascontiguousarray(large.transpose(2, 0, 1).astype(np.float32) / 255)])
    int8 = outputs(sr.Upscale(clip, "realesr-animevideov3", 4, precision="int8"))[0]
    tiled = outputs(sr.Upscale(clip, "realesr-animevideov3", 4, precision="int8", tile=(96, 64)))[0]
    fp32 = outputs(sr.Upscale(clip, "realesr-animevideov3", 4, precision="fp32"))[0]
    assert psnr(int8, fp32) >= 40.0 and psnr(tiled, int8) >= 45.0
    assert not any("quantizing" in line for line in int8_log), int8_log
    assert cached_graphs(isolated_dirs["cache"]) == before  # nothing quantized again for the new sizes


def cached_graphs(cache: Path) -> set[str]:
    return {p.name for p in (cache / "int8").iterdir() if p.suffix == ".onnx" and not p.name.startswith(".")}


def test_the_quantized_model_is_redone_when_graph_or_recipe_change(ncnn_models, tmp_path, monkeypatch):
    from vs_sr.models import resolve
    from vs_sr.models.architectures import Int8Recipe
    from vs_sr.models.int8 import cache_key, quantized_model
    from vs_sr.models.onnx_export import export_onnx

    network = resolve("realesr-animevideov3", 4)
    recipe = network.traits.precision.int8
    assert recipe is not None
    graph = export_onnx(network, 1, *recipe.tile, dynamic=True)
    changed_graph = tmp_path / graph.name
    changed_graph.write_bytes(graph.read_bytes() + b"\0")  # other bytes: another key
    assert cache_key(changed_graph, recipe) != cache_key(graph, recipe)
    import importlib.metadata  # what calibrates the model is in its key: a new version quantizes again
    for package in ("onnxruntime", "numpy", "scikit-image", "pillow"):
        assert importlib.metadata.version(package) in cache_key(graph, recipe), package
    # A new recipe quantizes again (a small calibration keeps this quick; a cache of its own).
    monkeypatch.setenv("VS_SR_CACHE_DIR", str(tmp_path / "cache"))
    quick = dataclasses.replace(recipe, samples=4, tile=(32, 48))
    traits = dataclasses.replace(network.traits, precision=dataclasses.replace(network.traits.precision, int8=quick))
    messages: list[str] = []
    first = quantized_model(dataclasses.replace(network, traits=traits), messages.append)
    assert any("quantizing" in m for m in messages) and any(m.startswith("int8: 2/4 calibrating") for m in messages)
    assert first.is_file()
    messages.clear()
    assert quantized_model(dataclasses.replace(network, traits=traits), messages.append) == first
    assert not messages
    assert cache_key(graph, quick) != cache_key(graph, Int8Recipe())


def test_networks_without_a_measured_recipe_refuse_int8(ncnn_models, hat_s_pth, rrdb_pth):
    clip = core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=1)
    with pytest.raises(vs.Error, match=r"realcugan x2 noise -1 has no int8: quantized, it lands further from the "
                                       r"ground truth .*docs/benchmarks.md, \"Networks that refuse int8\""):
        sr.Upscale(clip, "realcugan", 2, precision="int8")
    with pytest.raises(vs.Error, match=r"no tested int8 recipe for transformers .*\. int8 is offered for faithful, "
                                       r"realesr-animevideov3 \(and Compact networks of their shape\) only"):
        sr.Upscale(clip, str(hat_s_pth), 4, precision="int8")
    with pytest.raises(vs.Error, match=r"has no int8: the best recipe found moves its output too far from fp32's "
                                       r"\(docs/benchmarks.md.*precision=.bf16."):
        sr.Upscale(clip, str(rrdb_pth), 4, precision="int8")
    with pytest.raises(vs.Error, match="precision='int8' runs on OpenVINO's CPU device, not backend 'ort'"):
        sr.Upscale(clip, "realesr-animevideov3", 4, backend="ort", precision="int8")


def test_compact_networks_of_another_shape_refuse_int8_and_auto_passes_it_over(tmp_path):
    """The recipe was measured on Compact nets of 64 features and 16 convolutions;
    realesr-general-x4v3 has 32, and neither it nor a .pth of that shape gets int8 unmeasured."""
    from conftest import random_weights

    from vs_sr.models import REGISTRY
    from vs_sr.models.registry import int8_models

    assert int8_models() == ["faithful", "realesr-animevideov3"]
    assert REGISTRY["realesr-general-x4v3"][4].traits.precision.int8 is None
    weights = random_weights("compact", "realesr-general-x4v3", 4, tmp_path)
    clip = core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=1)
    with pytest.raises(vs.Error, match=r"has no int8: the int8 recipe was measured on Compact nets of 64 features and 16 "
                                       r"convolutions; this one has 64 and 32"):
        sr.Upscale(clip, str(weights), 4, precision="int8")
    picked = sr.Upscale(clip, str(weights), 4, backend="openvino").get_frame(0).props["SRPrecision"]
    assert picked in ("bf16", "fp32")


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


# -- what OpenVINO runs, here and on emulated CPUs ------------------------------------------------
# Capping OpenVINO's ISA (both variables, same value, read once per process) runs the kernels an
# older CPU would get: AVX512_CORE_VNNI is an Ice Lake (VNNI, no bf16, no AMX), AVX512_CORE_BF16
# a Zen 4/5, AVX2_VNNI an Alder Lake, AVX2 a Zen 2/3 or Skylake client (no int8 dot-product
# units). None is the CPU as it is.
ISA_CAPS = [pytest.param(None, id="this-cpu"), pytest.param("AVX512_CORE_VNNI", id="emulated-vnni-only"),
            pytest.param("AVX512_CORE_BF16", id="emulated-zen4"), pytest.param("AVX2_VNNI", id="emulated-avx-vnni"),
            pytest.param("AVX2", id="emulated-avx2")]


@pytest.fixture(scope="module")
def int8_graph(ncnn_models) -> Path:
    from vs_sr.models import resolve
    from vs_sr.models.int8 import quantized_model

    return quantized_model(resolve("realesr-animevideov3", 4))


# OpenVINO's own Python package (not the C API a VapourSynth process may share with vs-mlrt).
RUNTIME_MODEL = textwrap.dedent("""
    import json, sys
    import openvino as ov
    core = ov.Core()
    model = core.read_model(sys.argv[1])
    model.reshape({model.inputs[0]: ov.PartialShape([1, 3, 144, 176])})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": sys.argv[2]})
    convolutions = []
    for node in compiled.get_runtime_model().get_ordered_ops():
        rt = node.get_rt_info()
        if rt["layerType"].astype(str) == "Convolution":
            convolutions.append([rt["originalLayersNames"].astype(str), rt["runtimePrecision"].astype(str),
                                 rt["primitiveType"].astype(str)])
    print(json.dumps(convolutions))
""")


@pytest.mark.parametrize("cap", ISA_CAPS)
def test_openvino_runs_every_convolution_on_an_int8_kernel(int8_graph, cap):
    """runtimePrecision alone is not enough: the recipe shipped before this one said "i8" while
    17 of its 18 convolutions ran brgconv_avx512_f32. The kernel's name says what runs."""
    from vs_sr.backends.openvino.backend import HINTS

    env = isa_capped_environment(cap)
    done = subprocess.run([sys.executable, "-c", RUNTIME_MODEL, str(int8_graph), HINTS["int8"]], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    convolutions = json.loads(done.stdout.strip().splitlines()[-1])
    kernels = sorted({kernel for _, _, kernel in convolutions})
    print(f"{cap or 'this CPU'}: {len(convolutions)} convolutions on {', '.join(kernels)}")
    assert len(convolutions) == 18, convolutions  # realesr-animevideov3: 18 convolutions, none fused away
    assert all("i8" in kernel.lower() for _, _, kernel in convolutions), convolutions


def primaries_and_ramps() -> np.ndarray:
    """(3, 144, 176) float32: the eight corners of the RGB cube as bars over black-to-white ramps,
    the largest activations (and so the largest pair sums) a frame can give."""
    corners = np.array(list(itertools.product((0.0, 1.0), repeat=3)), np.float32)  # (8, 3)
    frame = np.repeat(corners.T[:, None, :], HEIGHT, axis=1)  # (3, 144, 8)
    frame = np.repeat(frame, WIDTH // 8, axis=2)
    frame[:, HEIGHT // 2:, :] = np.linspace(0, 1, WIDTH, dtype=np.float32)[None, None, :]
    return np.ascontiguousarray(frame)


RUN_GRAPH = textwrap.dedent("""
    import sys
    import numpy as np
    import openvino as ov
    frames = np.load(sys.argv[2])
    model = ov.Core().read_model(sys.argv[1])
    model.reshape({model.inputs[0]: ov.PartialShape([1, *frames.shape[1:]])})
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    np.save(sys.argv[3], np.concatenate([compiled(frame[None])[0] for frame in frames]))
""")


@pytest.mark.parametrize("cap", ISA_CAPS)
def test_openvino_computes_the_int8_graph_exactly(int8_graph, cap, tmp_path):
    """OpenVINO's int8 output against the graph's own arithmetic (ONNX Runtime running its
    Quantize/DequantizeLinear nodes one by one in float, which rounds and clips exactly as the
    graph says): on CPUs without VNNI (AVX2) the kernels add pairs of products in saturating 16-bit
    sums: the recipe before the pair limit landed 34-43 dB from its own arithmetic there, the one
    with it 48-50 dB (float rounding: ONNX Runtime adds the dequantized products in float, OpenVINO
    in int32 and requantizes fused)."""
    import onnxruntime as ort

    frames = np.stack([*held_out_frames().values(), primaries_and_ramps()])
    np.save(tmp_path / "frames.npy", frames)
    done = subprocess.run([sys.executable, "-c", RUN_GRAPH, str(int8_graph), str(tmp_path / "frames.npy"),
                           str(tmp_path / "out.npy")], capture_output=True, text=True, env=isa_capped_environment(cap),
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # no fused int8 kernels
    exact = ort.InferenceSession(str(int8_graph), options, providers=["CPUExecutionProvider"])
    name = exact.get_inputs()[0].name
    openvino = np.load(tmp_path / "out.npy")
    scores = [psnr(np.clip(ov_out, 0, 1), np.clip(exact.run(None, {name: frame[None]})[0][0], 0, 1))
              for ov_out, frame in zip(openvino, frames, strict=True)]
    print(f"{cap or 'this CPU'}: OpenVINO int8 against the graph's arithmetic: {[round(s, 1) for s in scores]} dB")
    assert min(scores) >= 44.0, scores


# One process, int8 and the precision auto picks for conv nets without an int8 recipe (bf16
# where the CPU has native bf16, else fp32), through vs_sr's OpenVINO backend, frame by frame in
# turns: the ratio of the medians, whatever else the machine is doing.
INTERLEAVED = textwrap.dedent("""
    import json, statistics, time
    import numpy as np
    from vs_sr.backends import SessionSpec, get_backend
    from vs_sr.models import resolve
    from vs_sr.report.machine import auto_precisions
    backend, network = get_backend("openvino"), resolve("realesr-animevideov3", 4)
    reduced = auto_precisions(backend)["conv"]
    runs = {p: backend.open(SessionSpec(network, 1, 144, 176, p, 1, 0))[0].run for p in ("int8", reduced)}
    tile = np.random.default_rng(0).random((1, 3, 144, 176), dtype=np.float32)
    times = {p: [] for p in runs}
    for _ in range(2):
        for run in runs.values():
            run(tile)
    for _ in range(15):
        for precision, run in runs.items():
            start = time.perf_counter()
            run(tile)
            times[precision].append(time.perf_counter() - start)
    medians = {p: statistics.median(t) for p, t in times.items()}
    print(json.dumps({"reduced": reduced, "fps": {p: 1 / m for p, m in medians.items()},
                      "ratio": medians[reduced] / medians["int8"]}))
""")


TIMED_CAPS = [p for p in ISA_CAPS if p.values[0] in (None, "AVX512_CORE_VNNI", "AVX2")]


@pytest.mark.parametrize("cap", TIMED_CAPS)
def test_int8_runs_faster_than_the_default_reduced_precision(int8_graph, cap):
    """Measured 1.6-2.4x bf16 on AMX, 1.8x bf16 on a Zen 5 (VNNI and bf16, no AMX), ~3x fp32 on
    VNNI-only CPUs without bf16 (emulated) and ~2x fp32 on a Zen 3 (AVX2 only) (docs/benchmarks.md);
    1.15x leaves room for a busy machine and still fails a recipe that falls back to float kernels."""
    done = subprocess.run([sys.executable, "-c", INTERLEAVED], capture_output=True, text=True,
                          env=isa_capped_environment(cap), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{cap or 'this CPU'}: int8 {result['fps']['int8']:.1f} fps, {result['reduced']} "
          f"{result['fps'][result['reduced']]:.1f} fps: {result['ratio']:.2f}x")
    assert result["ratio"] >= 1.15, result


AUTO_AND_INT8 = textwrap.dedent("""
    import json
    import vapoursynth as vs
    import vs_sr as sr
    clip = vs.core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=1)
    picked = {}
    for model in ("realesr-animevideov3", "realesrgan-x4plus-anime"):
        picked[model] = sr.Upscale(clip, model, 4, backend="openvino").get_frame(0).props["SRPrecision"]
    try:
        sr.Upscale(clip, "realesr-animevideov3", 4, precision="int8")
        picked["int8"] = "ran"
    except vs.Error as error:
        picked["int8"] = str(error)
    print(json.dumps(picked))
""")


@pytest.mark.parametrize(("cap", "compact", "other", "int8"), [
    ("AVX512_CORE_BF16", "int8", "bf16", "ran"),
    ("AVX512_CORE_VNNI", "int8", "fp32", "ran"),
    ("AVX2", "int8", "fp32", "ran"),
    ("AVX512_CORE", "fp32", "fp32", "and AVX2 CPUs without AVX-512 (Zen 2/3, Haswell to Skylake clients); OpenVINO "
     "held to OV_CPU_MAX_ISA=AVX512_CORE, ONEDNN_MAX_CPU_ISA=AVX512_CORE is neither."),
    ("AVX", "fp32", "fp32", "OpenVINO held to OV_CPU_MAX_ISA=AVX, ONEDNN_MAX_CPU_ISA=AVX is neither. Pass "
     "precision='fp32'."),
])
def test_auto_picks_by_the_cpu(int8_graph, cap, compact, other, int8):
    """On an emulated Zen 4, Ice Lake and Zen 2/3 (AVX2, no VNNI: int8 ~2x fp32 there) auto runs int8
    where a recipe exists, bf16 only with native bf16; on an emulated Skylake server (AVX-512 without
    VNNI) and an AVX-only CPU, where int8 kernels were never measured, it stays fp32 and asking for
    int8 is refused."""
    done = subprocess.run([sys.executable, "-c", AUTO_AND_INT8], capture_output=True, text=True,
                          env=isa_capped_environment(cap), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    picked = json.loads(done.stdout.strip().splitlines()[-1])
    assert picked["realesr-animevideov3"] == compact and picked["realesrgan-x4plus-anime"] == other, picked
    assert int8 in picked["int8"], picked
