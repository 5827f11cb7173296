"""Runtimes behind one interface, and the choice among them for backend="auto"."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from ..errors import SRError
from ..log import warn
from ..models.resolve import resolve
from ..models.spec import Network
from .base import Backend, OutOfMemory, Session, SessionSpec

BACKEND_MODULES = {
    "trt": ("tensorrt", "TensorRTBackend"),
    "torch": ("torch", "TorchBackend"),
    "ort": ("onnxruntime", "OnnxRuntimeBackend"),
    "openvino": ("openvino", "OpenVINOBackend"),
    "triton": ("triton", "TritonBackend"),
}


def get_backend(name: str, server: str | None = None) -> Backend:
    """The backend called `name`; "triton" talks to `server` (default $VS_SR_TRITON_URL)."""
    module_name, class_name = BACKEND_MODULES[name]
    backend_class: Callable[..., Backend] = getattr(importlib.import_module(f"{__name__}.{module_name}"), class_name)
    return backend_class(server) if name == "triton" else backend_class()


def network_for(model: str | os.PathLike[str], scale: int, noise: int | None, backend: str,
                server: str | None) -> Network:
    """The network to run: as the Triton server at `server` runs it for backend "triton" (no
    weights here; the server is asked), else from local weights. The one place this is decided:
    the filter and the pre-flight check of `vs-sr upscale` both ask here."""
    if backend == "triton":
        from .triton import served_network

        if server is None:
            raise SRError("backend='triton' needs a server: pass server='grpc://host:8001' (or http://host:8000).")
        return served_network(model, scale, server, noise)
    return resolve(model, scale, noise)


def auto_order(network: Network) -> tuple[str, ...]:
    """Preference for backend="auto": GPU runtimes first where a GPU exists, then CPU runtimes."""
    from ..devices import cuda_device_count

    gpu: tuple[str, ...] = ()
    if cuda_device_count() > 0:
        gpu = ("trt", "torch", "ort") if network.has_torch_network else ("trt", "ort")
        # ONNX Runtime belongs to the GPU tier only with its CUDA provider (onnxruntime-gpu).
        ort = get_backend("ort")
        gpu = tuple(name for name in gpu if name != "ort" or (ort.unavailable() is None and ort.gpu))
    cpu = ("openvino", "ort", "torch") if network.has_torch_network else ("openvino", "ort")
    return (*gpu, *cpu)


def choose_backend(requested: str, network: Network, server: str | None = None) -> Backend:
    """The backend to run `network` on; explicit choices must work, "auto" falls back with a reason
    ("auto" never picks "triton": a server is always asked for by name)."""
    if requested != "auto":
        backend = get_backend(requested, server)
        reason = backend.unavailable()
        if reason:
            raise SRError(f"backend '{requested}' cannot run here: {reason}")
        if requested == "torch" and not network.has_torch_network:
            from ..models import torch_module

            torch_module(network)  # raises the error that says which backends run this network
        return backend
    skipped: list[tuple[str, str | None]] = []
    for name in auto_order(network):
        backend = get_backend(name)
        reason = backend.unavailable()
        if reason is None:
            if any(clash for _, clash in skipped):
                warn(f"using backend '{name}': " + "; ".join(f"'{n}' unavailable: {r}" for n, r in skipped if r))
            return backend
        # Not installing an optional runtime is normal; a runtime that is installed but cannot
        # load is worth telling the user about when we fall back.
        skipped.append((name, reason if "not installed" not in reason else None))
    raise SRError("no inference runtime is usable: " + "; ".join(
        f"{name}: {get_backend(name).unavailable()}" for name in auto_order(network)))


__all__ = ["BACKEND_MODULES", "Backend", "OutOfMemory", "Session", "SessionSpec", "choose_backend", "get_backend",
           "network_for"]
