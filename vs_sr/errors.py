"""How vs_sr reports a problem: one error type whose message names the problem and the fix.

`SRError` is a `vs.Error`, so scripts, vspipe and previewers treat it like any VapourSynth error;
it holds the bare message (no prefix), which the CLI prints as one line and the studio's API
returns as the reason of a 4xx answer.
"""

from __future__ import annotations

import vapoursynth as vs


class SRError(vs.Error):  # type: ignore[misc]  # vapoursynth has no py.typed: mypy sees Any
    """Something the caller can fix: `raise SRError("what is wrong; what to do")`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
