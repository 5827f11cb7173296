"""Turn the caller's `model=` and `scale=` into a `Network`: a registry name or a file path."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SRError
from .architectures import arch_traits
from .registry import REGISTRY, list_models
from .spec import ModelSpec, Network
from .weights import check_official_digest, file_digest, find_weights, missing_weights_message

if TYPE_CHECKING:
    import torch

TORCH_SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt")
_modules: dict[str, "torch.nn.Module"] = {}
_modules_lock = threading.Lock()


def resolve(model: str | os.PathLike[str], scale: int) -> Network:
    """The network for a registry name or a weight/ONNX file path, checked against `scale`
    (callers pass checked arguments: `Upscale` normalises them, the CLI's parser types them)."""
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.suffix.lower() == ".onnx":
        return _onnx_network(path, scale)
    if path.suffix.lower() in TORCH_SUFFIXES:
        return _file_network(path, scale)
    return _named_network(text.lower(), scale)


def torch_module(network: Network) -> "torch.nn.Module":
    """The PyTorch module of a torch-format network, loaded once per process per file content."""
    if network.format != "torch":
        raise SRError(f"{network.path.name} is an ONNX graph; backend='torch' needs PyTorch weights. "
                       "Use backend='ort' or 'openvino' for .onnx files.")
    with _modules_lock:
        module = _modules.get(network.digest)
    if module is None:
        from .pytorch import load_module

        module, _, _ = load_module(network.path)
        with _modules_lock:
            module = _modules.setdefault(network.digest, module)
    return module


def served_name(model: str | os.PathLike[str], scale: int) -> str:
    """The name a model has on a Triton server (what `vs-sr triton export` calls it and
    `backend="triton"` asks for): `<registry name>-x<scale>`, or a file's stem."""
    path = Path(os.fspath(model)).expanduser()
    if path.suffix.lower() in (".onnx", *TORCH_SUFFIXES):
        return path.stem
    spec = named_spec(os.fspath(model).lower(), scale)
    return f"{spec.name}-x{spec.scale}"


def named_spec(name: str, scale: int) -> ModelSpec:
    """The registry entry for `name` at `scale`, or an error listing what exists."""
    scales = REGISTRY.get(name)
    if scales is None:
        raise SRError(
            f"unknown model '{name}'. Known models: {', '.join(list_models())}; "
            "or pass the path of a .pth/.safetensors/.onnx file."
        )
    spec = scales.get(scale)
    if spec is None:
        have = ", ".join(f"x{s}" for s in sorted(scales))
        raise SRError(
            f"model '{name}' has no trained x{scale} network (it has {have}). "
            f"Pick one of those scales, and pass width=/height= for any other output size."
        )
    return spec


def _named_network(name: str, scale: int) -> Network:
    spec = named_spec(name, scale)
    path = find_weights(spec)
    if path is None:
        raise SRError(missing_weights_message(spec))
    digest = file_digest(path)
    check_official_digest(spec, path, digest)
    return Network(name=spec.name, scale=spec.scale, path=path, digest=digest, traits=spec.traits, format="torch")


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise SRError(f"model file not found: {path}. Check the path, or pass a registry name "
                       f"({', '.join(list_models())}).")
    return path.resolve()


def _file_network(path: Path, scale: int) -> Network:
    from .pytorch import load_module

    path = _existing(path)
    digest = file_digest(path)
    module, traits, native = load_module(path)
    if native != scale:
        raise SRError(f"{path.name} is a x{native} network; pass scale={native} "
                       "(and width=/height= for another output size).")
    with _modules_lock:
        _modules.setdefault(digest, module)
    return Network(name=path.stem, scale=native, path=path, digest=digest, traits=traits, format="torch")


def _onnx_network(path: Path, scale: int) -> Network:
    from .onnx_graph import read_io_shapes

    path = _existing(path)
    shapes = read_io_shapes(path)
    if shapes.channels not in (None, 3):
        raise SRError(f"{path.name} takes {shapes.channels} input channels; only RGB networks are supported.")
    native = shapes.scale
    if native is not None and native != scale:
        raise SRError(f"{path.name} is a x{native} network; pass scale={native}.")
    return Network(
        name=path.stem,
        scale=scale,
        path=path,
        digest=file_digest(path),
        traits=arch_traits("onnx", scale),
        format="onnx",
        fixed_shape=shapes.fixed_hw,
        fixed_batch=shapes.batch,
    )
