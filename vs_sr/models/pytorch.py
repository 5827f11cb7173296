"""PyTorch networks: build one from a registry config, or load any weight file with detection.

The architecture code itself comes from spandrel; this module maps its classes and descriptors
onto our `ArchTraits`, so the rest of vs_sr never touches spandrel directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SRError
from .architectures import INT8_COMPACT_SHAPE, ArchTraits, arch_traits, generic_traits

if TYPE_CHECKING:
    import torch


def _classes() -> dict[str, type[torch.nn.Module]]:
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.HAT import HAT

    classes = {"HAT": HAT, "ESRGAN": ESRGAN, "Compact": Compact}
    return {SPANDREL_IDS[name]: cls for name, cls in classes.items()}


def build_module(arch: str, config: Mapping[str, Any]) -> "torch.nn.Module":
    """A freshly initialised network of a registry architecture (random weights), in eval mode."""
    return _classes()[arch](**config).eval()


def load_module(path: Path) -> tuple["torch.nn.Module", ArchTraits, int]:
    """Load a .pth/.safetensors/.pt file, detecting its architecture: (module, traits, scale)."""
    from spandrel import ModelLoader, UnsupportedModelError

    try:
        descriptor = ModelLoader().load_from_file(path)
    except UnsupportedModelError as error:
        raise SRError(
            f"{path.name}: architecture not recognised ({error}). Supported files hold the "
            "weights of an architecture spandrel knows (HAT, RRDBNet/ESRGAN, Compact, SwinIR, ...); "
            "for anything else export an .onnx file and pass that."
        ) from None
    except Exception as error:  # a truncated download, a pickle of something else, ...
        raise SRError(f"cannot read weights from {path}: {error}. Re-download the file.") from None
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise SRError(
            f"{path.name} maps {descriptor.input_channels} to {descriptor.output_channels} channels; "
            "only RGB to RGB networks are supported."
        )
    module = descriptor.model.eval()
    return module, traits_of(descriptor), descriptor.scale


# spandrel's architecture ids for the rows of our architecture table
SPANDREL_IDS = {"HAT": "hat", "ESRGAN": "rrdbnet", "Compact": "compact"}


def traits_of(descriptor: Any) -> ArchTraits:
    """Traits of a spandrel descriptor: the table's for the architectures we know, generic otherwise."""
    arch_id = descriptor.architecture.id
    if arch_id in SPANDREL_IDS:
        # The constructor arguments a Compact's traits depend on (its int8), read off the module.
        config = {key: getattr(descriptor.model, key, None) for key in INT8_COMPACT_SHAPE}
        return arch_traits(SPANDREL_IDS[arch_id], descriptor.scale, config)
    size = descriptor.size_requirements
    return generic_traits(arch_id.lower(), size.multiple_of, size.minimum, transformer=not descriptor.supports_half)
