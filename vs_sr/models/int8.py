"""precision="int8": a network quantized once (for every tile shape), cached like every export.

The recipe decides the quality, so it is per architecture and picked by measurement
(`architectures.PrecisionPolicy.int8`; docs/benchmarks.md, "INT8"). Quantizing runs in a
separate Python process (`int8_worker.py`, which says why) on the network's graph with open
height and width, calibrated at the recipe's tile size: the quantization parameters do not depend
on the tile shape, so the one QDQ ONNX graph serves every frame size (OpenVINO pins its shape
when it compiles it). It is keyed by the source graph's hash, the recipe and the versions of ONNX
Runtime and numpy (the statistics are computed with them) and of scikit-image and Pillow (they make
the fixed calibration tiles), so the same key always means the same model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .. import extras
from ..atomic import build_once
from ..children import python_executable, start_child
from ..errors import SRError
from ..paths import cache_dir
from .architectures import Int8Recipe
from .onnx_export import export_onnx
from .registry import int8_models
from .spec import Network
from .weights import file_digest

WORKER = Path(__file__).with_name("int8_worker.py")


def int8_recipe(network: Network) -> Int8Recipe:
    """The network's measured recipe, or the error that says why it has none."""
    policy = network.traits.precision
    if policy.int8 is None:
        raise SRError(f"{network.label} has no int8: {policy.int8_refusal}. int8 is offered for "
                      f"{', '.join(int8_models())} (and Compact networks of their shape) only; pass "
                      "precision='bf16' or precision='fp32'.")
    return policy.int8


def quantized_model(network: Network, log: Callable[[str], None] = lambda message: None) -> Path:
    """`network` quantized, its input's height and width open: quantized on first use (about a
    minute), then read from the cache."""
    recipe = int8_recipe(network)
    extras.require("int8", "precision='int8'")
    onnx = export_onnx(network, 1, *recipe.tile, dynamic=True)
    target = cache_dir("int8") / f"{cache_key(onnx, recipe)}.onnx"
    return build_once(target, lambda temp: _quantize(onnx, recipe, temp, log), bounded=True)


def cache_key(onnx: Path, recipe: Int8Recipe) -> str:
    recipe_hash = hashlib.sha256(json.dumps(dataclasses.asdict(recipe), sort_keys=True).encode()).hexdigest()[:12]
    # everything the calibration depends on: the runtime and numpy, and the photographs' source and resize
    versions = "-".join(f"{short}{importlib.metadata.version(package)}" for short, package in
                        (("ort", "onnxruntime"), ("numpy", "numpy"), ("skimage", "scikit-image"), ("pil", "pillow")))
    return f"{onnx.stem[:40]}-{file_digest(onnx)[:16]}-r{recipe_hash}-{versions}"


def _quantize(onnx: Path, recipe: Int8Recipe, output: Path, log: Callable[[str], None]) -> None:
    request = {"onnx": str(onnx), "output": str(output), **dataclasses.asdict(recipe)}
    log(f"int8: quantizing {onnx.stem}, once for every frame size (seconds to a minute; cached afterwards)")
    started = time.monotonic()
    # Dies with us (a killed vspipe leaves no quantizer running); its output is a temporary file
    # that only becomes the cached model once complete.
    # stderr goes to a file: a pipe nobody reads while we follow stdout could fill up.
    # One BLAS thread: its matrices are small, and spinning BLAS threads on a busy CPU made the
    # Hessians 3x slower (measured); ONNX Runtime keeps its own threads for the calibration.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryFile("w+") as stderr_file, start_child(
            [python_executable(), str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr_file,
            text=True, env=env) as worker:
        assert worker.stdin is not None and worker.stdout is not None
        worker.stdin.write(json.dumps(request))
        worker.stdin.close()
        errors = []
        for line in worker.stdout:
            if line.startswith("step "):
                log(f"int8: {line.removeprefix('step ').strip()}")
            elif line.startswith("error: "):
                errors.append(line.removeprefix("error: ").strip())
        worker.wait()
        stderr_file.seek(0)
        stderr = stderr_file.read()
    if worker.returncode != 0:
        reason = errors[0] if errors else " / ".join(stderr.strip().splitlines()[-3:]) or f"exit {worker.returncode}"
        raise SRError(f"int8 quantization of {onnx.name} failed: {reason}")
    log(f"int8: model ready in {time.monotonic() - started:.0f} s")
