"""vs-sr eval: metrics equal an independent implementation, crop and Y conversion are the
literature's, and the tool scores files, models and baselines consistently; its warping error
(tests/quality/test_temporal.py checks the metric itself) reaches JSON, CSV and the plot, with and
without a reference."""

from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from conftest import cut_short, ffmpeg, photo, small_compact_weights, vs_sr
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vs_sr.quality import metrics
from vs_sr.quality.evaluate import in_colours_of
from vs_sr.quality.samples import make_pair


def degraded(image: np.ndarray, sigma: float = 0.03) -> np.ndarray:
    return np.clip(image + np.random.default_rng(0).normal(0, sigma, image.shape), 0, 1).astype(np.float32)


def test_y_is_the_literatures_bt601_luma():
    image = photo(48, 64)
    skimage_y = rgb2ycbcr(image.transpose(1, 2, 0))[..., 0]  # MATLAB's rgb2ycbcr, 16-235
    assert np.abs(metrics.luma(image) - skimage_y).max() < 1e-4


@pytest.mark.parametrize("channel", ["y", "rgb"])
@pytest.mark.parametrize("crop", [0, 4])
def test_metrics_equal_scikit_image(channel, crop):
    a, b = photo(96, 128), degraded(photo(96, 128))
    x, y = metrics.prepare(a, channel, crop), metrics.prepare(b, channel, crop)
    assert x.shape == (1 if channel == "y" else 3, 96 - 2 * crop, 128 - 2 * crop)
    ref_psnr = peak_signal_noise_ratio(x, y, data_range=255)
    ref_ssim = np.mean([structural_similarity(p, q, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                              data_range=255) for p, q in zip(x, y, strict=True)])
    assert abs(metrics.psnr(x, y) - ref_psnr) < 1e-3
    assert abs(metrics.ssim(x, y) - ref_ssim) < 1e-6


def test_border_crop_ignores_the_border():
    a = photo(64, 64)
    b = a.copy()
    b[:, :4, :] = 0  # damage only the 4-pixel border
    assert metrics.psnr(metrics.prepare(a, "y", 4), metrics.prepare(b, "y", 4)) == float("inf")
    assert metrics.psnr(metrics.prepare(a, "y", 0), metrics.prepare(b, "y", 0)) < 30


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    return make_pair(tmp_path_factory.mktemp("pairs"), "hubble_deep_field", (256, 192), (64, 48), frames=8)


def test_eval_scores_models_and_baselines_with_csv_plot_and_json(ncnn_models, pair, tmp_path):
    high, low = pair
    csv_path, plot = tmp_path / "frames.csv", tmp_path / "psnr.png"
    done = vs_sr("eval", str(high), "--source", str(low), "--model", "realesr-animevideov3", "--csv", str(csv_path),
                 "--plot", str(plot), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["frames"] == 8 and summary["crop"] == 4 and summary["channel"] == "y"
    assert [m["method"] for m in summary["methods"]] == ["bicubic", "lanczos", "realesr-animevideov3"]
    assert all(20 < m["psnr"] < 50 and 0 < m["ssim"] < 1 for m in summary["methods"])
    guide = summary["guide"]
    assert guide["video"] == "reference" and guide["pairs"] == 7 and guide["warp"] > 0
    for method in summary["methods"]:  # every pair (n-1, n) scored, added = method - reference
        assert method["pairs"] == 7 and method["warp"] > 0
        assert abs(method["warp_added"] - (method["warp"] - guide["warp"])) < 1e-9
    assert summary["warp"] == summary["methods"][0]["warp"]
    rows = list(csv.DictReader(csv_path.open()))
    assert list(rows[0]) == ["frame", "method", "psnr", "ssim", "warp"] and len(rows) == 4 * 8
    reference_rows = [r for r in rows if r["method"] == "reference"]
    assert [r["psnr"] for r in reference_rows] == [""] * 8 and reference_rows[0]["warp"] == ""  # frame 0: no pair
    model_rows = [r for r in rows if r["method"] == "realesr-animevideov3"]
    assert abs(np.mean([float(r["warp"]) for r in model_rows[1:]]) - summary["methods"][2]["warp"]) < 1e-3
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = vs_sr("eval", str(high), "--source", str(low), "--baselines", "bicubic", "--every", "4", "--channel", "rgb")
    assert "bicubic" in table.stdout and "(RGB, crop 4)" in table.stdout and "lanczos" not in table.stdout


def luma_video(path: Path, planes: list[np.ndarray]) -> Path:
    """A lossless (FFV1) 4:4:4 video with these Y planes (uint8) and neutral chroma: limited-range
    BT.601, so the Y that vs-sr eval computes from its RGB is exactly these values."""
    height, width = planes[0].shape
    raw = b"".join(np.concatenate([p.ravel(), np.full(2 * p.size, 128, np.uint8)]).tobytes() for p in planes)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv444p", "-s", f"{width}x{height}",
                    "-r", "25", "-i", "pipe:0", "-c:v", "ffv1", "-pix_fmt", "yuv444p", str(path)], input=raw, check=True)
    return path


