"""Reading ncnn networks: the text `.param` (layers, their blobs and typed parameters) and the
`.bin` of layer data, with the storage rules of ncnn's ModelBin.

`.param`: a magic line (7767517), "layer_count blob_count", then one layer per line:
`Type name n_in n_out in... out... key=value...`. A value with '.' or 'e' is a float; a key
-233xx holds an array "count,v0,v1,..." for parameter id xx. `.bin`: the data of the layers in
`.param` order, arrays back to back. A weight array starts with a 4-byte tag (fp16 halves padded
to 4 bytes, or raw fp32); biases, slopes and scales are raw fp32 without a tag. The whole file
must be consumed: anything left over means the two files do not belong together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SRError

PARAM_MAGIC = "7767517"
TAG_FP16 = 0x01306B47
FP32_TAGS = (0, 0x0002C056)
ARRAY_KEY = -23300
ParamValue = int | float | str | tuple[int | float, ...]


@dataclass(frozen=True)
class Layer:
    """One line of a `.param` file, with the arrays its `.bin` data holds."""

    kind: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: Mapping[int, ParamValue]
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def integer(self, key: int, default: int = 0) -> int:
        return int(self._scalar(key, default))

    def real(self, key: int, default: float = 0.0) -> float:
        return float(self._scalar(key, default))

    def array(self, key: int) -> tuple[int | float, ...]:
        value = self.params.get(key, ())
        return value if isinstance(value, tuple) else (value,)  # type: ignore[return-value]

    def _scalar(self, key: int, default: int | float) -> int | float:
        value = self.params.get(key, default)
        if isinstance(value, (tuple, str)):
            raise SRError(f"ncnn layer {self.name}: parameter {key} is {value!r}, expected a number.")
        return value


@dataclass(frozen=True)
class NcnnNetwork:
    """A whole ncnn network: its layers in order, and its one image input and output blob."""

    layers: tuple[Layer, ...]
    input: str
    output: str
    channels: int
    """Channels of the input blob (3 for the RGB networks vs_sr runs)."""


def read_network(param: Path, weights: Path) -> NcnnNetwork:
    """Parse `param`, attach the data of `weights` to its layers, and find the image input and output."""
    layers = read_param(param)
    read_data(layers, weights.read_bytes(), weights.name)
    inputs = [layer for layer in layers if layer.kind == "Input"]
    if len(inputs) != 1:
        raise SRError(f"{param.name} has {len(inputs)} Input layers; vs_sr imports networks with one image input.")
    consumed = {blob for layer in layers for blob in layer.inputs}
    leaves = [blob for layer in layers for blob in layer.outputs if blob not in consumed]
    if len(leaves) != 1:
        raise SRError(f"{param.name} has {len(leaves)} unused output blobs ({', '.join(leaves)}); "
                      "vs_sr imports networks with one image output.")
    return NcnnNetwork(tuple(layers), inputs[0].outputs[0], leaves[0], inputs[0].integer(2, 3))


def read_param(path: Path) -> list[Layer]:
    # splitlines: some packages ship the same files with CRLF line ends
    lines = [line.strip() for line in path.read_text(encoding="ascii", errors="replace").splitlines() if line.strip()]
    if not lines or lines[0] != PARAM_MAGIC:
        raise SRError(f"{path} is not an ncnn text .param file (its first line is not {PARAM_MAGIC}).")
    try:
        layer_count = int(lines[1].split()[0])
        layers = [_layer(line) for line in lines[2:]]
    except (IndexError, ValueError) as error:
        raise SRError(f"{path} is damaged ({error}); re-import or re-download it.") from None
    if len(layers) != layer_count:
        raise SRError(f"{path} announces {layer_count} layers but holds {len(layers)}; re-import or re-download it.")
    return layers


def _layer(line: str) -> Layer:
    fields = line.split()
    kind, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
    blobs = fields[4:4 + n_in + n_out]
    params: dict[int, ParamValue] = {}
    for item in fields[4 + n_in + n_out:]:
        key_text, _, text = item.partition("=")
        key = int(key_text)
        if key <= ARRAY_KEY:
            count, *values = text.split(",")
            params[ARRAY_KEY - key] = tuple(_number(v) for v in values[: int(count)])
        else:
            params[key] = _number(text) if text and (text[0].isdigit() or text[0] in "+-.") else text
    return Layer(kind, name, tuple(blobs[:n_in]), tuple(blobs[n_in:]), params)


def _number(text: str) -> int | float:
    """ncnn's rule (paramdict.cpp): a value with '.', 'e' or 'E' is a float, otherwise an int."""
    return float(text) if any(c in text for c in ".eE") else int(text)


