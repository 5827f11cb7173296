"""How vs_sr reports a problem: one error type whose message names the problem and the fix.

`SRError` is a `vs.Error`, so scripts, vspipe and previewers treat it like any VapourSynth error;
it holds the bare message (no prefix), which the CLI prints as one line and the studio's API
returns as the reason of a 4xx answer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import vapoursynth as vs


class SRError(vs.Error):  # type: ignore[misc]  # vapoursynth has no py.typed: mypy sees Any
    """Something the caller can fix: `raise SRError("what is wrong; what to do")`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class FrameError(SRError):
    """An SRError raised while VapourSynth asks one of our frame callbacks (ModifyFrame, FrameEval)
    for a frame, made to read as its one line wherever the frame's error shows (get_frame's
    vs.Error, vspipe, a previewer).

    VapourSynth turns an exception from a Python callback into the frame's error text with
    `traceback.format_exception(type(e), e, e.__traceback__)`: a whole traceback around the
    message. It reads the traceback as an attribute, so this type answers None there (as it does to
    any Python code that reads `error.__traceback__`); the interpreter keeps the real one, which
    sys.exc_info() (pytest, logging) still gives. Its module and name make the line read
    "vs_sr: <message>". It never leaves VapourSynth: get_frame raises a new vs.Error with the text."""

    __traceback__ = None  # shadows BaseException's attribute for Python code only; see above


FrameError.__module__ = "builtins"  # so that the formatted line names no module: "vs_sr: ..."
FrameError.__qualname__ = FrameError.__name__ = "vs_sr"


def frame_errors[**P, R](callback: Callable[P, R]) -> Callable[P, R]:
    """Wrap a frame callback so that the SRErrors it raises reach the user as one line (FrameError)."""
    @functools.wraps(callback)
    def reported(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return callback(*args, **kwargs)
        except FrameError:
            raise
        except SRError as error:
            raise FrameError(error.message) from None

    return reported


def script_errors[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """Wrap a function scripts call so that the SRErrors it raises show the caller's line, not vs_sr's
    insides: vspipe and previewers print the whole traceback of a script's error under its message
    (fifteen lines through resolve.py for a mistyped scale). Other exceptions, bugs, keep theirs."""
    @functools.wraps(function)
    def reported(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except SRError as error:
            raise error.with_traceback(None) from None

    return reported


def one_line(text: str) -> str:
    """The last line of a VapourSynth error's text (it puts the traceback of a Python frame callback
    before our line)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "VapourSynth failed without a message"
