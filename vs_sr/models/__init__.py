"""Models: the architecture table, the registry of named networks, weight files, loading, ncnn
import and ONNX export."""

from .architectures import ARCHITECTURES, PRECISIONS, ArchTraits, Precision, PrecisionPolicy, arch_traits
from .registry import DEFAULT_MODEL, REGISTRY, all_specs, list_models
from .resolve import resolve, torch_module
from .spec import ModelSpec, Network, WeightFile

__all__ = [
    "ARCHITECTURES", "DEFAULT_MODEL", "PRECISIONS", "REGISTRY", "all_specs", "arch_traits", "list_models", "resolve", "torch_module",
    "ArchTraits", "ModelSpec", "Network", "Precision", "PrecisionPolicy", "WeightFile",
]
