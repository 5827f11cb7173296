"""ONNX graphs of networks for one static tile shape, cached on disk: PyTorch networks exported,
ncnn networks converted (without PyTorch), ONNX files as they are.

The cache key holds everything the graph depends on: the weights' content hash, the architecture
and scale, the batch and tile shape, the dtype, the opset, the exporter's torch version and our
own recipe version. Exports are written atomically under a lock, so concurrent vspipe processes
share one export.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from pathlib import Path

from .. import extras
from ..atomic import build_once, cache_file
from ..errors import SRError
from ..paths import cache_dir
from .resolve import torch_module
from .spec import Network

OPSET = 17
RECIPE = 1  # bump when the export procedure changes what it writes
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def export_key(network: Network, batch: int, height: int, width: int, dtype: str, dynamic: bool = False,
               dynamic_batch: bool = False) -> str:
    extras.require("torch", f"exporting {network.label} from PyTorch")
    # From the package metadata: importing torch (seconds) only to name a cached file would
    # slow every vspipe start, a batch's chunks above all.
    torch_version = ".".join(importlib.metadata.version("torch").split("+")[0].split(".")[:2])
    shape = "HxW" if dynamic else f"{height}x{width}"
    tiles = "N" if dynamic_batch else str(batch)
    return (f"{network.digest[:16]}-{network.arch}-x{network.scale}-b{tiles}-{shape}-{dtype}"
            f"-opset{OPSET}-torch{torch_version}-r{RECIPE}")


def export_onnx(network: Network, batch: int, height: int, width: int, dtype: str = "fp32",
                dynamic: bool = False, dynamic_batch: bool = False) -> Path:
    """The ONNX graph of `network` for input (batch, 3, height, width); ONNX networks are returned as is.

    `dynamic` leaves height and width open (traced at the given size), for TensorRT engines with
    a min/opt/max profile. HAT cannot: its attention masks are computed for one size.
    `dynamic_batch` leaves the batch open (traced at `batch`), for Triton's dynamic batcher. An
    ncnn network in fp16 is its fp32 graph rewritten with fp16 weights and compute (fp32 input/output).
    """
    if network.format == "onnx":
        return network.path
    if network.format == "ncnn":
        from .mixed_precision import mixed_precision_onnx
        from .ncnn import onnx_graph

        graph = onnx_graph(network, None if dynamic else (None if dynamic_batch else batch, height, width))
        return graph if dtype == "fp32" else mixed_precision_onnx(graph, "fp16", network.traits.precision)
    if dynamic and network.arch == "hat":
        raise SRError("HAT exports for one input size only (its window-attention masks depend on it); "
                       "build one engine per tile shape instead of a profile.")
    key = export_key(network, batch, height, width, dtype, dynamic, dynamic_batch)
    target = cache_file(cache_dir("onnx"), network.name, f"-{key}.onnx")
    return build_once(
        target, lambda temp: _export(network, batch, height, width, dtype, temp, dynamic, dynamic_batch), bounded=True)


def _dynamic_axes(dynamic: bool, dynamic_batch: bool) -> dict[str, dict[int, str]] | None:
    inputs = {0: "batch"} if dynamic_batch else {}
    outputs = dict(inputs)
    if dynamic:
        inputs |= {2: "height", 3: "width"}
        outputs |= {2: "out_height", 3: "out_width"}
    return {INPUT_NAME: inputs, OUTPUT_NAME: outputs} if inputs else None


def _export(network: Network, batch: int, height: int, width: int, dtype: str, destination: Path,
            dynamic: bool = False, dynamic_batch: bool = False) -> None:
    import copy

    import torch

    module = torch_module(network)
    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16}[dtype]
    if torch_dtype != torch.float32:
        module = copy.deepcopy(module).to(torch_dtype)
    sample = torch.rand(batch, 3, height, width, dtype=torch_dtype)
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript-based exporter handles HAT's window attention (roll, unfold, masks)
        # with static shapes; its deprecation and tracer warnings are expected here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (sample,),
            str(destination),
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=_dynamic_axes(dynamic, dynamic_batch),
            do_constant_folding=True,
        )
