"""Post-training INT8 quantization of one ONNX graph with NNCF, written as a QDQ ONNX graph.

Run as a script by path (`python int8_worker.py < request.json`), never imported by vs_sr: NNCF
is a heavy import (it pulls in PyTorch where installed) and calibration holds every sample's
activations, all of which should leave with the process; and it must not import vs_sr (whose
filter creates the VapourSynth core). It reads a JSON request on stdin, prints progress lines
(`step N/M what`) on stdout, and writes the graph to the requested path.

The output is ONNX (QuantizeLinear/DequantizeLinear pairs), not OpenVINO IR: the libopenvino a
VapourSynth process runs may be vs-mlrt's, which ships only the ONNX frontend, and OpenVINO
turns QDQ pairs into the same int8 kernels (measured: same speed as NNCF's IR).

Calibration is fixed and made of generic images (scikit-image's bundled photographs, cropped and
scaled to the tile shape at seeded positions, plus one synthetic tile spanning the full value
range), never the user's video: the same request always gives the same model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "colorwheel", "logo",
          "hubble_deep_field", "camera", "moon", "brick", "grass", "coins", "text")
SCALES = (1.0, 0.5, 0.75)


def step(index: int, total: int, what: str) -> None:
    print(f"step {index}/{total} {what}", flush=True)


def photo(name: str) -> np.ndarray:
    """A bundled photograph as HxWx3 uint8 RGB (grey replicated, RGBA on white)."""
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
    from PIL import Image

    rng = np.random.default_rng(seed)
    samples = [full_range_tile(height, width)]
    index = 0
    while len(samples) < count:
        image = photo(PHOTOS[index % len(PHOTOS)])
        factor = max(SCALES[(index // len(PHOTOS)) % len(SCALES)], height / image.shape[0], width / image.shape[1])
        if factor != 1.0:
            size = (max(width, round(image.shape[1] * factor)), max(height, round(image.shape[0] * factor)))
            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
        y = int(rng.integers(0, image.shape[0] - height + 1))
        x = int(rng.integers(0, image.shape[1] - width + 1))
        crop = image[y:y + height, x:x + width]
        samples.append(np.ascontiguousarray(crop.transpose(2, 0, 1)[None].astype(np.float32) / 255))
        index += 1
    return samples


PASS_THROUGH = ("Identity", "Slice")  # ops between a network's last Add and its output (crop, naming)


def final_residual_adds(model: onnx.ModelProto) -> list[str]:
    """The Add nodes that make a network's output from two computed tensors: its global skip
    connection (the upsampled input added to the network's output), which quantized clips
    highlights. Constants and shapes are not computed; the graph input is."""
    producers = {output: node for node in model.graph.node for output in node.output}
    constants = {t.name for t in model.graph.initializer}
    inputs = {i.name for i in model.graph.input}

    def computed(name: str) -> bool:
        stack, seen = [name], set()
        while stack:
            tensor = stack.pop()
            if tensor in inputs:
                return True
            node = producers.get(tensor)
            if tensor in constants or node is None or tensor in seen or node.op_type in ("Constant", "Shape"):
                continue
            seen.add(tensor)
            stack.extend(i for i in node.input if i)
        return False

    names = []
    for output in model.graph.output:
        node = producers.get(output.name)
        while node is not None and node.op_type in PASS_THROUGH:
            node = producers.get(node.input[0])
        if node is not None and node.op_type == "Add" and all(computed(i) for i in node.input):
            names.append(node.name)
    return names


def quantize(request: dict[str, Any]) -> None:  # the JSON request main() reads
    import nncf
    import onnx
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    height, width = request["height"], request["width"]
    step(1, 4, "making the calibration images")
    samples = calibration(height, width, request["samples"], request["seed"])
    step(2, 4, "reading the network")
    model = onnx.load(request["onnx"])
    input_name = model.graph.input[0].name
    ignored = final_residual_adds(model) if request["float_final_add"] else []
    advanced = AdvancedQuantizationParameters(
        activations_range_estimator_params=getattr(RangeEstimatorParametersSet, request["ranges"].upper()),
        smooth_quant_alphas=AdvancedSmoothQuantParameters(convolution=request["smooth_quant"], matmul=-1),
    )
    step(3, 4, f"calibrating on {len(samples)} images")
    quantized = nncf.quantize(
        model, nncf.Dataset([{input_name: sample} for sample in samples]), preset=nncf.QuantizationPreset(request["preset"]),
        subset_size=len(samples),
        # SmoothQuant runs only for transformer-type models in NNCF; its convolution alpha is what
        # moves activation outliers into the weights here.
        model_type=nncf.ModelType.TRANSFORMER if request["smooth_quant"] >= 0 else None,
        ignored_scope=nncf.IgnoredScope(names=ignored) if ignored else None,
        advanced_parameters=advanced,
    )
    step(4, 4, "writing the model")
    onnx.save(quantized, request["output"])


def main() -> int:
    request = json.load(sys.stdin)
    try:
        quantize(request)
    except ImportError as error:
        print(f"error: precision='int8' needs NNCF and scikit-image: pip install 'vs_sr[int8]' ({error.name} "
              "is missing)", flush=True)
        return 3
    if not Path(request["output"]).is_file():
        print("error: NNCF wrote no model", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
