"""One batch, end to end: find the inputs, pick the executor, plan, check the disk, run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ..backends import choose_backend
from ..devices import cuda_device_count
from ..errors import SRError
from ..models import resolve
from .executors import Executor, LocalExecutor, RayExecutor
from .inputs import find_sources
from .run import BatchRun, Outcome, RunOptions, lock_directory
from .settings import CONTAINERS, BatchSettings

RAY_LOCAL = "local"


def run_batch(inputs: Sequence[Path], directory: Path, settings: BatchSettings, options: RunOptions,
              jobs: int | None = None, recursive: bool = False, restart: bool = False, ray: str | None = None,
              log: Callable[[str], None] = print, quiet: bool = False, stop: threading.Event | None = None) -> Outcome:
    """Upscale every video of `inputs` into `directory`, resuming what an earlier run left.

    jobs: chunks at once (default: one per GPU the model runs on, else 1; with Ray, the
    cluster's CPUs or GPUs); ray: None (this machine), "local" (a Ray started for this run) or a
    head node's HOST:PORT."""
    directory.mkdir(parents=True, exist_ok=True)
    lock = lock_directory(directory)
    try:
        sources, notes = find_sources(inputs, directory, CONTAINERS[settings.container], recursive)
        for note in notes:
            log(note)
        if not sources:
            raise SRError("no video among the inputs (folders need --recursive to descend into subfolders).")
        gpus = _gpus(settings)
        executor: Executor
        if ray is None:
            executor = LocalExecutor(jobs or max(1, len(gpus)), gpus)
        else:
            # A cluster's nodes pick their own runtime: GPUs are asked for unless the backend is CPU-only.
            wants_gpu = bool(gpus) if ray == RAY_LOCAL else settings.job.get("backend") != "openvino"
            ray_executor = RayExecutor(None if ray == RAY_LOCAL else ray, jobs, gpu=wants_gpu)
            executor = ray_executor
        try:
            if ray is not None:
                ray_executor.check_paths([str(s.path) for s in sources], str(directory.resolve()))
            batch = BatchRun(directory, settings, executor, options, log=log, quiet=quiet, stop=stop)
            try:
                batch.prepare(sources, restart)
                batch.plan(executor.slots)
                batch.check_space()
                return batch.run()
            finally:
                batch.close()
        finally:
            executor.close()
    finally:
        lock.release()


def _gpus(settings: BatchSettings) -> list[int]:
    """The GPUs of this machine chunks should be spread over: all, when the model runs on a GPU."""
    count = cuda_device_count()
    if count == 0:
        return []
    network = resolve(settings.job.get("model", "realesr-animevideov3"), int(settings.job.get("scale", 4)))
    return list(range(count)) if choose_backend(settings.job.get("backend", "auto"), network).gpu else []
