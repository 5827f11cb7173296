"""PyTorch networks: build one from a registry config, or load any weight file with detection.

The architecture code itself comes from spandrel; this module maps its classes and descriptors
onto our `ArchTraits`, so the rest of vs_sr never touches spandrel directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import sr_error
from .registry import COMPACT_TRAITS, HAT_TRAITS, rrdb_traits
from .spec import CONV_POLICY, TRANSFORMER_POLICY, ArchTraits

if TYPE_CHECKING:
    import torch


def _classes() -> dict[str, type]:
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.HAT import HAT

    return {"hat": HAT, "rrdbnet": ESRGAN, "compact": Compact}


def build_module(arch: str, config: Mapping[str, Any]) -> "torch.nn.Module":
    """A freshly initialised network of a registry architecture (random weights), in eval mode."""
    return _classes()[arch](**config).eval()


def load_module(path: Path) -> tuple["torch.nn.Module", ArchTraits, int]:
    """Load a .pth/.safetensors/.pt file, detecting its architecture: (module, traits, scale)."""
    from spandrel import ModelLoader, UnsupportedModelError

    try:
        descriptor = ModelLoader().load_from_file(path)
    except UnsupportedModelError as error:
        raise sr_error(
            f"{path.name}: architecture not recognised ({error}). Supported files hold the "
            "weights of an architecture spandrel knows (HAT, RRDBNet/ESRGAN, Compact, SwinIR, ...); "
            "for anything else export an .onnx file and pass that."
        ) from None
    except Exception as error:  # a truncated download, a pickle of something else, ...
        raise sr_error(f"cannot read weights from {path}: {error}. Re-download the file.") from None
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise sr_error(
            f"{path.name} maps {descriptor.input_channels} to {descriptor.output_channels} channels; "
            "only RGB to RGB networks are supported."
        )
    module = descriptor.model.eval()
    return module, traits_of(descriptor), descriptor.scale


def traits_of(descriptor: Any) -> ArchTraits:
    """Traits of a spandrel descriptor: ours for the architectures we know, generic otherwise."""
    arch_id = descriptor.architecture.id
    if arch_id == "HAT":
        return HAT_TRAITS
    if arch_id == "ESRGAN":
        return rrdb_traits(descriptor.scale)
    if arch_id == "Compact":
        return COMPACT_TRAITS
    size = descriptor.size_requirements
    transformer = not descriptor.supports_half
    return ArchTraits(
        arch=arch_id.lower(),
        multiple=max(1, size.multiple_of),
        min_size=max(4, size.minimum),
        overlap=32,
        tile_pixels=256 * 256 if transformer else 512 * 512,
        precision=TRANSFORMER_POLICY if transformer else CONV_POLICY,
    )
