"""Models: the registry of named networks, weight files, loading, ncnn import and ONNX export."""

from .registry import REGISTRY, all_specs, list_models
from .resolve import resolve, torch_module
from .spec import ArchTraits, ModelSpec, Network, Precision, PrecisionPolicy, WeightFile

__all__ = [
    "REGISTRY", "all_specs", "list_models", "resolve", "torch_module",
    "ArchTraits", "ModelSpec", "Network", "Precision", "PrecisionPolicy", "WeightFile",
]
