"""The registry as a table for people and programs: every named model at every scale, its
denoise levels, whether (and where) its weights are installed, where they came from and how to
get them."""

from __future__ import annotations

from typing import Any

from .ncnn import locate, origin
from .registry import DEFAULT_MODEL, all_specs
from .weights import find_weights


def catalog() -> list[dict[str, Any]]:
    rows = []
    for spec in all_specs():
        official = find_weights(spec)
        files = spec.ncnn.get(spec.default_noise)
        param = locate(files) if files is not None else None
        if official is not None:
            where, source = official, "official file"
        elif param is not None and files is not None:
            where, source = param, f"ncnn: {origin(param, files)}"
        else:
            where, source = None, None
        rows.append({
            "name": spec.name, "scale": spec.scale, "arch": spec.arch,
            "noise": list(spec.noise_levels), "default_noise": spec.default_noise,
            "installed": where is not None, "weights": str(where) if where else None, "source": source,
            "file": spec.weights.filename if spec.weights else None,
            "download": (spec.weights.urls[0] if spec.weights.direct else "manual: " + spec.weights.urls[0])
            if spec.weights else None,
            "ncnn_package": files.package if files else None, "description": spec.description,
            "default": spec.name == DEFAULT_MODEL,
        })
    return rows
