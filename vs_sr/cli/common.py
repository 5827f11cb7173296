"""What several commands share: argument types that refuse bad values before any work starts,
and option defaults read from the library's own records (one place for each default)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any


def positive(text: str) -> int:
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def non_negative(text: str) -> int:
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {value}")
    return value


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None


def size(text: str) -> tuple[int, int]:
    """'WxH' -> (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes are WIDTHxHEIGHT, e.g. 640x360, not {text!r}") from None
    if min(width, height) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, not {text!r}")
    return width, height


def default(record: type, name: str) -> Any:
    """The default of field `name` of a dataclass: the library's default is the command's."""
    for field in dataclasses.fields(record):
        if field.name == name:
            if field.default is not dataclasses.MISSING:
                return field.default
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
    raise KeyError(name)
