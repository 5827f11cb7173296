"""Start and stop the real `tritonserver` that PyPI's nvidia-pytriton wheel bundles (2.51, python
backend only), without importing pytriton itself (it pins numpy<2).

What the binary needs, each learnt the hard way: the python backend's stub copied into a backend
folder we own (the wheel keeps one per Python version elsewhere, and the backend may chmod it);
the Python shared library's folder on LD_LIBRARY_PATH (else model loading hangs forever: checked
before starting); this venv's bin first on PATH (the stub's embedded Python finds its packages
through the `python3` there). The server runs in its own session, so one signal to the process
group also reaches the stubs; it gets SIGTERM if we die (PDEATHSIG); stopping removes the stubs'
/dev/shm regions (our prefix) and our work folder. Ports are chosen free and retried on a clash.

What a SIGKILLed owner could not remove (its work folder, the regions of a server killed with it)
the next start removes: the folder is named after its owner and locked (flock) by the owner and
the server for as long as either lives, so only an unlocked folder of a dead pid is a leftover.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..children import alive, owner_gone, owner_tag, run_child, start_child
from ..errors import SRError
from .model_repository import clear_killed_exports

STARTUP_TIMEOUT = 120.0  # seconds for the models to load
STOP_TIMEOUT = 15.0  # seconds for a graceful stop before the process group is killed
EXIT_TIMEOUT = 5  # seconds tritonserver itself waits for requests in flight when stopping
WORK_PREFIX = "vs-sr-triton-"  # + owner tag + "-" + token: the work folder in the temp dir
SHM_PREFIX = "vs_sr_triton_"  # + owner tag + "_" + token + "_": the stubs' /dev/shm regions
INSTALL = "pip install --no-deps nvidia-pytriton (its numpy<2 pin is not needed; vs_sr uses only its server)"


@dataclass(frozen=True)
class Distribution:
    """The parts of the server inside the installed nvidia-pytriton wheel."""

    binary: Path
    libraries: Path
    backends: Path
    caches: Path
    stub: Path

    @classmethod
    def find(cls) -> Distribution:
        found = importlib.util.find_spec("pytriton")  # locates the package without importing it
        if found is None or not found.submodule_search_locations:
            raise SRError(f"the Triton server is not installed: {INSTALL}.")
        package = Path(next(iter(found.submodule_search_locations)))
        root = package / "tritonserver"
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        distribution = cls(root / "bin" / "tritonserver", package.parent / "nvidia_pytriton.libs", root / "backends",
                           root / "caches", root / "python_backend_stubs" / version / "triton_python_backend_stub")
        if not distribution.binary.is_file():
            raise SRError(f"{distribution.binary} is missing: reinstall the server ({INSTALL}).")
        if not distribution.stub.is_file():
            raise SRError(f"nvidia-pytriton has no python backend for Python {version}; run vs_sr on Python 3.8-3.13.")
        return distribution


def server_environment(distribution: Distribution, base: dict[str, str] | None = None) -> dict[str, str]:
    environment = dict(os.environ if base is None else base)
    library_path = [str(distribution.libraries), str(sysconfig.get_config_var("LIBDIR"))]
    if environment.get("LD_LIBRARY_PATH"):
        library_path.append(environment["LD_LIBRARY_PATH"])
    environment["LD_LIBRARY_PATH"] = ":".join(library_path)
    # The stub's embedded Python looks for `python3` on PATH to find its prefix: this venv's.
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '/usr/bin:/bin')}"
    environment.pop("PYTHONHOME", None)
    return environment


def check_stub(distribution: Distribution, environment: dict[str, str]) -> None:
    """Fail now rather than hang at model load: the stub, run bare, must find libpython (it
    then exits 1, asking for its arguments; 127 means the library is missing)."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise SRError(f"{sys.executable} is built without a shared libpython, which the python backend's stub "
                      "needs: use a Python built with --enable-shared (pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared).")
    done = run_child([str(distribution.stub)], env=environment, stdin=subprocess.DEVNULL,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if done.returncode != 1:
        output = done.stdout.decode(errors="replace").strip().splitlines()
        raise SRError(f"the python backend's stub cannot run here (exit {done.returncode}: "
                      f"{output[-1] if output else 'no output'}).")


def backend_directory(distribution: Distribution, work: Path) -> Path:
    """<work>/backends/python with the backend library, its utilities and a copy of the stub
    (a copy: the backend chmods a stub it finds broken, which must not touch the wheel)."""
    python = work / "backends" / "python"
    python.mkdir(parents=True, exist_ok=True)
    for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
        (python / name).symlink_to(distribution.backends / "python" / name)
    shutil.copy2(distribution.stub, python / distribution.stub.name)
    return work / "backends"


class WorkFolder:
    """A server's work folder (backends, log), named `vs-sr-triton-<owner tag>-<token>` and locked
    while its owner or the server lives: the server inherits the lock's descriptor (`fd`)."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(4)
        self.path = Path(tempfile.gettempdir()) / f"{WORK_PREFIX}{owner_tag()}-{self.token}"
        self.path.mkdir(mode=0o700)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    @property
    def shm_prefix(self) -> str:
        return f"{SHM_PREFIX}{owner_tag()}_{self.token}_"

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self.fd)


def remove_leftovers() -> list[str]:
    """Remove the work folders, and the /dev/shm regions, of servers whose owners died without
    stopping them (SIGKILL); the names removed. The regions of an owner in another pid namespace
    (a container sharing /dev/shm, its temp folder its own) are left alone: `owner_gone`."""
    removed, live = [], set()
    for folder in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*"):
        owner, _, token = folder.name.removeprefix(WORK_PREFIX).partition("-")
        if _in_use(folder, owner):
            live.add((owner, token))
        else:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    for region in Path("/dev/shm").glob(f"{SHM_PREFIX}*"):
        owner, _, rest = region.name.removeprefix(SHM_PREFIX).partition("_")
        if (owner, rest.partition("_")[0]) not in live and owner_gone(owner):
            try:
                region.unlink(missing_ok=True)
            except OSError:  # another user's, in the sticky /dev/shm: not ours to remove, and no reason not to start
                continue
            removed.append(str(region))
    return removed


def _in_use(folder: Path, owner: str) -> bool:
    """Whether a work folder may still be used: its owner lives (or is in another pid namespace), or
    someone holds its lock (the server that outlives its owner for a moment)."""
    if not owner_gone(owner):
        return True
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def free_ports(count: int, host: str) -> list[int]:
    """`count` distinct ports the kernel calls free now (held together, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            handle = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(handle)
            handle.bind((host, 0))
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


class TritonServer:
    """tritonserver on a model repository: `start()` returns when every model is ready, `stop()`
    leaves no process, shared-memory region or work folder behind. A context manager.

    PDEATHSIG follows the thread that started the server: start it from a thread that lives as
    long as the server should (the main thread, typically).
    """

    def __init__(self, repository: Path, *, host: str = "127.0.0.1", http_port: int | None = None,
                 grpc_port: int | None = None, log: Path | None = None,
                 startup_timeout: float = STARTUP_TIMEOUT) -> None:
        """`log`: the file the server's own log is appended to (default: in the work folder,
        which `stop()` removes). Ports left None are chosen free."""
        self.repository = repository.expanduser().absolute()
        self.host = host
        self.requested = (http_port, grpc_port)
        self.http_port, self.grpc_port = http_port or 0, grpc_port or 0
        self.log = log
        self._cancel: threading.Event | None = None  # ends a start early (restart's)
        self._log_start = 0  # where this run's lines begin in the log (a --log file keeps earlier runs')
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.folder: WorkFolder | None = None
        # this server's regions: set per start by its work folder (until then, a prefix of nobody's)
        self.shm_prefix = f"{SHM_PREFIX}{owner_tag()}_{secrets.token_hex(4)}_"

    @property
    def grpc_url(self) -> str:
        return f"grpc://{self._url_host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self._url_host}:{self.http_port}"

    @property
    def _url_host(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"[{host}]" if ":" in host else host

    @property
    def work(self) -> Path | None:
        return None if self.folder is None else self.folder.path

    @property
    def log_path(self) -> Path | None:
        if self.log is not None:
            return self.log
        return None if self.work is None else self.work / "tritonserver.log"

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> TritonServer:
        if self.repository.exists() and not (self.repository / ".").is_dir():
            raise SRError(f"{self.repository} is a file: the model repository is a folder (one made by "
                          "`vs-sr triton export MODEL --repo DIR`).")
        if not (self.repository / ".").is_dir():
            raise SRError(f"model repository not found: {self.repository}.")
        exporting = clear_killed_exports(self.repository)
        while exporting and self._cancel is not None:  # a restart waits for it (serve must go on), a start says so
            if self._cancel.wait(0.5):
                raise StartCancelled()
            exporting = clear_killed_exports(self.repository)
        if exporting:
            raise SRError(f"an export into {self.repository} is running ({exporting[0].name}): start the server when "
                          "it is done (Triton would take the model it is writing for a broken one).")
        if not _models(self.repository):
            raise SRError(f"{self.repository} holds no models (folders with a config.pbtxt): "
                          "fill it with `vs-sr triton export MODEL --repo DIR`.")
        distribution = Distribution.find()
        environment = server_environment(distribution)
        check_stub(distribution, environment)
        remove_leftovers()
        chosen = all(self.requested)
        for _ in range(1 if chosen else 3):  # free ports can be taken before the server binds
            self.folder = WorkFolder()
            self.shm_prefix = self.folder.shm_prefix
            try:
                if not chosen:
                    ports = iter(free_ports(2, self.host))
                    self.http_port, self.grpc_port = (p or next(ports) for p in self.requested)
                self._launch(distribution, environment)
                self._wait_ready()
                return self
            except _PortTaken:
                self.stop()
                if chosen:
                    raise SRError(f"a port of {self.http_url} / {self.grpc_url} is taken: choose others.") from None
            except BaseException:
                self.stop()
                raise
        raise SRError("no free ports for the server after three tries.")

    def restart(self, cancel: threading.Event | None = None) -> TritonServer:
        """Stop what is left of the server and start it again on the same ports (its clients keep
        their URLs). `cancel` set meanwhile ends the start (StartCancelled), the server stopped: a
        SIGTERM during a restart must not wait out the start-up allowance."""
        self.stop()
        self.requested = (self.http_port, self.grpc_port)
        self._cancel = cancel
        try:
            return self.start()
        finally:
            self._cancel = None

    def _launch(self, distribution: Distribution, environment: dict[str, str]) -> None:
        assert self.folder is not None
        backends = backend_directory(distribution, self.folder.path)
        command = [
            str(distribution.binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={backends}",
            f"--cache-directory={distribution.caches}",
            f"--http-address={self.host}", f"--http-port={self.http_port}",
            f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
            "--allow-metrics=false", "--allow-gpu-metrics=false", "--allow-sagemaker=false", "--allow-vertex-ai=false",
            "--exit-on-error=true", "--strict-readiness=true",
            "--disable-auto-complete-config",  # our configs are complete; saves a stub start per model
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            # room for big tiles without growing the stubs' region step by step
            "--backend-config=python,shm-default-byte-size=16777216",
            "--backend-config=python,shm-growth-byte-size=67108864",
            "--pinned-memory-pool-byte-size=0",
            f"--exit-timeout-secs={EXIT_TIMEOUT}",
            "--log-verbose=0",
        ]
        assert self.log_path is not None
        with open(self.log_path, "ab") as output:
            self._log_start = output.seek(0, os.SEEK_END)
            self.process = start_child(command, signal.SIGTERM, env=environment, cwd=self.folder.path,
                                       stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                       start_new_session=True,
                                       pass_fds=(self.folder.fd,))  # the folder stays locked while it runs

    def _wait_ready(self) -> None:
        assert self.process is not None
        url = f"http://{self._url_host}:{self.http_port}/v2/health/ready"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._cancel is not None and self._cancel.is_set():
                raise StartCancelled()
            if self.process.poll() is not None:
                log = self.log_tail()
                if "already in use" in log:
                    raise _PortTaken()
                raise SRError(f"tritonserver stopped while starting (exit {self.process.returncode}): "
                              f"{_failure(log)}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise SRError(f"tritonserver was not ready within {self.startup_timeout:g} s: {_failure(self.log_tail())} "
                      "(models that take longer to load need more: `vs-sr triton serve --startup-timeout SECONDS`)")

    def failure(self, last_line: bool = True) -> str:
        """Why the server stopped or did not start, from its log's error lines (else its last line,
        or "" without `last_line`: a killed server writes no reason)."""
        return _failure(self.log_tail(), last_line)

    def log_tail(self, characters: int = 20000) -> str:
        path = self.log_path
        if path is None or not path.is_file():
            return ""
        with open(path, "rb") as log:
            log.seek(max(self._log_start, log.seek(0, os.SEEK_END) - characters))
            return log.read().decode(errors="replace")

    def session_pids(self) -> list[int]:
        """Live processes of the server's session: the server and its stubs."""
        if self.process is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getsid(int(entry.name)) == self.process.pid and alive(int(entry.name)):
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
        return pids

    def shm_regions(self) -> list[Path]:
        return sorted(Path("/dev/shm").glob(f"{self.shm_prefix}*"))

    def stop(self) -> None:
        """SIGTERM (the server unloads its models and waits for requests in flight), then SIGKILL to
        the whole process group; wait for the stubs to go; remove our /dev/shm regions and folder."""
        process = self.process
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # stubs that outlived the server
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
            deadline = time.monotonic() + 10
            while self.session_pids() and time.monotonic() < deadline:
                time.sleep(0.05)
        for region in self.shm_regions():
            region.unlink(missing_ok=True)
        if self.folder is not None:
            self.folder.remove()
            self.folder = None

    def models(self) -> list[str]:
        return _models(self.repository)


class _PortTaken(Exception):
    pass


class StartCancelled(Exception):
    """A restart's start ended by its `cancel` event (the server is stopped)."""


def _models(repository: Path) -> list[str]:
    return sorted(p.name for p in repository.iterdir() if (p / "config.pbtxt").is_file() and not p.name.startswith("."))


def _failure(log: str, last_line: bool = True) -> str:
    """The lines of the server's log that say why it stopped."""
    lines = [line for line in log.splitlines() if line.startswith("E") or "failed to load" in line
             or "error" in line.lower()]
    keep = [line for line in lines if "CudaDriverHelper" not in line]  # harmless without a GPU
    found = " / ".join(line.strip()[:300] for line in keep[-4:])
    return found or ((log.strip().splitlines() or ["no log"])[-1] if last_line else "")
