"""The VapourSynth filter: `Upscale` turns each frame into its upscaled frame.

arguments (checked once) -> formats (clip <-> planar float RGB) -> tiling (one static tile
shape) -> frames (per-frame work on a free session) -> formats (back to the caller's format).
"""

from .upscale_clip import Upscale

__all__ = ["Upscale"]
