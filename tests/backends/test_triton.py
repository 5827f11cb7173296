"""backend="triton" against a real tritonserver on loopback (the python-platform export of vs_sr's
own network): the output equals local OpenVINO over gRPC and HTTP, with and without shared memory,
tiled and in other formats; every mismatch and failure is a clear vs.Error, and nothing hangs."""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from conftest import frame_planes, in_own_pid_namespace, in_private_mounts, moving_photo_clip, needs_triton, psnr

import vs_sr as sr

core = vs.core
VSPIPE = str(Path(sys.executable).with_name("vspipe"))


def frames(clip: vs.VideoNode) -> list[np.ndarray]:
    return [frame_planes(f) for f in clip.frames()]


def registered_regions(server) -> list[str]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(server.grpc_url.removeprefix("grpc://"))
    return [name for name in client.get_system_shared_memory_status(as_json=True).get("regions", {})
            if name.startswith("vs_sr-")]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("shm", ["on", "off"])
def test_output_equals_local_openvino(triton_server, monkeypatch, protocol, shm):
    monkeypatch.setenv("VS_SR_TRITON_SHM", shm)
    clip = moving_photo_clip(64, 48, 3)
    url = triton_server.grpc_url if protocol == "grpc" else triton_server.http_url
    before = set(registered_regions(triton_server))
    served = sr.Upscale(clip, "realesr-animevideov3", 4, backend="triton", server=url)
    local = sr.Upscale(clip, "realesr-animevideov3", 4, backend="openvino", precision="fp32")
    for got, expected in zip(frames(served), frames(local), strict=True):
        assert got.shape == (3, 192, 256)
        assert psnr(got, expected) >= 60
    props = served.get_frame(0).props
    assert props["SRBackend"] == "triton" and props["SRPrecision"] == "fp32"
    ours = set(registered_regions(triton_server)) - before
    assert len(ours) == (1 if shm == "on" else 0)  # one region per stream, while the clip lives
    del served, props
    gc.collect()
    assert not ours & set(registered_regions(triton_server))  # dropped with the clip
    assert not set(os.listdir("/dev/shm")) & ours  # unlinked once the server mapped it


def test_tiles_and_yuv_equal_local_openvino(triton_server):
    """A YUV clip in 48x48 tiles: several tiles of a frame in flight at once, blended as locally."""
    clip = moving_photo_clip(96, 64, 2).resize.Bicubic(format=vs.YUV444P16, matrix=vs.MATRIX_BT709)
    options = dict(tile=48, overlap=8, num_streams=2)
    served = sr.Upscale(clip, "realesr-animevideov3", 4, backend="triton", server=triton_server.grpc_url, **options)
    local = sr.Upscale(clip, "realesr-animevideov3", 4, backend="openvino", precision="fp32", **options)
    for got, expected in zip(frames(served), frames(local), strict=True):
        assert got.shape[1:] == (256, 384)
        assert psnr(got, expected, peak=65535) >= 60


def test_fp16_on_the_wire(triton_server, tmp_path):
    """A model that takes FP16 runs fp16 under precision="auto"; asking fp32 of it says what to do."""
    model = tmp_path / "anime-fp16.onnx"  # the name on the server; the file need not exist here
    clip = moving_photo_clip(64, 48, 1)
    served = sr.Upscale(clip, model, 4, backend="triton", server=triton_server.http_url)
    local = sr.Upscale(clip, "realesr-animevideov3", 4, backend="openvino", precision="fp32")
    assert served.get_frame(0).props["SRPrecision"] == "fp16"
    assert psnr(frames(served)[0], frames(local)[0]) >= 50  # fp16 tiles and results: ~1e-3 off
    with pytest.raises(vs.Error, match="takes FP16 tensors.*precision='fp16' or 'auto'"):
        sr.Upscale(clip, model, 4, backend="triton", server=triton_server.grpc_url, precision="fp32")
    # `vs-sr upscale` says it before any work (its check asked only which precisions the wire carries:
    # the run started, and failed inside vspipe)
    source = tmp_path / "in.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-c:v",
                    "ffv1", str(source)], check=True)
    command = [str(Path(sys.executable).with_name("vs-sr")), "upscale", str(source), str(tmp_path / "o.mkv"), "--model",
               str(model), "--scale", "4", "--server", triton_server.grpc_url, "--precision", "fp32"]
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 1 and done.stdout == "" and "vspipe" not in done.stderr, done.stderr
    assert "takes FP16 tensors, so it runs fp16, not fp32: pass --precision fp16 or 'auto'" in done.stderr


