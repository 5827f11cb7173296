"""The registry as a table for people and programs: every named model at every scale, and
whether (and where) its weights are installed."""

from __future__ import annotations

from typing import Any

from .registry import all_specs
from .weights import find_weights


def catalog() -> list[dict[str, Any]]:
    rows = []
    for spec in all_specs():
        path = find_weights(spec)
        rows.append({"name": spec.name, "scale": spec.scale, "arch": spec.arch, "installed": path is not None,
                     "weights": str(path) if path else None, "file": spec.weights.filename,
                     "description": spec.description})
    return rows
