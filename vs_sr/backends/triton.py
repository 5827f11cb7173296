"""Triton Inference Server as a backend: the tiles of a frame go to a model on a server, so many
encoders (vspipe processes on any machine) share the GPUs of one box and its dynamic batcher.

At open the server and the model's config are checked (one image input and output, FP32 or FP16,
3 channels, batch limit, scale: from the config's dims, else from a tiny probe inference) and
every mismatch becomes an `SRError` saying what to fix. Each tile travels as its own request of
one static shape, so the batcher can merge tiles across frames and processes; a stream keeps the
tiles of a frame in flight together. A server on this host can read the tiles from system shared
memory instead of the socket (one region per stream, reused). Every call has a deadline and is
retried when the server is briefly unreachable: nothing waits forever.

The model's name on the server is `<registry name>-x<scale>`, or the file's stem for a path
(`models.served_name`); `vs-sr triton export` writes repositories with those names.
"""

from __future__ import annotations

import functools
import mmap
import os
import re
import secrets
import socket
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import numpy as np

from ..children import alive
from ..errors import SRError
from ..log import info
from ..models import Network, Precision
from ..models.architectures import arch_traits, round_up
from ..models.resolve import named_spec, resolve, served_name
from .base import Backend, Session, SessionSpec, import_runtime

URL_ENV = "VS_SR_TRITON_URL"
TIMEOUT_ENV = "VS_SR_TRITON_TIMEOUT"
SHM_ENV = "VS_SR_TRITON_SHM"
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}
DEFAULT_TIMEOUT = 300.0  # seconds for one inference, queueing behind other clients included
CONTROL_TIMEOUT = 30.0  # seconds for readiness, config and shared-memory calls
RETRIES = 3  # further attempts after UNAVAILABLE, 0.5 s, 1 s, 2 s apart
IN_FLIGHT = 4  # tiles of a frame sent together by one stream
WIRE: dict[str, tuple[str, type[np.floating], Precision]] = {
    # config data_type: (tensor datatype, numpy dtype, precision)
    "TYPE_FP32": ("FP32", np.float32, "fp32"),
    "TYPE_FP16": ("FP16", np.float16, "fp16"),
}
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
INSTALL = "the Triton client is not installed: pip install 'tritonclient[grpc,http]' (or vs_sr[triton])"
T = TypeVar("T")


