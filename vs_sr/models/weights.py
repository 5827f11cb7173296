"""Weight files: finding a named model's file in the search path, and file content hashes."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from .. import extras
from ..errors import SRError
from ..paths import MODEL_DIR_ENV, install_dir, model_dirs
from .registry import REGISTRY
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


def download_command(spec: ModelSpec) -> str:
    """The `vs-sr models download` line for the file of `spec`: `--scale` only where the model has
    other scales that the line would fetch too (it fetches every scale it can)."""
    others = [other for other in REGISTRY[spec.name].values()
              if other is not spec and other.weights is not None and other.weights.direct]
    return f"vs-sr models download {spec.name}" + (f" --scale {spec.scale}" if others else "")


def how_to_get(spec: ModelSpec) -> str:
    """How to get the official file of `spec`: the command that downloads it, or where to
    download it by hand (and the command for a mirror that holds it)."""
    assert spec.weights is not None
    if spec.weights.direct:
        return f"`{download_command(spec)}`"
    return (f"a download by hand from {' or '.join(spec.weights.by_hand)} "
            f"(or `vs-sr models download {spec.name} --scale {spec.scale} --mirror URL`)")


def missing_weights_message(spec: ModelSpec) -> str:
    """What to do when the official file of a model without offline ncnn files is missing."""
    weights = spec.weights
    assert weights is not None
    searched = " or ".join(str(d) for d in model_dirs())
    if weights.fetched_from is not None:
        copy = " (a copy of the official file)" if weights.by_hand else ""
        manual = (f" The official copies are on {' and '.join(weights.by_hand)}, for a download by hand into "
                  f"{searched}.") if weights.by_hand else ""
        checked = " and checks its sha256" if weights.sha256 else ""
        how = f"Run `{download_command(spec)}`: it fetches {weights.fetched_from}{copy} into {install_dir()}{checked}.{manual}"
    else:
        how = (f"Its publisher has no direct address: download it with a browser from {' or '.join(weights.by_hand)} "
               f"and put it in {searched}, or fetch it from a mirror with "
               f"`vs-sr models download {spec.name} --scale {spec.scale} --mirror URL`.")
    torch = "" if extras.has("torch") else f" {spec.name} runs on PyTorch: also {extras.install_line('torch')}."
    return (f"weights for model '{spec.name}' x{spec.scale} not found: {weights.filename}. {how} "
            f"{MODEL_DIR_ENV} chooses another directory; or pass model='/path/to/file.pth'.{torch}")


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


def published_digest(spec: ModelSpec, path: Path) -> str | None:
    """The sha256 a file of an official name must have, where one is published."""
    weights = spec.weights
    return weights.sha256 if weights and weights.sha256 and path.name in weights.names else None


def check_official_digest(spec: ModelSpec, path: Path, digest: str) -> None:
    """Refuse an official-named file whose bytes differ from the published ones."""
    weights = spec.weights
    expected = published_digest(spec, path)
    if weights and expected and digest != expected:
        raise SRError(
            f"{path} is not the published {weights.filename} (sha256 {digest[:12]}..., expected {expected[:12]}...). "
            f"Replace it ({how_to_get(spec)}), "
            "or rename it and pass its path as model= to use it as a custom network."
        )
