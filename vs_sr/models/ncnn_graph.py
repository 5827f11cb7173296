"""An ncnn network as an ONNX graph (opset 17), written with onnx.helper: no PyTorch involved.

Every blob becomes an NCHW tensor. ncnn's 1-D blobs (the results of global pooling and of
InnerProduct: the statistics of squeeze-and-excitation blocks) are carried as (N, C, 1, 1), so
that ncnn's per-channel broadcasting of a 1-D blob over a 3-D one is plain ONNX broadcasting.
The graph's input `input` is an unpadded RGB tile (N, 3, H, W) in [0, 1]; its output `output`
is (N, 3, scale*H, scale*W), with the model's `Framing` (padding, alignment, crop, residual)
inside. With a known tile shape the framing is constants; without one (TensorRT profiles) it is
computed from the input's shape at run time.

Each layer type is one small emitter; the parameter ids and defaults are ncnn's own (its
docs/developer-guide/operators.md and src/layer/*.cpp). Parameters this importer does not
handle are refused by name rather than guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SRError
from .architectures import Framing
from .ncnn_format import Layer, NcnnNetwork

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "output"
TO_END = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Blob:
    """An ONNX tensor standing for an ncnn blob; `vector` for ncnn's 1-D blobs, held as (N, C, 1, 1)."""

    name: str
    vector: bool = False


