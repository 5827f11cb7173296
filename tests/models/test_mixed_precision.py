"""The fp16/bf16 ONNX graphs TensorRT builds strongly typed engines from: types where the
precision policy puts them, numbers close to fp32, and fp32 islands that stop real overflow.

Reduced-precision arithmetic is run by ONNX's own reference implementation (numpy per-op fp16/bf16
rounding) and by OpenVINO with an fp32 inference hint (which honours the graph's Casts and low
weights); TensorRT itself cannot run here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from conftest import photo, psnr
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from vs_sr.backends.openvino.capi import Core
from vs_sr.models import resolve
from vs_sr.models.architectures import TRANSFORMER_POLICY
from vs_sr.models.mixed_precision import lower_precision, mixed_precision_onnx
from vs_sr.models.onnx_export import export_onnx
from vs_sr.models.onnx_graph import fp32_island_nodes, tensorrt_problems

LOW = {"fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}
# Each rounds differently: bf16 keeps 8 significant bits, fp16 11.
MIN_PSNR = {"fp16": 60.0, "bf16": 45.0}


def tensor_types(path: Path) -> dict[str, int]:
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output, *graph.value_info]}
    types.update({i.name: i.data_type for i in graph.initializer})
    return types


def fp32_output(path: Path, image: np.ndarray) -> np.ndarray:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": image})[0]


def openvino_output(path: Path, image: np.ndarray) -> np.ndarray:
    request = Core().compile(path, image.shape, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).infer_request()
    return request.infer(image).copy()  # the result lives in the request's buffer


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_conv_net_runs_in_the_low_type_close_to_fp32(ncnn_models, precision):
    network = resolve("realesr-animevideov3", 4)
    source = export_onnx(network, 1, 32, 48)
    path = mixed_precision_onnx(source, precision, network.traits.precision)
    assert path != source and path.name.endswith(f"-{precision}-mixed-r1.onnx")
    assert mixed_precision_onnx(source, precision, network.traits.precision) == path  # cached
    graph = onnx.load(str(path)).graph
    types = tensor_types(path)
    assert [types[v.name] for v in (*graph.input, *graph.output)] == [TensorProto.FLOAT, TensorProto.FLOAT]
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert convs and all(types[name] == LOW[precision] for n in convs for name in n.input)
    assert {i.data_type for i in graph.initializer if i.name in {n.input[1] for n in convs}} == {LOW[precision]}
    assert tensorrt_problems(path) == []
    if precision == "fp16":  # opset 17 lists bf16 for fewer ops than TensorRT takes it for
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    image = photo(32, 48)[None]
    reference = fp32_output(source, image)
    low = ReferenceEvaluator(str(path)).run(None, {"input": image})[0].astype(np.float32)
    assert MIN_PSNR[precision] < psnr(low, reference) < 100  # rounded, but only just
    assert psnr(openvino_output(path, image), reference) > MIN_PSNR[precision]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_hat_keeps_its_islands_in_fp32_and_the_rest_low(hat_s_pth, precision):
    network = resolve(hat_s_pth, 4)
    source = export_onnx(network, 1, 32, 48)
    policy = network.traits.precision
    islands = set(fp32_island_nodes(source, policy.fp32_ops, policy.fp32_attention))
    path = mixed_precision_onnx(source, precision, policy)
    types = tensor_types(path)
    nodes = onnx.load(str(path)).graph.node
    for node in nodes:
        floats = [types[name] for name in [*node.input, *node.output] if types.get(name) in (1, 10, 16)]
        if node.name in islands:
            assert set(floats) == {TensorProto.FLOAT}, node.name
        elif node.op_type == "Conv" or (node.op_type == "MatMul" and node.name not in islands):
            assert set(floats) == {LOW[precision]}, node.name
    assert sum(n.name in islands for n in nodes) == 86 + 42 + 84
    # Attention scores plus the position bias and mask reach the softmax without leaving fp32.
    producers = {out: n for n in nodes for out in n.output}
    for softmax in (n for n in nodes if n.op_type == "Softmax"):
        assert producers[softmax.input[0]].op_type != "Cast"
    assert tensorrt_problems(path) == []
    image = photo(32, 48)[None]
    assert psnr(openvino_output(path, image), fp32_output(source, image)) > MIN_PSNR[precision]


def attention_graph() -> onnx.ModelProto:
    """Scaled self-attention over 8 tokens whose scores exceed fp16's range (~320000 > 65504)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Mul", ["r", "gain"], ["q"], name="gain"),
        helper.make_node("Transpose", ["q"], ["kt"], name="kt", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"], name="qk"),
        helper.make_node("Softmax", ["scores"], ["attention"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["attention", "q"], ["mixed"], name="av"),
        helper.make_node("Mul", ["mixed", "inverse_gain"], ["y"], name="ungain"),
    ]
    graph = helper.make_graph(
        nodes, "attention", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8])],
        [helper.make_tensor("gain", TensorProto.FLOAT, [], [200.0]),
         helper.make_tensor("inverse_gain", TensorProto.FLOAT, [], [1 / 200.0])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value encountered:RuntimeWarning")
def test_fp32_islands_stop_fp16_overflow(tmp_path):
    model = attention_graph()
    path = tmp_path / "attention.onnx"
    onnx.save(model, str(path))
    islands = set(fp32_island_nodes(path, TRANSFORMER_POLICY.fp32_ops, TRANSFORMER_POLICY.fp32_attention))
    assert islands == {"qk", "softmax", "av"}
    x = np.random.default_rng(0).uniform(0, 1, (1, 8, 8)).astype(np.float32)
    exact = ReferenceEvaluator(model).run(None, {"x": x})[0]
    plain = ReferenceEvaluator(lower_precision(model, "fp16", set())).run(None, {"x": x})[0]
    kept = ReferenceEvaluator(lower_precision(model, "fp16", islands)).run(None, {"x": x})[0]
    assert not np.isfinite(plain).all()  # Q.K^T overflowed to inf, softmax made NaN of it
    assert np.isfinite(kept).all() and psnr(kept, exact) > 50


def test_control_flow_is_refused_with_a_way_out():
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "b", [],
                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    graph = helper.make_graph([helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)], "g",
                              [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                               helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    with pytest.raises(Exception, match=r"control flow .* use precision='fp32'"):
        lower_precision(helper.make_model(graph), "fp16", set())


def test_profile_export_rewrites_and_runs_at_several_sizes(ncnn_models):
    network = resolve("realesr-animevideov3", 4)
    path = mixed_precision_onnx(export_onnx(network, 1, 64, 64, dynamic=True), "fp16", network.traits.precision)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for height, width in ((32, 48), (40, 24)):
        image = photo(height, width)[None]
        out = session.run(None, {"input": image})[0]
        assert out.dtype == np.float32 and out.shape == (1, 3, 4 * height, 4 * width)
        assert psnr(out, fp32_output(export_onnx(network, 1, height, width), image)) > MIN_PSNR["fp16"]


@pytest.mark.parametrize("name,scale,dynamic", [("realcugan", 2, False), ("realcugan", 4, True),
                                                ("waifu2x-cunet", 2, True), ("waifu2x-photo", 2, False)])
def test_imported_ncnn_graphs_lower_to_fp16_for_tensorrt(name, scale, dynamic):
    """The graphs TensorRT would build Real-CUGAN and waifu2x engines from: fp16 convolutions, the
    framing's integer shape arithmetic untouched, only operators TensorRT parses, close to fp32."""
    network = resolve(name, scale)
    source = export_onnx(network, 1, 36, 44, dynamic=dynamic)
    path = export_onnx(network, 1, 36, 44, "fp16", dynamic=dynamic)
    assert path != source and tensorrt_problems(source) == tensorrt_problems(path) == []
    types = tensor_types(path)
    convs = [n for n in onnx.load(str(path)).graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert convs and all(types[n.input[1]] == TensorProto.FLOAT16 for n in convs)
    image = photo(36, 44)[None]
    assert psnr(openvino_output(path, image), fp32_output(source, image)) > MIN_PSNR["fp16"]
