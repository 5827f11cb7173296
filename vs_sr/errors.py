"""How vs_sr reports a problem: one `vs.Error` whose message names the problem and the fix."""

from __future__ import annotations

import vapoursynth as vs


def sr_error(message: str) -> vs.Error:
    """The error to raise: `raise sr_error("what is wrong; what to do")`."""
    return vs.Error(f"vs_sr: {message}")