def panned(step: tuple[int, int], frames: int = 6, size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    """Crops of the photo's Y whose window moves by whole pixels `step` (dx, dy >= 0) per frame."""
    (width, height), (dx, dy) = size, step
    y = np.rint(metrics.luma(photo(height + frames * dy, width + frames * dx))).astype(np.uint8)
    return [np.ascontiguousarray(y[n * dy : n * dy + height, n * dx : n * dx + width]) for n in range(frames)]


@pytest.mark.parametrize("step", [(0, 0), (2, 1)])
def test_eval_warping_error_of_per_frame_noise_is_the_noise_level(tmp_path, step):
    """The hand-computed case end to end: a reference that is still (or pans by whole pixels), and
    a result that is the reference plus fresh Gaussian noise (sigma 3, rounded) in every frame.
    The reference follows its own motion exactly (about 0); the result's warping error is
    E|X - Y| = 2 sigma / sqrt(pi) for the two frames' independent noise: on the still picture it
    is exactly the mean |Y_t - Y_t-1| of the written frames inside the crop (zero motion, every
    pixel valid)."""
    sigma = 3.0
    clean = panned(step)
    rng = np.random.default_rng(5)
    noisy = [np.clip(np.rint(p + rng.normal(0, sigma, p.shape)), 0, 255).astype(np.uint8) for p in clean]
    reference, result = luma_video(tmp_path / "ref.mkv", clean), luma_video(tmp_path / "noisy.mkv", noisy)
    csv_path = tmp_path / "pairs.csv"
    done = vs_sr("eval", str(result), str(reference), "--json", "--csv", str(csv_path))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["guide"] == {"video": "reference", "warp": summary["guide"]["warp"], "pairs": 5}
    assert summary["guide"]["warp"] < 0.05
    expected = 2 * sigma / math.sqrt(math.pi)
    assert abs(summary["warp"] - expected) < 0.03 * expected, (summary["warp"], expected)
    assert abs(summary["warp_added"] - (summary["warp"] - summary["guide"]["warp"])) < 1e-9
    if step == (0, 0):
        written = [np.abs(noisy[t].astype(float) - noisy[t - 1])[4:-4, 4:-4].mean() for t in range(1, 6)]
        assert summary["guide"]["warp"] < 1e-6 and abs(summary["warp"] - np.mean(written)) < 1e-3
        rows = [r for r in csv.DictReader(csv_path.open()) if r["method"] == "result"]
        assert np.allclose([float(r["warp"]) for r in rows[1:]], written, atol=1e-3)


def test_eval_without_a_reference_follows_the_source_upscaled_bicubic(ncnn_models, pair, tmp_path):
    """--no-reference: no PSNR/SSIM, the warping error under the motion of the source upscaled
    bicubic, which is the bicubic baseline itself (added 0); a result file or models, or both."""
    high, low = pair
    result = tmp_path / "lanczos.mkv"
    ffmpeg("-i", str(low), "-vf", "scale=256:192:flags=lanczos", "-c:v", "ffv1", str(result))
    csv_path, plot = tmp_path / "pairs.csv", tmp_path / "warp.png"
    done = vs_sr("eval", str(result), "--no-reference", "--source", str(low), "--json", "--csv", str(csv_path),
                 "--plot", str(plot))
    assert done.returncode == 0, done.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(done.stdout)
    assert summary["guide"]["video"] == "source upscaled bicubic" and summary["guide"]["pairs"] == 7
    assert summary["psnr"] is None and summary["ssim"] is None and summary["identical"] is None
    assert [m["method"] for m in summary["methods"]] == ["result", "bicubic", "lanczos"]
    bicubic = summary["methods"][1]
    assert bicubic["warp"] == summary["guide"]["warp"] and bicubic["warp_added"] == 0.0
    assert summary["warp"] > 0 and summary["crop"] == 4  # x4 from the sizes of source and result
    rows = list(csv.DictReader(csv_path.open()))
    assert {r["psnr"] for r in rows} == {""} and {r["method"] for r in rows} == {
        "source upscaled bicubic", "result", "bicubic", "lanczos"}
    table = vs_sr("eval", "--no-reference", "--source", str(low), "--model", "realesr-animevideov3",
                  "--baselines", "bicubic", "--every", "2")
    assert table.returncode == 0, table.stderr
    assert "no reference: PSNR/SSIM not scored" in table.stdout and "source upscaled bicubic" in table.stdout
    assert "realesr-animevideov3" in table.stdout
    done = vs_sr("eval", str(result), str(high), "--no-reference", "--source", str(low))
    assert done.returncode == 2 and "with --no-reference give at most one video" in done.stderr
    done = vs_sr("eval", str(result), "--no-reference")
    assert done.returncode == 2 and "without a reference, give the low-resolution --source" in done.stderr


def test_an_upscaled_file_scores_like_the_model_run_in_eval(ncnn_models, pair, tmp_path):
    """vs-sr upscale to an exact size (lossless), then eval the file: the same numbers as eval
    running the model itself on the source."""
    high, low = pair
    result = tmp_path / "result.mkv"
    assert vs_sr("upscale", str(low), str(result), "--codec", "ffv1", "--width", "256", "--height", "192").returncode == 0
    from_file = json.loads(vs_sr("eval", str(result), str(high), "--json").stdout)
    from_model = json.loads(vs_sr("eval", str(high), "--source", str(low), "--model", "realesr-animevideov3",
                                  "--baselines", "none", "--json").stdout)
    assert abs(from_file["psnr"] - from_model["psnr"]) < 1e-6 and abs(from_file["ssim"] - from_model["ssim"]) < 1e-9
    itself = json.loads(vs_sr("eval", str(high), str(high), "--json").stdout)
    assert itself["psnr"] is None and itself["identical"] is True and itself["ssim"] == 1.0  # strict JSON


def test_non_integer_ratio_goes_through_the_exact_size_path(ncnn_models, tmp_path):
    high, low = make_pair(tmp_path, "retina", (856, 480), (214, 144), frames=3)
    done = vs_sr("eval", str(high), "--source", str(low), "--model", "realesr-animevideov3", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["crop"] == 4 and summary["frames"] == 3  # x4 (856/214), then resized to 480 lines


def test_each_model_runs_at_its_own_scale_that_reaches_the_reference(ncnn_models, tmp_path):
    """The README's case, 256x144 against 854x480 (a ratio of 3.3): realesr-animevideov3 (x4 only)
    and faithful (x2 and x4) both run x4 and are resized; --scale names one scale for all, and a
    scale a model lacks is refused with the one it has."""
    high, low = make_pair(tmp_path, "retina", (854, 480), (256, 144), frames=2)

    def scores(*args: str) -> dict:
        done = vs_sr("eval", str(high), "--source", str(low), "--baselines", "none", "--precision", "fp32", "--json",
                     *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    unset = scores("--model", "realesr-animevideov3", "--model", "faithful")
    assert unset["crop"] == 3 and [m["method"] for m in unset["methods"]] == ["realesr-animevideov3", "faithful"]
    faithful = {m["method"]: m["psnr"] for m in unset["methods"]}["faithful"]
    assert scores("--model", "faithful", "--scale", "4")["psnr"] == faithful
    assert scores("--model", "faithful", "--scale", "2")["psnr"] != faithful
    done = vs_sr("eval", str(high), "--source", str(low), "--model", "realesr-animevideov3", "--scale", "3")
    assert done.returncode == 1
    assert "model 'realesr-animevideov3' has no trained x3 network (it has x4); pass --scale 4, or leave" in done.stderr
    # a weight file of one's own (what `vs-sr train` makes), x4, beside a x2 model: each at its own scale
    weights = small_compact_weights(tmp_path)
    mixed = scores("--model", str(weights), "--model", "faithful")  # (the ratio, 3.3, rounds to 3: no x3 here)
    methods = [m["method"] for m in mixed["methods"]]
    assert methods[0].endswith(weights.name) and methods[1] == "faithful" and mixed["frames"] == 2


def test_a_source_without_a_matrix_is_read_in_the_references_colours(ncnn_models, tmp_path):
    """An untagged 1056x600 reference is BT.709 by its size, its untagged 528x300 copy BT.601 by
    its own: the model must read and write the copy as the reference's, as the baselines (resized
    in YUV) do, or its PSNR drops by the matrices' difference, not by what it does (on this smooth
    photograph at x2 the model scores within a dB of bicubic; read in other colours, 13 dB below)."""
    high, low = make_pair(tmp_path, "retina", (1056, 600), (528, 300), frames=1, crf=18)
    done = vs_sr("eval", str(high), "--source", str(low), "--model", "faithful", "--precision", "fp32", "--json")
    assert done.returncode == 0, done.stderr
    psnr = {m["method"]: m["psnr"] for m in json.loads(done.stdout)["methods"]}
    assert abs(psnr["faithful"] - psnr["bicubic"]) < 2, psnr


def test_only_frames_that_name_no_matrix_take_the_references():
    blank = vs.core.std.BlankClip
    reference = blank(width=1280, height=720, format=vs.YUV420P8, length=1)  # BT.709 by its size
    source = blank(width=640, height=360, format=vs.YUV420P8, length=2)
    source = source[0] + source[1].std.SetFrameProps(_Matrix=5)
    assert [f.props.get("_Matrix") for f in in_colours_of(reference, source).frames()] == [1, 5]
    gray = blank(width=640, height=360, format=vs.GRAY8, length=1)
    assert in_colours_of(reference, gray) is gray  # no matrix to read


@pytest.mark.parametrize(("every", "frames", "pairs"), [(3, 3, 2), (20, 1, 0)])
def test_eval_every_nth_frame_scores_the_pair_ending_there(pair, every, frames, pairs):
    """--every N: PSNR of frames 0, N, 2N.., the warping error of the pairs (N-1, N), (2N-1, 2N)..;
    an N beyond the clip scores frame 0 alone and no pair (null, not an error)."""
    high, low = pair
    done = vs_sr("eval", str(high), "--source", str(low), "--baselines", "bicubic", "--every", str(every), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["frames"] == frames and summary["methods"][0]["pairs"] == pairs == summary["guide"]["pairs"]
    assert (summary["warp"] is None) == (pairs == 0)


def test_eval_errors(pair, tmp_path):
    high, low = pair
    done = vs_sr("eval", str(low), str(high))
    assert done.returncode == 1 and "is 64x48 but the reference is 256x192" in done.stderr
    done = vs_sr("eval", str(high))
    assert done.returncode == 2 and "give RESULT REFERENCE, or REFERENCE with --source" in done.stderr
    short = tmp_path / "short.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(high), "-frames:v", "5", "-c:v", "ffv1", str(short)], check=True)
    done = vs_sr("eval", str(short), str(high))
    assert done.returncode == 1 and "not frame-aligned" in done.stderr
    for role, args in (("result", ["{cut}", str(high)]), ("reference", [str(high), "{cut}"]),
                       ("source", [str(high), "--source", "{cut}"])):
        cut = cut_short(low if role == "source" else high, tmp_path / f"cut-{role}.mkv", 5)
        done = vs_sr("eval", *(str(cut) if a == "{cut}" else a for a in args))
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert f"{cut.name} is incomplete or damaged: its container declares 8 frames" in done.stderr, done.stderr
        assert done.stderr.rstrip().endswith("score a complete copy."), done.stderr


def test_a_model_given_twice_is_refused_not_merged_into_one_row(pair):
    high, low = pair
    done = vs_sr("eval", str(high), "--source", str(low), "--model", "faithful", "--model", "faithful")
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "--model faithful is given twice" in done.stderr


def test_eval_runs_a_model_on_the_triton_server_it_is_given(ncnn_models, triton_server, pair):
    high, low = pair
    scored = {}
    for backend in (["--server", triton_server.grpc_url], ["--backend", "openvino", "--precision", "fp32"]):
        done = vs_sr("eval", str(high), "--source", str(low), "--model", "realesr-animevideov3", "--baselines", "none",
                     "--json", *backend)
        assert done.returncode == 0, done.stderr
        scored[backend[0]] = json.loads(done.stdout)["methods"][0]["psnr"]
    assert abs(scored["--server"] - scored["--backend"]) < 0.01
    done = vs_sr("eval", str(high), "--source", str(low), "--model", "realesr-animevideov3", "--backend", "triton",
                 env={"VS_SR_TRITON_URL": ""})
    assert done.returncode == 1 and "pass --server grpc://host:8001" in done.stderr


def test_a_report_path_that_is_a_video_scored_or_a_folder_is_refused_before_scoring(pair, tmp_path):
    high, low = pair
    before = high.read_bytes()
    for option in ("--csv", "--plot"):
        done = vs_sr("eval", str(high), str(high), option, str(high))
        assert done.returncode == 1 and f"{option} {high} is one of the videos scored, which the report would " \
                                        "replace; give another file." in done.stderr, done.stderr
        done = vs_sr("eval", str(high), "--source", str(low), "--baselines", "bicubic", option, str(low))
        assert done.returncode == 1 and "is one of the videos scored" in done.stderr, done.stderr
        done = vs_sr("eval", str(high), str(high), option, str(tmp_path))
        assert done.returncode == 1 and f"{option} {tmp_path} is a folder; give the file to write" in done.stderr
    assert high.read_bytes() == before
    done = vs_sr("eval", str(high), str(high), "--plot", str(tmp_path / "scores.jpg"))
    assert done.returncode == 1 and "--plot draws a PNG picture; name it .png" in done.stderr
    done = vs_sr("eval", str(high), str(high), "--model", "faithful")
    assert done.returncode == 2 and "--model and --baselines score what they make of --source LOW_RES" in done.stderr
    # Options that would change nothing, or only the crop (each was taken without a word)
    for extra, said in [(["--precision", "fp16"], "--precision run --model: give --model too"),
                        (["--scale", "2"], "--scale chooses the network of each --model; without one, the sizes"),
                        (["--baselines", "none", "bicubic"], "--baselines none means no baseline: give it alone")]:
        done = vs_sr("eval", str(high), str(high), *extra)
        assert done.returncode == 2 and said in done.stderr and done.stderr.count("\n") == 1, done.stderr
    done = vs_sr("eval", str(high), "--no-reference", "--source", str(low), "--channel", "rgb")
    assert done.returncode == 2 and "--no-reference scores the warping error only" in done.stderr


def test_a_result_at_another_frame_rate_is_scored_and_said(tmp_path):
    reference = luma_video(tmp_path / "reference.mkv", panned((0, 0), frames=4))
    faster = tmp_path / "faster.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(reference), "-vf", "setpts=N/50/TB", "-r", "50", "-c:v", "ffv1",
                    str(faster)], check=True)
    done = vs_sr("eval", str(faster), str(reference), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["identical"] is True
    assert done.stderr.strip().endswith("note: faster.mkv runs at 50 fps and reference.mkv at 25: their frames were "
                                        "compared one to one, as numbered."), done.stderr


def test_a_frame_identical_to_the_reference_counts_in_the_mean_at_the_cap(tmp_path):
    """Half the frames equal the reference, half are 10 levels off (28.13 dB): the mean is
    (100 + 28.13) / 2, not 28.13 as if the identical frames were not there (which would rank a
    method that matches a black frame exactly below one that misses it slightly)."""
    frames = panned((0, 0), frames=4)
    reference = luma_video(tmp_path / "reference.mkv", frames)
    half = luma_video(tmp_path / "half.mkv", frames[:2] + [np.clip(f.astype(int) + 10, 0, 255).astype(np.uint8)
                                                            for f in frames[2:]])
    csv_path = tmp_path / "scores.csv"
    done = vs_sr("eval", str(half), str(reference), "--crop", "0", "--json", "--csv", str(csv_path))
    assert done.returncode == 0, done.stderr
    offset = 10 * np.log10(255**2 / 100)
    clipped = [f for f in frames[2:] if (f.astype(int) + 10 > 255).any()]
    assert not clipped  # (the photo's Y stays below 246: every pixel is 10 off)
    assert json.loads(done.stdout)["psnr"] == pytest.approx((100 + offset) / 2, abs=1e-3)
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["psnr"] for r in rows if r["method"] == "result"][:2] == ["inf", "inf"]


@pytest.mark.slow  # about a minute on two busy cores: four networks on a 128x128 frame
def test_the_comparison_picture_script_draws_eight_distinct_crops(ncnn_models, tmp_path):
    """scripts/comparison_picture.py (docs/comparison.png): reference, input, two baselines and
    four models, each crop its own picture, in a 4x2 sheet of the asked size."""
    import sys

    from PIL import Image

    script = Path(__file__).resolve().parents[2] / "scripts" / "comparison_picture.py"
    output = tmp_path / "comparison.png"
    done = subprocess.run([sys.executable, str(script), "--crop", "176,64,64", "--zoom", "1", "--output", str(output)],
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-2000:]
    sheet = np.asarray(Image.open(output).convert("RGB"))
    label, gap, side = 22, 4, 64
    assert sheet.shape == (2 * (label + side) + gap, 4 * side + 3 * gap, 3)
    crops = [sheet[row * (label + side + gap) + label:][:side, col * (side + gap):][:, :side]
             for row in range(2) for col in range(4)]
    assert all(crop.std() > 5 for crop in crops)  # a photograph, not an empty tile
    assert len({crop.tobytes() for crop in crops}) == 8
