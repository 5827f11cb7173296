"""The one table of architecture facts: size multiple, minimum size, default tile and overlap,
memory per pixel, precision policy, whether tiles change the result, and the framing an imported
ncnn network runs in, keyed by architecture.

The registry, `.pth` detection, ncnn imports and ONNX-file networks all take their traits from
here, so no layer re-derives them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

Precision = Literal["fp32", "fp16", "bf16", "int8"]
PadMode = Literal["reflect", "edge"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16", "bf16", "int8")


@dataclass(frozen=True)
class Int8Recipe:
    """How a network is quantized to int8 (`models.int8_worker`: equalization, symmetric int8
    activations, GPTQ-rounded per-channel weights). Chosen by measurement: docs/benchmarks.md,
    "How the recipe was chosen"."""

    alpha: float = 0.5
    """Channel equalization strength (SmoothQuant's alpha), folded into the conv weights."""
    tile_quantile: float = 0.9
    """Each activation's range: this quantile over the calibration images of each image's max |x|
    (the maximum lets one bright image coarsen every step)."""
    positions: int = 256
    """im2col patches per calibration image for GPTQ's Hessians (1024 measured no better)."""
    damp: float = 0.01
    """GPTQ's dampening, relative to the Hessian's mean diagonal."""
    samples: int = 64
    """Calibration images (96 measured no better)."""
    tile: tuple[int, int] = (72, 88)
    """(height, width) of the calibration images: as good as 144x176 (measured) in a quarter of the
    time. The quantized graph serves every tile shape."""
    seed: int = 0
    version: int = 3
    """Bump when the calibration images or the worker change what they make."""


@dataclass(frozen=True)
class PrecisionPolicy:
    """How far a network can be pushed below fp32 without hurting its output."""

    gpu_default: Precision
    """What `precision="auto"` picks on a GPU (CPU backends always default to fp32)."""
    fp16_safe: bool
    """False where plain fp16 overflows (transformers): fp16 then needs `fp32_ops`."""
    fp32_ops: tuple[str, ...] = ()
    """ONNX op types kept in fp32 when the rest runs reduced (LayerNorm, Softmax, ...)."""
    fp32_attention: bool = False
    """Also keep attention's activation-by-activation MatMuls (Q.K^T, A.V) in fp32."""
    cpu_bf16: bool = False
    """`precision="auto"` picks bf16 on CPUs with native bf16 (avx512_bf16, AMX): measured faster
    than fp32 and close to it for conv nets (docs/benchmarks.md). False keeps fp32 (transformers:
    untested there)."""
    int8: Int8Recipe | None = None
    """The measured recipe that keeps int8 within the quality bar (docs/benchmarks.md), or None:
    refused. With one, `precision="auto"` on OpenVINO picks int8 on CPUs with VNNI, AMX or AVX2
    without AVX-512."""
    int8_refusal: str = "no int8 recipe has been measured for it"
    """Why int8 is refused (the measurement), for the error message."""


@dataclass(frozen=True)
class Framing:
    """What an ncnn program does around its network, reproduced inside the imported ONNX graph so
    that the graph maps an unpadded tile (N, 3, H, W) to exactly (N, 3, scale*H, scale*W).

    Real-CUGAN's and waifu2x's U-Nets use unpadded convolutions: they shrink their input and
    need even (or multiple-of-4) sides, so the programs pad every tile first. The padding of the
    frame's border decides its pixels, so it is reproduced exactly (the programs' C++ code:
    realcugan-ncnn-vulkan, waifu2x-ncnn-vulkan).
    """

    pad: int = 0
    """Input pixels synthesised on every side before the network."""
    mode: PadMode = "reflect"
    """How: "reflect" mirrors without repeating the edge pixel (OpenCV's BORDER_REFLECT_101),
    "edge" repeats it (BORDER_REPLICATE)."""
    align: int = 1
    """The padded sides are brought up to a multiple of this by extra bottom/right padding."""
    crop: int = 0
    """Output pixels skipped at the top-left before the scale*H x scale*W window is taken."""
    residual: bool = False
    """Add the input enlarged by nearest neighbour (Real-CUGAN x4 predicts a residual)."""

    def min_side(self) -> int:
        """The smallest input side the framing accepts: a reflection must stay inside the image."""
        if self.mode == "edge":
            return 1
        side = self.pad + 1
        while self.pad + (-side) % self.align >= side:
            side += 1
        return side


NO_FRAMING = Framing()


@dataclass(frozen=True)
class ArchTraits:
    """What follows from an architecture alone, whatever the weights."""

    arch: str
    multiple: int
    """Input width/height must be a multiple of this (HAT's attention window)."""
    min_size: int
    """Smallest frame side, in input pixels, the network makes sense on."""
    overlap: int
    """Tile overlap, in input pixels, that keeps tiled output within 45 dB of untiled."""
    tile_pixels: int
    """Largest tile area, in input pixels, chosen automatically on a CPU."""
    precision: PrecisionPolicy
    bytes_per_pixel: int = 20_000
    """Peak activation memory per input pixel at fp32 (measured), for sizing tiles on a GPU."""
    tile_safe: bool = True
    """False where a tile's output depends on the whole tile so much that small tiles miss the
    45 dB line: Real-CUGAN's squeeze-and-excitation blocks scale channels by averages over the
    tile, so 64-128 pixel tiles differ from a whole frame by 31-38 dB (waifu2x CUNet's milder
    ones stay above 54 dB). Such networks run whole frames up to `tile_pixels`, and automatic
    tiles are at least `min_tile` pixels a side."""
    min_tile: int = 0
    """Smallest automatic tile side for a network that is not `tile_safe`."""
    framing: Framing = NO_FRAMING



CONV_POLICY = PrecisionPolicy(gpu_default="fp16", fp16_safe=True, cpu_bf16=True)
TRANSFORMER_POLICY = PrecisionPolicy(
    gpu_default="bf16",
    fp16_safe=False,
    # LayerNorm statistics, softmax's exponentials and attention scores are where fp16 overflows;
    # ReduceMean/Pow/Sqrt cover layer norms that exporters spell out in elementary ops.
    fp32_ops=("LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt"),
    fp32_attention=True,
    int8_refusal="no tested int8 recipe for transformers (attention and layer norms)",
)
# Real-ESRGAN Compact meets the int8 bar on photographs the calibration never saw (docs/benchmarks.md,
# "Quality"); the measurements behind each refusal below are in "Networks that refuse int8".
COMPACT_POLICY = replace(CONV_POLICY, int8=Int8Recipe())
INT8_MEASUREMENTS = "docs/benchmarks.md, \"Networks that refuse int8\""
RRDB_POLICY = replace(CONV_POLICY, int8_refusal=(
    f"the best recipe found moves its output too far from fp32's ({INT8_MEASUREMENTS})"))
# The ncnn imports with Compact's recipe stay close to fp32's output but not to the truth, where
# the networks' own error is tiny.
CUGAN_POLICY = replace(CONV_POLICY, int8_refusal=(
    f"quantized, it lands further from the ground truth than fp32 by more than the project's bar ({INT8_MEASUREMENTS})"))
CUNET_POLICY = CUGAN_POLICY
UPCONV7_POLICY = replace(CONV_POLICY, int8_refusal=(
    "quantized, it lands far from the ground truth, with a colour cast "
    f"({INT8_MEASUREMENTS})"))

# bytes_per_pixel: peak memory of a PyTorch forward per input pixel at fp32, measured on the CPU
# (Compact 1.4 KB, RRDBNet-23 16.6 KB, HAT-S/HAT/HAT-L 49-68 KB), rounded up.
ARCHITECTURES: dict[str, ArchTraits] = {
    "compact": ArchTraits(arch="compact", multiple=1, min_size=4, overlap=16, tile_pixels=1024 * 1024,
                          precision=COMPACT_POLICY, bytes_per_pixel=1_600),
    "rrdbnet": ArchTraits(arch="rrdbnet", multiple=1, min_size=8, overlap=32, tile_pixels=512 * 512,
                          precision=RRDB_POLICY, bytes_per_pixel=18_000),
    "hat": ArchTraits(arch="hat", multiple=16, min_size=16, overlap=32, tile_pixels=256 * 256,
                      precision=TRANSFORMER_POLICY, bytes_per_pixel=70_000),
    # Imported from ncnn (vs_sr has no PyTorch code for them). Their graphs pad and align tiles
    # themselves (see FRAMINGS), so any side from the minimum up is accepted. bytes_per_pixel:
    # peak of an ONNX Runtime CPU run, measured (OpenVINO needs about half).
    # Real-CUGAN: whole frames up to 720p (OpenVINO ~2.9 KB per input pixel); larger frames get
    # tiles of 512+ pixels, which stay 48-57 dB from a whole frame (256: 42-49, 128: 38 dB).
    "realcugan": ArchTraits(arch="realcugan", multiple=1, min_size=4, overlap=32, tile_pixels=1280 * 736,
                            precision=CUGAN_POLICY, bytes_per_pixel=8_000, tile_safe=False, min_tile=512),
    "waifu2x-cunet": ArchTraits(arch="waifu2x-cunet", multiple=1, min_size=4, overlap=16, tile_pixels=768 * 768,
                                precision=CUNET_POLICY, bytes_per_pixel=6_000),
    "waifu2x-upconv7": ArchTraits(arch="waifu2x-upconv7", multiple=1, min_size=4, overlap=8,
                                  tile_pixels=1024 * 1024, precision=UPCONV7_POLICY, bytes_per_pixel=4_000),
    # A user's ONNX graph: nothing is known about it beyond what its shapes say.
    "onnx": ArchTraits(arch="onnx", multiple=1, min_size=1, overlap=16, tile_pixels=512 * 512,
                       precision=PrecisionPolicy(gpu_default="fp32", fp16_safe=True)),
}


def round_up(side: int, multiple: int) -> int:
    """`side` rounded up to a network's size multiple (what tiles are padded to)."""
    return -(-side // multiple) * multiple


# What realcugan-ncnn-vulkan and waifu2x-ncnn-vulkan do around each network (their `prepadding`,
# tile alignment and border mode; Real-CUGAN x4 adds the nearest-enlarged input). Real-ESRGAN's
# nets run bare, like its official Python inference (pre_pad 0): same-padded convolutions need
# no framing, and vs_sr's output for them stays what it was before the ncnn importer.
FRAMINGS: dict[tuple[str, int], Framing] = {
    ("realcugan", 2): Framing(pad=18, mode="reflect", align=2),
    ("realcugan", 3): Framing(pad=14, mode="reflect", align=4),
    ("realcugan", 4): Framing(pad=19, mode="reflect", align=2, residual=True),
    ("waifu2x-cunet", 1): Framing(pad=28, mode="edge", align=4),
    ("waifu2x-cunet", 2): Framing(pad=18, mode="edge", align=2),
    ("waifu2x-upconv7", 2): Framing(pad=7, mode="edge", align=2),
}


# The shape of the Compact nets the int8 recipe was measured on (realesr-animevideov3, faithful).
# Quantization error adds up over the convolutions, so another depth or width needs its own
# measurement before int8 is offered for it.
INT8_COMPACT_SHAPE = {"num_feat": 64, "num_conv": 16}


def arch_traits(arch: str, scale: int, config: Mapping[str, Any] | None = None) -> ArchTraits:
    """The traits of a known architecture at one scale; `config` (the network's constructor
    arguments, where known) narrows int8 to the Compact shape its recipe was measured on.

    Real-ESRGAN's x2/x1 RRDBNets pixel-unshuffle their input by 4/scale, so their input sides
    must divide by it. Imported ncnn networks carry their framing, which sets their minimum side.
    """
    traits = ARCHITECTURES[arch]
    if arch == "compact" and config is not None:
        traits = _compact_int8(traits, config)
    if arch == "rrdbnet" and scale < 4:
        return replace(traits, multiple=4 // scale)
    framing = FRAMINGS.get((arch, scale))
    if framing is not None:
        return replace(traits, framing=framing, min_size=max(traits.min_size, framing.min_side()))
    return traits


def _compact_int8(traits: ArchTraits, config: Mapping[str, Any]) -> ArchTraits:
    shape = {key: config.get(key) for key in INT8_COMPACT_SHAPE}
    if shape == INT8_COMPACT_SHAPE:
        return traits
    refusal = (f"the int8 recipe was measured on Compact nets of {INT8_COMPACT_SHAPE['num_feat']} features and "
               f"{INT8_COMPACT_SHAPE['num_conv']} convolutions; this one has {shape['num_feat']} and "
               f"{shape['num_conv']}, where its error has not been measured")
    return replace(traits, precision=replace(traits.precision, int8=None, int8_refusal=refusal))


def generic_traits(arch: str, multiple: int, minimum: int, transformer: bool) -> ArchTraits:
    """Traits for an architecture without a row here (any other network spandrel loads)."""
    return ArchTraits(
        arch=arch,
        multiple=max(1, multiple),
        min_size=max(4, minimum),
        overlap=32,
        tile_pixels=256 * 256 if transformer else 512 * 512,
        precision=TRANSFORMER_POLICY if transformer else CONV_POLICY,
    )
