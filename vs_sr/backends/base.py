"""The one small interface every runtime implements: open N sessions for one static tile shape."""

from __future__ import annotations

import functools
import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..models import Network, Precision


@functools.cache
def import_runtime(module: str, missing: str) -> tuple[Any, str | None]:
    """(the runtime's Python module, None), or (None, `missing`: what to install) if it is absent.

    Cached: a native module that failed to import cannot be retried in the same process.
    """
    try:
        return importlib.import_module(module), None
    except ImportError:
        return None, missing


class OutOfMemory(Exception):
    """A session ran out of device memory; the runner may retry the frame with smaller tiles."""


@dataclass(frozen=True)
class SessionSpec:
    """Everything a backend needs to open its inference instances."""

    network: Network
    batch: int
    height: int
    width: int
    precision: Precision
    num_streams: int
    device_id: int
    threads: int | None = None
    """CPU threads per session (None: the runtime's choice); set where several processes share
    the cores, e.g. the instances of a Triton model."""
    clamp: bool = False
    """The outputs may be clamped to [0, 1] by the network itself (whole-frame tiles: nothing is
    blended after it); a session that does so says `clamped`."""


class Session(ABC):
    """One inference instance (an infer request, a session slot, a CUDA stream). Not shared:
    the stream pool hands it to one frame at a time."""

    dynamic_shapes = False
    """True if `run` also accepts batches of another shape than the one it was opened for."""

    clamped = False
    """True if `run`'s outputs are already clamped to [0, 1] (opened with `SessionSpec.clamp`)."""

    partial_batches = False
    """True if `run` takes a frame's last batch short (fewer tiles than it was opened for) rather
    than padded with blank tiles: a server should not compute tiles nobody reads."""

    def input_buffer(self) -> np.ndarray | None:
        """The session's own input batch, which `run` reads without a copy when given it (fill it
        in place, then `run(buffer)`); None where `run` takes any array."""
        return None

    @abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) float32 in [0, 1] -> (N, 3, h*s, w*s) float32.

        The result may live in the session's own buffers: it is valid until the next `run`.
        """


class Backend(ABC):
    """A runtime: whether it can run here, at which precisions, and how to open sessions."""

    name: ClassVar[str]
    gpu: ClassVar[bool] = False

    @abstractmethod
    def unavailable(self) -> str | None:
        """Why this backend cannot run on this machine, with what to do about it; None if it can."""

    @abstractmethod
    def precisions(self, device_id: int) -> tuple[Precision, ...]:
        """Precisions this backend can run at on this machine."""

    def auto_precision(self, network: Network, device_id: int) -> Precision:
        """What precision="auto" means here: fp32 unless this runtime has a measured faster
        precision for the network (OpenVINO: int8 or bf16 by the CPU's ISA; GPUs: the policy's)."""
        return "fp32"

    def check_precision(self, network: Network, precision: Precision) -> None:
        """Refuse a precision this network cannot run at here, though the backend has it (a served
        model is fixed to its own); asked before any work, as `precisions` is."""
        return None  # most runtimes run any network at every precision they have

    def batch_size(self, tiles: int) -> int:
        """How many tiles of a frame go to one `run`; CPU runtimes gain nothing from batching."""
        return 1

    def free_memory(self, device_id: int) -> int | None:
        """Free device memory in bytes for sizing tiles; None on the CPU (use the model's budget)."""
        return None

    @abstractmethod
    def open(self, spec: SessionSpec) -> list[Session]:
        """`spec.num_streams` sessions for input shape (batch, 3, height, width)."""

    @abstractmethod
    def device_name(self, device_id: int) -> str:
        """Human-readable device, for logs and `vs-sr info`."""
