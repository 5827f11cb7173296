"""Progress of a long job: a live bar on a terminal, plain periodic lines anywhere else.

The rate counts from the first item finished in this run: model loading, an ONNX export or a
TensorRT build before it, and items done by an earlier run (a resumed batch), do not dilute it.
Only differences of the monotonic clock are used, never its value (it counts from boot).
"""

from __future__ import annotations

import io
import os
import sys
import time
from typing import TextIO

CLEAR_TO_END = "\x1b[K"
BAR = 30  # characters of a live bar, where the terminal has room


def clear_live_line(stream: TextIO | None = None) -> None:
    """Wipe a live bar's row before a message is printed (on this or another stream of the same
    terminal), so that the message starts its own row; the bar is drawn again at its next update."""
    stream = stream or sys.stderr
    if stream.isatty():
        stream.write(f"\r{CLEAR_TO_END}")
        stream.flush()


def terminal_columns(stream: TextIO) -> int:
    """The width of the terminal `stream` writes to ($COLUMNS first, as shutil's), 80 when it says none
    (stdout's may be a pipe, `| tee log`, while the bar's stderr is the terminal)."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real terminal (a test's stand-in)
        return 80


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


STEP_DELAY = 2.0  # seconds a preparing step (reading a library's files) may take before it shows a progress line


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, interval: float = 10.0, label: str = "vs-sr",
                 unit: str = "frames", done: int = 0, quiet: bool = False, delay: float = 0.0) -> None:
        """`done`: items already finished before this run (counted, but not in the rate); `delay`:
        seconds before anything is shown on a terminal, and in a log before its first line (at
        least `interval`): a step that is over by then says nothing."""
        self.total = max(1, total)
        self.unit = unit
        self.status = ""
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.interval = interval if not self.live else 0.1
        self.label = label
        self.quiet = quiet
        self.done = done
        self.first: tuple[float, int] | None = None
        """(time, count) when the first item of this run finished: the rate counts from there."""
        self.last_shown: float | None = None
        self.shown_from = time.monotonic() + (delay if self.live or not delay else max(delay, interval))

    def update(self, done: int, status: str = "") -> None:
        """`done` items finished in all; `status` is shown after the counts (a loss, say)."""
        now = time.monotonic()
        if self.first is None and done > self.done:
            self.first = (now, done)
        completed = done >= self.total > self.done  # reaching the end shows once, at once
        self.done = done
        self.status = status
        due = self.last_shown is None or now - self.last_shown >= self.interval
        if (due or completed) and now >= self.shown_from:
            self.last_shown = now
            self._show(now)

    def rate(self, now: float | None = None) -> float | None:
        """Items per second since the first item of this run; None until there are two points."""
        if self.first is None:
            return None
        elapsed = (time.monotonic() if now is None else now) - self.first[0]
        counted = self.done - self.first[1]
        return counted / elapsed if elapsed > 0 and counted > 0 else None

    def _show(self, now: float) -> None:
        if self.quiet:
            return
        rate = self.rate(now)
        speed = "— " if rate is None else f"{rate:.2f} "
        speed += "fps" if self.unit == "frames" else f"{self.unit}/s"
        eta = "—" if rate is None else clock((self.total - self.done) / rate)
        counts = f"{self.done}/{self.total} {self.unit} ({100 * self.done // self.total}%), {speed}, ETA {eta}"
        if self.status:
            counts += f", {self.status}"
        if self.live:
            # One terminal row: a longer line wraps, and every redraw (\r goes back one row only) adds a
            # row. The bar gives way first (the numbers say more), down to none; then the line is cut.
            room = max(1, terminal_columns(self.stream) - 1)
            width = min(BAR, room - len(self.label) - len(counts) - 4)
            filled = max(0, width) * self.done // self.total
            line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {counts}" if width >= 5 else \
                f"{self.label}: {counts}"
            self.stream.write(f"\r{line[:room]}{CLEAR_TO_END}")
        else:
            self.stream.write(f"{self.label}: {counts}\n")
        self.stream.flush()

    def finish(self) -> float:
        """Close the display; returns the rate of this run (0 if nothing was counted)."""
        if self.live and not self.quiet and self.last_shown is not None:
            self.stream.write("\n")
            self.stream.flush()
        return self.rate() or 0.0
