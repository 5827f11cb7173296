"""Shared fixtures: real weights (imported from the ncnn package), real images, real clips.

Every test runs against the real VapourSynth core, the real runtimes and real or officially
configured networks; model and cache directories point into a per-session temporary folder.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

core = vs.core
VS_SR = str(Path(sys.executable).with_name("vs-sr"))


def vs_sr(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """The real `vs-sr` command of this environment, run to completion (no stdin)."""
    return subprocess.run([VS_SR, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout,
                          env={**os.environ, **(env or {})})


def ffmpeg(*args: str) -> None:
    """Generate a test file with the real ffmpeg."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *args], check=True)


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Model and cache directories of our own, so tests neither read nor pollute the user's."""
    root = tmp_path_factory.mktemp("vs_sr")
    dirs = {"models": root / "models", "cache": root / "cache"}
    os.environ["VS_SR_MODEL_DIR"] = str(dirs["models"])
    os.environ["VS_SR_CACHE_DIR"] = str(dirs["cache"])
    # The user data dir is searched after VS_SR_MODEL_DIR: point it into the session as well.
    os.environ["XDG_DATA_HOME"] = str(root / "xdg-data")
    return dirs


@pytest.fixture(scope="session")
def ncnn_models(isolated_dirs: dict[str, Path]) -> dict[str, Path]:
    """The three offline Real-ESRGAN networks' ncnn files, imported once per session (the `.param`s)."""
    from vs_sr.models import REGISTRY
    from vs_sr.models.ncnn import import_files

    return {
        name: import_files(REGISTRY[name][4].ncnn[None], isolated_dirs["models"])
        for name in ("realesr-animevideov3", "realesrgan-x4plus-anime", "realesrgan-x4plus")
    }


def random_weights(arch: str, name: str, scale: int, directory: Path) -> Path:
    """A randomly initialised network of an official registry config, saved as .pth."""
    import torch

    from vs_sr.models import REGISTRY
    from vs_sr.models.pytorch import build_module

    torch.manual_seed(1234)
    spec = REGISTRY[name][scale]
    module = build_module(spec.arch, spec.config)
    path = directory / f"random-{name}-x{scale}.pth"
    torch.save({"params_ema": module.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def hat_s_pth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_weights("hat", "hat-s", 4, tmp_path_factory.mktemp("hat"))


@pytest.fixture(scope="session")
def rrdb_pth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_weights("rrdbnet", "realesrgan-x4plus", 4, tmp_path_factory.mktemp("rrdb"))


def photo(height: int, width: int, offset: int = 0) -> np.ndarray:
    """A (3, height, width) float32 crop of a real photograph (scikit-image's astronaut)."""
    from skimage import data

    image = data.astronaut().astype(np.float32) / 255.0
    y, x = 40 + offset * 3, 120 + offset * 5
    return np.ascontiguousarray(image[y : y + height, x : x + width].transpose(2, 0, 1))


def rgb_clip(images: list[np.ndarray]) -> vs.VideoNode:
    """An RGBS clip whose frame n is images[n] (each (3, h, w) float32)."""
    _, height, width = images[0].shape
    blank = core.std.BlankClip(format=vs.RGBS, width=width, height=height, length=len(images), fpsnum=25, fpsden=1)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), images[n][p])
        return out

    return blank.std.ModifyFrame(blank, fill)


def moving_photo_clip(width: int = 64, height: int = 48, length: int = 6) -> vs.VideoNode:
    return rgb_clip([photo(height, width, n) for n in range(length)])


def frame_planes(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)])


def frame_hash(frame: vs.VideoFrame) -> str:
    sha = hashlib.sha256()
    for p in range(frame.format.num_planes):
        sha.update(np.ascontiguousarray(np.asarray(frame[p])).tobytes())
    return sha.hexdigest()


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def bare_network(path_or_name: str, scale: int, image: np.ndarray) -> np.ndarray:
    """The network itself on one (3, h, w) image, in PyTorch fp32, clamped like the filter."""
    import torch

    from vs_sr.models import resolve, torch_module

    module = torch_module(resolve(path_or_name, scale))
    with torch.inference_mode():
        return module(torch.from_numpy(image)[None]).clamp(0, 1)[0].numpy()
