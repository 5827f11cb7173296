"""A real `vs-sr studio` server on a free loopback port, started and stopped by the tests (shared
by the API and browser tests)."""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from conftest import VS_SR, ffmpeg, processes, wait_until


@dataclass
class Studio:
    process: subprocess.Popen[str]
    url: str
    data: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """`signum` (a graceful stop by default), then SIGKILL if it has not ended in 120 s."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=60)
            raise AssertionError(f"the studio ignored signal {signum} for 120 s and was killed") from None


@contextmanager
def running_studio(data: Path, *args: str, prefix: Sequence[str] = ()) -> Iterator[Studio]:
    """`vs-sr studio --port 0` (the port the kernel gave is read from the line it prints), stopped
    when the block ends however it ends, and killed if its start fails. `prefix`: what runs it (a
    SmallDisk's command: nsenter, which becomes the studio)."""
    process = subprocess.Popen([*prefix, VS_SR, "studio", "--port", "0", "--data", str(data), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    server = Studio(process, "", data)
    try:
        server.url = _announced_url(process)
        wait_until(lambda: _healthy(server) or process.poll() is not None, 300, "the studio to answer /api/health")
        assert process.poll() is None, f"the studio ended at start: {process.stderr.read() if process.stderr else ''}"
        yield server
    finally:
        server.stop()


def _announced_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()  # ends with the line, or with the process
    match = re.search(r"http://[\d.]+:\d+/", line)
    if match is None:
        process.kill()
        raise AssertionError(f"the studio did not start: {line}{process.stderr.read() if process.stderr else ''}")
    return match.group(0).rstrip("/")


def _healthy(server: Studio) -> bool:
    try:
        return bool(httpx.get(f"{server.url}/api/health", timeout=5).json() == {"ok": True})
    except httpx.HTTPError:
        return False


def make_upload(folder: Path) -> Path:
    """A 144p upload: 256x144, 2 s at 25 fps, with audio."""
    path = folder / "holiday 144p.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=256x144:rate=25:duration=2", "-f", "lavfi", "-i", "sine=duration=2",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))
    return path


def processes_of(pid: int) -> list[int]:
    """Every process whose parent chain leads to `pid`."""
    children: dict[int, list[int]] = {}
    for process in processes():
        children.setdefault(process.parent, []).append(process.pid)
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found

