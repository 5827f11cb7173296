"""The progress display: a redrawn bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from vs_sr.media.progress import Progress, clock


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
