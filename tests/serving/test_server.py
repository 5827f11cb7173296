"""The Triton server from PyPI, started by vs_sr: `vs-sr triton serve` prints its URLs when ready and
stops cleanly on SIGTERM, starts a server that dies again (a bounded number of times), and removes
what a SIGKILLed serve left; three vspipe clients at once get their tiles batched together; and
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
import vapoursynth as vs
from conftest import in_own_pid_namespace, nearest_model, needs_triton, processes, wait_until

import vs_sr as sr
from vs_sr.children import alive, owner_tag

pytestmark = pytest.mark.timing  # run again beside busy CPU hogs by scripts/load_check.sh

BIN = Path(sys.executable).parent


def session_processes(sid: int) -> list[int]:
    """Live processes of session `sid` (zombies left out: a killed stub waits for init to reap it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid and alive(int(entry.name)):
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                pass
    return pids


def start_serve(spawn, repo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, dict]:
    """`vs-sr triton serve --json` on `repo`, and its first line (the server is ready)."""
    serve = spawn([str(BIN / "vs-sr"), "triton", "serve", "--repo", str(repo), "--json", *args],
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    return serve, next_announcement(serve)


def next_announcement(serve: subprocess.Popen) -> dict:
    """The next JSON line of a serve: printed each time its server is ready."""
    line = serve.stdout.readline()  # ends with the line, or with the process
    assert line, f"serve ended: {serve.stderr.read()}"
    return json.loads(line)


def shm_of(serve: subprocess.Popen) -> list[str]:
    return [p for p in os.listdir("/dev/shm") if p.startswith(f"vs_sr_triton_{owner_tag(serve.pid)}_")]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_until_signalled_leaves_nothing(tmp_path, spawn, stop):
    needs_triton()
    repo = tmp_path / "repo"
    nearest_model(repo, "nearest", 2)
    serve, ready = start_serve(spawn, repo)
    assert ready.get("models") == ["nearest"]
    with urllib.request.urlopen(f"{ready['http']}/v2/health/ready", timeout=10) as answer:
        assert answer.status == 200
    server = ready["pid"]
    assert len(session_processes(server)) == 2  # the server and its model's stub
    assert shm_of(serve)
    serve.send_signal(stop)
    assert serve.wait(timeout=60) == 0
    assert session_processes(server) == []
    assert not shm_of(serve)


def served(url: str) -> vs.VideoNode:
    """A 64x48 clip upscaled by the server's `nearest` x2 model (through shared memory: loopback)."""
    clip = vs.core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=10)
    return sr.Upscale(clip, "/elsewhere/nearest.onnx", 2, backend="triton", server=url)


def test_serve_starts_a_server_that_dies_again_a_bounded_number_of_times(tmp_path, spawn):
    needs_triton()
    repo = tmp_path / "repo"
    nearest_model(repo, "nearest", 2)
    serve, ready = start_serve(spawn, repo, "--restarts", "1")
    clip = served(ready["grpc"])
    assert clip.get_frame(0).width == 128
    os.kill(ready["pid"], signal.SIGKILL)  # a crash: nothing of the server could say why
    again = next_announcement(serve)
    assert again["pid"] != ready["pid"]
    assert (again["grpc"], again["http"]) == (ready["grpc"], ready["http"])  # its clients keep their URLs
    assert served(again["http"]).get_frame(0).width == 128
    assert clip.get_frame(1).width == 128  # a clip open across the restart goes on (its memory registered anew)
    os.killpg(again["pid"], signal.SIGKILL)  # the second death exceeds --restarts 1
    assert serve.wait(timeout=300) == 1
    lines = serve.stderr.read().splitlines()
    assert lines[0].startswith("vs-sr triton serve: tritonserver died (killed by SIGKILL)"), lines
    assert lines[0].endswith("; starting it again on the same ports (restart 1 of 1 restart in 10 minutes)"), lines
    assert lines[1].startswith("vs-sr: error: tritonserver died (killed by SIGKILL)"), lines
    assert "It is not started again: that would exceed 1 restart in 10 minutes (--restarts)." in lines[1]
    assert len(lines) == 2
    assert session_processes(again["pid"]) == [] and not shm_of(serve)


def test_what_a_killed_serve_left_is_removed_by_the_next_start(tmp_path, spawn):
    """SIGKILL the serve and its server at once: its work folder and the stubs' shared memory stay
    behind, and the next serve (the same temp dir) removes them."""
    needs_triton()
    repo, temp = tmp_path / "repo", tmp_path / "temp"
    nearest_model(repo, "nearest", 2)
    temp.mkdir()
    serve, ready = start_serve(spawn, repo, env={"TMPDIR": str(temp)})
    os.kill(serve.pid, signal.SIGKILL)
    os.killpg(ready["pid"], signal.SIGKILL)
    serve.wait(timeout=60)
    wait_until(lambda: not session_processes(ready["pid"]), 60, "the server to die")
    folders, regions = list(temp.iterdir()), shm_of(serve)
    assert [f.name for f in folders] == [f.name for f in temp.glob(f"vs-sr-triton-{owner_tag(serve.pid)}-*")]
    assert folders and regions
    living = temp / f"vs-sr-triton-{owner_tag()}-0000"  # a folder whose owner lives (this test): kept
    living.mkdir()
    following, _ = start_serve(spawn, repo, env={"TMPDIR": str(temp)})
    assert not any(f.exists() for f in folders) and not set(regions) & set(os.listdir("/dev/shm"))
    assert living.exists()
    following.send_signal(signal.SIGTERM)
    assert following.wait(timeout=60) == 0


def test_a_start_in_another_pid_namespace_leaves_a_running_servers_regions(tmp_path, spawn):
    """A container sharing /dev/shm (its own temp folder and pids) starts a server: what it sweeps as
    left by dead owners must not include the regions of a server running here, whose owner's pid
    means nothing there."""
    needs_triton()
    repo = tmp_path / "repo"
    nearest_model(repo, "nearest", 2)
    serve, ready = start_serve(spawn, repo)
    regions = shm_of(serve)
    assert regions
    (tmp_path / "elsewhere").mkdir()
    removed = in_own_pid_namespace("import json; from vs_sr.serving.triton_server import remove_leftovers; "
                                   "print(json.dumps(remove_leftovers()))", {"TMPDIR": str(tmp_path / "elsewhere")})
    assert not set(regions) & {Path(p).name for p in json.loads(removed)}
    assert set(regions) <= set(os.listdir("/dev/shm"))
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=60) == 0 and not shm_of(serve)


