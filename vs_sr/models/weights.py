"""Weight files: finding a named model's file in the search path, and file content hashes."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from ..errors import SRError
from ..paths import MODEL_DIR_ENV, model_dirs
from .spec import ModelSpec


def find_weights(spec: ModelSpec) -> Path | None:
    """The official weight file of `spec` in the search path, if there is one."""
    if spec.weights is None:
        return None
    for directory in model_dirs():
        for name in spec.weights.names:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def missing_weights_message(spec: ModelSpec) -> str:
    """What to do when the official file of a model without offline ncnn files is missing."""
    assert spec.weights is not None
    searched = " or ".join(str(d) for d in model_dirs())
    command = f"vs-sr models download {spec.name} --scale {spec.scale}"
    if spec.weights.direct:
        how = f"Run `{command}` (it fetches {spec.weights.urls[0]})"
    else:
        how = (f"Its publisher has no direct address: download it with a browser from {' or '.join(spec.weights.urls)} "
               f"and put it in {searched}, or fetch it from a mirror with `{command} --mirror URL`")
    return (f"weights for model '{spec.name}' x{spec.scale} not found: {spec.weights.filename}. {how}; "
            f"{MODEL_DIR_ENV} chooses another directory. Or pass model='/path/to/file.pth'.")


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
    weights = spec.weights
    expected = weights.sha256 if weights else None
    if weights and expected and path.name in weights.names and digest != expected:
        raise SRError(
            f"{path} is not the published {weights.filename} (sha256 {digest[:12]}..., expected {expected[:12]}...). "
            f"Re-download it (vs-sr models download {spec.name} --scale {spec.scale}), "
            "or rename it and pass its path as model= to use it as a custom network."
        )
