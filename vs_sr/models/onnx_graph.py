"""Reading ONNX graphs: input/output shapes and the scale they imply."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import sr_error

PROBE = 64  # side used to infer the scale of a graph with dynamic height/width


@dataclass(frozen=True)
class IOShapes:
    channels: int | None
    batch: int | None
    fixed_hw: tuple[int, int] | None
    scale: int | None


def _dims(value_info) -> list[int | None]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]


def _load(path: Path):
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise sr_error(f"{path} is not a readable ONNX file ({error}).") from None


def read_io_shapes(path: Path) -> IOShapes:
    """Shapes of the single image input/output, and the scale if the graph determines it."""
    model = _load(path)
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise sr_error(f"{path.name} must have one image input and one output "
                       f"(it has {len(inputs)} and {len(graph.output)}).")
    in_dims, out_dims = _dims(inputs[0]), _dims(graph.output[0])
    if len(in_dims) != 4:
        raise sr_error(f"{path.name}: input must be NCHW (4 dimensions), not {len(in_dims)}.")
    batch, channels, height, width = in_dims
    fixed = (height, width) if height and width else None
    if fixed and len(out_dims) == 4 and out_dims[2] and out_dims[3]:
        return IOShapes(channels, batch, fixed, _ratio(out_dims[2:], fixed))
    return IOShapes(channels, batch, fixed, _probe_scale(model, fixed or (PROBE, PROBE)))


def _ratio(out_hw, in_hw) -> int | None:
    (oh, ow), (ih, iw) = out_hw, in_hw
    if oh % ih or ow % iw or oh // ih != ow // iw:
        return None
    return oh // ih


def _probe_scale(model, hw: tuple[int, int]) -> int | None:
    """Scale from ONNX shape inference with the input pinned to `hw`, or None if it cannot tell."""
    import onnx

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    initializers = {init.name for init in probe.graph.initializer}
    image = next(i for i in probe.graph.input if i.name not in initializers)
    dims = image.type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, 3, *hw), strict=True):
        dim.Clear()
        dim.dim_value = value
    for output in probe.graph.output:  # symbolic output dims would otherwise survive inference
        output.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, data_prop=True)
    except Exception:
        return None
    out = _dims(inferred.graph.output[0])
    if len(out) == 4 and out[2] and out[3]:
        return _ratio(out[2:], hw)
    return None
