"""Where chunks run: on this machine (`LocalExecutor`, threads each supervising a pipeline), or
as Ray tasks on a cluster (`RayExecutor`). Both report the same events to the batch's driver,
which alone decides retries and writes the state.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any, Protocol

from ..children import killed_if_interrupted
from ..errors import SRError
from ..media.processes import Cancelled, ToolFailed
from .chunk import ChunkResult, ChunkTask, attempt_folder, run_chunk


@dataclass(frozen=True)
class Event:
    """progress (frames), done (result) or failed (error; transient: may work another time)."""

    kind: str
    key: tuple[int, int]
    attempt: int
    frames: int = 0
    result: ChunkResult | None = None
    error: str = ""
    transient: bool = False


class Executor(Protocol):
    slots: int
    """Chunks that may run at once."""

    def submit(self, task: ChunkTask) -> None: ...

    def events(self, timeout: float) -> list[Event]: ...

    def cancel(self, key: tuple[int, int]) -> None: ...

    def stop_all(self) -> None:
        """Stop every running chunk and return when their tools are gone."""

    def close(self) -> None:
        """Stop everything and release the executor (a Ray connection)."""


def failure(task: ChunkTask, error: BaseException) -> Event:
    """How a chunk's exception reaches the driver: our messages as they are; a stop on request
    and a killed or crashed tool are transient (another attempt), refusals are not."""
    if isinstance(error, SRError):
        transient = isinstance(error, Cancelled) or (isinstance(error, ToolFailed) and error.transient)
        return Event("failed", task.key, task.attempt, error=error.message, transient=transient)
    return Event("failed", task.key, task.attempt, error=f"{type(error).__name__}: {error}", transient=True)


class LocalExecutor:
    """`slots` threads, each supervising one chunk's vspipe|ffmpeg (in its own process group; the
    tools die with the thread that started them). With GPUs, worker slot i is pinned to GPU
    gpus[i] through CUDA_VISIBLE_DEVICES, so every chunk on it runs there."""

    def __init__(self, slots: int, gpus: Sequence[int] = ()) -> None:
        self.slots = slots
        self.gpus = list(gpus)
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._cancels: dict[tuple[int, int], threading.Event] = {}
        self._free_slots: list[int] = list(range(slots))
        self._threads: dict[tuple[int, int], threading.Thread] = {}
        self._lock = threading.Lock()

    def submit(self, task: ChunkTask) -> None:
        with self._lock:
            slot = self._free_slots.pop(0)
        if self.gpus:
            task = replace(task, environment={**task.environment, "CUDA_VISIBLE_DEVICES": str(self.gpus[slot % len(self.gpus)])})
        cancel = threading.Event()
        self._cancels[task.key] = cancel
        thread = threading.Thread(target=self._run, args=(task, slot, cancel), name=f"chunk-{task.key}", daemon=True)
        self._threads[task.key] = thread
        thread.start()

    def _run(self, task: ChunkTask, slot: int, cancel: threading.Event) -> None:
        try:
            result = run_chunk(task, lambda frames: self._events.put(Event("progress", task.key, task.attempt, frames)),
                               cancel)
            event = Event("done", task.key, task.attempt, result=result)
        except BaseException as error:  # every outcome must reach the driver
            event = failure(task, error)
        finally:
            with self._lock:
                self._free_slots.append(slot)
        self._cancels.pop(task.key, None)
        self._threads.pop(task.key, None)
        self._events.put(event)

    def events(self, timeout: float) -> list[Event]:
        try:
            found = [self._events.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                found.append(self._events.get_nowait())
            except queue.Empty:
                return found

    def cancel(self, key: tuple[int, int]) -> None:
        cancel = self._cancels.get(key)
        if cancel is not None:
            cancel.set()

    def stop_all(self) -> None:
        for cancel in list(self._cancels.values()):
            cancel.set()
        for thread in list(self._threads.values()):
            thread.join()

    def close(self) -> None:
        self.stop_all()


def ray_module() -> Any:
    try:
        import ray
    except ImportError:
        raise SRError("--ray needs Ray: pip install 'vs_sr[ray]' (or pip install ray).") from None
    return ray


def _chunk_on_ray(task: ChunkTask) -> Any:
    """The Ray task: runs the chunk in a thread and streams progress, then the result.

    The waiting loop polls, so Ray's cancel (an interrupt between bytecodes) reaches it and stops
    the tools; a killed worker takes its tools along (parent-death signal)."""
    import ray

    updates: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    cancel = threading.Event()
    node = ray.get_runtime_context().get_node_id()

    def work() -> None:
        try:
            updates.put(("done", run_chunk(task, lambda frames: updates.put(("progress", frames)), cancel, node)))
        except BaseException as error:
            updates.put(("failed", failure(task, error)))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, value = updates.get(timeout=0.2)
            except queue.Empty:
                continue
            if kind == "progress":
                yield Event("progress", task.key, task.attempt, frames=value)
            elif kind == "done":
                yield Event("done", task.key, task.attempt, result=value)
                return
            else:
                yield value
                return
    finally:
        cancel.set()
        thread.join()


class RayExecutor:
    """Chunks as Ray tasks: a local Ray started for this run (`address` None), or a cluster joined
    at `address` (host:port). Inputs and the batch directory must be on a file system every node
    sees at the same paths (checked by `check_paths`)."""

    def __init__(self, address: str | None, slots: int | None, gpu: bool, temp_dir: str | None = None) -> None:
        ray = self.ray = ray_module()
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        if address is None:
            options["num_cpus"] = slots or os.cpu_count() or 1
            if temp_dir:
                options["_temp_dir"] = temp_dir
        else:
            check_reachable(address)
            options["address"] = address
        _start_ray(ray, options)
        _quiet_worker_notices()
        resources = ray.cluster_resources()
        self.gpu = gpu and resources.get("GPU", 0) >= 1
        self.slots = slots or int(resources.get("GPU", 0) if self.gpu else resources.get("CPU", 1)) or 1
        self._remote = ray.remote(num_returns="streaming", max_retries=0)(_chunk_on_ray)
        self._running: dict[tuple[int, int], tuple[Any, ChunkTask]] = {}

    def shortage(self) -> str | None:
        """What the cluster lacks for any chunk to start now, or None: a head started with `--num-cpus 0`
        before its workers join waits without a word otherwise."""
        unit = "GPU" if self.gpu else "CPU"
        if self.ray.cluster_resources().get(unit, 0) >= 1:
            return None
        return (f"the Ray cluster has no {unit} for chunks yet (a head started with --num-cpus 0 runs none); the "
                f"batch waits for a node with a {unit} to join")

    def check_paths(self, inputs: Sequence[str], directory: str) -> None:
        """Every live node sees the inputs and can write to the batch directory, or a clear error."""
        ray = self.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = ray.remote(num_cpus=0)(_check_paths_here)
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        results = ray.get([probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                           .remote(list(inputs), directory) for node in nodes], timeout=120)
        problems = [problem for problem in results if problem]
        if problems:
            raise SRError(f"the Ray cluster's nodes must see the same files at the same paths: {problems[0]}. "
                          "Put inputs and --output-dir on a file system shared by every node (NFS, SMB, ...).")

    def submit(self, task: ChunkTask) -> None:
        options: dict[str, Any] = {"num_gpus": 1} if self.gpu else {"num_cpus": 1}
        generator = self._remote.options(**options).remote(task)
        self._running[task.key] = (generator, task)

    def events(self, timeout: float) -> list[Event]:
        ray = self.ray
        if not self._running:
            return []
        generators = [generator for generator, _ in self._running.values()]
        ready, _ = ray.wait(generators, num_returns=1, timeout=timeout)
        found = []
        for key, (generator, task) in list(self._running.items()):
            if not any(generator is r for r in ready):
                continue
            try:
                event: Event = ray.get(next(generator))
            except StopIteration:  # it ended without its last word (cancelled): said, or the driver waits forever
                self._running.pop(key, None)
                found.append(Event("failed", task.key, task.attempt, error="the Ray task ended without a result",
                                   transient=True))
                continue
            except ray.exceptions.RayError as error:  # the worker died, its node died, the task was cancelled
                self._running.pop(key, None)
                found.append(Event("failed", task.key, task.attempt, error=_ray_reason(error), transient=True))
                continue
            if event.kind != "progress":
                self._running.pop(key, None)
            found.append(event)
        return found

    def cancel(self, key: tuple[int, int]) -> None:
        running = self._running.get(key)
        if running is not None:
            self.ray.cancel(running[0])

    def stop_all(self) -> None:
        # force: the worker exits, and its tools with it (parent-death signal); a killed worker
        # cannot remove its attempt's folder, so it goes from here (the paths are shared)
        for generator, task in list(self._running.values()):
            try:
                self.ray.cancel(generator, force=True)
            except Exception:  # already finished or gone with its node
                pass
            shutil.rmtree(attempt_folder(task), ignore_errors=True)
        self._running.clear()

    def close(self) -> None:
        self.stop_all()
        self.ray.shutdown()


def _start_ray(ray: Any, options: dict[str, Any]) -> None:
    """ray.init, interruptible like every other step. Ray installs its own SIGTERM handler, which
    exits with status 15 and no word: ours (stop the chunks, keep the state, exit 130) is put back
    once Ray is up, and a SIGTERM that meets Ray's meanwhile counts as ours. An interrupted start
    ends what it had started: a local Ray's daemons, and the agents its raylet starts (which
    ray.shutdown does not know of yet, and which would linger for up to a minute)."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    arrived: list[int] = []
    interrupt = handlers[signal.SIGINT]
    if callable(interrupt):  # Ray's start can swallow the KeyboardInterrupt a Ctrl-C raises in it: noted, raised after
        def noted(signum: int, frame: FrameType | None) -> None:
            arrived.append(signum)
            interrupt(signum, frame)

        signal.signal(signal.SIGINT, noted)
    with killed_if_interrupted(ray.shutdown):
        try:
            ray.init(**options)
            if arrived:
                raise KeyboardInterrupt
        except SystemExit as exit_:
            if exit_.code != signal.SIGTERM:
                raise
            raise KeyboardInterrupt from None
        except Exception as error:
            if arrived:  # the failure may be the interruption's doing: it is one
                raise KeyboardInterrupt from None
            if "address" not in options:
                raise
            raise SRError(f"cannot join the Ray cluster at {options['address']}: {error}. A cluster with token "
                          "authentication needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN).") from None
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)