class _Reader:
    """ncnn's ModelBin over the bytes of a `.bin`: tagged weight arrays and raw fp32 arrays."""

    def __init__(self, blob: bytes, name: str) -> None:
        self.blob, self.name, self.offset = blob, name, 0

    def _take(self, nbytes: int) -> int:
        start = self.offset
        if start + nbytes > len(self.blob):
            raise SRError(f"{self.name} ends early (layer data needs more than its {len(self.blob)} bytes); "
                          "the .param and .bin do not belong together, or the file is truncated.")
        self.offset += nbytes
        return start

    def raw(self, count: int) -> np.ndarray:
        return np.frombuffer(self.blob, np.float32, count, self._take(4 * count)).copy()

    def weights(self, count: int, layer: str) -> np.ndarray:
        tag = int(np.frombuffer(self.blob, np.uint32, 1, self._take(4))[0])
        if tag == TAG_FP16:
            start = self._take((2 * count + 3) // 4 * 4)
            return np.frombuffer(self.blob, np.float16, count, start).astype(np.float32)
        if tag in FP32_TAGS:
            return self.raw(count)
        raise SRError(f"ncnn layer {layer}: weights stored as {tag:#010x} (int8 or a lookup table); "
                      "vs_sr imports fp16 and fp32 weights only.")


def _conv_data(layer: Layer, reader: _Reader) -> dict[str, np.ndarray]:
    data = {"weight": reader.weights(layer.integer(6), layer.name)}
    if layer.integer(5):
        data["bias"] = reader.raw(layer.integer(0))
    return data


def _inner_product_data(layer: Layer, reader: _Reader) -> dict[str, np.ndarray]:
    data = {"weight": reader.weights(layer.integer(2), layer.name)}
    if layer.integer(1):
        data["bias"] = reader.raw(layer.integer(0))
    return data


def _scale_data(layer: Layer, reader: _Reader) -> dict[str, np.ndarray]:
    size = layer.integer(0)
    if size == -233:  # the scale comes from a second input blob
        return {}
    data = {"scale": reader.raw(size)}
    if layer.integer(1):
        data["bias"] = reader.raw(size)
    return data


# Layer types that carry data in the .bin, and how to read it (ncnn's layer load_model order).
DATA_READERS: dict[str, Callable[[Layer, _Reader], dict[str, np.ndarray]]] = {
    "Convolution": _conv_data,
    "Deconvolution": _conv_data,
    "InnerProduct": _inner_product_data,
    "PReLU": lambda layer, reader: {"slope": reader.raw(layer.integer(0, 1))},
    "Scale": _scale_data,
}


def read_data(layers: list[Layer], blob: bytes, name: str) -> None:
    """Attach each layer's arrays, in file order, to `layer.data`."""
    reader = _Reader(blob, name)
    for layer in layers:
        read = DATA_READERS.get(layer.kind)
        if read is not None:
            layer.data.update(read(layer, reader))
    if reader.offset != len(blob):
        raise SRError(f"{name} has {len(blob) - reader.offset} bytes left after the last layer; "
                      "the .param and .bin do not belong together.")
