"""Paired low/high-resolution sample videos made from real photographs, for trying eval and train
without a user's footage: a camera pans across a photo (scikit-image's bundled images); the
high-resolution video is stored losslessly, the low-resolution one is downscaled (bicubic) and
x264-compressed like an uploaded 144p video."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..children import start_child
from ..errors import SRError
from ..media.tools import find_tool

PHOTOS = ("retina", "hubble_deep_field", "astronaut", "immunohistochemistry")


def photo(name: str) -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        raise SRError("sample videos need scikit-image: pip install scikit-image") from None
    return np.asarray(getattr(data, name)())


def pan(image: np.ndarray, width: int, height: int, frames: int) -> Iterator[np.ndarray]:
    """`frames` crops of width x height sliding diagonally across the image."""
    if image.shape[0] < height or image.shape[1] < width:
        raise SRError(f"the photo ({image.shape[1]}x{image.shape[0]}) is smaller than {width}x{height}.")
    span_y, span_x = image.shape[0] - height, image.shape[1] - width
    for n in range(frames):
        t = n / max(1, frames - 1)
        y, x = round(t * span_y), round(t * span_x * 0.8)
        yield np.ascontiguousarray(image[y : y + height, x : x + width, :3])


def encode(frames: Iterator[np.ndarray], size: tuple[int, int], target: Path, video_args: list[str],
           scale: tuple[int, int] | None = None, fps: int = 25) -> Path:
    """Pipe RGB frames through ffmpeg into `target`, optionally scaled (bicubic) first."""
    ffmpeg = find_tool("ffmpeg")
    filters = ["-vf", f"scale={scale[0]}:{scale[1]}:flags=bicubic"] if scale else []
    with atomic_output(target) as temp:
        process = start_child(
            [ffmpeg, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}",
             "-r", str(fps), "-i", "pipe:0", *filters, *video_args, "-f", "matroska", str(temp)],
            stdin=subprocess.PIPE,
        )
        assert process.stdin is not None
        try:
            for frame in frames:
                process.stdin.write(frame.tobytes())
            process.stdin.close()
        except BaseException:  # an interrupted run: ffmpeg would wait for the rest of its input
            process.kill()
            process.wait()
            raise
        if process.wait() != 0:
            raise SRError(f"ffmpeg could not write {target}.")
    return target


def make_pair(directory: Path, name: str, hr: tuple[int, int], lr: tuple[int, int], frames: int = 50,
              crf: int = 28) -> tuple[Path, Path]:
    """(high-res, low-res) videos of one photo: lossless FFV1 reference, x264 CRF `crf` source."""
    image = photo(name)
    directory.mkdir(parents=True, exist_ok=True)
    high = encode(pan(image, *hr, frames), hr, directory / f"{name}_{hr[1]}p.mkv",
                  ["-c:v", "ffv1", "-pix_fmt", "yuv420p"])
    low = encode(pan(image, *hr, frames), hr, directory / f"{name}_{lr[1]}p.mkv",
                 ["-c:v", "libx264", "-crf", str(crf), "-preset", "medium", "-pix_fmt", "yuv420p"], scale=lr)
    return high, low
