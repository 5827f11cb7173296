"""Supervising the tools we run (vspipe, ffmpeg, mkvmerge) so that none outlives us.

Every pipeline runs in its own process group, which is signalled as a whole; every child also
gets a parent-death signal (Linux `PR_SET_PDEATHSIG`), so it dies when the thread that started it
dies, even when `vs-sr` itself is SIGKILLed. Children do not see a terminal's Ctrl-C directly (their
group is not the terminal's foreground group): we stop them ourselves, after which the caller
cleans up and exits 130.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from ..children import POLL, Cancelled, cancelled_by, check_cancelled, communicate, start_child
from ..errors import SRError

__all__ = ["Cancelled", "EncodePipe", "ProcessGroup", "ToolFailed", "cancelled_by", "check_cancelled", "run_tool"]

STOP_GRACE = 10.0  # seconds a stopped group gets to exit on SIGTERM before SIGKILL
# ffmpeg (5.1) exits 0 when writing the end of its file fails, a full disk say, leaving a short
# file: these lines are the only sign.
WRITE_FAILED = re.compile(r"^Error (writing trailer|closing file) ")


class ToolFailed(SRError):
    """A tool of a pipeline failed. `transient`: a tool was killed by a signal (SIGKILL, the
    out-of-memory killer, a crash), which another attempt may not meet; an exit with an error
    (bad input, bad options, our script refusing the job) would fail the same way again."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class ProcessGroup:
    """Processes started into one new process group, stopped together."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.pgid: int | None = None

    def start(self, command: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        # The first process leads a new group (in our session, so later ones may join it).
        # Callers never ask for text: the output is bytes.
        process: subprocess.Popen[bytes] = start_child(command, process_group=self.pgid or 0, **kwargs)
        if self.pgid is None:
            self.pgid = process.pid
        self.processes.append(process)
        return process

    def stop(self) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after a grace period; reap all."""
        self._signal(signal.SIGTERM)
        self._signal(signal.SIGCONT)  # a stopped (hung, suspended) tool must wake up to act on it
        for process in self.processes:
            try:
                process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                process.wait()
        self._signal(signal.SIGKILL)  # anything a tool forked and left behind in the group

    def _signal(self, signum: int) -> None:
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, signum)
            except ProcessLookupError:
                pass


def run_tool(command: Sequence[str], what: str) -> str:
    """Run one tool to completion in its own group; its stdout, or an SRError naming `what` failed."""
    group = ProcessGroup()
    process = group.start(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out: bytes
        err: bytes
        out, err = communicate(process)
    except BaseException:
        group.stop()
        raise
    lines = err.decode(errors="replace").strip().splitlines()
    if process.returncode != 0 or any(WRITE_FAILED.match(line) for line in lines):
        # mkvmerge says what went wrong on stdout, as "Error: ..." (a full disk included)
        lines = lines or [line for line in out.decode(errors="replace").splitlines() if line.startswith("Error")]
        name = Path(command[0]).name
        raise SRError(f"{name} failed {what}: {' / '.join(lines[-3:]) or f'exit code {process.returncode}'}")
    return out.decode(errors="replace")


class EncodePipe:
    """vspipe piped into an encoder, in one process group: progress from vspipe's lines, the tools'
    own error messages, and clean termination."""

    def __init__(self, vspipe: list[str], encoder: list[str], progress: Callable[[int], None], error_report: Path,
                 env: dict[str, str] | None = None, on_log: Callable[[str], None] | None = None) -> None:
        self.progress = progress
        self.error_report = error_report
        self.on_log = on_log
        self.group = ProcessGroup()
        self.vspipe = self.group.start(vspipe, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       env=env)
        try:
            self.encoder = self.group.start(encoder, stdin=self.vspipe.stdout, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE)
        except OSError:
            self.group.stop()
            raise
        assert self.vspipe.stdout is not None
        self.vspipe.stdout.close()  # the encoder owns the pipe: vspipe sees it break if the encoder dies
        self.vspipe_log: list[str] = []
        self.encoder_log: list[str] = []
        self.readers = [
            threading.Thread(target=self._read_vspipe, daemon=True),
            threading.Thread(target=_read_lines, args=(self.encoder.stderr, self.encoder_log), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read_vspipe(self) -> None:
        stderr = self.vspipe.stderr
        assert stderr is not None
        buffer = b""
        for chunk in iter(lambda: stderr.read1(4096), b""):  # type: ignore[attr-defined]
            buffer += chunk
            *lines, buffer = re.split(rb"[\r\n]", buffer)
            for line in lines:
                self._vspipe_line(line.decode(errors="replace"))
        self._vspipe_line(buffer.decode(errors="replace"))

    def _vspipe_line(self, line: str) -> None:
        match = re.match(r"Frame: (\d+)/(\d+)", line)
        if match:
            self.progress(int(match.group(1)))
        elif line.strip():
            self.vspipe_log.append(line)
            if self.on_log is not None:
                self.on_log(line)

    def wait(self, cancel: threading.Event | None = None) -> None:
        """Wait for both; on any exception (Ctrl-C included) or when `cancel` is set, the group is
        stopped first. The wait polls: an interrupt delivered between bytecodes (a Ray task's
        cancel) must not find this thread blocked in a system call."""
        try:
            while self.encoder.poll() is None or self.vspipe.poll() is None:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("stopped")
                time.sleep(POLL)
            encoder_code, vspipe_code = self.encoder.returncode, self.vspipe.returncode
        except BaseException:
            self.group.stop()
            raise
        for reader in self.readers:
            reader.join()
        # When one side dies the other fails too (broken pipe, empty input): report the cause, a
        # killed vspipe first (the encoder then only saw its output end).
        vspipe_error = self._vspipe_error() if vspipe_code != 0 else None
        broken_pipe = vspipe_code == -signal.SIGPIPE  # the encoder stopped reading: it is the cause
        vspipe_killed = vspipe_code < 0 and not broken_pipe
        killed = vspipe_killed or encoder_code < 0  # a signal (SIGKILL, the OOM killer, a crash)
        if vspipe_killed or (vspipe_code != 0 and not broken_pipe and (encoder_code == 0 or vspipe_error)):
            raise ToolFailed(f"vspipe failed: {vspipe_error or _exit_status(vspipe_code)}", transient=killed)
        if encoder_code != 0 or any(WRITE_FAILED.match(line) for line in self.encoder_log):
            raise ToolFailed(f"ffmpeg failed: {_summary(self.encoder_log) or _exit_status(encoder_code)}",
                             transient=killed)

    def _vspipe_error(self) -> str:
        """Our own message if the script reported one, else the useful lines of vspipe's output."""
        if self.error_report.is_file():
            return self.error_report.read_text(encoding="utf-8")
        problems = [line for line in self.vspipe_log if not line.startswith(("Information:", "Script evaluation done"))]
        return " / ".join(problems[-3:])


def plain_line(line: str) -> str:
    """An ffmpeg log line without its `[h264_nvenc @ 0x...]` prefix, stripped."""
    return re.sub(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*", "", line.strip())


def _summary(lines: list[str]) -> str:
    """A tool's error lines in one: the first (ffmpeg names the cause there, e.g. "No such filter",
    then reports its consequences) and the last two, without `[component @ 0x...]` prefixes."""
    plain = [line for line in dict.fromkeys(plain_line(line) for line in lines) if line]
    return " / ".join(plain if len(plain) <= 3 else [plain[0], *plain[-2:]])


def _exit_status(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _read_lines(pipe: IO[bytes], log: list[str]) -> None:
    for line in pipe:
        log.append(line.decode(errors="replace").rstrip())
