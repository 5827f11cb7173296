"""The machine a benchmark ran on, printed with every result: the CPU, the instruction-set
features that decide which precision is fastest on it (AMX, VNNI, native bf16), its cores, the
runtimes' versions, and the load average at the start and end of the run.

Rankings change with the CPU (int8 was 1.7x bf16 on a Zen 5 with VNNI, 5x slower on a Xeon with
AMX): a result without these lines cannot be compared with another machine's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    isa: tuple[str, ...]
    """The devices.ISA_FEATURES this CPU has (those that rank the precisions)."""
    openvino: str | None
    vapoursynth: str

    def describe(self) -> str:
        isa = ", ".join(self.isa) or "none of AMX, VNNI, AVX512-BF16, AVX-512, AVX2"
        openvino = f"OpenVINO {self.openvino}" if self.openvino else "no OpenVINO"
        return f"{self.cpu}, {self.cores} cores; ISA: {isa}; {openvino}, VapourSynth {self.vapoursynth}"


def runnable_precisions(asked: Sequence[str], model: str, scale: int, backend: str = "auto"
                        ) -> tuple[list[str], str | None]:
    """The asked precisions that `backend` runs `model` at on this machine ("auto" always), and a
    line naming those it does not (None when none is left out): the scripts' default sets name bf16
    and int8, which not every CPU offers, and a run of the defaults should measure what it can."""
    from ..backends import choose_backend, network_for

    runtime = choose_backend(backend, network_for(model, scale, None, backend, None))
    offered = runtime.precisions(0)
    kept = [p for p in asked if p == "auto" or p in offered]
    left_out = [p for p in asked if p not in kept]
    if not left_out:
        return kept, None
    return kept, (f"left out: {', '.join(left_out)} (backend {runtime.name} runs {'/'.join(offered)} here; "
                  "`vs-sr info` says why)")


def this_machine() -> Machine:
    import vapoursynth as vs

    from ..devices import ISA_FEATURES, cpu_count, cpu_features, cpu_name

    features = cpu_features()  # less any OV_CPU_MAX_ISA cap: what OpenVINO may use
    return Machine(cpu_name(), cpu_count(), tuple(f for f in ISA_FEATURES if f in features), openvino_version(),
                   f"R{vs.core.core_version.release_major}")


def openvino_version() -> str | None:
    """The OpenVINO build vs_sr runs (vs-mlrt's, when its plugin loaded first); None without one."""
    from ..backends.openvino.capi import library

    try:
        return library().version
    except Exception:  # not installed, or its library fails to load
        return None


def load_average() -> float:
    """The 1-minute load average (0 where the system does not say)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def load_note(start: float, end: float, cores: int) -> str:
    """The load average over a run, and whether its timings are a quiet machine's. Only the start
    says so: the end's average counts the benchmark's own threads (a quiet 2-core run ends near 2)."""
    note = (f"load average (1 min) {start:.1f} at the start, {end:.1f} at the end (the run's own threads "
            f"included), on {cores} cores")
    if start > 0.5 * cores:
        note += (" — other work was using the CPU when it started: absolute frame rates may be low and noisy; "
                 "the ratios of interleaved runs are what this run shows")
    return note
