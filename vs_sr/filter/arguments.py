"""The caller's arguments to `Upscale`, checked and normalised once, at the top.

Everything below the filter's entry point works with the normalised values (plain ints, pairs,
device tuples), so no layer checks a type again. Integers include numpy integers but not bools.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast, get_args

from ..errors import SRError

BackendName = Literal["auto", "trt", "torch", "ort", "openvino", "triton"]
PrecisionName = Literal["auto", "fp32", "fp16", "bf16", "int8"]
BACKENDS: tuple[str, ...] = get_args(BackendName)
PRECISION_CHOICES: tuple[str, ...] = get_args(PrecisionName)
Pair = tuple[int, int]


@dataclass(frozen=True, kw_only=True)
class Arguments:
    """`Upscale`'s keyword arguments after checking."""

    model: str | os.PathLike[str]
    scale: int
    backend: BackendName
    precision: PrecisionName
    tile: Pair | None
    """(width, height) in input pixels."""
    overlap: Pair | None
    """(width, height) in input pixels."""
    num_streams: int
    devices: tuple[int, ...]
    width: int | None
    height: int | None
    server: str | None = None
    """The Triton server's canonical URL (backend "triton" only)."""
    noise: int | None = None
    """Denoise level (-1 ... 3) of a model that has levels; None: the model's default."""


def as_integer(value: object) -> int | None:
    """`value` as an int if it is an integer (numpy integers included, bools not), else None."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return None


def positive(name: str, value: object) -> int:
    number = as_integer(value)
    if number is None or number < 1:
        raise SRError(f"{name} must be a positive integer, not {value!r}.")
    return number


def optional_positive(name: str, value: object) -> int | None:
    number = as_integer(value)
    if value is not None and (number is None or number < 1):
        raise SRError(f"{name} must be a positive integer or None, not {value!r}.")
    return number


def pair(name: str, value: object) -> Pair | None:
    """(width, height) from None, an int or a pair of ints."""
    if value is None:
        return None
    try:
        items = (value, value) if as_integer(value) is not None else tuple(value)  # type: ignore[arg-type]
    except TypeError:
        items = ()
    numbers = [as_integer(item) for item in items]
    if len(numbers) != 2 or numbers[0] is None or numbers[1] is None:
        raise SRError(f"{name} must be an int or a (width, height) pair of ints, not {value!r}.")
    return numbers[0], numbers[1]


def tile_pair(value: object) -> Pair | None:
    tile = pair("tile", value)
    if tile is not None and min(tile) < 1:
        raise SRError(f"tile must be positive, got {value!r}.")
    return tile


def overlap_pair(value: object) -> Pair | None:
    overlap = pair("overlap", value)
    if overlap is not None and min(overlap) < 0:
        raise SRError(f"overlap must not be negative, got {value!r}.")
    return overlap


def device_list(value: object) -> tuple[int, ...]:
    """device_id as GPU indices: one, or several distinct ones that frames are spread over."""
    try:
        items = [value] if as_integer(value) is not None else list(value)  # type: ignore[call-overload]
    except TypeError:
        items = []
    ids = [as_integer(item) for item in items]
    valid = [i for i in ids if i is not None and i >= 0]
    if not valid or len(valid) != len(ids) or len(set(valid)) != len(valid):
        raise SRError(f"device_id must be a GPU index (0, 1, ...) or a list of distinct ones, not {value!r}.")
    return tuple(valid)


def choice(name: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise SRError(f"unknown {name} {value!r}; use one of {', '.join(choices)}.")
    return value


def backend_name(value: object) -> BackendName:
    return cast(BackendName, choice("backend", value, BACKENDS))


def precision_name(value: object) -> PrecisionName:
    return cast(PrecisionName, choice("precision", value, PRECISION_CHOICES))


NOISE_LEVELS = (-1, 0, 1, 2, 3)


def noise_level(value: object) -> int | None:
    """None, or a denoise level of the range models use (each model checks its own levels)."""
    number = as_integer(value)
    if value is not None and number not in NOISE_LEVELS:
        raise SRError(f"noise must be None (the model's default) or a level from -1 (conservative) to 3 "
                      f"(strongest), not {value!r}.")
    return number


def model_reference(value: object) -> str | os.PathLike[str]:
    if not isinstance(value, (str, os.PathLike)):
        raise SRError(f"model must be a name or a file path, not {type(value).__name__}.")
    return value


def backend_and_server(backend: object, server: object) -> tuple[BackendName, str | None]:
    """The backend, and the server URL for backend "triton": server= (default $VS_SR_TRITON_URL)
    as "grpc://host:port" or "http://host:port". A server given with backend "auto" means Triton."""
    from ..backends.triton import URL_ENV, normalise_server

    name = backend_name(backend)
    if server is not None and name == "auto":
        name = "triton"
    if name != "triton":
        if server is not None:
            raise SRError(f"server= is for backend='triton'; backend '{name}' runs here. Drop server= or pass "
                          "backend='triton'.")
        return name, None
    if server is None:
        server = os.environ.get(URL_ENV) or None
        if server is None:
            raise SRError(f"backend='triton' needs a server: pass server='grpc://host:8001' (or http://host:8000), "
                          f"or set ${URL_ENV}.")
    return "triton", normalise_server(server)


def normalise(model: object, scale: object, backend: object, precision: object, tile: object, overlap: object,
              num_streams: object, device_id: object, width: object, height: object,
              server: object = None, noise: object = None) -> Arguments:
    name, url = backend_and_server(backend, server)
    chosen = precision_name(precision)
    if chosen == "int8" and name == "auto":
        name = "openvino"  # the one runtime that runs int8 (the quantized QDQ graphs)
    return Arguments(
        model=model_reference(model),
        scale=positive("scale", scale),
        backend=name,
        precision=chosen,
        tile=tile_pair(tile),
        overlap=overlap_pair(overlap),
        num_streams=positive("num_streams", num_streams),
        devices=device_list(device_id),
        width=optional_positive("width", width),
        height=optional_positive("height", height),
        server=url,
        noise=noise_level(noise),
    )
