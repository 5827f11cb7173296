"""Running the studio: uvicorn on a socket we bind first (so a port of 0 is told back), refusing
to listen beyond loopback without a token; the studio's own warnings in uvicorn's log format."""

from __future__ import annotations

import copy
import ipaddress
import logging as logging_module
import re
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from ..errors import SRError
from .app import StudioConfig, create_app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def log_config(level: str = "warning") -> dict[str, Any]:
    """uvicorn's logging, plus the studio's logger (warnings: uploads given up, failed jobs; info:
    each job's steps) on its stderr handler, so that they read like the server's other lines."""
    from uvicorn.config import LOGGING_CONFIG

    logging = copy.deepcopy(LOGGING_CONFIG)
    logging["loggers"]["vs_sr.studio"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    logging.setdefault("filters", {})["token"] = {"()": HiddenToken}
    logging["handlers"]["access"]["filters"] = ["token"]
    return logging


class HiddenToken(logging_module.Filter):
    """Request lines (--log-level info) without the value of an `access_token=` in their URL."""

    def filter(self, record: logging_module.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(TOKEN_IN_URL.sub(r"\1***", arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


TOKEN_IN_URL = re.compile(r"(access_token=)[^&\s]*")
BACKLOG = 2048  # uvicorn's own default
GRACEFUL_SECONDS = 5


class StudioServer(uvicorn.Server):
    """uvicorn's server, telling the studio when a signal asks it to stop: its event streams end at
    once (uvicorn waits for open responses before it stops; past GRACEFUL_SECONDS it cuts them)."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self.stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stopping.set()
        super().handle_exit(sig, frame)


def serve(config: StudioConfig, host: str, port: int, ray: str | None = None,
          announce: Callable[[str], None] = print, root_path: str = "", log_level: str = "warning") -> None:
    """Serve until SIGINT/SIGTERM; `announce` gets the URL once the socket listens. `root_path`: the
    path a reverse proxy serves it under; `log_level` "info" adds a line per request and job step."""
    if not is_loopback(host) and not config.token:
        raise SRError(f"listening on {host} lets other machines in: pass --token TOKEN (every API call then needs "
                      "it), or keep the default --host 127.0.0.1.")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)  # now, not when uvicorn starts: a client that connects on the announced URL waits
    except OSError as error:
        sock.close()
        raise SRError(f"cannot listen on {host}:{port}: {error.strerror}.") from None
    executor = None
    try:
        if ray is not None:
            from ..batch.executors import RayExecutor
            from ..batch.launch import RAY_LOCAL

            executor = RayExecutor(None if ray == RAY_LOCAL else ray, config.jobs, gpu=ray != RAY_LOCAL)
        app = create_app(config, executor)
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
        announce(f"vs-sr studio: http://{shown}:{bound[1]}/ (API docs at /docs; Ctrl-C stops)")
        # A stop waits this long for requests in flight, then ends them: an open event stream (a client
        # following a job) would otherwise hold the server, and the job it follows, up forever.
        served = uvicorn.Config(app, log_level=log_level, log_config=log_config(log_level), root_path=root_path,
                                timeout_graceful_shutdown=GRACEFUL_SECONDS)
        StudioServer(served, app.state.studio.stopping).run(sockets=[sock])
    finally:
        sock.close()
        if executor is not None:
            executor.close()