def test_graph_of_one_fixed_shape(triton_server, triton_repo):
    """A model without a batch dimension and with fixed dims (max_batch_size 0, [1, 3, 48, 64]):
    tiles take its shape, one per request, and the result equals the same graph run locally."""
    from vs_sr.serving import read_config

    config = read_config(triton_repo / "fixed-b1" / "config.pbtxt")
    assert config.max_batch_size == 0 and list(config.input[0].dims) == [1, 3, 48, 64]
    clip = moving_photo_clip(96, 64, 1)
    served = sr.Upscale(clip, "/elsewhere/fixed-b1.onnx", 4, backend="triton", server=triton_server.grpc_url,
                        overlap=8)
    local = sr.Upscale(clip, triton_repo / "fixed-b1" / "1" / "model.onnx", 4, backend="openvino", overlap=8)
    assert psnr(frames(served)[0], frames(local)[0]) >= 60


def free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_server_down(protocol):
    needs_triton()
    with pytest.raises(vs.Error, match=rf"cannot reach Triton server {protocol}://127.0.0.1:\d+ .*vs-sr triton serve"):
        sr.Upscale(moving_photo_clip(), "realesr-animevideov3", 4, backend="triton",
                   server=f"{protocol}://127.0.0.1:{free_port()}")


@pytest.mark.parametrize(("model", "scale", "message"), [
    ("realesrgan-x4plus", 4, r"has no model 'realesrgan-x4plus-x4' ready \(ready: .*realesr-animevideov3-x4"),
    ("/elsewhere/gray.onnx", 4, r"takes 1-channel images and gives 1; vs_sr sends and reads RGB"),
    ("/elsewhere/uint8.onnx", 4, r"takes UINT8 and gives UINT8; vs_sr sends and reads FP32 or FP16"),
    ("realesrgan-x4plus-anime", 4, r"'realesrgan-x4plus-anime-x4' on grpc://.* is a x2 network, not x4: pass scale=2"),
])
def test_mismatches_are_clear_errors(triton_server, model, scale, message):
    with pytest.raises(vs.Error, match=message):
        sr.Upscale(moving_photo_clip(), model, scale, backend="triton", server=triton_server.grpc_url)


def test_argument_errors(monkeypatch):
    monkeypatch.delenv("VS_SR_TRITON_URL", raising=False)
    clip = moving_photo_clip()
    with pytest.raises(vs.Error, match=r"backend='triton' needs a server: pass server='grpc://host:8001'"):
        sr.Upscale(clip, "realesr-animevideov3", backend="triton")
    for server in ("tcp://x", "grpc://x:0", "http://x:99999"):
        with pytest.raises(vs.Error, match=rf"must look like grpc://host:8001 or http://host:8000, not '{server}'"):
            sr.Upscale(clip, "realesr-animevideov3", backend="triton", server=server)
    with pytest.raises(vs.Error, match=r"server= is for backend='triton'; backend 'openvino' runs here"):
        sr.Upscale(clip, "realesr-animevideov3", backend="openvino", server="grpc://localhost")


def test_a_full_dev_shm_refuses_the_region_instead_of_leaving_it_sparse():
    """A region that does not fit /dev/shm (Docker's is 64 MB) must fail when it is made, with
    ENOSPC, which the backend answers by sending tiles over the socket: a sparse region would kill
    whichever process first wrote an unbacked page (SIGBUS), the server included. A 1 MB /dev/shm in
    a private mount namespace; nothing is left in it. (The region fails before it is registered,
    so no server is needed.)"""
    import shlex
    import textwrap

    script = textwrap.dedent("""
        import errno
        from vs_sr.backends.triton.shared_memory import SharedRegion
        try:
            SharedRegion(None, 1, 4 << 20, 4 << 20)
        except OSError as error:
            print("refused", errno.errorcode[error.errno])
    """)
    ran = in_private_mounts("mount -t tmpfs -o size=1m tmpfs /dev/shm", f"{shlex.quote(sys.executable)} -c "
                            f"{shlex.quote(script)}; status=$?; ls -A /dev/shm; exit $status")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["refused", "ENOSPC"]


