"""The progress display: a redrawn bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from conftest import VS_SR, ffmpeg

from vs_sr.progress import Progress, clock

pytestmark = pytest.mark.timing  # run again beside busy CPU hogs by scripts/load_check.sh


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_bar_with_frames_fps_and_eta(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # room for the whole bar
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


def test_a_live_bar_fits_one_row_of_the_terminal(monkeypatch):
    """A bar wider than the terminal wraps, and each redraw (\\r returns one row) added a row."""
    monkeypatch.setenv("COLUMNS", "100")
    screen = Terminal()
    progress = Progress(200, screen, label="vs-sr batch")
    progress.update(50, "2 chunk(s) encoding")
    drawn = screen.getvalue().removeprefix("\r").removesuffix("\x1b[K")
    # The bar gives way, not the numbers (at 80 columns the ETA was cut off)
    assert drawn.startswith("vs-sr batch [") and drawn.endswith(", ETA —, 2 chunk(s) encoding") and len(drawn) <= 99
    monkeypatch.setenv("COLUMNS", "60")
    progress.last_shown = None
    progress.update(60, "2 chunk(s) encoding")
    drawn = screen.getvalue().rsplit("\r", 1)[-1].removesuffix("\x1b[K")
    assert drawn.startswith("vs-sr batch: 60/200 frames (30%)") and len(drawn) == 59  # no room for a bar


def test_log_gets_plain_lines_at_intervals():
    log = io.StringIO()
    progress = Progress(100, log, interval=3600)
    for done in range(1, 101):
        progress.update(done)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("vs-sr: 1/100 frames (1%), ")  # the first update shows at once
    assert lines[-1].startswith("vs-sr: 100/100 frames (100%)")  # and the last
    assert len(lines) == 2  # nothing in between within the interval


def test_a_step_over_before_its_delay_says_nothing(monkeypatch):
    """The batch's reading of its inputs and its planning count on a progress line only when they
    take a while (a library's thousands of files took minutes without a word); a quick one is silent."""
    for live in (False, True):
        stream = io.StringIO()
        monkeypatch.setattr(stream, "isatty", lambda live=live: live)
        progress = Progress(5, stream, label="vs-sr batch: reading inputs", unit="files", delay=3600)
        for done in range(6):
            progress.update(done)
        progress.finish()
        assert stream.getvalue() == ""
    stream = io.StringIO()
    progress = Progress(5, stream, label="vs-sr batch: reading inputs", unit="files")
    progress.update(0)
    assert stream.getvalue().startswith("vs-sr batch: reading inputs: 0/5 files (0%), — files/s, ETA —")


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


def on_terminal(command: list[str], columns: int, stdout: int | None = None) -> bytes:
    """What `command` shows on a pty of `columns` (its stderr, and its stdout unless given another), read
    until it ends; a command that hangs fails the test rather than hang it."""
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {name: value for name, value in os.environ.items() if name != "COLUMNS"}
    run = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=terminal if stdout is None else stdout,
                           stderr=terminal, close_fds=True, env=env)
    os.close(terminal)
    shown, deadline = b"", time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            if not select.select([main], [], [], 1)[0]:
                continue
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal's other end closed: the command ended
                break
            if not chunk:
                break
            shown += chunk
        assert run.wait(timeout=60) == 0, shown
    finally:
        run.kill()
        os.close(main)
    return shown


def bar_draws(shown: bytes) -> list[str]:
    return [draw.decode() for draw in shown.replace(b"\x1b[K", b"").replace(b"\n", b"\r").split(b"\r")
            if draw.startswith((b"vs-sr [", b"vs-sr: "))]  # (with or without a bar, as the width allows)


def test_messages_start_their_own_row_under_a_live_bar(tmp_path):
    """`vs-sr upscale` on a real terminal (a pty of 80 columns): its lines were printed after the
    bar's text, on the bar's row; and with its stdout in a pipe (`| tee log`), the bar took the width
    of the terminal stdout was not, 80, on a narrower one."""
    source = tmp_path / "in.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(source))
    command = [VS_SR, "upscale", str(source), str(tmp_path / "out.mkv"), "--model", "faithful", "--scale", "2", "-y"]
    shown = on_terminal(command, 80)
    rows = [row.split(b"\r")[-1] for row in shown.replace(b"\r\n", b"\n").replace(b"\x1b[K", b"").split(b"\n")]
    assert any(row.startswith(b"wrote ") for row in rows), rows  # (not after the bar's text)
    assert not [row for row in rows if b"] " in row and b"wrote" in row], rows
    assert bar_draws(shown) and all(len(bar) < 80 for bar in bar_draws(shown)), bar_draws(shown)
    with open(tmp_path / "log.txt", "wb") as log:
        shown = on_terminal(command, 50, stdout=log.fileno())
    assert bar_draws(shown) and all(len(bar) < 50 for bar in bar_draws(shown)), bar_draws(shown)
    assert (tmp_path / "log.txt").read_text().startswith("in.mkv: frames 0-24 -> 128x96")
