"""Supervising vspipe piped into ffmpeg: progress from vspipe's lines, the tools' own error
messages, and stopping both cleanly."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path
from typing import IO

from ..errors import SRError
from .progress import Progress


class EncodePipe:
    """vspipe piped into ffmpeg, with progress, clean termination and the tools' error messages."""

    def __init__(self, vspipe: list[str], ffmpeg: list[str], progress: Progress, error_report: Path) -> None:
        self.progress = progress
        self.error_report = error_report
        self.vspipe = subprocess.Popen(vspipe, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.ffmpeg = subprocess.Popen(ffmpeg, stdin=self.vspipe.stdout, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE)
        except OSError:
            self.vspipe.kill()
            self.vspipe.wait()
            raise
        assert self.vspipe.stdout is not None
        self.vspipe.stdout.close()  # ffmpeg owns the pipe: vspipe sees it break if ffmpeg dies
        self.vspipe_log: list[str] = []
        self.ffmpeg_log: list[str] = []
        self.readers = [
            threading.Thread(target=self._read_vspipe, daemon=True),
            threading.Thread(target=_read_lines, args=(self.ffmpeg.stderr, self.ffmpeg_log), daemon=True),
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
            self.progress.update(int(match.group(1)))
        elif line.strip():
            self.vspipe_log.append(line)

    def wait(self) -> None:
        ffmpeg_code = self.ffmpeg.wait()
        vspipe_code = self.vspipe.wait()
        for reader in self.readers:
            reader.join()
        # When one side dies the other fails too (broken pipe, empty input): report the cause.
        vspipe_error = self._vspipe_error() if vspipe_code != 0 else None
        if vspipe_code != 0 and (ffmpeg_code == 0 or vspipe_error):
            raise SRError(f"vspipe failed: {vspipe_error or f'exit code {vspipe_code}'}")
        if ffmpeg_code != 0:
            raise SRError(f"ffmpeg failed: {' / '.join(self.ffmpeg_log[-3:]) or f'exit code {ffmpeg_code}'}")

    def _vspipe_error(self) -> str:
        """Our own message if the script reported one, else the useful lines of vspipe's output."""
        if self.error_report.is_file():
            return self.error_report.read_text(encoding="utf-8")
        problems = [line for line in self.vspipe_log if not line.startswith(("Information:", "Script evaluation done"))]
        return " / ".join(problems[-3:])

    def stop(self) -> None:
        for process in (self.vspipe, self.ffmpeg):
            if process.poll() is None:
                process.terminate()
        for process in (self.vspipe, self.ffmpeg):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _read_lines(pipe: IO[bytes], log: list[str]) -> None:
    for line in pipe:
        log.append(line.decode(errors="replace").rstrip())
