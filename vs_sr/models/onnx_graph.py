"""Reading ONNX graphs: input/output shapes and the scale they imply."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SRError

if TYPE_CHECKING:
    import onnx

PROBE = 64  # side used to infer the scale of a graph with dynamic height/width

# Operators the TensorRT 10 ONNX parser supports (onnx-tensorrt docs/operators.md, TensorRT 10.0).
TENSORRT_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast CastLike Ceil Celu
Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DeformConv DepthToSpace DequantizeLinear Div
Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gelu Gemm
GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GroupNormalization GRU HardSigmoid
HardSwish Hardmax Identity If ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less
LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min
Mish Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal
RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp
ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign
Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax
Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu
Unsqueeze Upsample Where Xor
""".split())
TENSORRT_MIN_OPSET, TENSORRT_MAX_OPSET = 9, 20


@dataclass(frozen=True)
class IOShapes:
    channels: int | None
    batch: int | None
    fixed_hw: tuple[int, int] | None
    scale: int | None


def _dims(value_info: onnx.ValueInfoProto) -> list[int | None]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]


def _load(path: Path) -> onnx.ModelProto:
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise SRError(f"{path} is not a readable ONNX file ({error}).") from None


def read_io_shapes(path: Path) -> IOShapes:
    """Shapes of the single image input/output, and the scale if the graph determines it."""
    model = _load(path)
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise SRError(f"{path.name} must have one image input and one output "
                       f"(it has {len(inputs)} and {len(graph.output)}).")
    _require_float32(path, inputs[0], graph.output[0])
    in_dims, out_dims = _dims(inputs[0]), _dims(graph.output[0])
    if len(in_dims) != 4:
        raise SRError(f"{path.name}: input must be NCHW (4 dimensions), not {len(in_dims)}.")
    batch, channels, height, width = in_dims
    _require_image(path, out_dims)
    fixed = (height, width) if height and width else None
    if fixed and len(out_dims) == 4 and out_dims[2] and out_dims[3]:
        return IOShapes(channels, batch, fixed, _ratio(out_dims[2:], fixed))
    inferred = _inferred_output(model, fixed or (PROBE, PROBE))
    _require_image(path, inferred)
    scale = _ratio(inferred[2:], fixed or (PROBE, PROBE)) if len(inferred) == 4 and inferred[2] and inferred[3] else None
    return IOShapes(channels, batch, fixed, scale)


def _require_image(path: Path, dims: list[int | None]) -> None:
    """An output whose shape is known must be an N x 3 x H x W image (an empty list: not known)."""
    if dims and (len(dims) != 4 or dims[1] not in (None, 3)):
        shape = "x".join("?" if d is None else str(d) for d in dims)
        raise SRError(f"{path.name}'s output ({shape}) is not an image: vs_sr needs NCHW output with 3 channels "
                      "(N x 3 x H*scale x W*scale).")


def _require_float32(path: Path, image: onnx.ValueInfoProto, result: onnx.ValueInfoProto) -> None:
    """vs_sr feeds fp32 tiles and reads fp32 results whatever precision runs inside."""
    import onnx

    types = [onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
             if v.type.tensor_type.elem_type else "undefined" for v in (image, result)]
    if types != ["float32", "float32"]:
        raise SRError(f"{path.name} takes {types[0]} and gives {types[1]}; vs_sr needs float32 input and output "
                       "(it picks the precision inside with precision=...): export the model with float32 I/O.")


def _ratio(out_hw: Sequence[int | None], in_hw: tuple[int, int]) -> int | None:
    """The one integer factor from in_hw to out_hw; None where there is none or out_hw is unknown."""
    (oh, ow), (ih, iw) = out_hw, in_hw
    if oh is None or ow is None or oh % ih or ow % iw or oh // ih != ow // iw:
        return None
    return oh // ih


def _inferred_output(model: onnx.ModelProto, hw: tuple[int, int]) -> list[int | None]:
    """The output's dims by ONNX shape inference with the input pinned to `hw` (empty if unknown)."""
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
        return []
    return _dims(inferred.graph.output[0])


def tensorrt_problems(path: Path) -> list[str]:
    """What in an ONNX graph the TensorRT ONNX parser would reject: unsupported operators, custom
    domains, opsets outside its range. Empty when the graph is fine."""
    model = _load(path)
    problems = []
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and not TENSORRT_MIN_OPSET <= opset.version <= TENSORRT_MAX_OPSET:
            problems.append(f"opset {opset.version} (TensorRT parses {TENSORRT_MIN_OPSET}-{TENSORRT_MAX_OPSET})")
    for op in sorted({(n.domain, n.op_type) for n in model.graph.node}):
        domain, op_type = op
        if domain not in ("", "ai.onnx"):
            problems.append(f"{domain}::{op_type} (custom domain)")
        elif op_type not in TENSORRT_OPS:
            problems.append(f"{op_type} (not supported by TensorRT's ONNX parser)")
    return problems


def fp32_island_nodes(path: Path, fp32_ops: tuple[str, ...], attention: bool) -> list[str]:
    """Names of the nodes to keep in fp32 when the rest of the graph runs in reduced precision:
    the given op types, and (with `attention`) MatMuls of two computed tensors — attention's
    Q.K^T and A.V — as opposed to MatMuls with a weight operand."""
    model = _load(path)
    constants = {init.name for init in model.graph.initializer}
    constants |= {out for n in model.graph.node if n.op_type == "Constant" for out in n.output}
    names = []
    for node in model.graph.node:
        if node.op_type in fp32_ops:
            names.append(node.name)
        elif attention and node.op_type == "MatMul" and not any(i in constants for i in node.input):
            names.append(node.name)
    return names
