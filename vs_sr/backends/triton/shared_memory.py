"""System shared memory between a client and a Triton server on the same host: one region per
stream, and the clean-up of regions that killed clients left registered."""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import secrets
import socket
import weakref

import numpy as np

from ...children import owner_gone, owner_tag
from ...errors import SRError
from ...models.architectures import round_up
from .address import Address
from .connection import Connection

SHM_ENV = "VS_SR_TRITON_SHM"


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
        self.slots = slots
        size = self.slot_bytes * slots
        self.name = f"{self.PREFIX}{_host()}-{owner_tag()}-{secrets.token_hex(4)}"
        path = f"/dev/shm/{self.name}"
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(descriptor, size)
            # Reserve the pages now: a sparse region on a full /dev/shm (Docker's is 64 MB) would kill
            # with SIGBUS whichever process first wrote an unbacked page, the server included; this
            # fails with ENOSPC instead, and the caller falls back to sending tiles over the socket.
            os.posix_fallocate(descriptor, 0, size)
            self.memory = mmap.mmap(descriptor, size)
            connection.call("register_system_shared_memory", self.name, f"/{self.name}", size)
        finally:
            os.close(descriptor)
            os.unlink(path)
        self.buffer = np.frombuffer(self.memory, np.uint8)
        weakref.finalize(self, _unregister, connection, self.name)

    def renewed(self, connection: Connection) -> SharedRegion:
        """A region of the same layout, registered anew (with a server that lost this one)."""
        return SharedRegion(connection, self.slots, self.in_bytes, self.out_bytes)

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
        connection.client(control=True).unregister_system_shared_memory(
            name, **({"client_timeout": 5.0} if connection.address.protocol == "grpc" else {}))
    except Exception:  # the server may be gone: its registrations went with it
        pass


def forget_dead_regions(connection: Connection) -> list[str]:
    """Unregister regions that vs_sr processes on this host left when they were killed (their
    memory stays mapped by the server until then), and remove the /dev/shm files of those killed
    while registering (a name is removed once the server has mapped it). Returns the names dropped."""
    grpc = connection.address.protocol == "grpc"
    status = connection.call("get_system_shared_memory_status", **({"as_json": True} if grpc else {}))
    regions = status.get("regions", {}).values() if grpc else status
    # a client in another pid namespace (container) on this host is never taken for dead: owner_gone
    pattern = re.compile(rf"{re.escape(SharedRegion.PREFIX)}{re.escape(_host())}-(\d+(?:n\d*)?)-[0-9a-f]+$")
    dropped = []
    for region in regions:
        match = pattern.match(region.get("name", ""))
        if match and owner_gone(match.group(1)):
            _unregister(connection, region["name"])
            dropped.append(region["name"])
    for name in os.listdir("/dev/shm"):
        match = pattern.match(name)
        if match and owner_gone(match.group(1)):
            with contextlib.suppress(OSError):  # another's, or gone meanwhile
                os.unlink(f"/dev/shm/{name}")
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
