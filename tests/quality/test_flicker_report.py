"""scripts/flicker_report.py, which makes docs/quality.md's warping-error table: its sharpened-bicubic
control has the fine detail it is matched to, and a short run on the two clips it draws itself
(real ffmpeg, x264, bestsource and OpenVINO) scores every method, the models with a control."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

pytest.importorskip("skimage")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "flicker_report.py"


def report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flicker_report", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_control_is_sharpened_to_the_detail_it_is_matched_to():
    script = report()
    rng = np.random.default_rng(7)
    frames = [cv2.GaussianBlur(rng.uniform(0, 255, (72, 96)).astype(np.float32), (0, 0), 2.0) for _ in range(3)]
    sigma = 1.0
    target = 1.8 * script.fine_detail(frames, sigma)
    amount = script.matching_amount(frames, target, sigma)
    assert amount > 0.5
    assert script.fine_detail([script.sharpened(y, amount, sigma) for y in frames], sigma) == pytest.approx(target, 1e-3)
    assert script.matching_amount(frames, script.fine_detail(frames, sigma), sigma) == pytest.approx(0, abs=1e-6)


def test_a_short_run_scores_every_method_and_each_model_beside_its_control(tmp_path):
    rows_file = tmp_path / "rows.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--workdir", str(tmp_path / "work"), "--clips",
                           "astronaut,anime", "--scales", "2", "--models", "faithful", "--frames", "8", "--json",
                           str(rows_file)], capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(rows_file.read_text())
    for clip in ("astronaut", "anime"):
        block = {row["method"]: row for row in rows if row["clip"] == clip}
        assert list(block) == ["guide: reference (own)", "bicubic", "lanczos", "faithful"]
        assert 0 <= block["guide: reference (own)"]["warp"] < 1.0  # a pan and a drawn pan: the flow explains them
        assert block["faithful"]["psnr"] > block["bicubic"]["psnr"]
        assert block["faithful"]["warp_added"] == pytest.approx(
            block["faithful"]["warp"] - block["guide: reference (own)"]["warp"])
        assert np.isfinite(block["faithful"]["control_added"])
        assert block["lanczos"]["added_ratio"] > 0 and "control_added" not in block["bicubic"]
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 2 + len(rows)  # a header, its rule, a line a row