def test_server_url_from_the_environment(triton_server, monkeypatch):
    """$VS_SR_TRITON_URL is the default server; a server= given with backend "auto" means Triton."""
    monkeypatch.setenv("VS_SR_TRITON_URL", triton_server.http_url)
    clip = moving_photo_clip(64, 48, 1)
    assert sr.Upscale(clip, "realesr-animevideov3", backend="triton").get_frame(0).props["SRBackend"] == "triton"
    auto = sr.Upscale(clip, "realesr-animevideov3", server=triton_server.grpc_url)
    assert auto.get_frame(0).props["SRBackend"] == "triton"


SCRIPT = """\
import vapoursynth as vs
import vs_sr as sr

clip = vs.core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=int(frames), color=[0.2, 0.5, 0.7])
sr.Upscale(clip, "realesr-animevideov3", 4, backend="triton", server=str(server), num_streams=2).set_output()
"""


@pytest.fixture(scope="module")
def lone_repo(triton_repo, tmp_path_factory) -> Path:
    """A repository of the one model, for servers that a test hurts (quick to start)."""
    import shutil

    repo = tmp_path_factory.mktemp("lone") / "repo"
    shutil.copytree(triton_repo / "realesr-animevideov3-x4", repo / "realesr-animevideov3-x4")
    return repo


def orphaned_shm() -> list[str]:
    """/dev/shm entries of vs_sr clients whose process is gone."""
    from vs_sr.children import owner_gone

    return [p for p in os.listdir("/dev/shm")
            if (match := re.match(r"vs_sr-\w+-(\w+)-", p)) and owner_gone(match.group(1))]


def wait_for_frames(client: subprocess.Popen) -> str:
    """vspipe's progress output until frames flow (then requests are in flight)."""
    assert client.stderr is not None
    seen = ""
    while not re.search(r"Frame: [1-9]\d*/", seen):
        chunk = client.stderr.read(16)
        assert chunk, f"vspipe ended early: {seen[-2000:]}"
        seen += chunk
    return seen


