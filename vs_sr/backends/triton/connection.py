"""One connection to a Triton server over gRPC or HTTP: a deadline on every call, tritonclient's
errors explained in words, retries while the server is briefly unreachable."""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ...errors import SRError
from ..base import import_runtime
from .address import TIMEOUT_ENV, URL_ENV, Address, timeout

CONTROL_TIMEOUT = 30.0  # seconds for readiness, config and shared-memory calls
RETRIES = 3  # further attempts after UNAVAILABLE, 0.5 s, 1 s, 2 s apart
IN_FLIGHT = 4  # tiles of a frame sent together by one stream
INSTALL = "the Triton client is not installed: pip install 'tritonclient[grpc,http]' (or vs_sr[triton])"
T = TypeVar("T")


def client_modules() -> tuple[Any, Any]:
    """(tritonclient.grpc, tritonclient.http), or an error saying what to install."""
    grpc, missing = import_runtime("tritonclient.grpc", INSTALL)
    http, _ = import_runtime("tritonclient.http", INSTALL)
    if grpc is None or http is None:
        raise SRError(missing or INSTALL)
    return grpc, http


class Unreachable(Exception):
    """The server did not answer (refused, reset, restarting): worth another try."""


class RegionLost(SRError):
    """The server no longer knows a shared-memory region we registered: it was restarted (a new
    process has none of the old one's registrations). The session registers a new one."""


STOPPING = "it is shutting down or stopped"


def _explain(error: BaseException, address: Address, model: str | None, deadline: float,
             ready: Callable[[], bool] | None = None) -> BaseException:
    """A tritonclient / socket error as `Unreachable` (retry) or an `SRError` saying what to do.
    `deadline`: the seconds the call was given. `ready` asks the server whether it is ready: a
    server that is shutting down unloads its models first, so its "unknown model" means
    "stopping", not "export the model"."""
    from tritonclient.utils import InferenceServerException

    if isinstance(error, InferenceServerException):
        status, message = str(error.status()), error.message() or str(error)
        if status in ("StatusCode.UNAVAILABLE", "503") or "failed to connect" in message.lower():
            return Unreachable(message)
        if status == "StatusCode.DEADLINE_EXCEEDED":
            return _no_answer(address, deadline)
        if "unable to find shared memory region" in message.lower():
            return RegionLost(f"Triton server {address} no longer holds this clip's shared memory ({message}): it "
                              "was restarted. Open the clip again.")
        if (status in ("StatusCode.NOT_FOUND", "404") or "unknown model" in message.lower()) and ready is not None \
                and not ready():
            return Unreachable(STOPPING)
        if status in ("StatusCode.NOT_FOUND", "404") or "unknown model" in message.lower():
            return SRError(f"Triton server {address} has no model '{model}' ready ({message}); export it with "
                           f"`vs-sr triton export` into the server's repository, or check model= and scale=.")
        if "not healthy" in message:
            return SRError(f"Triton server {address}: the instance running '{model}' crashed ({message}); "
                           "restart the server.")
        return SRError(f"Triton server {address} refused the request for '{model}': {message}")
    if isinstance(error, TimeoutError | socket.timeout):
        return _no_answer(address, deadline)
    if isinstance(error, OSError) or type(error).__name__ in ("HTTPConnectionClosed", "ConnectionClosed"):
        return Unreachable(str(error) or type(error).__name__)
    return error


def _no_answer(address: Address, deadline: float) -> SRError:
    # $VS_SR_TRITON_TIMEOUT raises a control call's deadline only up to CONTROL_TIMEOUT
    advice = (f"check it (readiness, configuration and shared-memory calls wait at most {CONTROL_TIMEOUT:g} s)"
              if deadline >= CONTROL_TIMEOUT else f"check it, add model instances, or raise ${TIMEOUT_ENV}")
    return SRError(f"Triton server {address} gave no answer within {deadline:g} s (hung or overloaded): {advice}.")


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
        self.grpc, self.http = client_modules()
        self._local = threading.local()
        self._shared: Any = None
        if address.protocol == "grpc":
            self._shared = self.grpc.InferenceServerClient(address.target)

    @property
    def module(self) -> Any:
        return self.grpc if self.address.protocol == "grpc" else self.http

    def client(self, control: bool = False) -> Any:
        """The client for requests, or for `control` calls: over HTTP the deadline belongs to the
        client (no per-call one), so control calls get a client of their own with theirs."""
        if self._shared is not None:
            return self._shared
        name = "control" if control else "client"
        client = getattr(self._local, name, None)
        if client is None:
            client = self.http.InferenceServerClient(
                self.address.target, concurrency=1 if control else IN_FLIGHT,
                connection_timeout=self.control_timeout,
                network_timeout=self.control_timeout if control else self.timeout)
            setattr(self._local, name, client)
        return client

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A control call (readiness, config, shared memory) with a deadline and retries."""
        if self.address.protocol == "grpc":
            kwargs["client_timeout"] = self.control_timeout
        return self._retrying(lambda: getattr(self.client(control=True), method)(*args, **kwargs),
                              self.control_timeout)

    @property
    def control_timeout(self) -> float:
        return min(self.timeout, CONTROL_TIMEOUT)

    def server_ready(self) -> bool:
        """Whether the server says it is ready now; False when it cannot be asked."""
        kwargs = {"client_timeout": self.control_timeout} if self.address.protocol == "grpc" else {}
        try:
            return bool(self.client(control=True).is_server_ready(**kwargs))
        except Exception:  # refused, reset, timed out: not ready either
            return False

    def _retrying(self, attempt: Callable[[], T], deadline: float) -> T:
        for retry in range(RETRIES + 1):
            try:
                return attempt()
            except Exception as error:  # tritonclient's, the socket's: sorted by _explain
                explained = _explain(error, self.address, self.model, deadline, self.server_ready)
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
                explained = _explain(outcome, self.address, self.model, self.timeout, self.server_ready)
                if not isinstance(explained, Unreachable):
                    raise explained from outcome
                outcome = self._retrying(functools.partial(self._infer, inputs, outputs), self.timeout)
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


def binary(connection: Connection) -> dict[str, bool]:
    return {"binary_data": True} if connection.address.protocol == "http" else {}