@dataclass(frozen=True)
class Address:
    """A Triton server endpoint: grpc://host:port or http://host:port."""

    protocol: Literal["grpc", "http"]
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Address:
        parts = urlsplit(url.strip())
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port == -1 or parts.path not in ("", "/") \
                or parts.query or parts.username:
            raise SRError(f"server must look like grpc://host:8001 or http://host:8000, not {url!r}.")
        protocol: Literal["grpc", "http"] = "grpc" if parts.scheme == "grpc" else "http"
        return cls(protocol, parts.hostname, port or DEFAULT_PORTS[protocol])

    @property
    def target(self) -> str:
        """host:port as tritonclient wants it (no scheme)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def local(self) -> bool:
        return self.host in LOCAL_HOSTS

    def __str__(self) -> str:
        return f"{self.protocol}://{self.target}"


def normalise_server(value: object) -> str:
    """A `server=` value as its canonical URL (the port filled in), or an error saying the form."""
    if not isinstance(value, str):
        raise SRError(f"server must be a URL such as 'grpc://host:8001', not {type(value).__name__}.")
    return str(Address.parse(value))


def timeout() -> float:
    """Seconds one inference may take ($VS_SR_TRITON_TIMEOUT, default 300)."""
    text = os.environ.get(TIMEOUT_ENV)
    try:
        value = float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        value = -1.0
    if value <= 0:
        raise SRError(f"{TIMEOUT_ENV} must be a positive number of seconds, not {text!r}.")
    return value


def _modules() -> tuple[Any, Any]:
    """(tritonclient.grpc, tritonclient.http), or an error saying what to install."""
    grpc, missing = import_runtime("tritonclient.grpc", INSTALL)
    http, _ = import_runtime("tritonclient.http", INSTALL)
    if grpc is None or http is None:
        raise SRError(missing or INSTALL)
    return grpc, http


class Unreachable(Exception):
    """The server did not answer (refused, reset, restarting): worth another try."""


def _explain(error: BaseException, address: Address, model: str | None) -> BaseException:
    """A tritonclient / socket error as `Unreachable` (retry) or an `SRError` saying what to do."""
    from tritonclient.utils import InferenceServerException

    seconds = timeout()
    if isinstance(error, InferenceServerException):
        status, message = str(error.status()), error.message() or str(error)
        if status in ("StatusCode.UNAVAILABLE", "503") or "failed to connect" in message.lower():
            return Unreachable(message)
        if status == "StatusCode.DEADLINE_EXCEEDED":
            return SRError(f"Triton server {address} gave no answer within {seconds:g} s (hung or overloaded): "
                           f"check it, add model instances, or raise ${TIMEOUT_ENV}.")
        if status in ("StatusCode.NOT_FOUND", "404") or "unknown model" in message.lower():
            return SRError(f"Triton server {address} has no model '{model}' ready ({message}); export it with "
                           f"`vs-sr triton export` into the server's repository, or check model= and scale=.")
        if "not healthy" in message:
            return SRError(f"Triton server {address}: the instance running '{model}' crashed ({message}); "
                           "restart the server.")
        return SRError(f"Triton server {address} refused the request for '{model}': {message}")
    if isinstance(error, TimeoutError | socket.timeout):
        return SRError(f"Triton server {address} gave no answer within {seconds:g} s (hung or overloaded): "
                       f"check it, add model instances, or raise ${TIMEOUT_ENV}.")
    if isinstance(error, OSError) or type(error).__name__ in ("HTTPConnectionClosed", "ConnectionClosed"):
        return Unreachable(str(error) or type(error).__name__)
    return error


def _unreachable_error(address: Address, reason: str) -> SRError:
    return SRError(f"cannot reach Triton server {address} ({reason.strip().splitlines()[0][:200]}): start it "
                   f"(`vs-sr triton serve --repo DIR`), or fix server= / ${URL_ENV}.")


class Connection:
    """One server, either protocol: deadlines on every call, errors explained, retries on
    UNAVAILABLE. A gRPC client is shared by threads; geventhttpclient's HTTP client works only in
    the thread that made it, so HTTP gets one client per thread."""

    def __init__(self, address: Address, model: str) -> None:
        self.address = address
        self.model = model
        self.timeout = timeout()
        self.grpc, self.http = _modules()
        self._local = threading.local()
        self._shared: Any = None
        if address.protocol == "grpc":
            self._shared = self.grpc.InferenceServerClient(address.target)

    @property
    def module(self) -> Any:
        return self.grpc if self.address.protocol == "grpc" else self.http

    def client(self) -> Any:
        if self._shared is not None:
            return self._shared
        client = getattr(self._local, "client", None)
        if client is None:
            client = self.http.InferenceServerClient(
                self.address.target, concurrency=IN_FLIGHT, connection_timeout=min(self.timeout, CONTROL_TIMEOUT),
                network_timeout=self.timeout)
            self._local.client = client
        return client

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A control call (readiness, config, shared memory) with a deadline and retries."""
        if self.address.protocol == "grpc":
            kwargs["client_timeout"] = min(self.timeout, CONTROL_TIMEOUT)
        return self._retrying(lambda: getattr(self.client(), method)(*args, **kwargs))

    def _retrying(self, attempt: Callable[[], T]) -> T:
        for retry in range(RETRIES + 1):
            try:
                return attempt()
            except Exception as error:  # tritonclient's, the socket's: sorted by _explain
                explained = _explain(error, self.address, self.model)
                if not isinstance(explained, Unreachable):
                    raise explained from error
                if retry == RETRIES:
                    raise _unreachable_error(self.address, str(explained)) from error
                time.sleep(0.5 * 2**retry)
        raise AssertionError("unreachable")

    def infer_all(self, requests: Sequence[tuple[list[Any], list[Any]]]) -> list[Any]:
        """Results of all (inputs, outputs) requests, sent together; failed ones retried alone."""
        outcomes = self._send_all(requests)
        results = []
        for (inputs, outputs), outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                explained = _explain(outcome, self.address, self.model)
                if not isinstance(explained, Unreachable):
                    raise explained from outcome
                outcome = self._retrying(functools.partial(self._infer, inputs, outputs))
            results.append(outcome)
        return results

    def _infer(self, inputs: list[Any], outputs: list[Any]) -> Any:
        if self.address.protocol == "grpc":
            return self.client().infer(self.model, inputs, outputs=outputs, client_timeout=self.timeout)
        return self.client().infer(self.model, inputs, outputs=outputs)

    def _send_all(self, requests: Sequence[tuple[list[Any], list[Any]]]) -> list[Any]:
        """Each request's result or exception; the network's deadline bounds every wait."""
        if len(requests) == 1:
            try:
                return [self._infer(*requests[0])]
            except Exception as error:
                return [error]
        if self.address.protocol == "http":
            handles = []
            for inputs, outputs in requests:
                try:
                    handles.append(self.client().async_infer(self.model, inputs, outputs=outputs))
                except Exception as error:
                    handles.append(error)
            return [_http_result(handle) for handle in handles]
        outcomes: list[Any] = [None] * len(requests)
        remaining = [len(requests)]
        done = threading.Condition()

        def finished(index: int, result: Any, error: Any) -> None:
            with done:
                outcomes[index] = error if error is not None else result
                remaining[0] -= 1
                done.notify()

        for index, (inputs, outputs) in enumerate(requests):
            try:
                self.client().async_infer(self.model, inputs, functools.partial(finished, index), outputs=outputs,
                                          client_timeout=self.timeout)
            except Exception as error:  # refused before sending: recorded like an answer
                finished(index, None, error)
        with done:
            # client_timeout ends every call; the margin only guards against a lost callback.
            if not done.wait_for(lambda: remaining[0] == 0, timeout=self.timeout + CONTROL_TIMEOUT):
                raise SRError(f"Triton server {self.address} gave no answer within {self.timeout:g} s.")
        return outcomes


