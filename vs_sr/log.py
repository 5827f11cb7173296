"""Messages for the user, through VapourSynth's log so vspipe and editors show them."""

from __future__ import annotations

import vapoursynth as vs


def warn(message: str, core: vs.Core | None = None) -> None:
    """A warning; pass the script's core when calling from a frame callback (worker thread)."""
    (core or vs.core).log_message(vs.MESSAGE_TYPE_WARNING, f"vs_sr: {message}")


def info(message: str, core: vs.Core | None = None) -> None:
    (core or vs.core).log_message(vs.MESSAGE_TYPE_INFORMATION, f"vs_sr: {message}")
