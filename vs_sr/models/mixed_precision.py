"""Mixed-precision ONNX: an fp32 graph rewritten to run in fp16/bf16, with fp32 islands.

TensorRT 11 builds strongly typed networks only (the FP16/BF16 builder flags and per-layer
precision constraints are gone; TensorRT 10 has the same mode behind a flag), so the precision
of every tensor has to be in the ONNX graph itself. This module writes it there: weights are
stored in the low type, compute runs in it, and the nodes a network's PrecisionPolicy names
(LayerNorm, softmax, attention's activation MatMuls) keep fp32, with Casts at the borders. The
image input and output stay fp32, so callers' buffers do not change with the precision.

How a node's precision is chosen:
- an island node runs fp32;
- a node fed only by constants (HAT's attention-mask arithmetic) keeps its exported types;
- data movement (Reshape, Transpose, Slice, ...) follows its data input, so an fp32 island's
  result is not squeezed through the low type on its way to the next island;
- elementwise arithmetic runs fp32 when any computed input is fp32 (type promotion, as PyTorch's
  autocast does: attention scores plus the position bias stay fp32 up to the softmax);
- everything else (convolutions, weight MatMuls, activations) runs in the low type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..atomic import build_once, cache_file
from ..errors import SRError
from ..paths import cache_dir
from .architectures import PrecisionPolicy
from .onnx_graph import fp32_island_nodes
from .weights import file_digest

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import onnx

LowPrecision = Literal["fp16", "bf16"]
RECIPE = 1  # bump when the rewrite changes what it writes
FLOAT, FLOAT16, BFLOAT16 = 1, 10, 16  # onnx.TensorProto element types, named here so the rules read plainly

FOLLOW_OPS = frozenset("""
Reshape Transpose Slice Gather GatherElements GatherND Squeeze Unsqueeze Identity Expand Flatten Split Tile Pad
DepthToSpace SpaceToDepth ScatterND ScatterElements Concat
""".split())
ELEMENTWISE_OPS = frozenset("Add Sub Mul Div Where Max Min Sum Mean Equal Less Greater LessOrEqual GreaterOrEqual".split())
# Both compute in fp32 when any computed input is fp32 (for one-input data movement: follow it).
PROMOTING_OPS = FOLLOW_OPS | ELEMENTWISE_OPS
# Float inputs that are parameters, not data: they keep the type the operator's schema fixes.
PARAMETER_INPUTS = {"Resize": {1, 2}, "Upsample": {1}, "Shape": {0}, "Size": {0}, "Cast": {0}}


@dataclass
class _Graph:
    """What the rewrite knows about the graph's float tensors."""

    low: int  # FLOAT16 or BFLOAT16
    floats: set[str]  # every float tensor (ONNX shape inference)
    constants: set[str]  # float initializers
    computed: dict[str, int] = field(default_factory=dict)  # computed float tensor -> its new type
    exported: set[str] = field(default_factory=set)  # computed from constants only: kept as exported


def mixed_precision_onnx(source: Path, precision: LowPrecision, policy: PrecisionPolicy) -> Path:
    """`source` rewritten for `precision` with the policy's fp32 islands, cached beside our exports."""
    digest = file_digest(source)[:16]
    target = cache_file(cache_dir("onnx"), source.stem, f"-{digest}-{precision}-mixed-r{RECIPE}.onnx")
    return build_once(target, lambda temp: _write(source, precision, policy, temp), bounded=True)


def _write(source: Path, precision: LowPrecision, policy: PrecisionPolicy, destination: Path) -> None:
    import onnx

    islands = set(fp32_island_nodes(source, policy.fp32_ops, policy.fp32_attention))
    model = onnx.load(str(source))
    onnx.save(lower_precision(model, precision, islands), str(destination))