def _http_result(handle: Any) -> Any:
    if isinstance(handle, BaseException):
        return handle
    try:
        return handle.get_result()
    except Exception as error:
        return error


@dataclass(frozen=True, kw_only=True)
class ServedNetwork(Network):
    """A network on a Triton server, with what its config says about the tensors vs_sr sends."""

    server: str
    served_name: str
    input_name: str
    output_name: str
    datatype: str
    """FP32 or FP16: the tensors on the wire."""
    max_batch_size: int

    @property
    def precision(self) -> Precision:
        return next(p for name, _, p in WIRE.values() if name == self.datatype)

    @property
    def dtype(self) -> type[np.floating]:
        return next(d for name, d, _ in WIRE.values() if name == self.datatype)


@dataclass(frozen=True)
class ConfigFacts:
    """The parts of a model config vs_sr relies on, checked."""

    input_name: str
    output_name: str
    datatype: str
    max_batch_size: int
    fixed_batch: int | None
    fixed_hw: tuple[int, int] | None
    scale: int | None


def check_config(config: Any, model: str, address: Address) -> ConfigFacts:
    """What vs_sr needs from a `model_config_pb2.ModelConfig`, or an error naming the mismatch."""
    from tritonclient.grpc import model_config_pb2 as mc

    where = f"model '{model}' on {address}"
    fix = "export it with `vs-sr triton export`"
    if len(config.input) != 1 or len(config.output) != 1:
        raise SRError(f"{where} has {len(config.input)} input(s) and {len(config.output)} output(s); vs_sr needs one "
                      f"image input and one image output: {fix}.")
    image, result = config.input[0], config.output[0]
    types = [mc.DataType.Name(t.data_type) for t in (image, result)]
    if types[0] not in WIRE or types[0] != types[1]:
        raise SRError(f"{where} takes {types[0].removeprefix('TYPE_')} and gives {types[1].removeprefix('TYPE_')}; "
                      f"vs_sr sends and reads FP32 or FP16 tiles: {fix} --precision fp32 or fp16.")
    if image.format == mc.ModelInput.FORMAT_NHWC:
        raise SRError(f"{where} takes NHWC tensors; vs_sr sends NCHW (planar RGB): {fix}.")
    batched = config.max_batch_size > 0
    dims_in, dims_out = list(image.dims), list(result.dims)
    rank = 3 if batched else 4
    if len(dims_in) != rank or len(dims_out) != rank:
        raise SRError(f"{where} has input dims {dims_in} and output dims {dims_out}; vs_sr needs "
                      f"{'[3, H, W] (batch dimension implied by max_batch_size)' if batched else '[N, 3, H, W]'}: {fix}.")
    channels_in, channels_out = dims_in[-3], dims_out[-3]
    if channels_in not in (3, -1) or channels_out not in (3, -1):
        raise SRError(f"{where} takes {channels_in}-channel images and gives {channels_out}; vs_sr sends and reads "
                      f"RGB (3 channels): {fix}.")
    fixed_batch = None if batched or dims_in[0] < 1 else dims_in[0]
    fixed_hw = (dims_in[-2], dims_in[-1]) if min(dims_in[-2:]) > 0 else None
    scale = None
    if fixed_hw and min(dims_out[-2:]) > 0:
        (oh, ow), (ih, iw) = dims_out[-2:], fixed_hw
        if oh % ih or ow % iw or oh // ih != ow // iw:
            raise SRError(f"{where} maps {iw}x{ih} to {ow}x{oh}, which is no integer scale: {fix}.")
        scale = oh // ih
    return ConfigFacts(image.name, result.name, WIRE[types[0]][0], max(0, config.max_batch_size), fixed_batch,
                       fixed_hw, scale)


