"""One batch, end to end: find the inputs, pick the executor, plan, check the disk, run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ..backends import choose_backend
from ..devices import cuda_device_count
from ..errors import SRError
from ..models import DEFAULT_MODEL, resolve
from ..paths import make_folder
from .driver import BatchRun, Outcome, RunOptions, lock_directory
from .executors import Executor, LocalExecutor, RayExecutor
from .inputs import find_sources
from .settings import CONTAINERS, BatchSettings
from .state import State, state_path

RAY_LOCAL = "local"



def run_batch(inputs: Sequence[Path], directory: Path, settings: BatchSettings, options: RunOptions,
              jobs: int | None = None, recursive: bool = False, restart: bool = False, ray: str | None = None,
              log: Callable[[str], None] = print, quiet: bool = False, stop: threading.Event | None = None,
              executor: Executor | None = None) -> Outcome:
    """Upscale every video of `inputs` into `directory`, resuming what an earlier run left.

    jobs: chunks at once (default: one per GPU the model runs on, else 1; with Ray, the
    cluster's CPUs or GPUs); ray: None (this machine), "local" (a Ray started for this run) or a
    head node's HOST:PORT; executor: one to use instead, kept open (a server running batch
    after batch on one Ray connection); stop: set to end the run as Ctrl-C would."""
    # The inputs are checked before anything is made: a refused batch leaves no folder or lock behind.
    sources, notes = find_sources(inputs, directory, CONTAINERS[settings.container], recursive, options.label, quiet,
                                  known_inputs(directory))
    for note in notes:
        log(note)
    if not sources:
        raise SRError("no video among the inputs (folders need --recursive to descend into subfolders).")
    owned = executor is None
    if executor is None:  # before the folder and its lock too: a cluster that is not there leaves neither
        executor = make_executor(settings, jobs, ray)
    try:
        make_folder(directory, "--output-dir")
        lock = lock_directory(directory)
        try:
            if isinstance(executor, RayExecutor):
                executor.check_paths([str(s.path) for s in sources], str(directory.resolve()))
                if shortage := executor.shortage():
                    log(f"note: {shortage}")
            batch = BatchRun(directory, settings, executor, options, log=log, quiet=quiet, stop=stop, restart=restart)
            try:
                batch.prepare(sources)
                batch.plan(executor.slots)
                batch.check_space()
                return batch.run()
            finally:
                batch.close()
        finally:
            lock.release()
    finally:
        if owned:
            executor.close()


def known_inputs(directory: Path) -> dict[Path, str]:
    """The inputs an earlier run of the batch in `directory` took as videos, with their signatures
    (read without the batch's lock: a database in WAL mode can be read beside its writer); none
    where there is no such batch or its state cannot be read (the run says why, later)."""
    path = state_path(directory)
    if not path.is_file():
        return {}
    try:
        state = State(path, readonly=True)
    except SRError:
        return {}
    try:
        return {video.input: video.signature for video in state.videos() if video.signature}
    except SRError:
        return {}
    finally:
        state.close()


def make_executor(settings: BatchSettings, jobs: int | None, ray: str | None) -> Executor:
    gpus = _gpus(settings)
    if ray is None:
        return LocalExecutor(jobs or max(1, len(gpus)), gpus)
    # A cluster's nodes pick their own runtime: GPUs are asked for unless the backend is CPU-only.
    wants_gpu = bool(gpus) if ray == RAY_LOCAL else settings.job.get("backend") != "openvino"
    return RayExecutor(None if ray == RAY_LOCAL else ray, jobs, gpu=wants_gpu)


def _gpus(settings: BatchSettings) -> list[int]:
    """The GPUs of this machine chunks should be spread over: all, when the model runs on a GPU."""
    count = cuda_device_count()
    if count == 0:
        return []
    job = settings.job
    network = resolve(job.get("model", DEFAULT_MODEL), int(job.get("scale", 4)), job.get("noise"))
    return list(range(count)) if choose_backend(job.get("backend", "auto"), network).gpu else []
