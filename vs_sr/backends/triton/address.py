"""Where a Triton server is: its URL parsed and normalised, and how long a call may take."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from ...errors import SRError

URL_ENV = "VS_SR_TRITON_URL"
TIMEOUT_ENV = "VS_SR_TRITON_TIMEOUT"
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}
DEFAULT_TIMEOUT = 300.0  # seconds for one inference, queueing behind other clients included
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


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
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port in (-1, 0) \
                or parts.path not in ("", "/") or parts.query or parts.username:  # (port 0 is no server's)
            raise SRError(f"server= must look like grpc://host:8001 or http://host:8000, not {url!r}.")
        protocol: Literal["grpc", "http"] = "grpc" if parts.scheme == "grpc" else "http"
        return cls(protocol, parts.hostname, DEFAULT_PORTS[protocol] if port is None else port)

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