def test_a_killed_export_leaves_nothing_that_stops_the_next_serve(tmp_path, spawn):
    """Triton takes every folder of a repository for a model, hidden ones too: the folder a SIGKILLed
    export was writing is removed when a serve starts, and a running export's makes it wait."""
    import fcntl

    needs_triton()
    repo = tmp_path / "repo"
    nearest_model(repo, "nearest", 2)
    # what a SIGKILLed export leaves: its folder, half-written, whose lock died with it (the export itself
    # can finish between two looks, so the leftover is made here)
    (repo / ".realesr-animevideov3-x4.export-0a1b2c3d" / "1").mkdir(parents=True)
    running = repo / ".other.export-abcd1234"  # an export in progress: its folder is held
    running.mkdir()
    held = os.open(running, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        refused = subprocess.run([str(BIN / "vs-sr"), "triton", "serve", "--repo", str(repo)], capture_output=True,
                                 text=True, stdin=subprocess.DEVNULL, timeout=300)
        assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
        assert f"an export into {repo} is running (.other.export-abcd1234): start the server when it is done" \
            in refused.stderr
    finally:
        os.close(held)
    serve, ready = start_serve(spawn, repo)
    assert ready["models"] == ["nearest"] and not list(repo.glob(".*.export-*"))
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=60) == 0


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



