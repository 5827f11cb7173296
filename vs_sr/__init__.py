"""vs_sr: neural super-resolution for VapourSynth.

    import vs_sr as sr
    clip = sr.Upscale(clip, model="realesr-animevideov3", scale=4)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .filter import Upscale
    from .models.registry import list_models

__version__ = "0.1.0"

__all__ = ["Upscale", "list_models", "__version__"]


def __getattr__(name: str) -> object:
    """`Upscale` and `list_models`, loaded on first use. Importing them loads VapourSynth, numpy and
    the runtimes (most of a second): `import vs_sr` stays light, so that the `vs-sr` command can
    take over Ctrl-C, SIGTERM and SIGHUP before any of that starts (see vs_sr.cli.main)."""
    if name == "Upscale":
        from .filter import Upscale

        return Upscale
    if name == "list_models":
        from .models.registry import list_models

        return list_models
    raise AttributeError(f"module 'vs_sr' has no attribute {name!r}")
