"""Triton model repositories from vs_sr's networks: `<repo>/<name>/config.pbtxt` plus the model
files in `<repo>/<name>/1/`, named as `backend="triton"` looks them up (`models.served_name`).

The config is built with Triton's own protobuf (`tritonclient.grpc.model_config_pb2`), written as
text and parsed back before it counts. Platforms:
- `python`: Triton's python backend runs vs_sr's own session (OpenVINO, ONNX Runtime, ...) on the
  ONNX graph beside it; the only one the PyPI server (`vs-sr triton serve`) can load;
- `onnxruntime`: the ONNX graph with a dynamic batch dimension (optionally TensorRT as ONNX
  Runtime's accelerator on GPUs);
- `openvino`: OpenVINO IR (model.xml/.bin), CPU;
- `tensorrt`: a plan must be built with the server's exact TensorRT version on its GPU model, so
  the ONNX graph and the `trtexec` command that builds the plan are written for the server.
Height and width stay dynamic where the architecture allows (HAT exports one tile size).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ..atomic import RANDOM, fitting_name
from ..children import run_child
from ..errors import SRError
from ..models import Network, resolve
from ..models.architectures import round_up
from ..models.onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx
from ..models.resolve import served_name
from ..paths import make_folder
from .python_model import ENTRY_POINT

Platform = Literal["python", "onnxruntime", "openvino", "tensorrt"]
Kind = Literal["cpu", "gpu"]
WirePrecision = Literal["fp32", "fp16"]
PLATFORMS: tuple[str, ...] = get_args(Platform)
KINDS: tuple[str, ...] = get_args(Kind)
WIRE_PRECISIONS: tuple[str, ...] = get_args(WirePrecision)
VERSION = "1"
CONFIG = "config.pbtxt"
PLAN_SCRIPT = "build_plan.sh"
TRACE_SIDE = 64  # height/width a dynamic-size graph is traced at
PROFILE_MIN_SIDE = 16  # smallest tile side of a TensorRT profile


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """How the model is served; the defaults are `vs-sr triton export`'s."""

    platform: Platform = "python"
    max_batch_size: int = 4
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 0
    """How long the batcher waits for more requests (0: batch what is already queued)."""
    instances: int = 1
    kind: Kind = "cpu"
    precision: WirePrecision = "fp32"
    """The tensors on the wire and, except for `python` (runs the session's own choice), the graph."""
    tile: tuple[int, int] | None = None
    """(width, height): one static tile size; None keeps the size dynamic where the network allows."""
    runtime: str = "auto"
    """`python` platform: the vs_sr backend inside the server ("auto", "openvino", "ort", ...)."""
    threads: int | None = None
    """CPU threads per instance (None: the runtime's choice)."""
    tensorrt_accelerator: bool = False
    """`onnxruntime` on GPUs: ONNX Runtime's TensorRT execution provider."""

    def check(self) -> None:
        if self.platform not in PLATFORMS:
            raise SRError(f"unknown platform {self.platform!r}; use one of {', '.join(PLATFORMS)}.")
        if self.kind not in KINDS or self.precision not in WIRE_PRECISIONS:
            raise SRError(f"kind must be cpu or gpu and precision fp32 or fp16, not {self.kind!r}/{self.precision!r}.")
        if self.max_batch_size < 1 or self.instances < 1 or self.max_queue_delay_us < 0:
            raise SRError("max batch size and instances must be at least 1, the queue delay at least 0.")
        too_big = [b for b in self.preferred_batch_sizes if not 1 <= b <= self.max_batch_size]
        if too_big:
            raise SRError(f"preferred batch sizes must lie in 1..{self.max_batch_size} (the max batch size), "
                          f"not {too_big}.")
        if self.platform == "tensorrt" and self.kind != "gpu":
            raise SRError("TensorRT plans run on GPUs only: use --kind gpu.")
        if self.platform == "openvino" and self.kind != "cpu":
            raise SRError("Triton's OpenVINO backend runs on the CPU only: use --kind cpu.")
        if self.tensorrt_accelerator and (self.platform != "onnxruntime" or self.kind != "gpu"):
            raise SRError("the TensorRT accelerator is for --platform onnxruntime --kind gpu.")
        if self.tile is not None and min(self.tile) < 1:
            raise SRError(f"tile sizes must be positive, not {self.tile}.")
        self._check_runtime_options()

    def _check_runtime_options(self) -> None:
        """Options of another platform's runtime, which the config would leave out without a word."""
        if self.runtime != "auto" and self.platform != "python":
            raise SRError(f"--runtime chooses the vs_sr backend inside a --platform python model; --platform "
                          f"{self.platform} runs its own: drop --runtime.")
        if self.threads and self.platform == "tensorrt":
            raise SRError("--threads sets CPU threads, and TensorRT plans run on the GPU: drop --threads.")
        if self.platform == "python" and self.kind == "gpu" and self.runtime == "openvino":
            raise SRError("vs_sr's OpenVINO backend runs on the CPU: use --kind cpu, or --runtime auto, ort or torch "
                          "on a GPU.")


