"""Keeping a served repository up: a tritonserver that dies (a crash in a backend, the OOM killer,
a stray signal) is started again on the same ports, a bounded number of times, each time said with
its exit status; past the bound the server stays down and the caller gets an error saying why."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import SRError
from .triton_server import StartCancelled, TritonServer

RESTARTS = 3  # restarts allowed ...
WINDOW = 600.0  # ... within this many seconds


@dataclass
class RestartBudget:
    """At most `limit` restarts within any `window` seconds."""

    limit: int = RESTARTS
    window: float = WINDOW
    times: list[float] = field(default_factory=list)

    def take(self, now: float) -> bool:
        """Whether one more restart is allowed at `now` (monotonic seconds); counts it if so."""
        self.times = [t for t in self.times if now - t < self.window]
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True

    def describe(self) -> str:
        return f"{self.limit} restart{'s' if self.limit != 1 else ''} in {self.window / 60:g} minutes"


def exit_status(code: int) -> str:
    """A process's return code in words: "exit status 1", "killed by SIGKILL"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def keep_serving(server: TritonServer, stop: threading.Event, report: Callable[[str], None],
                 budget: RestartBudget | None = None, ready: Callable[[], None] | None = None) -> None:
    """Return when `stop` is set. A server that dies meanwhile is restarted while `budget` allows
    (each death and restart goes to `report`, `ready` is called once it serves again); past that,
    an SRError with its exit status and its log's reason."""
    budget = RestartBudget() if budget is None else budget
    while not stop.wait(0.5):
        assert server.process is not None
        code = server.process.poll()
        if code is None:
            continue
        reason = server.failure(last_line=False)
        died = f"tritonserver died ({exit_status(code)})" + (f": {reason}" if reason else "")
        if not budget.take(time.monotonic()):
            raise SRError(f"{died}. It is not started again: that would exceed {budget.describe()} "
                          "(--restarts). Check its log (--log FILE keeps it).")
        report(f"{died}; starting it again on the same ports (restart {len(budget.times)} of {budget.describe()})")
        try:
            server.restart(cancel=stop)
        except StartCancelled:  # stopped while it started again: nothing to announce
            return
        if ready is not None:
            ready()
