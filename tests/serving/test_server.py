"""The Triton server from PyPI, started by vs_sr: `vs-sr triton serve` prints its URLs when ready and
stops cleanly on SIGTERM; three vspipe clients at once get their tiles batched together; and
`vs-sr upscale --backend triton --server URL` encodes a file through it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import nearest_model, needs_triton

BIN = Path(sys.executable).parent


def session_processes(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                pass
    return pids


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_until_signalled_leaves_nothing(tmp_path, stop):
    needs_triton()
    repo = tmp_path / "repo"
    nearest_model(repo, "nearest", 2)
    serve = subprocess.Popen([str(BIN / "vs-sr"), "triton", "serve", "--repo", str(repo), "--json"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        ready = json.loads(serve.stdout.readline() or "{}")
        assert ready.get("models") == ["nearest"], serve.stderr.read() if serve.stderr else ""
        with urllib.request.urlopen(f"{ready['http']}/v2/health/ready", timeout=10) as answer:
            assert answer.status == 200
        server = ready["pid"]
        assert len(session_processes(server)) == 2  # the server and its model's stub
        assert [p for p in os.listdir("/dev/shm") if p.startswith(f"vs_sr_triton_{serve.pid}_")]
        serve.send_signal(stop)
        assert serve.wait(timeout=60) == 0
    finally:
        serve.kill()
    assert session_processes(server) == []
    assert not [p for p in os.listdir("/dev/shm") if p.startswith(f"vs_sr_triton_{serve.pid}_")]


def test_serve_reports_a_model_that_fails_to_load(tmp_path):
    needs_triton()
    repo = tmp_path / "repo"
    nearest_model(repo, "broken", 2)
    (repo / "broken" / "1" / "model.py").write_text("raise ImportError('no such runtime here')\n")
    done = subprocess.run([str(BIN / "vs-sr"), "triton", "serve", "--repo", str(repo)], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("vs-sr: error: tritonserver stopped while starting")
    assert "no such runtime here" in done.stderr


CLIENT = """\
import vapoursynth as vs
import vs_sr as sr

clip = vs.core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=24, color=[0.2, 0.5, 0.7])
sr.Upscale(clip, "realesr-animevideov3", 4, backend="triton", server=str(server), num_streams=2).set_output()
"""


def batch_executions(server) -> dict[int, int]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(server.grpc_url.removeprefix("grpc://"))
    stats = client.get_inference_statistics("realesr-animevideov3-x4", as_json=True)["model_stats"][0]
    return {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in stats.get("batch_stats", [])}


def test_three_vspipe_clients_are_batched_together(triton_server, tmp_path):
    script = tmp_path / "client.vpy"
    script.write_text(CLIENT)
    before = batch_executions(triton_server)
    clients = [subprocess.Popen([str(BIN / "vspipe"), "-a", f"server={triton_server.grpc_url}", str(script), "--"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for _ in range(3)]
    for client in clients:
        _, errors = client.communicate(timeout=300)
        assert client.returncode == 0, errors
    after = batch_executions(triton_server)
    batched = {size: count - before.get(size, 0) for size, count in after.items() if size > 1}
    assert sum(batched.values()) > 0, after  # executions that served tiles of several requests at once


def test_vs_sr_upscale_through_the_server(triton_server, tmp_path):
    source, output = tmp_path / "in.mkv", tmp_path / "out.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2",
                    "-c:v", "ffv1", str(source)], check=True)
    done = subprocess.run([str(BIN / "vs-sr"), "upscale", str(source), str(output), "--backend", "triton",
                           "--server", triton_server.http_url, "--codec", "ffv1"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert done.returncode == 0, done.stderr
    from vs_sr.media.probe import count_frames, probe

    media = probe(output)
    assert (media.video.info["width"], media.video.info["height"]) == (256, 192)
    assert count_frames(output) == 5