def _model_config(connection: Connection) -> Any:
    from google.protobuf import json_format
    from tritonclient.grpc import model_config_pb2 as mc

    if connection.address.protocol == "grpc":
        return connection.call("get_model_config", connection.model).config
    # HTTP answers with the config as JSON (protobuf field names): read it into the same message.
    document = connection.call("get_model_config", connection.model)
    return json_format.ParseDict(document, mc.ModelConfig(), ignore_unknown_fields=True)


def _check_ready(connection: Connection) -> None:
    address, model = connection.address, connection.model
    if not connection.call("is_server_ready"):
        raise SRError(f"Triton server {address} is up but not ready (still loading, or a model failed to load): "
                      "check its log.")
    if not connection.call("is_model_ready", model):
        index = connection.call("get_model_repository_index", **({"as_json": True} if address.protocol == "grpc" else {}))
        models = index.get("models", []) if isinstance(index, dict) else index
        ready = sorted(m["name"] for m in models if m.get("state") == "READY")
        raise SRError(f"Triton server {address} has no model '{model}' ready (ready: {', '.join(ready) or 'none'}); "
                      "export it with `vs-sr triton export` into the server's repository, or check model= and scale=.")


def _traits_for(model: str | os.PathLike[str], scale: int) -> tuple[str, Any]:
    """(label name, architecture traits) for a served model: the registry's for a name, the file's
    when the file is here too, else those of an unknown graph (its shapes come from the server)."""
    path = Path(os.fspath(model)).expanduser()
    if path.suffix.lower() in (".onnx", ".pth", ".pt", ".safetensors", ".ckpt"):
        if path.is_file():
            network = resolve(path, scale)
            return network.name, network.traits
        return path.stem, arch_traits("onnx", scale)
    spec = named_spec(os.fspath(model).lower(), scale)
    return spec.name, spec.traits


