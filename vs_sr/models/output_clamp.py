"""ONNX graphs whose output is clamped to [0, 1] inside the graph (cached beside our exports).

The filter clamps every output frame. Done in numpy it is an extra pass over the whole output
(4.9 MB per 176x144 frame at x4: 0.2 ms more per frame than the plain copy it needs anyway, 1% at
50 fps); a runtime that fuses the clamp into its last operation (OpenVINO does) does it for free.
Only for whole-frame tiles: blended tiles must be summed before the clamp. Clamping changes no
value it keeps, so the frames are bit for bit those of a numpy clamp.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import build_once, cache_file
from ..errors import SRError
from ..paths import cache_dir
from .weights import file_digest

if TYPE_CHECKING:
    import onnx

RECIPE = 1
CLIP_INPUTS_OPSET = 11  # from opset 11 Clip takes its bounds as inputs, before as attributes


def clamped_onnx(source: Path) -> Path:
    """`source` with a final Clip(0, 1) on its one output."""
    digest = file_digest(source)[:16]
    target = cache_file(cache_dir("onnx"), source.stem, f"-{digest}-clamp01-r{RECIPE}.onnx")
    return build_once(target, lambda temp: _write(source, temp), bounded=True)


def _write(source: Path, destination: Path) -> None:
    import onnx

    model = onnx.load(str(source))
    onnx.save(with_clamped_output(model), str(destination))


def with_clamped_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose single output goes through Clip(0, 1); the output keeps its name."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    if len(model.graph.output) != 1:
        raise SRError(f"expected a graph with one output, this one has {len(model.graph.output)}.")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    name = graph.output[0].name
    unclamped = f"{name}__unclamped"
    for node in graph.node:  # the producer (and any reader) of the output now use the inner name
        node.output[:] = [unclamped if o == name else o for o in node.output]
        node.input[:] = [unclamped if i == name else i for i in node.input]
    dtype = helper.tensor_dtype_to_np_dtype(graph.output[0].type.tensor_type.elem_type)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), CLIP_INPUTS_OPSET)
    if opset >= CLIP_INPUTS_OPSET:
        bounds = [f"{name}__clamp_low", f"{name}__clamp_high"]
        graph.initializer.extend(numpy_helper.from_array(np.array(v, dtype), b) for v, b in zip((0, 1), bounds,
                                                                                              strict=True))
        graph.node.append(helper.make_node("Clip", [unclamped, *bounds], [name], name=f"{name}__clamp"))
    else:
        graph.node.append(helper.make_node("Clip", [unclamped], [name], name=f"{name}__clamp", min=0.0, max=1.0))
    return model