@dataclass(frozen=True)
class TensorShape:
    """The image tensors of the graph as the config describes them."""

    input_name: str
    output_name: str
    batch: int | None
    """A graph's fixed batch size (then no dynamic batching), or None for a dynamic batch."""
    height: int | None
    width: int | None
    scale: int

    def dims(self, output: bool = False) -> list[int]:
        s = self.scale if output else 1
        sides = [-1 if self.height is None else self.height * s, -1 if self.width is None else self.width * s]
        return [3, *sides] if self.batch is None else [self.batch, 3, *sides]


@dataclass(frozen=True)
class Exported:
    """A model written into a repository."""

    name: str
    directory: Path
    config: Any
    """The `model_config_pb2.ModelConfig` as read back from config.pbtxt."""
    files: tuple[Path, ...]
    replaced: bool
    notes: tuple[str, ...] = field(default=())
    next_step: str | None = None
    """What must still happen before a server can load it (TensorRT: build the plan there)."""


def model_config_pb2() -> Any:
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise SRError("exporting Triton configs needs the Triton client: pip install 'tritonclient[grpc,http]' "
                      "(or vs_sr[triton]).") from None
    return model_config_pb2


def write_config(directory: Path, config: Any) -> Path:
    """config.pbtxt in `directory`, checked by parsing it back into an equal message."""
    from google.protobuf import text_format

    path = directory / CONFIG
    path.write_text(text_format.MessageToString(config), encoding="utf-8")
    if read_config(path) != config:
        raise SRError(f"{path} does not read back as the config that was written; this is a bug in vs_sr.")
    return path


def read_config(path: Path) -> Any:
    """A config.pbtxt as a `ModelConfig`, or an error naming the file and the problem."""
    from google.protobuf import text_format

    try:
        return text_format.Parse(path.read_text(encoding="utf-8"), model_config_pb2().ModelConfig())
    except (OSError, text_format.ParseError) as error:
        raise SRError(f"{path} is not a readable Triton model config: {error}") from None


def build_config(name: str, shape: TensorShape, options: ExportOptions) -> Any:
    """The `ModelConfig` of model `name` with tensors `shape`, served as `options` say."""
    mc = model_config_pb2()
    batched = shape.batch is None
    config = mc.ModelConfig(name=name, max_batch_size=options.max_batch_size if batched else 0)
    _set_platform(config, options)
    datatype = mc.TYPE_FP16 if options.precision == "fp16" else mc.TYPE_FP32
    config.input.add(name=shape.input_name, data_type=datatype, dims=shape.dims())
    config.output.add(name=shape.output_name, data_type=datatype, dims=shape.dims(output=True))
    if batched:  # Triton batches only models with a batch dimension
        config.dynamic_batching.preferred_batch_size.extend(options.preferred_batch_sizes)
        config.dynamic_batching.max_queue_delay_microseconds = options.max_queue_delay_us
    kind = mc.ModelInstanceGroup.KIND_GPU if options.kind == "gpu" else mc.ModelInstanceGroup.KIND_CPU
    config.instance_group.add(count=options.instances, kind=kind)
    for key, value in _parameters(shape, options).items():
        config.parameters[key].string_value = value
    if options.tensorrt_accelerator:
        _tensorrt_accelerator(config, shape, options)
    return config


