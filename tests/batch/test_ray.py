"""vs-sr batch on Ray: a Ray started for the run, a killed Ray worker, and a real two-node cluster
on this machine (`ray start --head` plus a second `ray start --address` with its own temp dir)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import VS_SR, ffmpeg, processes, signal_one, vs_sr, wait_until

pytest.importorskip("ray")

RAY = str(Path(sys.executable).with_name("ray"))


def framemd5(path: Path) -> list[str]:
    done = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"],
                          capture_output=True, text=True, check=True)
    return [line.rsplit(",", 1)[1].strip() for line in done.stdout.splitlines() if not line.startswith("#")]


def chunks(out: Path) -> list[dict]:
    return json.loads(vs_sr("batch", "status", str(out), "--json").stdout)["videos"][0]["chunks"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A clip, and the frames `vs-sr upscale` makes of it (FFV1)."""
    folder = tmp_path_factory.mktemp("ray")
    path = folder / "clip.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=4", "-f", "lavfi", "-i", "sine=duration=4",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))
    single = folder / "single.mkv"
    done = vs_sr("upscale", str(path), str(single), "--codec", "ffv1")
    assert done.returncode == 0, done.stderr
    return path, framemd5(single)


def short_temp() -> str:
    """Ray's temp dir: its socket paths must stay under 108 bytes."""
    return tempfile.mkdtemp(prefix="vsr-ray-", dir="/tmp")


def ray_processes(temp: str) -> list[str]:
    return [p.cmdline for p in processes(temp)]


def test_local_ray_gives_the_same_frames(ncnn_models, clip, tmp_path):
    source, expected = clip
    out = tmp_path / "out"
    env = {"RAY_TMPDIR": short_temp()}
    done = vs_sr("batch", str(source), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "30", "--ray",
                 env=env)
    assert done.returncode == 0, done.stderr
    assert framemd5(out / "clip.mkv") == expected
    assert all(c["state"] == "done" and c["node"] for c in chunks(out))