def test_a_signal_while_the_server_starts_interrupts_the_start(tmp_path, spawn):
    """A model that takes long to load (here: forever) does not hold a Ctrl-C or SIGTERM until the
    server is ready: serve stops the server at once, exits 130 and announces nothing."""
    needs_triton()
    repo = tmp_path / "repo"
    nearest_model(repo, "slow", 2)
    started = tmp_path / "loading"
    (repo / "slow" / "1" / "model.py").write_text(
        f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(3600)\n")
    serve = spawn([str(BIN / "vs-sr"), "triton", "serve", "--repo", str(repo), "--json"], stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
    wait_until(lambda: started.exists() or serve.poll() is not None, 300, "the model to start loading")
    serve.send_signal(signal.SIGTERM)
    serve.send_signal(signal.SIGINT)  # an impatient second one must not cut the server's stop short
    out, err = serve.communicate(timeout=120)
    assert serve.returncode == 130 and out == "" and err.startswith("vs-sr: interrupted"), (out, err)
    wait_until(lambda: not processes(f"--model-repository={repo}"), 60, "the server to stop")
    assert not shm_of(serve)


def test_a_model_that_loads_past_the_startup_timeout_ends_serve_with_the_option_named(tmp_path, spawn):
    """The start-up allowance is an option: past it serve stops the server, says how to raise it in
    one line, and exits 1."""
    needs_triton()
    repo = tmp_path / "repo"
    nearest_model(repo, "slow", 2)
    (repo / "slow" / "1" / "model.py").write_text("import time\ntime.sleep(3600)\n")
    serve = spawn([str(BIN / "vs-sr"), "triton", "serve", "--repo", str(repo), "--startup-timeout", "2.5"],
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = serve.communicate(timeout=300)
    assert serve.returncode == 1 and out == "" and err.count("\n") == 1, (out, err)
    assert err.startswith("vs-sr: error: tritonserver was not ready within 2.5 s"), err
    assert "`vs-sr triton serve --startup-timeout SECONDS`" in err
    assert not processes(f"--model-repository={repo}") and not shm_of(serve)


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan"])
def test_a_startup_timeout_that_is_not_a_positive_number_is_refused(value):
    done = subprocess.run([str(BIN / "vs-sr"), "triton", "serve", "--repo", ".", "--startup-timeout", value],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 2 and "argument --startup-timeout: must be" in done.stderr, done.stderr


def test_a_sigterm_during_a_restart_stops_serve_without_waiting_out_the_start(tmp_path, spawn):
    """The server dies and its restart hangs (the model loads forever the second time): a SIGTERM
    then stops serve as while serving (exit 0, nothing announced), not after the 120 s start-up
    allowance, which is past systemd's 90 s stop timeout."""
    needs_triton()
    repo = tmp_path / "repo"
    nearest_model(repo, "model", 2)
    second, loading = tmp_path / "second", tmp_path / "loading"
    model = repo / "model" / "1" / "model.py"
    model.write_text(f"import pathlib, time\nif pathlib.Path({str(second)!r}).exists():\n"
                     f"    pathlib.Path({str(loading)!r}).touch()\n    time.sleep(3600)\n" + model.read_text())
    serve, ready = start_serve(spawn, repo)
    second.touch()
    os.kill(ready["pid"], signal.SIGKILL)
    wait_until(lambda: loading.exists() or serve.poll() is not None, 300, "the restart to load the model")
    serve.send_signal(signal.SIGTERM)
    out, err = serve.communicate(timeout=60)  # (without the fix: 120 s)
    assert serve.returncode == 0 and out == "", (out, err)
    assert "starting it again on the same ports" in err
    wait_until(lambda: not processes(f"--model-repository={repo}"), 60, "the server to stop")
    assert not shm_of(serve)


def test_a_file_given_as_the_repository_is_named():
    done = subprocess.run([str(BIN / "vs-sr"), "triton", "serve", "--repo", __file__], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 1 and "is a file: the model repository is a folder" in done.stderr, done.stderr

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


def test_three_vspipe_clients_are_batched_together(triton_server, tmp_path, spawn):
    script = tmp_path / "client.vpy"
    script.write_text(CLIENT)
    before = batch_executions(triton_server)
    clients = [spawn([str(BIN / "vspipe"), "-a", f"server={triton_server.grpc_url}", str(script), "--"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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


def test_the_restart_budget_counts_restarts_within_its_window():
    from vs_sr.serving.supervision import RestartBudget, exit_status

    budget = RestartBudget(limit=3, window=600)
    assert [budget.take(t) for t in (0, 10, 20, 30)] == [True, True, True, False]
    assert budget.take(599) is False  # the restarts at 0, 10 and 20 are within 600 s of it
    assert budget.take(600.5) is True  # the one at 0 is not
    assert budget.take(605) is False
    assert RestartBudget(limit=0).take(0) is False
    assert (exit_status(-9), exit_status(1), exit_status(-11)) == ("killed by SIGKILL", "exit status 1", "killed by SIGSEGV")