def _probe_scale(connection: Connection, facts: ConfigFacts, traits: Any) -> int:
    """The model's scale from one tiny inference (dynamic height/width say nothing in the config)."""
    side = round_up(max(16, traits.min_size), traits.multiple)
    height, width = facts.fixed_hw or (side, side)
    batch = facts.fixed_batch or 1
    dtype = next(d for name, d, _ in WIRE.values() if name == facts.datatype)
    module = connection.module
    tensor = module.InferInput(facts.input_name, [batch, 3, height, width], facts.datatype)
    tensor.set_data_from_numpy(np.zeros((batch, 3, height, width), dtype), **_binary(connection))
    output = module.InferRequestedOutput(facts.output_name, **_binary(connection))
    result = connection.infer_all([([tensor], [output])])[0]
    shape = result.as_numpy(facts.output_name).shape
    if len(shape) != 4 or shape[2] % height or shape[3] % width or shape[2] // height != shape[3] // width:
        raise SRError(f"model '{connection.model}' on {connection.address} turned a {width}x{height} tile into "
                      f"shape {list(shape)}, which is no integer scale of it.")
    return int(shape[2] // height)


def _binary(connection: Connection) -> dict[str, bool]:
    return {"binary_data": True} if connection.address.protocol == "http" else {}


def served_network(model: str | os.PathLike[str], scale: int, server: str, noise: int | None = None) -> ServedNetwork:
    """The network `model` at `scale` (and denoise level `noise`) as the server at `server` runs it, checked: the server is
    ready, the model is loaded, its config fits what vs_sr sends, and its scale is `scale`."""
    name, traits = _traits_for(model, scale)
    address = Address.parse(server)
    connection = Connection(address, served_name(model, scale, noise))
    _check_ready(connection)
    facts = check_config(_model_config(connection), connection.model, address)
    native = facts.scale or _probe_scale(connection, facts, traits)
    if native != scale:
        raise SRError(f"model '{connection.model}' on {address} is a x{native} network, not x{scale}: pass "
                      f"scale={native}, or serve the x{scale} model under that name.")
    return ServedNetwork(
        name=name, scale=scale, path=Path(os.fspath(model)), digest="", traits=traits, format="served",
        fixed_shape=facts.fixed_hw, fixed_batch=facts.fixed_batch, server=str(address),
        served_name=connection.model, input_name=facts.input_name, output_name=facts.output_name,
        datatype=facts.datatype, max_batch_size=facts.max_batch_size,
    )


class SharedRegion:
    """System shared memory for one stream: slot k holds request k's input, then its output.

    The /dev/shm name is removed as soon as the server has mapped the region (both mappings stay
    valid), so nothing is left in /dev/shm even if this process is killed. The registration is
    dropped when the session goes; the next client on this host drops those of dead processes.
    """

    PREFIX = "vs_sr-"

    def __init__(self, connection: Connection, slots: int, in_bytes: int, out_bytes: int) -> None:
        self.in_bytes, self.out_bytes = in_bytes, out_bytes
        self.slot_bytes = round_up(in_bytes + out_bytes, 64)
        size = self.slot_bytes * slots
        self.name = f"{self.PREFIX}{_host()}-{os.getpid()}-{secrets.token_hex(4)}"
        path = f"/dev/shm/{self.name}"
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(descriptor, size)
            self.memory = mmap.mmap(descriptor, size)
            connection.call("register_system_shared_memory", self.name, f"/{self.name}", size)
        finally:
            os.close(descriptor)
            os.unlink(path)
        self.buffer = np.frombuffer(self.memory, np.uint8)
        weakref.finalize(self, _unregister, connection, self.name)

    def input_offset(self, slot: int) -> int:
        return slot * self.slot_bytes

    def output_offset(self, slot: int) -> int:
        return slot * self.slot_bytes + self.in_bytes

    def view(self, offset: int, dtype: type[np.floating], shape: tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(shape))
        return np.frombuffer(self.memory, dtype, count, offset).reshape(shape)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _unregister(connection: Connection, name: str) -> None:
    try:
        connection.client().unregister_system_shared_memory(
            name, **({"client_timeout": 5.0} if connection.address.protocol == "grpc" else {}))
    except Exception:  # the server may be gone: its registrations went with it
        pass


def forget_dead_regions(connection: Connection) -> list[str]:
    """Unregister regions that vs_sr processes on this host left when they were killed (their
    memory stays mapped by the server until then). Returns the names dropped."""
    grpc = connection.address.protocol == "grpc"
    status = connection.call("get_system_shared_memory_status", **({"as_json": True} if grpc else {}))
    regions = status.get("regions", {}).values() if grpc else status
    pattern = re.compile(rf"{re.escape(SharedRegion.PREFIX)}{re.escape(_host())}-(\d+)-[0-9a-f]+$")
    dropped = []
    for region in regions:
        match = pattern.match(region.get("name", ""))
        if match and not alive(int(match.group(1))):
            _unregister(connection, region["name"])
            dropped.append(region["name"])
    return dropped


def use_shared_memory(address: Address) -> bool | None:
    """$VS_SR_TRITON_SHM: "on" (required), "off", or "auto" (default: try it on a loopback server,
    fall back to the socket if the server cannot map it). None means auto."""
    mode = os.environ.get(SHM_ENV, "auto").lower()
    if mode not in ("auto", "on", "off"):
        raise SRError(f"{SHM_ENV} must be auto, on or off, not {mode!r}.")
    if mode == "auto":
        return None if address.local else False
    return mode == "on"


class TritonSession(Session):
    """One stream: up to `slots` requests of `per_request` tiles in flight together."""

    partial_batches = True

    def __init__(self, connection: Connection, network: ServedNetwork, spec: SessionSpec,
                 region: SharedRegion | None) -> None:
        self.connection = connection
        self.network = network
        self.region = region
        self.per_request = network.fixed_batch or 1
        self.slots = spec.batch // self.per_request
        s = network.scale
        self.in_shape = (self.per_request, 3, spec.height, spec.width)
        self.out_shape = (self.per_request, 3, spec.height * s, spec.width * s)
        self.output = np.empty((spec.batch, *self.out_shape[1:]), np.float32)
        module = connection.module
        binary = _binary(connection)
        self.inputs = [module.InferInput(network.input_name, list(self.in_shape), network.datatype)
                       for _ in range(self.slots)]
        self.outputs = [module.InferRequestedOutput(network.output_name, **({} if region else binary))
                        for _ in range(self.slots)]
        if region is not None:
            for slot in range(self.slots):
                self.inputs[slot].set_shared_memory(region.name, region.in_bytes, offset=region.input_offset(slot))
                self.outputs[slot].set_shared_memory(region.name, region.out_bytes, offset=region.output_offset(slot))

    def run(self, batch: np.ndarray) -> np.ndarray:
        count = -(-len(batch) // self.per_request)
        requests = []
        for slot in range(count):
            tiles = batch[slot * self.per_request:(slot + 1) * self.per_request]
            if len(tiles) < self.per_request:  # a fixed-batch model takes whole batches only
                tiles = np.concatenate([tiles, np.zeros((self.per_request - len(tiles), *tiles.shape[1:]), tiles.dtype)])
            self._put(slot, tiles)
            requests.append(([self.inputs[slot]], [self.outputs[slot]]))
        results = self.connection.infer_all(requests)
        for slot, result in enumerate(results):
            first = slot * self.per_request
            last = min(len(batch), first + self.per_request)
            self.output[first:last] = self._get(slot, result)[: last - first]
        return self.output[: len(batch)]

    def _put(self, slot: int, tiles: np.ndarray) -> None:
        if self.region is None:
            self.inputs[slot].set_data_from_numpy(tiles.astype(self.network.dtype, copy=False), **_binary(self.connection))
        else:
            np.copyto(self.region.view(self.region.input_offset(slot), self.network.dtype, self.in_shape), tiles)

    def _get(self, slot: int, result: Any) -> np.ndarray:
        name = self.network.output_name
        if self.region is None:
            data = result.as_numpy(name)
            shape = tuple(data.shape) if data is not None else ()
        else:
            output = result.get_output(name)
            shape = tuple(output.shape) if hasattr(output, "shape") else tuple(output["shape"])
            data = None
        if shape != self.out_shape:
            raise SRError(f"model '{self.network.served_name}' on {self.network.server} answered a "
                          f"{list(self.in_shape)} tile with shape {list(shape)}, not {list(self.out_shape)}.")
        if data is None:
            assert self.region is not None
            data = self.region.view(self.region.output_offset(slot), self.network.dtype, self.out_shape)
        return data


class TritonBackend(Backend):
    name = "triton"

    def __init__(self, server: str | None = None) -> None:
        """`server`: the server's URL (default $VS_SR_TRITON_URL)."""
        text = server or os.environ.get(URL_ENV) or None
        self.server: str | None = None
        self.problem = None if text else f"no server given: pass server='grpc://host:8001' or set ${URL_ENV}"
        if text:
            try:
                self.server = normalise_server(text)
            except SRError as error:
                self.problem = error.message

    def unavailable(self) -> str | None:
        try:
            _modules()
        except SRError as error:
            return error.message
        return self.problem

    def precisions(self, device_id: int) -> tuple[Precision, ...]:
        return ("fp32", "fp16")  # what the wire carries; the model on the server decides which

    def auto_precision(self, network: Network, device_id: int) -> Precision:
        return network.precision if isinstance(network, ServedNetwork) else "fp32"

    def batch_size(self, tiles: int) -> int:
        return min(tiles, IN_FLIGHT)

    def device_name(self, device_id: int) -> str:
        return f"Triton server {self.server}"

    def open(self, spec: SessionSpec) -> list[Session]:
        network = spec.network
        if not isinstance(network, ServedNetwork):
            raise SRError("backend 'triton' runs models on a server: build the clip with backend='triton' and server=.")
        if spec.precision != network.precision:
            raise SRError(f"model '{network.served_name}' on {network.server} takes {network.datatype} tensors, so it "
                          f"runs {network.precision}, not {spec.precision}: pass precision='{network.precision}' or "
                          "'auto' (or export it again with --precision).")
        address = Address.parse(network.server)
        connection = Connection(address, network.served_name)
        return [TritonSession(connection, network, spec, region)
                for region in self._regions(connection, network, spec)]

    def _regions(self, connection: Connection, network: ServedNetwork, spec: SessionSpec) -> list[SharedRegion | None]:
        """One shared-memory region per stream where the server can map ours; else none."""
        wanted = use_shared_memory(connection.address)
        none: list[SharedRegion | None] = [None] * spec.num_streams
        if wanted is False:
            return none
        itemsize = np.dtype(network.dtype).itemsize
        per_request = network.fixed_batch or 1
        in_bytes = per_request * 3 * spec.height * spec.width * itemsize
        out_bytes = in_bytes * network.scale**2
        slots = spec.batch // per_request
        try:
            forget_dead_regions(connection)
            return [SharedRegion(connection, slots, in_bytes, out_bytes) for _ in range(spec.num_streams)]
        except (SRError, OSError) as error:
            if wanted:
                raise SRError(f"Triton server {connection.address} cannot use shared memory from this process "
                              f"({error}); it must run on this host with the same /dev/shm, or set {SHM_ENV}=off.") from error
            info(f"Triton server {connection.address}: no shared memory ({error}); sending tiles over the socket")
            return none
