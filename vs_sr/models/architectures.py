"""The one table of architecture facts: size multiple, minimum size, default tile and overlap,
memory per pixel and precision policy, keyed by architecture.

The registry, `.pth` detection and ONNX-file networks all take their traits from here, so no
layer re-derives them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Precision = Literal["fp32", "fp16", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16", "bf16")


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



CONV_POLICY = PrecisionPolicy(gpu_default="fp16", fp16_safe=True)
TRANSFORMER_POLICY = PrecisionPolicy(
    gpu_default="bf16",
    fp16_safe=False,
    # LayerNorm statistics, softmax's exponentials and attention scores are where fp16 overflows;
    # ReduceMean/Pow/Sqrt cover layer norms that exporters spell out in elementary ops.
    fp32_ops=("LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt"),
    fp32_attention=True,
)

# bytes_per_pixel: peak memory of a PyTorch forward per input pixel at fp32, measured on the CPU
# (Compact 1.4 KB, RRDBNet-23 16.6 KB, HAT-S/HAT/HAT-L 49-68 KB), rounded up.
ARCHITECTURES: dict[str, ArchTraits] = {
    "compact": ArchTraits(arch="compact", multiple=1, min_size=4, overlap=16, tile_pixels=1024 * 1024,
                          precision=CONV_POLICY, bytes_per_pixel=1_600),
    "rrdbnet": ArchTraits(arch="rrdbnet", multiple=1, min_size=8, overlap=32, tile_pixels=512 * 512,
                          precision=CONV_POLICY, bytes_per_pixel=18_000),
    "hat": ArchTraits(arch="hat", multiple=16, min_size=16, overlap=32, tile_pixels=256 * 256,
                      precision=TRANSFORMER_POLICY, bytes_per_pixel=70_000),
    # A user's ONNX graph: nothing is known about it beyond what its shapes say.
    "onnx": ArchTraits(arch="onnx", multiple=1, min_size=1, overlap=16, tile_pixels=512 * 512,
                       precision=PrecisionPolicy(gpu_default="fp32", fp16_safe=True)),
}


def round_up(side: int, multiple: int) -> int:
    """`side` rounded up to a network's size multiple (what tiles are padded to)."""
    return -(-side // multiple) * multiple


def arch_traits(arch: str, scale: int) -> ArchTraits:
    """The traits of a known architecture at one scale.

    Real-ESRGAN's x2/x1 RRDBNets pixel-unshuffle their input by 4/scale, so their input sides
    must divide by it.
    """
    traits = ARCHITECTURES[arch]
    if arch == "rrdbnet" and scale < 4:
        return replace(traits, multiple=4 // scale)
    return traits


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