def lower_precision(model: onnx.ModelProto, precision: LowPrecision, islands: set[str]) -> onnx.ModelProto:
    """A copy of the ONNX `model` computing in `precision` except for the `islands` (node names)."""
    import onnx

    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for n in model.graph.node for a in n.attribute):
        raise SRError("this ONNX graph has control flow (If/Loop/Scan), which the fp16/bf16 rewrite does not "
                       "handle: use precision='fp32'.")
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    _constants_to_initializers(graph)
    _bypass_constant_identities(graph)
    low = FLOAT16 if precision == "fp16" else BFLOAT16
    info = _Graph(low, _float_tensors(result), {i.name for i in graph.initializer if i.data_type == FLOAT})
    kinds = [_assign(node, info, islands) for node in graph.node]
    lowered = _store_initializers(graph, info, kinds)
    nodes = _with_casts(graph, info, kinds, lowered)
    graph.ClearField("node")
    graph.node.extend(nodes)
    _cast_outputs_to_fp32(graph, info)
    graph.ClearField("value_info")  # the old intermediate types are stale
    return result


def _constants_to_initializers(graph: onnx.GraphProto) -> None:
    """Float Constant nodes become initializers, so one rule decides how every constant is stored."""
    kept = []
    for node in graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None) if node.op_type == "Constant" else None
        if value is not None and value.data_type == FLOAT:
            initializer = graph.initializer.add()
            initializer.CopyFrom(value)
            initializer.name = node.output[0]
        else:
            kept.append(node)
    graph.ClearField("node")
    graph.node.extend(kept)


def _bypass_constant_identities(graph: onnx.GraphProto) -> None:
    """Consumers of Identity(initializer) read the initializer itself, so shared weights (which
    exporters alias through Identity) are stored in the low type rather than cast at run time."""
    initializers = {i.name for i in graph.initializer}
    outputs = {o.name for o in graph.output}
    alias = {n.output[0]: n.input[0] for n in graph.node
             if n.op_type == "Identity" and n.input[0] in initializers and n.output[0] not in outputs}
    kept = [n for n in graph.node if not (n.op_type == "Identity" and n.output and n.output[0] in alias)]
    for node in kept:
        for position, name in enumerate(node.input):
            if name in alias:
                node.input[position] = alias[name]
    graph.ClearField("node")
    graph.node.extend(kept)


def _float_tensors(model: onnx.ModelProto) -> set[str]:
    import onnx

    graph = onnx.shape_inference.infer_shapes(model).graph
    infos = [*graph.input, *graph.output, *graph.value_info]
    known = {v.name for v in infos} | {i.name for i in graph.initializer}
    unknown = [out for node in graph.node for out in node.output if out and out not in known]
    if unknown:
        raise SRError(f"ONNX shape inference cannot type {len(unknown)} tensors of this graph (e.g. {unknown[0]}), "
                       "so it cannot be rewritten for fp16/bf16: use precision='fp32'.")
    return ({v.name for v in infos if v.type.tensor_type.elem_type == FLOAT}
            | {i.name for i in graph.initializer if i.data_type == FLOAT})


def _data_inputs(node: onnx.NodeProto, info: _Graph) -> list[tuple[int, str]]:
    """(position, name) of the node's float inputs that carry data rather than parameters."""
    skip = PARAMETER_INPUTS.get(node.op_type, set())
    return [(i, name) for i, name in enumerate(node.input) if name in info.floats and i not in skip]


def _is_computed(name: str, info: _Graph) -> bool:
    """A float tensor that depends on the image (graph inputs count, as fp32)."""
    return name in info.floats and name not in info.constants and name not in info.exported


def _computed_types(node: onnx.NodeProto, info: _Graph) -> set[int]:
    """New types of the node's computed float inputs."""
    return {info.computed.get(name, FLOAT) for _, name in _data_inputs(node, info) if _is_computed(name, info)}


