"""Progress of a long job: a live bar on a terminal, plain periodic lines anywhere else."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, interval: float = 10.0, label: str = "vs-sr",
                 unit: str = "frames") -> None:
        self.total = max(1, total)
        self.unit = unit
        self.status = ""
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.interval = interval if not self.live else 0.1
        self.label = label
        self.start = time.monotonic()
        self.last_shown = 0.0
        self.done = 0

    def update(self, done: int, status: str = "") -> None:
        """`done` items finished; `status` is shown after the counts (a loss, say)."""
        self.done = done
        self.status = status
        now = time.monotonic()
        if now - self.last_shown >= self.interval or done >= self.total:
            self.last_shown = now
            self._show(now)

    def _show(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        fps = self.done / elapsed
        eta = (self.total - self.done) / fps if fps > 0 else 0.0
        rate = f"{fps:.2f} fps" if self.unit == "frames" else f"{fps:.2f} {self.unit}/s"
        counts = f"{self.done}/{self.total} {self.unit} ({100 * self.done // self.total}%), {rate}, ETA {clock(eta)}"
        if self.status:
            counts += f", {self.status}"
        if self.live:
            width = 30
            filled = width * self.done // self.total
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {counts}   ")
        else:
            self.stream.write(f"{self.label}: {counts}\n")
        self.stream.flush()

    def finish(self) -> float:
        """Close the display; returns the average frames/s."""
        elapsed = max(time.monotonic() - self.start, 1e-9)
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
        return self.done / elapsed
