"""What several commands share: argument types that refuse bad values before any work starts,
and option defaults read from the library's own records (one place for each default)."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

INCOMPLETE = 3
"""Exit status of a run that wrote its result(s) but not completely: an input was salvaged (--salvage)."""


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


def port(text: str) -> int:
    """A TCP port: 0 (the system picks a free one) to 65535."""
    value = integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535 (0 picks a free one), not {value}")
    return value


def fixed_port(text: str) -> int:
    """A TCP port named outright: 1 to 65535."""
    value = integer(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535 (leave it out for a free one), not {value}")
    return value


def listen_address(text: str) -> str:
    """An IPv4 address or a host name to listen on: tritonserver reads its gRPC address as
    HOST:PORT, which an IPv6 address cannot be written in."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an address to listen on (127.0.0.1, 0.0.0.0 for every interface), not ''")
    if ":" in text or "[" in text:
        raise argparse.ArgumentTypeError(f"an IPv4 address or a host name (127.0.0.1, 0.0.0.0 for every interface), "
                                         f"not {text!r}: the Triton server does not listen on IPv6 addresses")
    return text.strip()


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def duration(unit: str, hint: str = "") -> Any:
    """A float type for a duration in `unit`s, more than 0 (`hint`: what to do instead of 0)."""
    def parse(text: str) -> float:
        value = number(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0 {unit}, not {text!r}{hint}")
        return value

    return parse


seconds = duration("seconds")


def bounded(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Any:
    """A float type accepting [low, high] (an open end excludes that bound)."""
    def parse(text: str) -> float:
        value = number(text)
        if value < low or value > high or (low_open and value == low) or (high_open and value == high):
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"must be in {left}{low:g}, {high:g}{right}, not {value:g}")
        return value

    return parse


def folder_of(path: str | None) -> None:
    """Refuse an output file whose folder does not exist (rather than create folders by surprise)."""
    from pathlib import Path

    from ..errors import SRError

    if path is not None and not Path(path).absolute().parent.is_dir():
        raise SRError(f"the folder of {path} does not exist; create it first or choose another path.")


def size(text: str) -> tuple[int, int]:
    """'WxH' -> (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes are WIDTHxHEIGHT, e.g. 640x360, not {text!r}") from None
    if min(width, height) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, not {text!r}")
    return width, height


def tile(text: str) -> int | tuple[int, int]:
    """--tile in every command: N (N x N input pixels) or WIDTHxHEIGHT, as `Upscale(tile=)` takes
    an int or a (width, height) pair."""
    return size(text) if "x" in text.lower() else positive(text)


def pair(value: int | tuple[int, int]) -> tuple[int, int]:
    """(width, height) of a --tile value."""
    return (value, value) if isinstance(value, int) else value


TILE_METAVAR = "N|WxH"


def deprecated(new: str, until: str) -> type[argparse.Action]:
    """An action for an option's old name: it still sets the new option's value, and says on
    stderr that the name changed (for one release; then the old name goes)."""
    class Deprecated(argparse.Action):
        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                     option_string: str | None = None) -> None:
            import sys

            print(f"{parser.prog}: {option_string} is now {new} (until {until} the old name still works)",
                  file=sys.stderr)
            setattr(namespace, self.dest, values)

    return Deprecated


VALUE_OPTIONS = ("--ffmpeg-args",)


def attach_values(argv: Sequence[str], options: Sequence[str] = VALUE_OPTIONS) -> list[str]:
    """`--ffmpeg-args -vf hqdn3d` as `--ffmpeg-args=-vf hqdn3d`: argparse reads a separate value
    that begins with '-' as an option (`-vf ...` as `-v`), the attached form as a value."""
    attached: list[str] = []
    items = list(argv)
    index = 0
    while index < len(items):
        item = items[index]
        if item == "--":  # positional arguments from here on
            return attached + items[index:]
        if item in options and index + 1 < len(items):
            attached.append(f"{item}={items[index + 1]}")
            index += 2
        else:
            attached.append(item)
            index += 1
    return attached


def options_given(parser: argparse.ArgumentParser, args: argparse.Namespace, keep: Sequence[str] = ()) -> list[str]:
    """The options of `parser` that `args` holds away from their defaults (by their long names),
    except those whose destination is in `keep`: for a form of a command that takes fewer."""
    given: dict[str, str] = {}
    for action in parser._actions:  # noqa: SLF001 -- argparse has no public list of a parser's options
        if action.option_strings and action.dest not in keep and action.dest != "help" and \
                getattr(args, action.dest, action.default) != action.default:
            given.setdefault(action.dest, action.option_strings[-1])
    return list(given.values())


def default(record: type, name: str) -> Any:
    """The default of field `name` of a dataclass: the library's default is the command's."""
    for field in dataclasses.fields(record):
        if field.name == name:
            if field.default is not dataclasses.MISSING:
                return field.default
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
    raise KeyError(name)


def add_noise_option(parser: argparse.ArgumentParser, extra_help: str = "") -> None:
    """--noise: the denoise level of models that have levels (checked against the model later)."""
    from ..filter.arguments import NOISE_LEVELS

    parser.add_argument("--noise", type=integer, choices=NOISE_LEVELS, metavar="{-1,0,1,2,3}",
                        help="denoise level of models that have levels (realcugan, waifu2x-*): -1 conservative/none, "
                        f"0 no denoise ... 3 strongest (default: the model's){extra_help}")
