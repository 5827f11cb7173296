"""The Triton backend: sessions that send a frame's tiles as requests of one static shape, several
in flight per stream, over the socket or through shared memory."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ...errors import SRError
from ...log import info
from ...models import Network, Precision
from ..base import Backend, Session, SessionSpec
from .address import URL_ENV, Address, normalise_server
from .config import ServedNetwork
from .connection import IN_FLIGHT, Connection, RegionLost, binary, client_modules
from .shared_memory import SHM_ENV, SharedRegion, forget_dead_regions, use_shared_memory


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
        self._new_requests(over_socket=region is None)
        if region is not None:
            self._use_region(region)

    def _new_requests(self, over_socket: bool) -> None:
        module = self.connection.module
        self.inputs = [module.InferInput(self.network.input_name, list(self.in_shape), self.network.datatype)
                       for _ in range(self.slots)]
        self.outputs = [module.InferRequestedOutput(self.network.output_name,
                                                    **(binary(self.connection) if over_socket else {}))
                        for _ in range(self.slots)]

    def run(self, batch: np.ndarray) -> np.ndarray:
        try:
            results = self._send(batch)
        except RegionLost:  # a restarted server: register a new region and send the tiles again
            if self.region is None:
                raise
            try:
                self._use_region(self.region.renewed(self.connection))
            except OSError as error:  # no room for the new region beside the old (a small /dev/shm): the socket
                if use_shared_memory(self.connection.address):  # required
                    raise SRError(f"Triton server {self.connection.address}: no room for a new shared-memory region "
                                  f"after its restart ({error}); enlarge /dev/shm, or set {SHM_ENV}=off.") from error
                info(f"Triton server {self.connection.address}: no shared memory after its restart ({error}); "
                     "sending tiles over the socket")
                self.region = None
                self._new_requests(over_socket=True)
            results = self._send(batch)
        for slot, result in enumerate(results):
            first = slot * self.per_request
            last = min(len(batch), first + self.per_request)
            self.output[first:last] = self._get(slot, result)[: last - first]
        return self.output[: len(batch)]

    def _send(self, batch: np.ndarray) -> list[Any]:
        count = -(-len(batch) // self.per_request)
        requests = []
        for slot in range(count):
            tiles = batch[slot * self.per_request:(slot + 1) * self.per_request]
            if len(tiles) < self.per_request:  # a fixed-batch model takes whole batches only
                tiles = np.concatenate([tiles, np.zeros((self.per_request - len(tiles), *tiles.shape[1:]), tiles.dtype)])
            self._put(slot, tiles)
            requests.append(([self.inputs[slot]], [self.outputs[slot]]))
        return self.connection.infer_all(requests)

    def _use_region(self, region: SharedRegion) -> None:
        self.region = region
        for slot in range(self.slots):
            self.inputs[slot].set_shared_memory(region.name, region.in_bytes, offset=region.input_offset(slot))
            self.outputs[slot].set_shared_memory(region.name, region.out_bytes, offset=region.output_offset(slot))

    def _put(self, slot: int, tiles: np.ndarray) -> None:
        if self.region is None:
            self.inputs[slot].set_data_from_numpy(tiles.astype(self.network.dtype, copy=False), **binary(self.connection))
        else:
            np.copyto(self.region.view(self.region.input_offset(slot), self.network.dtype, self.in_shape), tiles)

    def _get(self, slot: int, result: Any) -> np.ndarray:
        name = self.network.output_name
        if self.region is None:
            data: np.ndarray | None = result.as_numpy(name)  # tritonclient is untyped
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
            client_modules()
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

    def check_precision(self, network: Network, precision: Precision) -> None:
        if isinstance(network, ServedNetwork) and precision != network.precision:
            raise SRError(f"model '{network.served_name}' on {network.server} takes {network.datatype} tensors, so it "
                          f"runs {network.precision}, not {precision}: pass precision='{network.precision}' or "
                          "'auto' (or export it again with --precision).")

    def open(self, spec: SessionSpec) -> list[Session]:
        network = spec.network
        if not isinstance(network, ServedNetwork):
            raise SRError("backend 'triton' runs models on a server: build the clip with backend='triton' and server=.")
        self.check_precision(network, spec.precision)
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