class GraphBuilder:
    """Collects nodes and initialisers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def _name(self, base: str) -> str:
        self._count += 1
        return f"{base}_{self._count}"

    def const(self, value: Any, base: str = "const", dtype: Any = None) -> str:
        from onnx import numpy_helper

        array = np.asarray(value, dtype=dtype)
        array = array.astype(np.float32) if array.dtype == np.float64 else array
        name = self._name(base)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def ints(self, *values: int) -> str:
        return self.const(np.array(values, np.int64), "ints")

    def node(self, op: str, inputs: list[str], name: str = "", output: str | None = None, **attributes: Any) -> str:
        from onnx import helper

        output = output or self._name(f"{name or op.lower()}_out")
        self.nodes.append(helper.make_node(op, inputs, [output], name=self._name(name or op), **attributes))
        return output


def unsupported(layer: Layer, what: str) -> SRError:
    return SRError(f"ncnn layer {layer.name} ({layer.kind}): {what} is not supported by vs_sr's importer.")


# Fused activations of Convolution/Deconvolution/InnerProduct (ncnn src/layer/fused_activation.h).
def activation(g: GraphBuilder, layer: Layer, x: str) -> str:
    kind, params = layer.integer(9), layer.array(10)
    if kind == 0:
        return x
    if kind == 1:
        return g.node("Relu", [x], layer.name + "_relu")
    if kind == 2:
        return g.node("LeakyRelu", [x], layer.name + "_leaky", alpha=float(params[0]))
    if kind == 3:
        low, high = (g.const(np.float32(v)) for v in params[:2])
        return g.node("Clip", [x, low, high], layer.name + "_clip")
    if kind == 4:
        return g.node("Sigmoid", [x], layer.name + "_sigmoid")
    raise unsupported(layer, f"fused activation type {kind}")


def kernel_geometry(layer: Layer) -> dict[str, Any]:
    """Kernel, dilation, stride and pads of Convolution/Deconvolution (ncnn's ids and defaults)."""
    kw = layer.integer(1)
    dw, sw = layer.integer(2, 1), layer.integer(3, 1)
    left = layer.integer(4)
    right, top = layer.integer(15, left), layer.integer(14, left)
    bottom = layer.integer(16, top)
    if min(left, right, top, bottom) < 0:
        raise unsupported(layer, "automatic (SAME) padding")
    return dict(kernel_shape=[layer.integer(11, kw), kw], dilations=[layer.integer(12, dw), dw],
                strides=[layer.integer(13, sw), sw], pads=[top, left, bottom, right])


def convolution(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    if layer.integer(8) or layer.integer(19):
        raise unsupported(layer, "int8 or dynamic weights")
    if layer.real(18) != 0.0:
        raise unsupported(layer, "a non-zero pad value")
    geometry = kernel_geometry(layer)
    kh, kw = geometry["kernel_shape"]
    weight = layer.data["weight"].reshape(layer.integer(0), -1, kh, kw)
    operands = [inputs[0].name, g.const(weight, layer.name + "_weight")]
    if "bias" in layer.data:
        operands.append(g.const(layer.data["bias"], layer.name + "_bias"))
    return Blob(activation(g, layer, g.node("Conv", operands, layer.name, **geometry)))


def deconvolution(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    if layer.integer(20) or layer.integer(21):
        raise unsupported(layer, "a fixed output size")
    geometry = kernel_geometry(layer)
    kh, kw = geometry["kernel_shape"]
    # ncnn stores (out, in, kh, kw); ONNX ConvTranspose wants (in, out, kh, kw). Neither flips the kernel.
    weight = layer.data["weight"].reshape(layer.integer(0), -1, kh, kw).transpose(1, 0, 2, 3)
    operands = [inputs[0].name, g.const(np.ascontiguousarray(weight), layer.name + "_weight")]
    if "bias" in layer.data:
        operands.append(g.const(layer.data["bias"], layer.name + "_bias"))
    right = layer.integer(18)
    if right or layer.integer(19):
        geometry["output_padding"] = [layer.integer(19, right), right]
    return Blob(activation(g, layer, g.node("ConvTranspose", operands, layer.name, **geometry)))


def inner_product(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    """A fully connected layer on the flattened blob: a 1x1 convolution over (N, C*H*W, 1, 1)."""
    if layer.integer(8):
        raise unsupported(layer, "int8 weights")
    x = inputs[0].name if inputs[0].vector else g.node("Reshape", [inputs[0].name, g.ints(0, -1, 1, 1)])
    weight = layer.data["weight"].reshape(layer.integer(0), -1, 1, 1)
    operands = [x, g.const(weight, layer.name + "_weight")]
    if "bias" in layer.data:
        operands.append(g.const(layer.data["bias"], layer.name + "_bias"))
    return Blob(activation(g, layer, g.node("Conv", operands, layer.name, kernel_shape=[1, 1])), vector=True)


def pooling(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    kind = {0: "Max", 1: "Average"}.get(layer.integer(0))
    if kind is None or layer.integer(7):
        raise unsupported(layer, "this pooling type (only max/average, not adaptive)")
    if layer.integer(4):
        return Blob(g.node(f"Global{kind}Pool", [inputs[0].name], layer.name), vector=True)
    kw = layer.integer(1)
    left = layer.integer(3)
    pads = [layer.integer(13, left), left, layer.integer(15, layer.integer(13, left)), layer.integer(14, left)]
    if layer.integer(5) != 1 or (kind == "Average" and any(pads)):
        raise unsupported(layer, "pooling other than 'valid' (pad_mode=1; max pooling may pad)")
    sw = layer.integer(2, 1)
    return Blob(g.node(f"{kind}Pool", [inputs[0].name], layer.name, kernel_shape=[layer.integer(11, kw), kw],
                       strides=[layer.integer(12, sw), sw], pads=pads))


BINARY_OPS = {0: "Add", 1: "Sub", 2: "Mul", 3: "Div", 4: "Max", 5: "Min", 6: "Pow", 7: "Sub", 8: "Div"}


def binary_op(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    op = layer.integer(0)
    if op not in BINARY_OPS:
        raise unsupported(layer, f"operation type {op}")
    a = inputs[0]
    b = Blob(g.const(np.float32(layer.real(2))), vector=True) if layer.integer(1) else inputs[1]
    first, second = (b, a) if op in (7, 8) else (a, b)  # rsub, rdiv: b - a, b / a
    return Blob(g.node(BINARY_OPS[op], [first.name, second.name], layer.name), vector=a.vector and b.vector)


def eltwise(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    op = {0: "Mul", 1: "Add", 2: "Max"}.get(layer.integer(0))
    if op is None:
        raise unsupported(layer, f"operation type {layer.integer(0)}")
    coefficients = layer.array(1) if op == "Add" else ()
    terms = [blob.name for blob in inputs]
    if coefficients:
        terms = [t if float(c) == 1.0 else g.node("Mul", [t, g.const(np.float32(c))]) for t, c in
                 zip(terms, coefficients, strict=True)]
    result = terms[0]
    for term in terms[1:]:
        result = g.node(op, [result, term], layer.name)
    return Blob(result, vector=all(blob.vector for blob in inputs))


def scale(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    x = inputs[0].name
    if layer.integer(0) == -233:  # the per-channel scale is the second input
        return Blob(g.node("Mul", [x, inputs[1].name], layer.name), vector=inputs[0].vector)
    y = g.node("Mul", [x, g.const(layer.data["scale"].reshape(1, -1, 1, 1))], layer.name)
    if "bias" in layer.data:
        y = g.node("Add", [y, g.const(layer.data["bias"].reshape(1, -1, 1, 1))], layer.name + "_bias")
    return Blob(y, vector=inputs[0].vector)


def crop(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    x = inputs[0].name
    if len(inputs) == 2:  # to the reference blob's height and width, from (hoffset, woffset)
        if layer.integer(2) or layer.integer(0) == -233:
            raise unsupported(layer, "a channel offset or offsets read from a blob")
        offsets = g.ints(layer.integer(1), layer.integer(0))
        size = g.node("Slice", [g.node("Shape", [inputs[1].name]), g.ints(2), g.ints(4)])
        return Blob(g.node("Slice", [x, offsets, g.node("Add", [size, offsets]), g.ints(2, 3)], layer.name))
    starts, ends = layer.array(9), layer.array(10)
    if not starts or not ends:
        raise unsupported(layer, "cropping by offsets and sizes (only numpy-style starts/ends, or a reference blob)")
    axes = layer.array(11) or tuple(range(len(starts)))
    # ncnn's axes of a 3-D blob are (c, h, w): one more in NCHW. An end of 0 or -233 means "to the end".
    onnx_axes = [int(a) + 1 if int(a) >= 0 else int(a) for a in axes]
    onnx_starts = [0 if int(s) == -233 else int(s) for s in starts]
    onnx_ends = [TO_END if int(e) in (0, -233) else int(e) for e in ends]
    return Blob(g.node("Slice", [x, g.ints(*onnx_starts), g.ints(*onnx_ends), g.ints(*onnx_axes)], layer.name),
                vector=inputs[0].vector)


def pixel_shuffle(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    mode = "CRD" if layer.integer(1) == 0 else "DCR"  # mode 0 is PyTorch's pixel_shuffle
    return Blob(g.node("DepthToSpace", [inputs[0].name], layer.name, blocksize=layer.integer(0, 1), mode=mode))


def interp(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    """Nearest: ncnn's source pixel is floor(x / scale) (ONNX asymmetric + floor); bicubic:
    half-pixel centres with A = -0.75. The output size is int(side * scale), or given."""
    kind, align_corners = layer.integer(0), layer.integer(6)
    if kind == 1:
        attributes: dict[str, Any] = dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                                          nearest_mode="floor")
    elif kind == 3 and not align_corners:
        attributes = dict(mode="cubic", coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75)
    else:
        raise unsupported(layer, f"resize type {kind}{' with aligned corners' if align_corners else ''} "
                                 "(nearest and bicubic are)")
    x = inputs[0].name
    if len(inputs) == 2 or layer.integer(5):
        raise unsupported(layer, "a target size read from a blob")
    height, width = layer.integer(3), layer.integer(4)
    if height and width:
        batch_channels = g.node("Slice", [g.node("Shape", [x]), g.ints(0), g.ints(2)])
        sizes = g.node("Concat", [batch_channels, g.ints(height, width)], axis=0)
        return Blob(g.node("Resize", [x, "", "", sizes], layer.name, **attributes))
    factors = g.const(np.array([1, 1, layer.real(1, 1.0), layer.real(2, 1.0)], np.float32))
    return Blob(g.node("Resize", [x, "", factors], layer.name, **attributes))


def concat(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    axis = layer.integer(0)
    return Blob(g.node("Concat", [blob.name for blob in inputs], layer.name, axis=axis + 1 if axis >= 0 else axis))


def relu(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    slope = layer.real(0)
    if slope:
        return Blob(g.node("LeakyRelu", [inputs[0].name], layer.name, alpha=slope), inputs[0].vector)
    return Blob(g.node("Relu", [inputs[0].name], layer.name), inputs[0].vector)


def prelu(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    slope = layer.data["slope"]
    slope = slope.reshape(-1, 1, 1) if slope.size > 1 else slope.reshape(1)
    return Blob(g.node("PRelu", [inputs[0].name, g.const(slope, layer.name + "_slope")], layer.name), inputs[0].vector)


def sigmoid(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    return Blob(g.node("Sigmoid", [inputs[0].name], layer.name), inputs[0].vector)


def padding(g: GraphBuilder, layer: Layer, inputs: list[Blob]) -> Blob:
    top, bottom, left, right = (layer.integer(i) for i in range(4))
    mode = {0: "constant", 1: "edge", 2: "reflect"}.get(layer.integer(4))
    if mode is None or layer.integer(6) or layer.integer(7) or layer.integer(8):
        raise unsupported(layer, "this padding (only constant/replicate/reflect of height and width)")
    pads = g.ints(0, 0, top, left, 0, 0, bottom, right)
    operands = [inputs[0].name, pads] + ([g.const(np.float32(layer.real(5)))] if mode == "constant" else [])
    return Blob(g.node("Pad", operands, layer.name, mode=mode))


Emitter = Callable[[GraphBuilder, Layer, list[Blob]], Blob]
EMITTERS: dict[str, Emitter] = {
    "Convolution": convolution, "Deconvolution": deconvolution, "InnerProduct": inner_product, "Pooling": pooling,
    "BinaryOp": binary_op, "Eltwise": eltwise, "Scale": scale, "Crop": crop, "PixelShuffle": pixel_shuffle,
    "Interp": interp, "Concat": concat, "ReLU": relu, "PReLU": prelu, "Sigmoid": sigmoid, "Padding": padding,
}
SUPPORTED_LAYERS = ("Input", "Split", *EMITTERS)


def emit_layers(g: GraphBuilder, network: NcnnNetwork, image: str) -> str:
    """Nodes for every layer, fed `image` as the ncnn input blob; returns the output tensor."""
    blobs = {network.input: Blob(image)}
    for layer in network.layers:
        if layer.kind == "Input":
            continue
        try:
            inputs = [blobs[name] for name in layer.inputs]
        except KeyError as missing:
            raise SRError(f"ncnn layer {layer.name} reads blob {missing} before any layer writes it; "
                          "the .param file is damaged.") from None
        if layer.kind == "Split":  # fan-out: every output is the input
            blobs.update({name: inputs[0] for name in layer.outputs})
            continue
        emit = EMITTERS.get(layer.kind)
        if emit is None:
            raise SRError(f"ncnn layer type {layer.kind} ({layer.name}) is not supported by vs_sr's importer "
                          f"(it reads {', '.join(SUPPORTED_LAYERS)}).")
        blobs[layer.outputs[0]] = emit(g, layer, inputs)
    return blobs[network.output].name


def _side_pads(g: GraphBuilder, sides: str | tuple[int, int], framing: Framing) -> str:
    """Pad's `pads` input: `framing.pad` on every side, plus bottom/right up to the alignment."""
    pad, align = framing.pad, framing.align
    if isinstance(sides, tuple):
        height, width = sides
        return g.ints(0, 0, pad, pad, 0, 0, pad + (-height) % align, pad + (-width) % align)
    extra = g.node("Mod", [g.node("Neg", [sides]), g.ints(align)]) if align > 1 else g.ints(0, 0)
    bottom_right = g.node("Add", [extra, g.ints(pad)])
    return g.node("Concat", [g.ints(0, 0, pad, pad, 0, 0), bottom_right], axis=0)


def frame(g: GraphBuilder, network: NcnnNetwork, framing: Framing, scale: int,
          shape: tuple[int, int] | None) -> str:
    """The network inside its framing: pad -> network -> crop -> (+ residual); returns the output."""
    sides: str | tuple[int, int] = shape or g.node("Slice", [g.node("Shape", [INPUT_NAME]), g.ints(2), g.ints(4)])
    padded = INPUT_NAME
    if framing.pad or framing.align > 1:
        padded = g.node("Pad", [INPUT_NAME, _side_pads(g, sides, framing)], "framing_pad", mode=framing.mode)
    result = emit_layers(g, network, padded)
    start = framing.crop
    if isinstance(sides, tuple):
        ends = g.ints(start + scale * sides[0], start + scale * sides[1])
    else:
        ends = g.node("Add", [g.node("Mul", [sides, g.ints(scale)]), g.ints(start)])
    result = g.node("Slice", [result, g.ints(start, start), ends, g.ints(2, 3)], "framing_crop")
    if framing.residual:
        enlarged = g.node("Resize", [INPUT_NAME, "", g.const(np.array([1, 1, scale, scale], np.float32))],
                          "framing_nearest", mode="nearest", coordinate_transformation_mode="asymmetric",
                          nearest_mode="floor")
        result = g.node("Add", [result, enlarged], "framing_residual")
    return result


def to_onnx(network: NcnnNetwork, framing: Framing | None, scale: int, shape: tuple[int | None, int, int] | None,
            name: str = "ncnn") -> Any:
    """The ONNX model of `network` in its `framing`, for input (batch, 3, height, width) = `shape`
    (a batch of None stays open), or with batch, height and width left open when `shape` is None. `framing=None` gives the bare
    network: the input goes straight to ncnn's input blob, the output's size is the network's."""
    from onnx import TensorProto, checker, helper

    if network.channels != 3:
        raise SRError(f"{name} takes {network.channels} input channels; vs_sr runs RGB networks.")
    g = GraphBuilder()
    if framing is None:
        result = emit_layers(g, network, INPUT_NAME)
    else:
        result = frame(g, network, framing, scale, shape[1:] if shape else None)
    g.node("Identity", [result], "output", output=OUTPUT_NAME)
    batch, height, width = shape or ("N", "H", "W")
    batch = "N" if batch is None else batch
    known = shape is not None and framing is not None
    out_h, out_w = (shape[1] * scale, shape[2] * scale) if known and shape else ("outH", "outW")
    graph = helper.make_graph(
        g.nodes, name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch, 3, height, width])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [batch, 3, out_h, out_w])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="vs_sr ncnn import")
    model.ir_version = 8  # readable by every runtime vs_sr supports (ONNX Runtime, OpenVINO, TensorRT)
    checker.check_model(model)
    return model
