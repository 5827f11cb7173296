"""Post-training int8 quantization of a Real-ESRGAN Compact graph (Conv -> PRelu chains), written
as a QDQ ONNX graph that OpenVINO's CPU plugin runs on int8 kernels (AMX, VNNI, AVX2).

Run as a script by path (`python int8_worker.py < request.json`), never imported by vs_sr: the
calibration holds every image's activations, which should leave with the process, and it must
not import vs_sr (whose filter creates the VapourSynth core). It reads a JSON request on stdin,
prints progress lines (`step N/M what`) on stdout, and writes the graph to the requested path.
Needs numpy, onnx and onnxruntime (vs_sr's base) and scikit-image + pillow (the photographs).

The recipe (docs/benchmarks.md, "How the recipe was chosen"), in the form OpenVINO's
low-precision transformations fuse into int8 convolutions (symmetric activations: a zero point
sends it to slow fallback kernels; no extra nodes between PRelu and Conv):
1. Channel equalization folded into the weights (SmoothQuant's scale, alpha 0.5, without its
   Mul node): between conv k and conv k+1 channel c is divided by s_c = a_c^alpha / w_c^(1-alpha)
   (a_c: max |x_c| at conv k+1's input, w_c: max |W_k+1[:, c]|) in conv k's weights and bias and
   multiplied back into conv k+1's weights. PRelu(x / s) = PRelu(x) / s for s > 0, so the float
   network computes the same function.
2. Activations: int8, zero point 0, one scale per conv input: a quantile over the calibration
   images of each image's max |x|, / 127. The graph input (in [0, 1]) is uint8 with scale 1/255.
3. Weights: int8 per output channel, symmetric, rounded by GPTQ (each input column's rounding
   error pushed onto the columns not yet rounded, weighted by the inverse Hessian of the conv's
   im2col input patches): round-to-nearest alone limits the network to ~39-42 dB from fp32.
   The rounding also keeps every pair of neighbouring input channels (2k, 2k+1, same kernel tap)
   within PAIR_LIMIT, so that AVX2 CPUs without int8 dot-product units compute the graph as
   written (no saturated sums): their kernels multiply with vpmaddubsw, which adds the two u8 x s8
   products of such a pair in a saturating 16-bit sum, and the activations reach it as u8 (s8
   shifted by 128), so a pair of same-sign weights sums to up to 255 * (|q1| + |q2|). Each output
   channel's step is therefore at least its largest same-sign pair / (PAIR_LIMIT - 1), and GPTQ
   clips the second weight of a pair to what the first left. Unconstrained, the graph landed
   30-43 dB from fp32 on AVX2; constrained it is what VNNI and AMX (32-bit sums) compute, and
   -0.3 to +0.5 dB per frame (mean 0.0) from the unconstrained graph's exact output on 20 frames
   of photographs and a drawing (docs/benchmarks.md, "int8 on CPUs without VNNI").
4. Every conv is quantized; the upsampled skip input, the pixel shuffle and the global Add stay
   float (they read float tensors), so a 10-bit source is not rounded to 8 bits on the skip path.

One ONNX Runtime pass (fp32) collects everything: equalization rescales conv k+1's input by
1/s per channel, so its per-image maxima and its Hessian after equalization follow from the
unequalized ones exactly (max |x_c| / s_c; D H D with D = diag(1/s)).

Calibration is fixed and made of generic images (scikit-image's bundled photographs, cropped and
scaled to the calibration tile at seeded positions, plus one synthetic tile spanning the full value
range), never the user's video: the same request always gives the same model. The activation
scales do not depend on the tile's shape, so one quantized graph (its height and width left open)
serves every tile shape.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "colorwheel", "logo",
          "hubble_deep_field", "camera", "moon", "brick", "grass", "coins", "text")
SCALES = (1.0, 0.5, 0.75)
STEPS = 4
LEVELS = 127  # symmetric int8 weights
PAIR_LIMIT = 128  # 255 * 128 = 32640 <= 32767, the largest 16-bit sum


def step(index: int, what: str) -> None:
    print(f"step {index}/{STEPS} {what}", flush=True)


# -- calibration images ---------------------------------------------------------------------------
@functools.cache
def scaled_photo(name: str, factor: float, height: int, width: int) -> np.ndarray:
    """photo(name) scaled by `factor` (bicubic), at least height x width; made once per process."""
    image = photo(name)
    if factor == 1.0:
        return image
    from PIL import Image

    size = (max(width, round(image.shape[1] * factor)), max(height, round(image.shape[0] * factor)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


@functools.cache
def photo(name: str) -> np.ndarray:
    """A bundled photograph as HxWx3 uint8 RGB (grey replicated, RGBA on white), decoded once."""
    from skimage import data

    image = getattr(data, name)()
    image = np.asarray(image[0] if isinstance(image, tuple) else image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[..., 3:4].astype(np.float32) / 255
        image = (image[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(image)


def full_range_tile(height: int, width: int) -> np.ndarray:
    """Black, white and saturated primaries over ramps: the input quantizer must span [0, 1]."""
    tile = np.zeros((height, width, 3), np.float32)
    bars = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0]], np.float32)
    tile[: height // 2] = bars[(np.arange(width) * len(bars)) // width][None]
    tile[height // 2:] = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    return np.ascontiguousarray(tile.transpose(2, 0, 1)[None])


def calibration(height: int, width: int, count: int, seed: int) -> list[np.ndarray]:
    """`count` tiles (1, 3, height, width) in [0, 1]: the full-range tile, then photographs."""
    rng = np.random.default_rng(seed)
    samples = [full_range_tile(height, width)]
    index = 0
    while len(samples) < count:
        name = PHOTOS[index % len(PHOTOS)]
        whole = photo(name)
        factor = max(SCALES[(index // len(PHOTOS)) % len(SCALES)], height / whole.shape[0], width / whole.shape[1])
        image = scaled_photo(name, factor, height, width)
        y = int(rng.integers(0, image.shape[0] - height + 1))
        x = int(rng.integers(0, image.shape[1] - width + 1))
        crop = image[y:y + height, x:x + width]
        samples.append(np.ascontiguousarray(crop.transpose(2, 0, 1)[None].astype(np.float32) / 255))
        index += 1
    return samples


# -- the graph --------------------------------------------------------------------------------------
class Chain:
    """A copy of the graph, its convolutions in order and the PRelu after each."""

    def __init__(self, model: onnx.ModelProto) -> None:
        import onnx

        self.model: onnx.ModelProto = onnx.ModelProto.FromString(model.SerializeToString())
        consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.model.graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node)
        self.convs = [node for node in self.model.graph.node if node.op_type == "Conv"]
        self.prelus: list[onnx.NodeProto | None] = []
        for conv in self.convs:
            users = consumers.get(conv.output[0], [])
            self.prelus.append(users[0] if len(users) == 1 and users[0].op_type == "PRelu" else None)
        self.input = self.model.graph.input[0].name
        self._initializers = {t.name: t for t in self.model.graph.initializer}
        self._readers = {name: len(nodes) for name, nodes in consumers.items()}

    def get(self, name: str) -> np.ndarray:
        from onnx import numpy_helper

        return numpy_helper.to_array(self._initializers[name])

    def set(self, name: str, value: np.ndarray) -> None:
        from onnx import numpy_helper

        old = self._initializers[name]
        old.CopyFrom(numpy_helper.from_array(value.astype(numpy_helper.to_array(old).dtype), name))

    def weights(self, k: int) -> np.ndarray:
        return self.get(self.convs[k].input[1])

    def feeds_next(self, k: int) -> bool:
        """Whether conv k+1, and nothing else, reads conv k's PRelu output (a pair channel
        equalization may scale: no other reader sees the scaled channels)."""
        prelu = self.prelus[k]
        return (k + 1 < len(self.convs) and prelu is not None and self.convs[k + 1].input[0] == prelu.output[0]
                and self._readers.get(prelu.output[0]) == 1)


# -- one calibration pass ---------------------------------------------------------------------------
@dataclass
class Statistics:
    """Of every conv's float input, over the calibration images."""

    channel_max: list[np.ndarray]
    """(images, channels): max |x| of each channel in each image."""
    hessians: list[np.ndarray]
    """sum of p p^T over sampled im2col patches p, in the weights' (channel, ky, kx) order."""


