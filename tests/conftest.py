"""Shared fixtures: real weights (imported from the ncnn package), real images, real clips.

Every test runs against the real VapourSynth core, the real runtimes and real or officially
configured networks; model and cache directories point into a per-session temporary folder.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import vapoursynth as vs

pytest_plugins = ["child_processes"]  # `spawn`, and no process outlives the test or fixture that started it

core = vs.core
VS_SR = str(Path(sys.executable).with_name("vs-sr"))


def load_script(name: str) -> ModuleType:
    """scripts/NAME.py imported as a module, to test its functions (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass of the script looks its module up there
    spec.loader.exec_module(module)
    return module


def vs_sr(*args: str, env: dict[str, str] | None = None, timeout: float = 900,
          cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real `vs-sr` command of this environment, run to completion (no stdin)."""
    return subprocess.run([VS_SR, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def in_private_mounts(mount: str, command: str) -> subprocess.CompletedProcess[str]:
    """`sh -c "MOUNT || exit 77; COMMAND"` in a mount namespace of its own (a small tmpfs over a folder, seen
    by nothing else); the test is skipped where no such namespace can be made."""
    ran = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          f"{mount} || exit 77; {command}"], capture_output=True, text=True, timeout=120)
    if ran.returncode == 77 or "unshare failed" in ran.stderr:
        pytest.skip(f"no private mount namespace here: {ran.stderr.strip()}")
    return ran


def in_own_pid_namespace(code: str, env: dict[str, str] | None = None) -> str:
    """Python `code` run in a pid namespace of its own, as in another container on this host (the
    same /dev/shm, network and files; its /proc shows its own processes only); its stdout. The test is
    skipped where no such namespace can be made."""
    ran = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})
    if ran.returncode != 0 and "unshare failed" in ran.stderr:
        pytest.skip(f"no pid namespace of its own here: {ran.stderr.strip()}")
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def isa_capped_environment(cap: str | None) -> dict[str, str]:
    """This process's environment with OpenVINO held to the oneDNN ISA level `cap` (both variables,
    read once per process; None: the CPU as it is); skips where the CPU lacks features the level
    stands for (an emulated CPU can only drop features)."""
    from vs_sr.devices import ISA_CAP_VARIABLES, ISA_CAPS, cpu_features

    if cap is not None and not ISA_CAPS[cap] <= cpu_features():
        pytest.skip(f"this CPU lacks {sorted(ISA_CAPS[cap] - cpu_features())}")
    env = {k: v for k, v in os.environ.items() if k not in ISA_CAP_VARIABLES}
    return env | (dict.fromkeys(ISA_CAP_VARIABLES, cap) if cap else {})


def ffmpeg(*args: str) -> None:
    """Generate a test file with the real ffmpeg."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *args], check=True)


def cut_short(source: Path, target: Path, frames: int, partial: bool = False) -> Path:
    """`source` as a copy that stopped early leaves it: its bytes up to the end of the video
    packet of frame number `frames` (in file order), or with `partial` up to the middle of it."""
    packets = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pos,size",
                              "-of", "csv=p=0", str(source)], capture_output=True, text=True, check=True).stdout.split()
    position, size = (int(x) for x in packets[frames - 1].split(",")[:2])
    target.write_bytes(source.read_bytes()[: position + (size // 2 if partial else size)])
    return target


def vfr_clip(path: Path) -> Path:
    """50 frames of 32x24 at a variable rate: 2 s at 10 fps, then 1 s at 30 fps."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=10:duration=2", "-f", "lavfi", "-i",
           "testsrc2=size=32x24:rate=30:duration=1", "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-fps_mode", "vfr", str(path))
    return path


def framemd5(path: Path) -> list[str]:
    """The md5 of every decoded frame of a file's first video track."""
    done = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"],
                          capture_output=True, text=True, check=True)
    return [line.rsplit(",", 1)[1].strip() for line in done.stdout.splitlines() if not line.startswith("#")]


@pytest.fixture(scope="session", autouse=True)
def isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Model and cache directories of our own, so tests neither read nor pollute the user's."""
    root = tmp_path_factory.mktemp("vs_sr")
    dirs = {"models": root / "models", "cache": root / "cache"}
    os.environ["VS_SR_MODEL_DIR"] = str(dirs["models"])
    os.environ["VS_SR_CACHE_DIR"] = str(dirs["cache"])
    # The user data dir is searched after VS_SR_MODEL_DIR: point it into the session as well.
    os.environ["XDG_DATA_HOME"] = str(root / "xdg-data")
    return dirs


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright, for the studio's page tests (skipped without them)."""
    sync = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh --test installs it)")
    with sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def ncnn_models(isolated_dirs: dict[str, Path]) -> dict[str, Path]:
    """The three offline Real-ESRGAN networks' ncnn files, imported once per session (the `.param`s)."""
    from vs_sr.models import REGISTRY
    from vs_sr.models.ncnn import import_files

    return {
        name: import_files(REGISTRY[name][4].ncnn[None], isolated_dirs["models"])
        for name in ("realesr-animevideov3", "realesrgan-x4plus-anime", "realesrgan-x4plus")
    }


def random_weights(arch: str, name: str, scale: int, directory: Path) -> Path:
    """A randomly initialised network of an official registry config, saved as .pth."""
    import torch

    from vs_sr.models import REGISTRY
    from vs_sr.models.pytorch import build_module

    torch.manual_seed(1234)
    spec = REGISTRY[name][scale]
    module = build_module(spec.arch, spec.config)
    path = directory / f"random-{name}-x{scale}.pth"
    torch.save({"params_ema": module.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def hat_s_pth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_weights("hat", "hat-s", 4, tmp_path_factory.mktemp("hat"))


def small_compact_weights(directory: Path) -> Path:
    """A small Compact network (16 features, 4 convolutions, x4), randomly initialised, as .pth:
    a weight file of the user's own that runs in moments."""
    import torch
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    path = directory / "compact-small.pth"
    torch.save({"params": Compact(num_feat=16, num_conv=4, upscale=4).state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def rrdb_pth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_weights("rrdbnet", "realesrgan-x4plus", 4, tmp_path_factory.mktemp("rrdb"))


def photo(height: int, width: int, offset: int = 0) -> np.ndarray:
    """A (3, height, width) float32 crop of a real photograph (scikit-image's astronaut)."""
    from skimage import data

    image = data.astronaut().astype(np.float32) / 255.0
    y, x = 40 + offset * 3, 120 + offset * 5
    return np.ascontiguousarray(image[y : y + height, x : x + width].transpose(2, 0, 1))


def rgb_clip(images: list[np.ndarray]) -> vs.VideoNode:
    """An RGBS clip whose frame n is images[n] (each (3, h, w) float32)."""
    _, height, width = images[0].shape
    blank = core.std.BlankClip(format=vs.RGBS, width=width, height=height, length=len(images), fpsnum=25, fpsden=1)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), images[n][p])
        return out

    return blank.std.ModifyFrame(blank, fill)


def moving_photo_clip(width: int = 64, height: int = 48, length: int = 6) -> vs.VideoNode:
    return rgb_clip([photo(height, width, n) for n in range(length)])


def frame_planes(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)])


def frame_hash(frame: vs.VideoFrame) -> str:
    sha = hashlib.sha256()
    for p in range(frame.format.num_planes):
        sha.update(np.ascontiguousarray(np.asarray(frame[p])).tobytes())
    return sha.hexdigest()


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def bare_network(path_or_name: str, scale: int, image: np.ndarray) -> np.ndarray:
    """The network itself on one (3, h, w) image, in PyTorch fp32, clamped like the filter."""
    import torch

    from vs_sr.models import resolve, torch_module

    module = torch_module(resolve(path_or_name, scale))
    with torch.inference_mode():
        return module(torch.from_numpy(image)[None]).clamp(0, 1)[0].numpy()


@dataclass(frozen=True)
class Process:
    pid: int
    parent: int
    state: str
    """R, S, T (stopped), Z (a zombie) ..."""
    cmdline: str


def processes(token: str = "") -> list[Process]:
    """Running processes (zombies left out) whose command line mentions `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == str(os.getpid()):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if token in cmdline and fields[0] != "Z":
            found.append(Process(int(entry.name), int(fields[1]), fields[0], cmdline))
    return found


def hung_tool(folder: Path, tool: str, pattern: str) -> dict[str, str]:
    """PATH with a shim for `tool` that stops itself when its arguments match `pattern` (and runs
    the real tool otherwise, or once continued)."""
    real = subprocess.run(["which", tool], capture_output=True, text=True, check=True).stdout.strip()
    shim = folder / tool
    shim.write_text(f"#!/bin/sh\ncase \"$*\" in *\"{pattern}\"*) kill -STOP $$ ;; esac\nexec {real} \"$@\"\n")
    shim.chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}"}


def stopped(token: str) -> bool:
    return any(p.state == "T" for p in processes(token))


def wait_until(condition, timeout: float = 60.0, what: str = "a condition"):
    """Poll `condition` until it gives something true; that value, or an AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def signal_one(find: Callable[[], list[int]], sig: signal.Signals, what: str, timeout: float = 300) -> int:
    """Send `sig` to the first process `find` lists, as soon as there is one, and return its pid;
    one that ended in between is skipped (small test chunks can end within a second)."""
    def send() -> int | None:
        for pid in find():
            try:
                os.kill(pid, sig)
                return pid
            except ProcessLookupError:
                continue
        return None

    return wait_until(send, timeout, what)


def on_a_small_disk(folder: Path, megabytes: int, command: list[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run `command` with `folder` on a tmpfs of `megabytes` (in a private mount namespace: nothing
    outside sees it); skips the test where such mounts are not allowed."""
    script = f"mount -t tmpfs -o size={megabytes}m tmpfs {folder} && exec " + " ".join(map(shlex.quote, command))
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=timeout)
    if "unshare" in done.stderr or "mount:" in done.stderr:
        pytest.skip(f"private mounts are not available here: {done.stderr.strip()}")
    return done


@dataclass(frozen=True)
class SmallDisk:
    """A tmpfs over `folder` in a private mount namespace that stays while the test runs: commands
    run inside it (`command`), and the test reaches its files from outside through /proc/PID/root
    (`outside`), to fill the disk or free it at the moment it chooses."""

    holder: int
    """The process that holds the namespace open."""
    folder: Path

    def command(self, *args: str) -> list[str]:
        return ["nsenter", "-t", str(self.holder), "-m", "--", *args]

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=timeout)

    def outside(self, path: Path) -> Path:
        return Path(f"/proc/{self.holder}/root{path}")

    def fill(self, leave: int = 0) -> Path:
        """Write a file until the disk is full, then give back `leave` bytes; returns the file
        (delete it to free the space)."""
        filler = self.outside(self.folder / "filler")
        with open(filler, "ab", buffering=0) as handle:
            for size in (1 << 16, 4096):
                try:
                    while True:
                        handle.write(bytes(size))
                except OSError as error:
                    assert error.errno == errno.ENOSPC, error
            handle.truncate(max(0, handle.tell() - leave))
        return filler


@contextmanager
def small_disk(folder: Path, megabytes: int) -> Iterator[SmallDisk]:
    """`folder` on a tmpfs of `megabytes` that only commands run through the SmallDisk see; skips
    the test where such mounts are not allowed. The namespace ends with the block."""
    script = f"mount -t tmpfs -o size={megabytes}m tmpfs {shlex.quote(str(folder))} && echo mounted && exec cat"
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert holder.stdin is not None and holder.stdout is not None and holder.stderr is not None
    if holder.stdout.readline().strip() != "mounted":
        holder.kill()
        problem = holder.stderr.read().strip()
        holder.wait()
        pytest.skip(f"private mounts are not available here: {problem}")
    try:
        yield SmallDisk(holder.pid, folder)
    finally:
        holder.stdin.close()  # `cat` ends, and the namespace with it once nothing else runs inside
        holder.wait(timeout=60)


# --- Triton: a real server on loopback, with a repository exported by vs_sr -------------------------

NEAREST_MODEL = '''\
"""A nearest-neighbour upscaler by the `scale` parameter: a stand-in for configs vs_sr must refuse."""
import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.scale = int(config["parameters"]["scale"]["string_value"])
        self.input, self.output = config["input"][0]["name"], config["output"][0]["name"]

    def execute(self, requests):
        responses = []
        for request in requests:
            x = np.from_dlpack(pb_utils.get_input_tensor_by_name(request, self.input))
            y = np.ascontiguousarray(x.repeat(self.scale, 2).repeat(self.scale, 3))
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor.from_dlpack(self.output, y)]))
        return responses
'''


def nearest_model(repository: Path, name: str, scale: int, dtype: str = "TYPE_FP32", channels: int = 3) -> None:
    """A model of the nearest-neighbour stand-in, with a config vs_sr may have to refuse."""
    from tritonclient.grpc import model_config_pb2 as mc

    from vs_sr.serving.model_repository import write_config

    directory = repository / name
    (directory / "1").mkdir(parents=True)
    (directory / "1" / "model.py").write_text(NEAREST_MODEL)
    config = mc.ModelConfig(name=name, backend="python", max_batch_size=4)
    config.input.add(name="input", data_type=mc.DataType.Value(dtype), dims=[channels, -1, -1])
    config.output.add(name="output", data_type=mc.DataType.Value(dtype), dims=[channels, -1, -1])
    config.instance_group.add(count=1, kind=mc.ModelInstanceGroup.KIND_CPU)
    config.parameters["scale"].string_value = str(scale)
    write_config(directory, config)


def needs_triton() -> None:
    """Skip where the Triton client or the server wheel is missing (scripts/setup.sh installs both)."""
    pytest.importorskip("tritonclient.grpc")
    from vs_sr.errors import SRError
    from vs_sr.serving.triton_server import Distribution

    try:
        Distribution.find()
    except SRError as error:
        pytest.skip(error.message)


@pytest.fixture(scope="session")
def triton_repo(ncnn_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python-platform export of realesr-animevideov3 (FP32, FP16 on the wire as `anime-fp16`,
    and a graph of one fixed shape and batch as `fixed-b1`), plus stand-ins with configs vs_sr must refuse: grayscale (`gray`), UINT8
    tensors (`uint8`), and an x2 model under an x4 name (`realesrgan-x4plus-anime-x4`)."""
    needs_triton()
    from vs_sr.models import resolve
    from vs_sr.models.onnx_export import export_onnx
    from vs_sr.serving import ExportOptions, export_model

    repository = tmp_path_factory.mktemp("triton") / "repo"
    # A short queue delay: tiles of concurrent clients meet in one batch (and tests stay quick).
    export_model("realesr-animevideov3", 4, repository, ExportOptions(max_queue_delay_us=10_000))
    graph = tmp_path_factory.mktemp("graphs") / "anime-fp16.onnx"
    graph.write_bytes(export_onnx(resolve("realesr-animevideov3", 4), 2, 64, 64, dynamic=True,
                                  dynamic_batch=True).read_bytes())
    export_model(graph, 4, repository, ExportOptions(precision="fp16"))
    fixed = graph.with_name("fixed-b1.onnx")  # one 64x48 tile per request: max_batch_size 0, dims [1, 3, 48, 64]
    fixed.write_bytes(export_onnx(resolve("realesr-animevideov3", 4), 1, 48, 64).read_bytes())
    export_model(fixed, 4, repository)
    nearest_model(repository, "gray", 4, channels=1)
    nearest_model(repository, "uint8", 4, dtype="TYPE_UINT8")
    nearest_model(repository, "realesrgan-x4plus-anime-x4", 2)
    return repository


@pytest.fixture(scope="session")
def triton_server(triton_repo: Path):
    """tritonserver on `triton_repo`, on free loopback ports, for the whole session."""
    from vs_sr.serving import TritonServer

    with TritonServer(triton_repo) as server:
        yield server