def _quiet_worker_notices() -> None:
    """Ray prints "(raylet) A worker died..." to the driver's stdout even with log_to_driver off;
    the batch reports the same event as a retried attempt, in its own words. The printer is a
    private hook of Ray's (checked on 2.60): when it is gone, the notices simply show."""
    try:
        import ray._private.worker as ray_worker
    except ImportError:
        return
    def silent(data: object, ignore_prefix: bool = False) -> None:
        return None

    if hasattr(ray_worker, "print_to_stdstream"):
        ray_worker.print_to_stdstream = silent


def _check_paths_here(inputs: list[str], directory: str) -> str | None:
    import socket
    import tempfile

    host = socket.gethostname()
    for path in inputs:
        if not os.access(path, os.R_OK):
            return f"node {host} cannot read {path}"
    try:
        handle, name = tempfile.mkstemp(prefix=".vs-sr-probe-", dir=directory)
        os.close(handle)
        os.unlink(name)
    except OSError as error:
        return f"node {host} cannot write to {directory} ({error.strerror})"
    return None


def _ray_reason(error: Exception) -> str:
    name = type(error).__name__
    if "WorkerCrashed" in name:
        return "the Ray worker running it died"
    if "NodeDied" in name:
        return "the Ray node running it died"
    if "Cancelled" in name:
        return "stopped"
    return f"{name}: {str(error).splitlines()[0] if str(error) else ''}"


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A fast, one-line failure for an address where no Ray head answers (ray.init itself would
    retry for minutes)."""
    import socket

    if "://" in address:  # ray://: a Ray Client address, for drivers that run off the cluster
        raise SRError(f"--ray {address}: give the head node's HOST:PORT (its GCS address, e.g. 10.0.0.5:6379); vs-sr "
                      "runs its driver on this machine, so it does not take Ray Client (ray://) addresses.")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise SRError(f"--ray {address}: give the head node as HOST:PORT (e.g. 10.0.0.5:6379).")
    if host.startswith("["):
        raise SRError(f"--ray {address}: vs-sr reaches Ray heads over IPv4; give the head's IPv4 address or a host "
                      "name that resolves to it.")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except socket.gaierror as error:
        raise SRError(f"cannot resolve the Ray head's host '{host}': {error.strerror}.") from None
    except OSError as error:
        raise SRError(f"no Ray head answers at {address}: {error.strerror or error}.") from None