def conv_inputs(chain: Chain, samples: list[np.ndarray]) -> Iterator[list[np.ndarray]]:
    """Per image, every conv's float input (1, C, H, W), computed by ONNX Runtime in fp32."""
    import onnx
    import onnxruntime as ort

    names = [conv.input[0] for conv in chain.convs]
    inner = [name for name in dict.fromkeys(names) if name != chain.input]
    model = onnx.ModelProto.FromString(chain.model.SerializeToString())
    model.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in inner)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for sample in samples:
        values = dict(zip(inner, session.run(inner, {chain.input: sample}), strict=True))
        yield [sample if name == chain.input else values[name] for name in names]


def patch_hessian(x: np.ndarray, kernel: tuple[int, int], rng: np.random.Generator, positions: int) -> np.ndarray:
    """sum p p^T over the im2col patches p of `x` (C, H, W) at `positions` random pixels."""
    kh, kw = kernel
    padded = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    ys, xs = rng.integers(0, x.shape[1], positions), rng.integers(0, x.shape[2], positions)
    patches = np.stack([padded[:, ys + dy, xs + dx] for dy in range(kh) for dx in range(kw)], axis=1)
    p = patches.reshape(-1, positions)
    hessian: np.ndarray = (p @ p.T).astype(np.float64)
    return hessian


