"""scripts/train_faithful.py, tiny: its data stage (real ffmpeg, libx264 and bestsource on three
scikit-image photographs) and its training stage (2 iterations); a run stopped after its first
checkpoint and started again ends with the same weights, bit for bit, as one that ran through
(drawing half its patches from the clean clips and a quarter from the plain ones); it writes only
under its --workdir. And `--convs`: deepening a network keeps what it computes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script

torch = pytest.importorskip("torch")
pytest.importorskip("skimage")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_faithful.py"
IMAGES = "skimage/astronaut,skimage/camera,skimage/coffee"  # coffee is a validation image
TINY = ["--images", IMAGES, "--iterations", "2", "--batch", "2", "--patch", "16", "--val-every", "2",
        "--checkpoint-every", "1", "--threads", "1", "--name", "tiny", "--clean", "0.5",
        "--plain", "0.25"]


def train(workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, str(SCRIPT), "train", "--scale", "4", "--workdir", str(workdir), *TINY,
                           *extra], capture_output=True, text=True, timeout=600, env=os.environ, cwd=workdir.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def weights(workdir: Path) -> dict[str, torch.Tensor]:
    return torch.load(workdir / "runs" / "tiny" / "model.pth", map_location="cpu", weights_only=True)["params_ema"]


def test_data_train_and_resume_give_the_same_weights(tmp_path):
    straight = tmp_path / "straight"
    train(straight)
    manifest = json.loads((straight / "data" / "images.json").read_text())
    assert {(row["id"], row["split"]) for row in manifest} == {
        ("skimage/astronaut", "train"), ("skimage/camera", "train"), ("skimage/coffee", "val")}
    assert all(row["licence"] and row["sha256"] for row in manifest)
    assert sorted(p.name for p in (straight / "data").glob("*.npz")) == [
        "x4-train-clean.npz", "x4-train-plain.npz", "x4-train.npz", "x4-val-clean.npz", "x4-val-upload.npz",
        "x4-val.npz"]
    for split in ("train-clean", "val-clean"):  # a kernel of the mix, nothing else: lossless x264
        recipes = json.loads((straight / "data" / f"x4-{split}.json").read_text())
        assert recipes and all((r["crf"], r["blur"], r["noise"]) == (0, 0.0, 0.0) for r in recipes)
    plain = json.loads((straight / "data" / "x4-train-plain.json").read_text())  # x264 as in the mix, no more
    assert plain and all(18 <= r["crf"] <= 32 and (r["blur"], r["noise"]) == (0.0, 0.0) for r in plain)
    history = json.loads((straight / "runs" / "tiny" / "history.json").read_text())
    assert [row["iteration"] for row in history] == [0, 2] and history[0]["bicubic_val"] > 20
    assert history[0]["bicubic_val-clean"] > history[0]["bicubic_val-upload"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["straight"]  # nothing beside its work folder

    stopped = tmp_path / "stopped"
    shutil.copytree(straight / "data", stopped / "data")  # the same clips; the data stage ran above
    train(stopped, "--stop-after", "1")
    assert (stopped / "runs" / "tiny" / "checkpoint.pt").is_file()
    assert not (stopped / "runs" / "tiny" / "model.pth").exists()
    resumed = train(stopped)
    assert "tiny: resumed at iteration 1" in resumed.stdout
    ours, theirs = weights(straight), weights(stopped)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[key], theirs[key]) for key in ours)


def test_deepening_keeps_the_function_and_the_export_follows_the_depth(tmp_path):
    from vs_sr.models import resolve, torch_module
    from vs_sr.models.ncnn_format import read_network

    script = load_script("train_faithful")
    shallow = torch_module(resolve("faithful", 4)).eval()  # trained weights: every layer matters to the output
    state = {key: value.detach().clone() for key, value in shallow.state_dict().items()}
    low = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(3))
    for num_conv in (24, 40):  # 40: more than one identity layer after some convolutions
        deepened = script.deepen(state, num_conv)
        assert script.conv_count(deepened) == num_conv
        deep = script.compact(4, num_conv).eval()
        deep.load_state_dict(deepened)
        with torch.no_grad():
            assert torch.allclose(deep(low), shallow(low), atol=1e-5)
        param, weights = tmp_path / f"x{num_conv}.param", tmp_path / f"x{num_conv}.bin"
        param.write_text(script.ncnn_param(4, num_conv))
        weights.write_bytes(script.ncnn_bin(deepened))
        layers = [layer for layer in read_network(param, weights).layers if layer.kind in ("Convolution", "PReLU")]
        assert len(layers) == 2 * num_conv + 3  # every convolution but the last followed by its PReLU
        for index, layer in enumerate(layers):  # the export holds each layer's arrays in the network's order
            kind = "weight" if layer.kind == "Convolution" else "slope"
            assert np.array_equal(layer.data[kind], deepened[f"body.{index}.weight"].numpy().ravel())
    assert script.deepen(state, 16).keys() == state.keys()
    with pytest.raises(SystemExit, match="already have 16 convolutions"):
        script.deepen(state, 12)
