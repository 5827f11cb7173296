"""vs_sr: neural super-resolution for VapourSynth.

    import vs_sr as sr
    clip = sr.Upscale(clip, model="realesr-animevideov3", scale=4)
"""

from .filter import Upscale
from .models.registry import list_models

__version__ = "0.1.0"

__all__ = ["Upscale", "list_models", "__version__"]