def collect(chain: Chain, samples: list[np.ndarray], positions: int, seed: int,
            progress: Callable[[int], None]) -> Statistics:
    rng = np.random.default_rng(seed)
    kernels = [tuple(chain.weights(k).shape[2:]) for k in range(len(chain.convs))]
    maxima: list[list[np.ndarray]] = [[] for _ in chain.convs]
    hessians: list[np.ndarray] = []
    for index, inputs in enumerate(conv_inputs(chain, samples)):
        for k, x in enumerate(inputs):
            maxima[k].append(np.abs(x[0]).reshape(x.shape[1], -1).max(axis=1))
            hessian = patch_hessian(x[0], (int(kernels[k][0]), int(kernels[k][1])), rng, positions)
            if index == 0:
                hessians.append(hessian)
            else:
                hessians[k] += hessian
        progress(index + 1)
    return Statistics([np.stack(m) for m in maxima], hessians)


# -- the recipe -------------------------------------------------------------------------------------
def equalize(chain: Chain, channel_max: list[np.ndarray], alpha: float) -> list[np.ndarray]:
    """Step 1, in place. Returns, per conv, the factor each input channel was multiplied by.

    Swept from the last pair to the first, so each w_c is read after conv k+1's own output rows
    were rescaled; a_c at conv k+1's input is changed by pair k only."""
    factors = [np.ones(chain.weights(k).shape[1]) for k in range(len(chain.convs))]
    for k in reversed(range(len(chain.convs) - 1)):
        if not chain.feeds_next(k):
            continue
        conv, following = chain.convs[k], chain.convs[k + 1]
        w_next = chain.get(following.input[1])
        w_c = np.maximum(np.abs(w_next).max(axis=(0, 2, 3)), 1e-8)
        a_c = np.maximum(channel_max[k + 1].max(axis=0), 1e-8)
        s = a_c**alpha / w_c ** (1 - alpha)
        s = s / np.exp(np.mean(np.log(s)))  # geometric mean 1: the weights keep their magnitude
        chain.set(conv.input[1], chain.get(conv.input[1]) / s[:, None, None, None])
        if len(conv.input) > 2:
            chain.set(conv.input[2], chain.get(conv.input[2]) / s)
        chain.set(following.input[1], w_next * s[None, :, None, None])
        factors[k + 1] = 1 / s
    return factors