def _node_type(node: onnx.NodeProto, info: _Graph, islands: set[str]) -> int | None:
    """The float type the node computes in, or None to keep its exported types (constants only)."""
    if node.name in islands:
        return FLOAT
    if node.op_type == "Cast":  # a float-to-float Cast follows its input; any other Cast is kept
        source = node.input[0]
        return info.computed.get(source, FLOAT) if _is_computed(source, info) else None
    types = _computed_types(node, info)
    if not types:
        return None
    if node.op_type in PROMOTING_OPS:
        return FLOAT if FLOAT in types else info.low
    return info.low


def _assign(node: onnx.NodeProto, info: _Graph, islands: set[str]) -> int | None:
    """Decide the node's type and record it on its float outputs."""
    kind = _node_type(node, info, islands)
    for out in node.output:
        if out in info.floats:
            if kind is None:
                info.exported.add(out)
            else:
                info.computed[out] = kind
    return kind


def _store_initializers(graph: onnx.GraphProto, info: _Graph, kinds: list[int | None]) -> set[str]:
    """Store an initializer in the low type when every consumer computes in it, else keep fp32;
    the names of those stored low."""
    from onnx import numpy_helper

    wanted: dict[str, set[int]] = {name: set() for name in info.constants}
    for node, kind in zip(graph.node, kinds, strict=True):
        for _, name in _data_inputs(node, info):
            if name in wanted:
                wanted[name].add(FLOAT if kind is None else kind)
    lowered = set()
    for index, initializer in enumerate(graph.initializer):
        if wanted.get(initializer.name) == {info.low}:
            values = numpy_helper.to_array(initializer)
            graph.initializer[index].CopyFrom(numpy_helper.from_array(_lowered(values, info.low), initializer.name))
            lowered.add(initializer.name)
    return lowered


# The result's dtype is float16 or ml_dtypes' bfloat16, which numpy's types cannot name: Any.
def _lowered(values: npt.NDArray[np.float32], low: int) -> npt.NDArray[Any]:
    """fp32 values rounded to the low type (fp16 saturates at its largest finite value)."""
    import ml_dtypes
    import numpy as np

    if low == FLOAT16:
        return np.clip(values, -65504, 65504).astype(np.float16)
    return values.astype(ml_dtypes.bfloat16)


def _with_casts(graph: onnx.GraphProto, info: _Graph, kinds: list[int | None],
                lowered: set[str]) -> list[onnx.NodeProto]:
    """The nodes with a Cast in front of every input whose type differs from the node's."""
    from onnx import helper

    casts: dict[tuple[str, int], str] = {}
    nodes = []
    for node, kind in zip(graph.node, kinds, strict=True):
        want = FLOAT if kind is None else kind
        for position, name in _data_inputs(node, info):
            have = info.low if name in lowered else info.computed.get(name, FLOAT)
            if have != want:
                if (name, want) not in casts:
                    casts[(name, want)] = f"{name}__to{want}"
                    nodes.append(helper.make_node("Cast", [name], [casts[(name, want)]], name=f"{name}__cast{want}",
                                                  to=want))
                node.input[position] = casts[(name, want)]
        if node.op_type == "Cast" and kind is not None:
            for attribute in node.attribute:
                if attribute.name == "to" and attribute.i == FLOAT:
                    attribute.i = kind
        nodes.append(node)
    return nodes


def _cast_outputs_to_fp32(graph: onnx.GraphProto, info: _Graph) -> None:
    """Graph outputs computed in the low type get a final Cast, keeping the caller's fp32 buffers."""
    from onnx import helper

    for output in graph.output:
        if info.computed.get(output.name, FLOAT) == FLOAT:
            continue
        inner = f"{output.name}__low"
        for node in graph.node:
            for field_name in ("input", "output"):
                names = getattr(node, field_name)
                for position, name in enumerate(names):
                    if name == output.name:
                        names[position] = inner
        graph.node.append(helper.make_node("Cast", [inner], [output.name], name=f"{output.name}__cast", to=FLOAT))
