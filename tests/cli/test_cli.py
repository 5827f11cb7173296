"""The vs-sr command: models import/list/path and info; errors are one line with exit code 1."""

from __future__ import annotations

from conftest import vs_sr


def test_models_import_ncnn_then_list_and_path(tmp_path):
    env = {"VS_SR_MODEL_DIR": str(tmp_path)}
    imported = vs_sr("models", "import-ncnn", env=env)
    assert imported.returncode == 0, imported.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["RealESRGAN_x4plus.ncnn.pth", "RealESRGAN_x4plus_anime_6B.ncnn.pth", "realesr-animevideov3.ncnn.pth"]
    listing = vs_sr("models", "list", env=env).stdout
    assert f"realesr-animevideov3     x4     compact  {tmp_path / 'realesr-animevideov3.ncnn.pth'}" in listing
    assert "hat                      x4     hat      missing (HAT_SRx4_ImageNet-pretrain.pth)" in listing
    path = vs_sr("models", "path", "realesrgan-x4plus", env=env)
    assert path.returncode == 0 and path.stdout.strip() == str(tmp_path / "RealESRGAN_x4plus.ncnn.pth")


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