def activation_threshold(channel_max: np.ndarray, factor: np.ndarray, quantile: float) -> float:
    """Step 2: the range of one conv's (equalized) input: `quantile` of the per-image max |x|."""
    return float(np.quantile((channel_max * factor[None, :]).max(axis=1), quantile))


def pair_sums(w: np.ndarray) -> np.ndarray:
    """(out, in/2, taps): the magnitude a pair of neighbouring input channels' weights adds up to
    at one tap where the activations are largest (their sum when the signs agree, else the larger)."""
    out, inputs = w.shape[:2]
    per_tap = w.reshape(out, inputs, -1)
    if inputs % 2:
        per_tap = np.concatenate([per_tap, np.zeros_like(per_tap[:, :1])], axis=1)
    first, second = np.abs(per_tap[:, 0::2]), np.abs(per_tap[:, 1::2])
    same_sign = np.sign(per_tap[:, 0::2]) == np.sign(per_tap[:, 1::2])
    return np.where(same_sign, first + second, np.maximum(first, second))


def gptq(w: np.ndarray, hessian: np.ndarray, damp: float) -> tuple[np.ndarray, np.ndarray]:
    """Step 3 for one conv (Frantar et al. 2022): int8 weights and per-output-channel scales, each
    pair of neighbouring input channels within PAIR_LIMIT (the module's docstring says why)."""
    W = w.reshape(w.shape[0], -1).astype(np.float64)
    taps = w.shape[2] * w.shape[3]
    H = hessian.copy()
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0  # (inputs that are always zero: before the steps, so that they widen none)
    pair_step = pair_sums(W.reshape(w.shape)).reshape(w.shape[0], -1).max(axis=1) / (PAIR_LIMIT - 1)
    scale = np.maximum(np.maximum(np.abs(W).max(axis=1) / LEVELS, pair_step), 1e-12)
    H += damp * np.mean(np.diag(H)) * np.eye(H.shape[0])
    U = np.linalg.cholesky(np.linalg.inv(H)).T  # upper Cholesky factor of H^-1
    Q = np.zeros_like(W)
    for i in range(W.shape[1]):
        q = np.clip(np.round(W[:, i] / scale), -LEVELS, LEVELS)
        if (i // taps) % 2:  # the pair's first weight is rounded already: keep their sum in bounds
            first = Q[:, i - taps]
            room = PAIR_LIMIT - np.abs(first)
            q = np.where(np.sign(q) == np.sign(first), np.clip(q, -room, room), q)
        Q[:, i] = q
        error = (W[:, i] - q * scale) / U[i, i]
        W[:, i + 1:] -= np.outer(error, U[i, i + 1:])
    return Q.reshape(w.shape).astype(np.int8), scale.astype(np.float32)


def round_weights(chain: Chain, stats: Statistics, factors: list[np.ndarray], damp: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Step 3 for every conv, with each Hessian moved to the equalized input (D H D)."""
    rounded = []
    for k, hessian in enumerate(stats.hessians):
        w = chain.weights(k)
        d = np.repeat(factors[k], w.shape[2] * w.shape[3])
        rounded.append(gptq(w, hessian * d[:, None] * d[None, :], damp))
    return rounded


# -- the QDQ graph ----------------------------------------------------------------------------------
def quantized_conv(chain: Chain, node: onnx.NodeProto, threshold: float, weights: tuple[np.ndarray, np.ndarray]
                   ) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """QuantizeLinear/DequantizeLinear on the conv's input, its int8 weights behind a per-axis
    DequantizeLinear, the float bias as it was."""
    from onnx import helper, numpy_helper

    x, n = node.input[0], node.name
    scale, zero = ((np.float32(1 / 255), np.uint8(0)) if x == chain.input else (np.float32(threshold / 127), np.int8(0)))
    wq, ws = weights
    initializers = [numpy_helper.from_array(np.array(scale), f"{n}_x_scale"),
                    numpy_helper.from_array(np.array(zero), f"{n}_x_zero"),
                    numpy_helper.from_array(wq, f"{n}_w_int8"), numpy_helper.from_array(ws, f"{n}_w_scale"),
                    numpy_helper.from_array(np.zeros(len(ws), np.int8), f"{n}_w_zero")]
    nodes = [
        helper.make_node("QuantizeLinear", [x, f"{n}_x_scale", f"{n}_x_zero"], [f"{n}_x_q"], name=f"{n}_x_Q"),
        helper.make_node("DequantizeLinear", [f"{n}_x_q", f"{n}_x_scale", f"{n}_x_zero"], [f"{n}_x_dq"],
                         name=f"{n}_x_DQ"),
        helper.make_node("DequantizeLinear", [f"{n}_w_int8", f"{n}_w_scale", f"{n}_w_zero"], [f"{n}_w_dq"],
                         name=f"{n}_w_DQ", axis=0),
        helper.make_node("Conv", [f"{n}_x_dq", f"{n}_w_dq", *node.input[2:]], list(node.output), name=n,
                         **{a.name: helper.get_attribute_value(a) for a in node.attribute}),
    ]
    return nodes, initializers


def write_qdq(chain: Chain, thresholds: list[float], weights: list[tuple[np.ndarray, np.ndarray]]) -> onnx.ModelProto:
    """Steps 2-3 into the graph; the float weights the convs no longer read are dropped."""
    graph = chain.model.graph
    nodes: list[onnx.NodeProto] = []
    added: list[onnx.TensorProto] = []
    for node in graph.node:
        if node.op_type != "Conv":
            nodes.append(node)
            continue
        k = chain.convs.index(node)
        conv_nodes, initializers = quantized_conv(chain, node, thresholds[k], weights[k])
        nodes += conv_nodes
        added += initializers
    used = {name for node in nodes for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.node[:], graph.initializer[:]
    graph.node.extend(nodes)
    graph.initializer.extend(kept + added)
    for opset in chain.model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version < 13:
            opset.version = 13  # per-axis DequantizeLinear
    return chain.model


def quantize(request: dict[str, Any]) -> None:  # the JSON request main() reads
    import onnx

    height, width = request["tile"]
    count = request["samples"]
    step(1, f"making {count} calibration images of {width}x{height}")
    samples = calibration(height, width, count, request["seed"])
    chain = Chain(onnx.load(request["onnx"]))
    if not chain.convs:
        raise ValueError("the graph has no convolutions")
    quarter = max(1, count // 4)
    step(2, f"calibrating on {count} images")
    stats = collect(chain, samples, request["positions"], request["seed"],
                    lambda done: step(2, f"calibrating: {done} of {count} images") if done % quarter == 0 else None)
    factors = equalize(chain, stats.channel_max, request["alpha"])
    thresholds = [activation_threshold(m, f, request["tile_quantile"]) for m, f in zip(stats.channel_max, factors,
                                                                                      strict=True)]
    step(3, "rounding the weights (GPTQ)")
    weights = round_weights(chain, stats, factors, request["damp"])
    step(4, "writing the model")
    onnx.save(write_qdq(chain, thresholds, weights), request["output"])


def main() -> int:
    request = json.load(sys.stdin)
    try:
        quantize(request)
    except ImportError as error:
        print(f"error: precision='int8' needs scikit-image and pillow: pip install 'vs_sr[int8]' ({error.name} "
              "is missing)", flush=True)
        return 3
    output = Path(request["output"])
    if not (output.is_file() and output.stat().st_size):  # (the caller made the file: empty until written)
        print("error: the quantizer wrote no model", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
