"""A free pool of inference sessions (one per stream): a frame takes any idle one and waits only
when all are busy."""

from __future__ import annotations

import queue
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ..backends import Session


class SessionPool:
    def __init__(self, sessions: Sequence[Session]) -> None:
        self.sessions = list(sessions)
        self._free: queue.SimpleQueue[Session] = queue.SimpleQueue()
        for session in self.sessions:
            self._free.put(session)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Hold one session for the duration of the block (blocking releases the GIL)."""
        session = self._free.get()
        try:
            yield session
        finally:
            self._free.put(session)
