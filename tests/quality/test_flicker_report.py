"""scripts/flicker_report.py, which makes docs/quality.md's warping-error table: its sharpened-bicubic
control has the fine detail it is matched to, and a short run on the two clips it draws itself
(real ffmpeg, x264, bestsource and OpenVINO) scores every method, the models with a control."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "flicker_report.py"


def test_the_control_is_sharpened_to_the_detail_it_is_matched_to():
    script = load_script("flicker_report")
    rng = np.random.default_rng(7)
    frames = [np.rint(cv2.GaussianBlur(rng.uniform(0, 255, (72, 96)).astype(np.float32), (0, 0), 2.0))
              for _ in range(3)]  # 8-bit levels, like a video's
    sigma, crop = 1.0, 2
    target = 1.8 * script.fine_detail(frames, sigma, crop)
    amount = script.matching_amount(frames, target, sigma, crop)
    assert amount > 0.5
    got = script.fine_detail([script.sharpened(y, amount, sigma) for y in frames], sigma, crop)
    assert got == pytest.approx(target, rel=0.01)  # (the rounding to levels makes it a staircase)
    assert script.matching_amount(frames, script.fine_detail(frames, sigma, crop), sigma, crop) < 0.01
    with pytest.raises(SystemExit, match="no sharpening"):
        script.matching_amount(frames, 1000.0, sigma, crop)


@pytest.mark.slow  # a whole pipeline: two clips drawn, x264, bestsource and OpenVINO
def test_a_short_run_scores_every_method_and_each_model_beside_its_control(tmp_path):
    pytest.importorskip("skimage")
    rows_file, work = tmp_path / "rows.json", tmp_path / "work"
    done = subprocess.run([sys.executable, str(SCRIPT), "--workdir", str(work), "--clips", "astronaut,anime",
                           "--scales", "2", "--models", "faithful", "--frames", "8", "--json", str(rows_file)],
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(rows_file.read_text())
    for clip in ("astronaut", "anime"):
        block = {row["method"]: row for row in rows if row["clip"] == clip}
        assert list(block) == ["reference (own)", "bicubic", "lanczos", "faithful"]
        own = block["reference (own)"]["warp"]
        assert 0 <= own < 1.0  # a pan and a drawn pan: the flow explains them
        assert block["faithful"]["psnr"] > block["bicubic"]["psnr"]
        assert block["faithful"]["warp_added"] == pytest.approx(block["faithful"]["warp"] - own)
        assert block["faithful"]["control_amount"] > 0 and np.isfinite(block["faithful"]["control_added"])
        assert "control_added" not in block["bicubic"] and "added_ratio" not in block["bicubic"]
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 2 + len(rows)  # a header, its rule, a line a row

    # Unsharpened (bicubic matched to bicubic), the control is bicubic, scored as eval scores it.
    script = load_script("flicker_report")
    reference, source = script.source_of("anime", 2, work, 8)
    inputs = script.open_inputs(reference, source=source, scale=2, crop=2, backend="openvino", precision="fp32")
    block = {row["method"]: row for row in rows if row["clip"] == "anime"}
    control = script.Control(script.temporal.estimate_motions(script.luma_frames(inputs.motion), crop=2),
                             script.luma_frames(inputs.clips["bicubic"]), block["reference (own)"]["warp"], 2)
    amount, added = control.added(inputs.clips["bicubic"])
    assert amount < 0.05  # (what rounding to levels shifts)
    assert added == pytest.approx(block["bicubic"]["warp_added"], abs=1e-4)


def test_an_unknown_model_is_a_one_line_error(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--workdir", str(tmp_path), "--models", "fathful"],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    assert done.stderr.strip() == ("no offline named model fathful; choose from faithful, realcugan, realcugan-pro, "
                                   "realesr-animevideov3, realesrgan-x4plus, realesrgan-x4plus-anime, waifu2x-anime, "
                                   "waifu2x-cunet, waifu2x-photo")
