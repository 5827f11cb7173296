"""What a served model is: its config checked against what vs_sr sends (one image in and out,
FP32/FP16, NCHW, 3 channels, batch limit) and its scale, from the config or a tiny probe."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SRError
from ...models import Network, Precision
from ...models.architectures import arch_traits, round_up
from ...models.resolve import named_spec, resolve, served_name
from .address import Address
from .connection import Connection, binary

WIRE: dict[str, tuple[str, type[np.floating], Precision]] = {
    # config data_type: (tensor datatype, numpy dtype, precision)
    "TYPE_FP32": ("FP32", np.float32, "fp32"),
    "TYPE_FP16": ("FP16", np.float16, "fp16"),
}


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
    tensor.set_data_from_numpy(np.zeros((batch, 3, height, width), dtype), **binary(connection))
    output = module.InferRequestedOutput(facts.output_name, **binary(connection))
    result = connection.infer_all([([tensor], [output])])[0]
    shape = result.as_numpy(facts.output_name).shape
    if len(shape) != 4 or shape[2] % height or shape[3] % width or shape[2] // height != shape[3] // width:
        raise SRError(f"model '{connection.model}' on {connection.address} turned a {width}x{height} tile into "
                      f"shape {list(shape)}, which is no integer scale of it.")
    return int(shape[2] // height)



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