def _set_platform(config: Any, options: ExportOptions) -> None:
    if options.platform == "python":
        config.backend = "python"
    elif options.platform == "onnxruntime":
        config.platform = "onnxruntime_onnx"
        config.default_model_filename = "model.onnx"
    elif options.platform == "openvino":
        config.backend = "openvino"
        config.default_model_filename = "model.xml"
    else:
        config.platform = "tensorrt_plan"
        config.default_model_filename = "model.plan"


def _parameters(shape: TensorShape, options: ExportOptions) -> dict[str, str]:
    if options.platform == "python":
        values = {"scale": str(shape.scale), "runtime": options.runtime, "onnx_file": "model.onnx"}
        if options.threads:
            values["threads"] = str(options.threads)
        return values
    if options.platform == "onnxruntime" and options.threads:
        return {"intra_op_thread_count": str(options.threads), "inter_op_thread_count": "1"}
    if options.platform == "openvino":
        values = {"PERFORMANCE_HINT": "LATENCY"}  # parallelism comes from instances and the batcher
        if options.threads:
            values["INFERENCE_NUM_THREADS"] = str(options.threads)
        return values
    return {}


def profile_shapes(shape: TensorShape, options: ExportOptions, multiple: int, largest: int) -> tuple[str, str, str]:
    """TensorRT min/opt/max input shapes ("NxCxHxW"): batch 1..max, the tile size or a size range."""
    batch = shape.batch or options.max_batch_size
    low_batch = shape.batch or 1
    if shape.height is not None and shape.width is not None:
        low = opt = high = (shape.height, shape.width)
    else:
        side = round_up(PROFILE_MIN_SIDE, multiple)
        low, opt, high = (side, side), (round_up(256, multiple),) * 2, (round_up(largest, multiple),) * 2
    return (f"{low_batch}x3x{low[0]}x{low[1]}", f"{batch}x3x{opt[0]}x{opt[1]}", f"{batch}x3x{high[0]}x{high[1]}")


def _tensorrt_accelerator(config: Any, shape: TensorShape, options: ExportOptions) -> None:
    low, opt, high = profile_shapes(shape, options, 1, 1024)
    accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
    accelerator.parameters["precision_mode"] = options.precision.upper()
    accelerator.parameters["max_workspace_size_bytes"] = str(2**30)
    accelerator.parameters["trt_engine_cache_enable"] = "1"
    for key, value in (("min", low), ("opt", opt), ("max", high)):
        accelerator.parameters[f"trt_profile_{key}_shapes"] = f"{shape.input_name}:{value}"


def export_model(model: str | os.PathLike[str], scale: int, repository: Path,
                 options: ExportOptions | None = None, noise: int | None = None) -> Exported:
    """Write `model` at `scale` (and denoise level `noise`) into `repository` as `options` say
    (replacing an earlier export of the same name, which appears only once complete)."""
    options = options or ExportOptions()
    options.check()
    network = resolve(model, scale, noise)
    name = served_name(model, scale, noise)
    repository = repository.expanduser().absolute()
    if options.platform == "python" and any(c.isspace() for c in str(repository / name)):
        # The python backend starts its stub through `bash -c` without quoting the model path.
        raise SRError(f"the python backend cannot load models from paths with spaces: {repository / name}; "
                      "choose another --repo.")
    make_folder(repository, "--repo")
    clear_killed_exports(repository)
    with _staging_folder(repository, name) as staging:
        exported = _write_model(network, name, staging, options)
        target = repository / name
        replaced = target.exists()
        if replaced:
            shutil.rmtree(target)
        staging.rename(target)
    return Exported(name, target, exported.config, tuple(target / f.relative_to(staging) for f in exported.files),
                    replaced, exported.notes, exported.next_step)


STAGING = ".export-"  # a model being written: REPO/.<name>.export-XXXXXXXX, renamed into place when complete
STARTING = ".starting-"  # the same folder before it is locked


