"""vs_sr's own `faithful` models (x2, x4): the shipped weights load on every CPU runtime with the
same output, beat bicubic on a picture their training never saw, and keep that at bf16 and int8;
`vs-sr models list` says which models are fidelity-oriented."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import vapoursynth as vs
from conftest import bare_network, frame_planes, rgb_clip, vs_sr

import vs_sr as sr
from vs_sr import extras
from vs_sr.models import resolve
from vs_sr.quality import metrics

core = vs.core
ROOT = Path(__file__).resolve().parents[2]
UNSEEN = "skimage/coffee"


def training_script() -> ModuleType:
    """scripts/train_faithful.py as a module (its image lists; importing it runs nothing)."""
    spec = importlib.util.spec_from_file_location("train_faithful", ROOT / "scripts" / "train_faithful.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def unseen_picture() -> np.ndarray:
    """(3, 384, 576) float32: scikit-image's coffee, a validation image the training held out."""
    from skimage import data

    assert UNSEEN in training_script().VALIDATION  # never trained on
    return np.ascontiguousarray(data.coffee()[8:392, 12:588].transpose(2, 0, 1).astype(np.float32) / 255)


def upscaled(clip: vs.VideoNode, scale: int, **options: str) -> np.ndarray:
    return frame_planes(sr.Upscale(clip, "faithful", scale, **options).get_frame(0))


@pytest.mark.parametrize("scale", [2, 4])
def test_shipped_weights_give_the_same_output_on_every_cpu_backend(scale):
    """The ncnn files inside vs_sr, on OpenVINO and ONNX Runtime (ONNX graphs converted without
    PyTorch) and on PyTorch (the Compact module filled from the same data), against the bare network."""
    network = resolve("faithful", scale)
    assert network.format == "ncnn" and network.path.parent == ROOT / "vs_sr" / "models" / "shipped"
    image = unseen_picture()[:, 100:148, 200:264]
    clip = rgb_clip([image])
    backends = ["openvino", "ort"] + (["torch"] if extras.has("torch") else [])
    outputs = {backend: upscaled(clip, scale, backend=backend, precision="fp32") for backend in backends}
    assert all(out.shape == (3, 48 * scale, 64 * scale) for out in outputs.values())
    if extras.has("torch"):
        bare = bare_network("faithful", scale, image)
        assert {backend: float(np.abs(out - bare).max()) < 1e-4 for backend, out in outputs.items()} == \
            dict.fromkeys(backends, True)
    assert np.abs(outputs["openvino"] - outputs["ort"]).max() < 1e-4


def psnr_y(out: np.ndarray, truth: np.ndarray, scale: int) -> float:
    return metrics.psnr(metrics.prepare(np.clip(out, 0, 1), "y", scale), metrics.prepare(truth, "y", scale))


@pytest.mark.parametrize("scale", [2, 4])
def test_beats_bicubic_on_a_picture_it_never_saw(scale):
    """A clean bicubic downscale of the held-out picture, upscaled back: PSNR-Y (BT.601, border
    cropped) at least 0.5 dB above bicubic (measured: +1.31 dB at x4, +2.31 dB at x2)."""
    truth = unseen_picture()
    big = rgb_clip([truth])
    small = big.resize.Bicubic(big.width // scale, big.height // scale)
    bicubic = frame_planes(small.resize.Bicubic(big.width, big.height).get_frame(0))
    ours = upscaled(small, scale, precision="fp32")
    assert psnr_y(ours, truth, scale) >= psnr_y(bicubic, truth, scale) + 0.5


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_scores_as_fp32(precision):
    """bf16 and int8 within 0.1 dB PSNR-Y of fp32 against the truth (int8's bar in test_int8),
    each where this CPU offers it."""
    from vs_sr.backends import get_backend

    if precision not in get_backend("openvino").precisions(0):
        pytest.skip(f"this CPU offers no {precision} (vs-sr info says why)")
    truth = unseen_picture()
    big = rgb_clip([truth])
    small = big.resize.Bicubic(big.width // 4, big.height // 4)
    reduced = psnr_y(upscaled(small, 4, precision=precision), truth, 4)
    assert reduced >= psnr_y(upscaled(small, 4, precision="fp32"), truth, 4) - 0.1


def test_models_list_says_which_models_are_fidelity_oriented():
    listing = vs_sr("models", "list")
    assert listing.returncode == 0, listing.stderr
    header = listing.stdout.splitlines()[0]
    assert "objective" in header.split()
    column = header.index("objective")
    rows = {tuple(line.split()[:2]): line[column:].split()[0] for line in listing.stdout.splitlines()[1:]
            if line[:1].isalnum() and len(line) > column and line.split()[1].startswith("x")}
    assert rows[("faithful", "x4")] == rows[("faithful", "x2")] == rows[("hat", "x4")] == "fidelity"
    assert rows[("realesr-animevideov3", "x4")] == rows[("real-hat-gan", "x4")] == "generative"
    assert "fidelity: trained on pixel losses only" in listing.stdout
    table = json.loads(vs_sr("models", "list", "--json").stdout)
    objectives = {(row["name"], row["scale"]): row["objective"] for row in table}
    assert objectives[("faithful", 4)] == "fidelity" and objectives[("realesrgan-x4plus", 4)] == "generative"
    assert set(objectives.values()) == {"fidelity", "generative", "unknown"}
