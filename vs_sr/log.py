"""Messages for the user, through VapourSynth's log so vspipe and editors show them."""

from __future__ import annotations

import vapoursynth as vs


def warn(message: str) -> None:
    vs.core.log_message(vs.MESSAGE_TYPE_WARNING, f"vs_sr: {message}")


def info(message: str) -> None:
    vs.core.log_message(vs.MESSAGE_TYPE_INFORMATION, f"vs_sr: {message}")
