"""OpenVINO on the CPU: the fastest CPU runtime measured here.

We always pass the precision explicitly: `precision="auto"` picks by the CPU's ISA (see
`auto_precision`). "int8" runs the network quantized by `models.int8` (one QDQ graph for every
tile shape); the parts left in float run in fp32. One compiled model
serves all streams: with one stream it uses every core, with N streams OpenVINO splits the cores
between N infer requests. It is driven through its C API (see `capi`), so it runs beside
vs-mlrt's ov plugin.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from ... import extras
from ...devices import BF16_FEATURES, INT8_FEATURES, cpu_features
from ...log import info
from ...models import Network, Precision
from ...models.onnx_export import export_onnx
from ..base import Backend, Session, SessionSpec

if TYPE_CHECKING:
    from .capi import Core, InferRequest

# int8: the quantized convolutions run in int8 whatever the hint; the rest (the float skip
# connection: nearest upsampling, global Add) stays exact in f32 (under the bf16 hint it costs
# 0.06 dB for no speed).
HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
CAPABILITIES: dict[Precision, str] = {"fp32": "FP32", "bf16": "BF16", "fp16": "FP16", "int8": "INT8"}
DEVICE = "CPU"


@functools.cache
def _core() -> Core:
    from .capi import Core

    return Core()


def int8_kernels_measured(features: frozenset[str]) -> bool:
    """Whether OpenVINO's int8 kernels on a CPU with these features were measured to compute the
    quantized graph as written: with int8 dot-product units (VNNI, AMX: 32-bit sums), or AVX2's
    (16-bit sums of product pairs, which the recipe's pair limit keeps from saturating). AVX-512
    without VNNI (Skylake servers) runs other kernels, never measured; nor were CPUs without AVX2
    and other architectures."""
    return bool(features & INT8_FEATURES) or ("avx2" in features and "avx512f" not in features)


class OpenVINOSession(Session):
    def __init__(self, request: InferRequest, clamped: bool) -> None:
        self._request = request
        self.clamped = clamped

    def input_buffer(self) -> np.ndarray:
        return self._request.input

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._request.infer(batch)


class OpenVINOBackend(Backend):
    name = "openvino"

    def unavailable(self) -> str | None:
        try:
            _core()
        except Exception as error:  # library missing or failing to load
            return str(error)
        return None

    def precisions(self, device_id: int) -> tuple[Precision, ...]:
        """What OpenVINO offers here, less int8 where its kernels were never measured."""
        caps = set(_core().property(DEVICE, "OPTIMIZATION_CAPABILITIES").split())
        int8 = int8_kernels_measured(cpu_features())
        return tuple(p for p, cap in CAPABILITIES.items() if cap in caps and (p != "int8" or int8))

    def auto_precision(self, network: Network, device_id: int) -> Precision:
        """int8 for a network with a measured int8 recipe (the [int8] extra installed): the fastest
        on every CPU measured, with int8 dot-product units (AMX, VNNI) or without (AVX2); else bf16
        for a network whose policy allows it on a CPU with native bf16 (AVX512-BF16, AMX), else
        fp32. Measured: docs/benchmarks.md."""
        policy, supported = network.traits.precision, self.precisions(device_id)
        if policy.int8 is not None and "int8" in supported and extras.has("int8"):
            return "int8"
        native_bf16 = "bf16" in supported and bool(cpu_features() & BF16_FEATURES)
        return "bf16" if native_bf16 and policy.cpu_bf16 else "fp32"

    def device_name(self, device_id: int) -> str:
        core = _core()
        return f"CPU ({core.property(DEVICE, 'FULL_DEVICE_NAME')}) via OpenVINO {core.lib.version}"

    def open(self, spec: SessionSpec) -> list[Session]:
        shape = (spec.batch, 3, spec.height, spec.width)
        config = {"INFERENCE_PRECISION_HINT": HINTS[spec.precision]}
        if spec.threads:
            config["INFERENCE_NUM_THREADS"] = str(spec.threads)
        if spec.num_streams == 1:
            config["PERFORMANCE_HINT"] = "LATENCY"
        else:
            config["NUM_STREAMS"] = str(spec.num_streams)
        if spec.precision == "int8":
            from ...models.int8 import quantized_model

            model = quantized_model(spec.network, info)  # open height and width: pinned to `shape` here
        else:
            model = export_onnx(spec.network, *shape[:1], *shape[2:])
        if spec.clamp:  # OpenVINO fuses the clamp into the network's last operation (int8's too)
            from ...models.output_clamp import clamped_onnx

            model = clamped_onnx(model)
        compiled = _core().compile(model, shape, DEVICE, config)
        return [OpenVINOSession(compiled.infer_request(), spec.clamp) for _ in range(spec.num_streams)]
