"""A real `vs-sr studio` server on a free loopback port, started and stopped by the tests (shared
by the API and browser tests)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from conftest import VS_SR, ffmpeg, processes


@dataclass
class Studio:
    process: subprocess.Popen[str]
    url: str
    data: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        self.process.wait(timeout=120)


def start_studio(data: Path, *args: str) -> Studio:
    """`vs-sr studio --port 0`: the port the kernel gave is read from the line it prints."""
    process = subprocess.Popen([VS_SR, "studio", "--port", "0", "--data", str(data), *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://[\d.]+:\d+/", line)
    if match is None:
        process.kill()
        raise AssertionError(f"the studio did not start: {line}{process.stderr.read() if process.stderr else ''}")
    studio = Studio(process, match.group(0).rstrip("/"), data)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{studio.url}/api/health", timeout=5).json() == {"ok": True}:
                return studio
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            studio.stop(signal.SIGKILL)
            raise AssertionError("the studio never answered /api/health")
        time.sleep(0.2)


@contextmanager
def running_studio(data: Path, *args: str) -> Iterator[Studio]:
    server = start_studio(data, *args)
    try:
        yield server
    finally:
        server.stop()


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

