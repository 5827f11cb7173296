"""The progress display: a redrawn bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vs_sr.progress import Progress, clock

pytestmark = pytest.mark.timing  # run again beside busy CPU hogs by scripts/load_check.sh


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_bar_with_frames_fps_and_eta():
    screen = Terminal()
    progress = Progress(200, screen)
    for done in (1, 50, 200):
        progress.last_shown = None  # redraw every update for the test
        progress.update(done)
    progress.finish()
    text = screen.getvalue()
    assert text.startswith("\rvs-sr [") and text.endswith("\n")
    assert "[###############...............] 100/200" not in text  # 50/200 is a quarter bar
    assert "[#######.......................] 50/200 frames (25%)" in text
    assert "200/200 frames (100%)" in text and " fps, ETA " in text
    assert text.count("\n") == 1  # one line, redrawn in place


def test_log_gets_plain_lines_at_intervals():
    log = io.StringIO()
    progress = Progress(100, log, interval=3600)
    for done in range(1, 101):
        progress.update(done)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("vs-sr: 1/100 frames (1%), ")  # the first update shows at once
    assert lines[-1].startswith("vs-sr: 100/100 frames (100%)")  # and the last
    assert len(lines) == 2  # nothing in between within the interval


def test_clock():
    assert clock(0) == "0:00:00" and clock(3725.9) == "1:02:05"


FRESH_BOOT_SCRIPT = """
import io, time
from vs_sr.progress import Progress
log = io.StringIO()
progress = Progress(100, log, interval=3600)
for done in range(1, 101):
    progress.update(done)
print(round(time.monotonic(), 1))
print(log.getvalue(), end="")
"""


def initial_monotonic() -> float:
    """The monotonic clock of the initial time namespace: `unshare --monotonic` offsets count from
    it even where this process already runs in a time namespace of its own (a CI run under one)."""
    offsets = Path("/proc/self/timens_offsets")
    lines = offsets.read_text().splitlines() if offsets.exists() else []
    shift = next((int(line.split()[1]) for line in lines if line.split()[0] == "monotonic"), 0)
    return time.monotonic() - shift


def test_a_machine_booted_seconds_ago_shows_the_first_line_at_once():
    """In a time namespace whose monotonic clock reads about 2 s, as on a CI machine booted
    moments ago: the first update still shows (no 'last shown at 0' against the clock's value)."""
    done = subprocess.run(["unshare", "--time", f"--monotonic={-(int(initial_monotonic()) - 2)}", sys.executable,
                           "-c", FRESH_BOOT_SCRIPT], capture_output=True, text=True)
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"time namespaces are not available here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    clock_value, *lines = done.stdout.splitlines()
    assert float(clock_value) < 60  # really a fresh clock
    assert lines[0].startswith("vs-sr: 1/100 frames (1%), ") and lines[-1].startswith("vs-sr: 100/100 frames")
    assert len(lines) == 2


def test_the_rate_counts_from_the_first_frame_not_from_model_loading():
    """Whatever came before the first frame (an ONNX export, a TensorRT build) is not in the rate:
    it is asked for at a chosen moment (`now`), so no sleep decides the result."""
    log = io.StringIO()
    progress = Progress(10, log, interval=0)
    started = time.monotonic()
    progress.update(1)
    assert progress.first is not None and progress.first[0] >= started
    progress.update(10)
    assert progress.rate(progress.first[0] + 0.1) == pytest.approx(90)  # 9 frames in 0.1 s after the first
    assert progress.rate(progress.first[0] + 3.0) == pytest.approx(3)
    assert progress.rate(progress.first[0]) is None  # no time has passed: no rate yet
    assert "—" in log.getvalue().splitlines()[0]  # no rate from a single frame


def test_resumed_items_do_not_count_in_the_rate():
    progress = Progress(100, io.StringIO(), interval=0, done=90)
    progress.update(91)
    progress.update(95)
    assert progress.done == 95 and progress.first is not None and progress.first[1] == 91
