"""TensorRT on NVIDIA GPUs: the backend (`backend`) and the engine cache it builds into (`engine_cache`)."""

from .backend import TensorRTBackend, build_ahead, installed_version
from .engine_cache import EngineCache, EngineKey

__all__ = ["EngineCache", "EngineKey", "TensorRTBackend", "build_ahead", "installed_version"]