@pytest.mark.timing
@pytest.mark.parametrize("end", ["killed", "shut down"])
def test_server_gone_mid_clip(lone_repo, tmp_path, end, spawn):
    """SIGKILL the server, or stop it gracefully (SIGTERM: it unloads its models first), while
    vspipe pulls frames: vspipe fails with "cannot reach" (not "export the model"), nothing hangs,
    and no shared memory is left."""
    from vs_sr.serving import TritonServer

    script = tmp_path / "client.vpy"
    script.write_text(SCRIPT)
    with TritonServer(lone_repo) as server:
        assert server.process is not None
        client = spawn([VSPIPE, "-p", "-a", "frames=100000", "-a", f"server={server.grpc_url}", str(script), "--"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seen = wait_for_frames(client)
        if end == "killed":
            os.killpg(server.process.pid, signal.SIGKILL)
        else:
            server.process.send_signal(signal.SIGTERM)
        _, rest = client.communicate(timeout=120)  # the deadline and retries end it well before
    assert client.returncode != 0
    assert f"cannot reach Triton server {server.grpc_url}" in seen + rest
    assert "has no model" not in seen + rest
    assert not [p for p in os.listdir("/dev/shm") if p.startswith(server.shm_prefix)]
    assert orphaned_shm() == []


@pytest.mark.timing
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_hung_server_times_out(lone_repo, monkeypatch, protocol):
    """A server that stops answering (SIGSTOP) fails a frame in flight, and a new clip, after
    $VS_SR_TRITON_TIMEOUT seconds."""
    from vs_sr.serving import TritonServer

    monkeypatch.setenv("VS_SR_TRITON_TIMEOUT", "3")
    clip = moving_photo_clip(64, 48, 2)
    with TritonServer(lone_repo) as server:
        assert server.process is not None
        url = server.grpc_url if protocol == "grpc" else server.http_url
        running = sr.Upscale(clip, "realesr-animevideov3", 4, backend="triton", server=url)
        running.get_frame(0)
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            message = rf"Triton server {url} gave no answer within 3 s .*raise \$VS_SR_TRITON_TIMEOUT"
            with pytest.raises(vs.Error, match=message):
                running.get_frame(1)
            with pytest.raises(vs.Error, match=message):
                sr.Upscale(clip, "realesr-animevideov3", 4, backend="triton", server=url)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        del running


@pytest.mark.parametrize(("deadline", "advice"), [
    (30.0, "check it (readiness, configuration and shared-memory calls wait at most 30 s)."),
    (3.0, "check it, add model instances, or raise $VS_SR_TRITON_TIMEOUT.")])
def test_a_call_past_its_deadline_names_what_raises_it(deadline, advice):
    """A control call waits at most 30 s whatever $VS_SR_TRITON_TIMEOUT says, so its timeout does
    not tell the user to raise that (the hung server itself: test_hung_server_times_out)."""
    from vs_sr.backends.triton.address import Address
    from vs_sr.backends.triton.connection import _explain

    error = _explain(TimeoutError("timed out"), Address.parse("http://127.0.0.1:8000"), "m", deadline)
    assert str(error) == f"Triton server http://127.0.0.1:8000 gave no answer within {deadline:g} s (hung or " \
                         f"overloaded): {advice}"


def test_a_client_in_another_pid_namespace_keeps_its_regions(triton_server, monkeypatch):
    """A clip opened in another container on this host (a pid namespace of its own, the same
    /dev/shm and server) sweeps the regions of dead clients: a live one here is not among them, and
    goes on with its region."""
    monkeypatch.setenv("VS_SR_TRITON_SHM", "on")
    before = set(registered_regions(triton_server))
    clip = sr.Upscale(moving_photo_clip(64, 48, 2), "realesr-animevideov3", 4, backend="triton",
                      server=triton_server.grpc_url)
    clip.get_frame(0)
    ours = set(registered_regions(triton_server)) - before
    assert len(ours) == 1
    dropped = in_own_pid_namespace(
        "import json\n"
        "from vs_sr.backends.triton.address import Address\n"
        "from vs_sr.backends.triton.connection import Connection\n"
        "from vs_sr.backends.triton.shared_memory import forget_dead_regions\n"
        f"print(json.dumps(forget_dead_regions(Connection(Address.parse({triton_server.grpc_url!r}), 'any'))))")
    assert not ours & set(json.loads(dropped)) and ours <= set(registered_regions(triton_server))
    clip.get_frame(1)
    assert ours <= set(registered_regions(triton_server))  # the same region, not one registered anew


@pytest.mark.timing
def test_regions_of_killed_clients_are_dropped(triton_server, monkeypatch, tmp_path, spawn):
    """A vspipe client SIGKILLed with shared memory registered leaves nothing in /dev/shm, and the
    next client on this host unregisters what the server still held for it."""
    monkeypatch.setenv("VS_SR_TRITON_SHM", "on")
    script = tmp_path / "client.vpy"
    script.write_text(SCRIPT)
    before = set(registered_regions(triton_server))
    client = spawn([VSPIPE, "-p", "-a", "frames=100000", "-a", f"server={triton_server.grpc_url}", str(script), "--"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for_frames(client)
    # This client's regions: clips of earlier tests in this process may still hold theirs until
    # they are collected, so what was registered before the client started does not count.
    regions = sorted(set(registered_regions(triton_server)) - before)
    assert len(regions) == 2  # one per stream
    os.killpg(client.pid, signal.SIGKILL)
    client.wait()
    assert not set(os.listdir("/dev/shm")) & set(regions) and orphaned_shm() == []
    assert set(regions) <= set(registered_regions(triton_server))  # the server still holds them
    # what a client killed while registering leaves: its region's file (removed once the server maps it)
    stranded = Path("/dev/shm") / (regions[0].rsplit("-", 1)[0] + "-0badf00d")
    stranded.write_bytes(b"\0" * 4096)
    try:
        next_client = sr.Upscale(moving_photo_clip(), "realesr-animevideov3", 4, backend="triton",
                                 server=triton_server.grpc_url)
        assert not set(regions) & set(registered_regions(triton_server))
        assert not stranded.exists()
    finally:
        stranded.unlink(missing_ok=True)
    del next_client