@contextmanager
def _staging_folder(repository: Path, name: str) -> Iterator[Path]:
    """A folder in `repository` to write a model into, locked (flock) while the export runs: Triton
    takes every folder of a repository for a model, hidden ones too, so a server's start must tell
    a running export's folder from a killed one's (`clear_killed_exports`)."""
    # made under a name `clear_killed_exports` does not look at, locked, then renamed (the lock follows the folder):
    # a serve starting meanwhile never sees it unlocked
    made = Path(tempfile.mkdtemp(dir=repository, prefix=f".{fitting_name(name, 1 + len(STARTING) + RANDOM)}{STARTING}"))
    descriptor = os.open(made, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):  # (a file system without flock on folders: an export still works)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        staging = made.with_name(made.name.replace(STARTING, STAGING))
        made.rename(staging)
        made = staging
        yield staging
    finally:
        shutil.rmtree(made, ignore_errors=True)  # (nothing left there once renamed into place)
        os.close(descriptor)


def clear_killed_exports(repository: Path) -> list[Path]:
    """Remove the staging folders that killed exports left in `repository`; returns the folders of
    exports still running."""
    live = []
    for folder in repository.glob(f".*{STAGING}*"):
        try:
            descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # finished (renamed) or removed meanwhile, or not a folder
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            live.append(folder)
        except OSError:  # no flock on this file system: whose it is cannot be told, so it stays
            pass
        else:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(descriptor)
    return live


@dataclass(frozen=True)
class _Written:
    config: Any
    files: list[Path]
    notes: tuple[str, ...]
    next_step: str | None


def _write_model(network: Network, name: str, directory: Path, options: ExportOptions) -> _Written:
    version = directory / VERSION
    version.mkdir(parents=True)
    onnx, shape, notes = _onnx_graph(network, options)
    files = [version / "model.onnx"]
    shutil.copyfile(onnx, files[0])
    next_step = None
    if options.platform == "python":
        files.append(version / "model.py")
        files[-1].write_text(ENTRY_POINT, encoding="utf-8")
    elif options.platform == "openvino":
        files[0].unlink()
        files = _openvino_ir(onnx, version)
    elif options.platform == "tensorrt":
        script = _plan_script(directory, shape, options, network.traits.multiple, math.isqrt(network.traits.tile_pixels))
        files.append(script)
        next_step = (f"build {VERSION}/model.plan on the server, with its TensorRT and GPU (a plan runs only on "
                     f"the TensorRT version and GPU model it was built with): bash {script.name} in the model's "
                     "folder there (trtexec comes with TensorRT and Triton's containers)")
    config = build_config(name, shape, options)
    files.insert(0, write_config(directory, config))
    return _Written(config, files, notes, next_step)


def _onnx_graph(network: Network, options: ExportOptions) -> tuple[Path, TensorShape, tuple[str, ...]]:
    """The ONNX graph to serve, and the shape of its tensors."""
    if network.format == "onnx":
        return _user_graph(network, options)
    precision = options.precision if options.platform != "python" else "fp32"  # vs_sr sessions take fp32
    if precision == "fp16" and not network.traits.precision.fp16_safe:
        raise SRError(f"{network.label} overflows in plain fp16; export it with --precision fp32 (a GPU server can "
                      "still lower it inside, e.g. with the TensorRT accelerator's precision mode).")
    static = options.tile is not None or network.arch == "hat"  # HAT's attention masks fix the size
    if static:
        side = math.isqrt(network.traits.tile_pixels)
        width, height = (round_up(t, network.traits.multiple) for t in (options.tile or (side, side)))
    else:
        width = height = round_up(TRACE_SIDE, network.traits.multiple)
    notes = [f"{network.label} takes {width}x{height} tiles only (its attention windows fix the size)"] \
        if network.arch == "hat" and options.tile is None else []
    batched = batch_independent(export_onnx(network, 2, height, width, "fp32", dynamic=not static, dynamic_batch=True),
                                height, width)
    if not batched:
        notes.append(f"{network.label}'s graph is only right at the batch size it was traced at (the exporter fixed "
                     "a batch-dependent size), so it is served one tile per request, without dynamic batching")
    path = export_onnx(network, 2 if batched else 1, height, width, precision, dynamic=not static, dynamic_batch=batched)
    shape = TensorShape(INPUT_NAME, OUTPUT_NAME, None if batched else 1, height if static else None,
                        width if static else None, network.scale)
    return path, shape, tuple(notes)