def one_chunk_at_a_time(spawn, source: Path, out: Path) -> subprocess.Popen[str]:
    """`vs-sr batch --ray` on the clip in chunks of 50 frames, one at a time."""
    return spawn([VS_SR, "batch", str(source), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "50",
                  "--jobs", "1", "--ray"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                 env={**os.environ, "RAY_TMPDIR": short_temp()})


def chunk_vspipes(out: Path) -> list:
    """The native vspipe processes rendering the chunks of the batch in `out`."""
    return [p for p in processes(str(out)) if p.cmdline.split()[0].endswith("vspipe")]


@pytest.mark.timing
def test_a_killed_ray_worker_is_retried(ncnn_models, clip, tmp_path, spawn):
    source, expected = clip
    out = tmp_path / "out"
    job = one_chunk_at_a_time(spawn, source, out)
    # the Ray worker that started a chunk's vspipe, at once: small test chunks end within a second (two
    # chunks: a second chance)
    signal_one(lambda: [p.parent for p in chunk_vspipes(out)], signal.SIGKILL, "a chunk's vspipe")
    printed, err = job.communicate(timeout=900)
    assert job.returncode == 0, err
    assert "attempt 1 failed (the Ray worker running it died); retrying" in printed
    assert "(raylet)" not in printed + err  # Ray's own worker-death notices do not reach the user
    assert sorted(c["attempts"] for c in chunks(out)) == [1, 2]
    assert framemd5(out / "clip.mkv") == expected


@pytest.mark.timing
def test_a_video_failed_on_ray_ends_the_run(ncnn_models, clip, tmp_path, spawn):
    """A chunk stopped because its video failed ended its Ray task without a last event: the driver
    counted it as running for good and spun at full CPU instead of ending the run."""
    source, _ = clip
    out = tmp_path / "out"
    job = spawn([VS_SR, "batch", str(source), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "25",
                 "--jobs", "2", "--max-tries", "1", "--ray"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "RAY_TMPDIR": short_temp()})
    signal_one(lambda: [p.parent for p in chunk_vspipes(out)], signal.SIGKILL, "a chunk's vspipe")
    printed, err = job.communicate(timeout=600)
    assert job.returncode == 1, err
    assert "failed after 1 attempt(s): the Ray worker running it died" in err, err
    assert "retrying" not in printed


@pytest.mark.timing
def test_a_sigterm_while_ray_starts_is_an_interruption_like_any_other(ncnn_models, clip, tmp_path, spawn):
    """Ray puts in its own SIGTERM handler while it starts (exit 15, not a word): the batch keeps
    its own meaning of the signal, and shuts the half-started Ray down."""
    source, _ = clip
    temp = short_temp()
    job = spawn([VS_SR, "batch", str(source), "--output-dir", str(tmp_path / "out"), "--ray"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "RAY_TMPDIR": temp})
    wait_until(lambda: any("raylet" in line for line in ray_processes(temp)) or job.poll() is not None, 300,
               "Ray's daemons to start")
    job.send_signal(signal.SIGTERM)
    _, err = job.communicate(timeout=300)
    assert job.returncode == 130 and "interrupted; the batch continues" in err, err
    wait_until(lambda: not ray_processes(temp), 120, "Ray's daemons to end")


@pytest.mark.timing
def test_a_sigterm_mid_chunk_leaves_no_attempt_folder(ncnn_models, clip, tmp_path, spawn):
    """A stopped Ray worker is killed, so it cannot remove its attempt's folder: the driver does."""
    source, _ = clip
    out = tmp_path / "out"
    job = one_chunk_at_a_time(spawn, source, out)
    # the chunk's vspipe held (SIGSTOP), so that the chunk is surely in flight when the batch is stopped
    signal_one(lambda: [p.pid for p in chunk_vspipes(out)], signal.SIGSTOP, "a chunk's vspipe")
    assert list(out.rglob("*.attempt*"))
    job.send_signal(signal.SIGTERM)
    _, err = job.communicate(timeout=300)
    assert job.returncode == 130, err
    assert not list(out.rglob("*.attempt*"))
    wait_until(lambda: not processes(str(out)), 60, "the chunk's tools to end")

def start_node(spawn, temp: str, *args: str, env: dict[str, str], cpus: int = 1) -> subprocess.Popen[bytes]:
    """`ray start` in its own session, so that this node alone can be stopped (`ray stop` would
    stop every Ray on the machine)."""
    return spawn([RAY, "start", "--temp-dir", temp, "--num-cpus", str(cpus), "--disable-usage-stats", "--block", *args],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)


def stop_node(node: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(node.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    node.wait()


@contextlib.contextmanager
def cluster(spawn, head_cpus: int = 1) -> Iterator[tuple[str, Callable[[], None], dict[str, str]]]:
    """A Ray head on this machine: (its address, a function that starts a second node, the environment
    that reaches them). Every node is stopped, and its processes gone, when the block ends."""
    head_temp, node_temp = short_temp(), short_temp()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    nodes = [start_node(spawn, head_temp, "--head", "--port", "0", "--include-dashboard", "false", env=env,
                        cpus=head_cpus)]
    try:
        address_file = Path(head_temp) / "ray_current_cluster"
        address = wait_until(lambda: address_file.exists() and address_file.read_text().strip(), 300,
                             "the head's address")
        yield address, lambda: nodes.append(start_node(spawn, node_temp, "--address", address, env=env)), env
    finally:
        for node in reversed(nodes):
            stop_node(node)
        wait_until(lambda: not ray_processes(head_temp) and not ray_processes(node_temp), 120,
                   "the nodes' processes to end")
        shutil.rmtree(head_temp, ignore_errors=True)
        shutil.rmtree(node_temp, ignore_errors=True)


def test_a_two_node_cluster_runs_chunks_on_both_nodes(ncnn_models, clip, tmp_path, spawn):
    source, expected = clip
    with cluster(spawn) as (address, add_node, env):
        add_node()
        out = tmp_path / "out"
        done = subprocess.run([VS_SR, "batch", str(source), "--output-dir", str(out), "--codec", "ffv1",
                               "--chunk-frames", "10", "--jobs", "2", "--ray", address], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=900, env=env)
        assert done.returncode == 0, done.stderr
        assert framemd5(out / "clip.mkv") == expected
        assert len({c["node"] for c in chunks(out)}) == 2  # both nodes ran chunks


def test_a_cluster_without_cpus_says_it_waits_for_a_node(ncnn_models, clip, tmp_path, spawn):
    """A head started with --num-cpus 0 (so that it runs no tasks) before its workers join."""
    source, expected = clip
    with cluster(spawn, head_cpus=0) as (address, add_node, env):
        out, printed = tmp_path / "out", tmp_path / "printed.txt"
        with printed.open("w") as stdout:
            job = spawn([VS_SR, "batch", str(source), "--output-dir", str(out), "--codec", "ffv1", "--ray", address],
                        stdout=stdout, stderr=subprocess.PIPE, text=True, env=env)
        wait_until(lambda: "waits for a node" in printed.read_text() or job.poll() is not None, 300, "the note")
        assert "note: the Ray cluster has no CPU for chunks yet (a head started with --num-cpus 0 runs none); the " \
            "batch waits for a node with a CPU to join" in printed.read_text()
        add_node()
        _, err = job.communicate(timeout=900)
        assert job.returncode == 0, err
        assert framemd5(out / "clip.mkv") == expected


@pytest.mark.parametrize(("address", "message"), [
    ("localhost", "--ray localhost: give the head node as HOST:PORT (e.g. 10.0.0.5:6379)."),
    ("ray://127.0.0.1:10001", "it does not take Ray Client (ray://) addresses."),
    ("[::1]:6379", "--ray [::1]:6379: vs-sr reaches Ray heads over IPv4; give the head's IPv4 address"),
])
def test_an_address_that_is_not_a_head_nodes_host_and_port_is_refused(tmp_path, clip, address, message):
    done = vs_sr("batch", str(clip[0]), "--output-dir", str(tmp_path / "out"), "--ray", address, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_an_address_where_no_ray_answers_is_one_clear_line_and_leaves_nothing(tmp_path, clip):
    source, _ = clip
    done = vs_sr("batch", str(source), "--output-dir", str(tmp_path / "out"), "--ray", "127.0.0.1:1", timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "no Ray head answers at 127.0.0.1:1" in done.stderr
    assert not (tmp_path / "out").exists()  # no output folder, no batch state: nothing was started
