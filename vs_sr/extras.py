"""Optional parts of vs_sr, installed by need (`pip install 'vs_sr[torch]'`), and the one error
that names the line to install a missing one.

The base package runs named models on OpenVINO and ONNX Runtime from ONNX graphs converted
without PyTorch; everything else lives behind an extra. Checks look for the modules without
importing them, so asking costs nothing.
"""

from __future__ import annotations

import importlib.util

from .errors import SRError

EXTRAS: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "spandrel"),  # .pth/.safetensors files, HAT, backend="torch", training
    "tensorrt": ("tensorrt", "torch"),  # engines; CUDA buffers through PyTorch
    "ray": ("ray",),  # vs-sr batch across machines
    "studio": ("fastapi", "uvicorn", "python_multipart", "PIL"),  # vs-sr studio
    "triton": ("tritonclient",),  # backend="triton", vs-sr triton
    "int8": ("skimage", "PIL"),  # precision="int8": the calibration photographs (numpy/onnxruntime are base)
    "preview": ("vspreview",),  # a previewer for .vpy scripts (examples/compare.vpy); not in [all]
}


def missing_modules(extra: str) -> list[str]:
    """The modules of `extra` that are not installed (empty when it is complete)."""
    missing = []
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            missing.append(module)
    return missing


def has(extra: str) -> bool:
    return not missing_modules(extra)


def install_line(extra: str) -> str:
    return f"pip install 'vs_sr[{extra}]'"


def require(extra: str, purpose: str) -> None:
    """Raise the error that names the install line when `extra` is incomplete; `purpose` says
    what needed it ("HAT", "backend='torch'", ...)."""
    missing = missing_modules(extra)
    if missing:
        raise SRError(f"{purpose} needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                      f"not installed: {install_line(extra)}")