def batch_independent(path: Path, height: int, width: int) -> bool:
    """Whether a graph with a dynamic batch gives each tile the same result alone as in a batch
    of two. Tracing can fix a size that depends on the batch (HAT's window_reverse computes the
    batch with int()); such a graph still runs at other batch sizes, but mixes up the tiles."""
    import numpy as np
    import onnxruntime as ort

    tiles = np.random.default_rng(0).random((2, 3, height, width), dtype=np.float32)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        together = session.run(None, {name: tiles})[0]
        alone = session.run(None, {name: tiles[1:]})[0]
    except Exception:  # a graph that cannot even run two tiles is no batching graph either
        return False
    return together.shape[0] == 2 and bool(np.allclose(together[1:], alone, rtol=0, atol=1e-4))


def _user_graph(network: Network, options: ExportOptions) -> tuple[Path, TensorShape, tuple[str, ...]]:
    """A user's ONNX file as it is: its own tensor names, batch and size."""
    import onnx

    if options.precision == "fp16" and options.platform != "python":  # the python platform casts on the wire
        raise SRError(f"{network.path.name} is served as given; vs_sr cannot lower it to fp16. Export it in fp16 "
                      "yourself, or use --precision fp32.")
    graph = onnx.load(str(network.path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    image = next(i for i in graph.input if i.name not in initializers)
    height, width = network.fixed_shape or (None, None)
    if options.tile is not None and network.fixed_shape is not None and options.tile != (width, height):
        raise SRError(f"{network.path.name} takes {width}x{height} tiles only; drop --tile or pass --tile {width}x{height}.")
    batch = network.fixed_batch
    notes = (f"{network.path.name} has a fixed batch of {batch}: served without dynamic batching",) if batch else ()
    if batch is None and not batch_independent(network.path, height or TRACE_SIDE, width or TRACE_SIDE):
        batch = 1
        notes = (f"{network.path.name} mixes up the tiles of a batch (its batch dimension only works at one size): "
                 "served one tile per request, without dynamic batching",)
    return network.path, TensorShape(image.name, graph.output[0].name, batch, height, width, network.scale), notes


def _openvino_ir(onnx: Path, version: Path) -> list[Path]:
    """model.xml/.bin converted by OpenVINO's Python API in a child process: in a process whose
    VapourSynth core loaded vs-mlrt's OpenVINO, the Python package refuses to load."""
    xml = version / "model.xml"
    code = ("import sys, openvino as ov; "
            "ov.save_model(ov.convert_model(sys.argv[1]), sys.argv[2], compress_to_fp16=False)")
    done = run_child([sys.executable, "-c", code, str(onnx), str(xml)], capture_output=True, text=True,
                     stdin=subprocess.DEVNULL, timeout=600)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SRError(f"OpenVINO could not convert {onnx.name} to IR: {last} (pip install openvino).")
    return [xml, xml.with_suffix(".bin")]


def _plan_script(directory: Path, shape: TensorShape, options: ExportOptions, multiple: int, largest: int) -> Path:
    low, opt, high = profile_shapes(shape, options, multiple, largest)
    name = shape.input_name
    command = ["trtexec", f"--onnx={VERSION}/model.onnx", f"--saveEngine={VERSION}/model.plan",
               f"--minShapes={name}:{low}", f"--optShapes={name}:{opt}", f"--maxShapes={name}:{high}"]
    if options.precision == "fp16":
        command.append("--fp16")
    script = directory / PLAN_SCRIPT
    script.write_text(
        "#!/bin/sh\n"
        "# Build the TensorRT plan of this model ON THE SERVER: a plan only runs on the TensorRT version\n"
        "# and GPU model it was built with. Run it in this folder (trtexec ships with TensorRT and with\n"
        "# Triton's containers, e.g. /usr/src/tensorrt/bin/trtexec).\n"
        'cd "$(dirname "$0")" && exec ' + " ".join(command) + ' "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    return script
