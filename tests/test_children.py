"""Children that die with us (vs_sr.children): every tool vs_sr starts gets a parent-death signal,
so a SIGKILLed vs_sr leaves none behind; and starting them stays safe in a process where gRPC
runs (the Triton client), whose fork handlers abort a forked child now and then."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from conftest import processes, wait_until

from vs_sr.children import Cancelled, alive, cancelled_by, owner_gone, owner_tag, run_child, start_child

PARENT = """
import sys
from vs_sr.children import run_child, start_child
start_child(["sleep", "1001"])
print("started", flush=True)
run_child(["sleep", "1002"])  # a quick tool that hangs: the parent waits in subprocess.run
"""


def test_a_sigkilled_parent_takes_its_long_and_its_quick_children_along(spawn):
    parent = spawn([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline() == "started\n"
    children = wait_until(lambda: len(found := processes("sleep 100")) == 2 and found, 60, "both children")
    parent.kill()
    parent.wait(timeout=30)
    wait_until(lambda: not any(alive(child.pid) for child in children), 30, "the children to die with their parent")


def test_an_owner_is_gone_only_when_it_is_a_process_of_ours_that_ended():
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True)
    dead = int(ended.stdout)
    if alive(dead):
        pytest.skip("the pid was taken again meanwhile")
    assert owner_gone(owner_tag(dead)) and owner_gone(str(dead))  # (a bare pid: names vs_sr wrote before)
    assert not owner_gone(owner_tag())
    assert not owner_gone(f"{dead}n1")  # a pid of another namespace: cannot be looked up from here
    assert not owner_gone("nonsense")


def test_a_tool_is_found_or_refused_as_popen_finds_or_refuses_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-tool"):
        run_child(["no-such-tool", "--version"])
    with pytest.raises(FileNotFoundError, match="no-such-tool"):
        start_child(["no-such-tool"])
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\necho here\n")
    with pytest.raises(PermissionError):
        run_child(["./tool"], cwd=tmp_path)
    tool.chmod(0o755)
    assert run_child(["./tool"], cwd=tmp_path, capture_output=True, text=True).stdout == "here\n"  # the child's folder
    with pytest.raises(TypeError, match="no executable= or shell="):
        run_child(["ls"], executable="/bin/ls")


def test_a_cancelled_thread_stops_the_child_it_waits_for():
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def work() -> None:
        with cancelled_by(cancel):
            try:
                run_child(["sleep", "1003"])
            except BaseException as error:
                outcome.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    [child] = wait_until(lambda: processes("sleep 1003"), 60, "the child")
    cancel.set()
    thread.join(timeout=60)
    assert not thread.is_alive() and isinstance(outcome[0], Cancelled)
    wait_until(lambda: not alive(child.pid), 30, "the child to be killed")


def test_input_larger_than_a_pipe_reaches_a_child_within_a_cancellable_scope():
    data = b"x" * (4 << 20)  # more than a pipe holds
    with cancelled_by(threading.Event()):
        done = run_child(["sh", "-c", "sleep 0.5; wc -c"], input=data, capture_output=True, timeout=60)
    assert done.stdout.split() == [str(len(data)).encode()]


def test_a_timeout_holds_within_a_cancellable_scope():
    with cancelled_by(threading.Event()), pytest.raises(subprocess.TimeoutExpired):
        run_child(["sleep", "1004"], timeout=0.5)
    wait_until(lambda: not processes("sleep 1004"), 30, "the timed-out child to be killed")


def test_a_child_gets_its_arguments_exit_status_and_input_unchanged():
    done = run_child(["sh", "-c", 'printf "%s|" "$@"; cat; exit 3', "sh", "a b", "$HOME", "*", ""],
                     input="in", capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (3, "a b|$HOME|*||in")


CLIENT = """
import threading
import tritonclient.grpc as grpcclient
from vs_sr.children import run_child, start_child

client = grpcclient.InferenceServerClient("127.0.0.1:9")  # nothing listens: every call fails, fast


def busy():
    while True:
        try:
            client.is_server_live()
        except Exception:
            pass


threading.Thread(target=busy, daemon=True).start()
failed = sum(run_child(["true"], timeout=60).returncode != 0 for _ in range(300))
failed += sum(start_child(["true"]).wait(timeout=60) != 0 for _ in range(100))
print(failed)
"""


def test_children_start_cleanly_beside_a_busy_grpc_client(spawn):
    """With a fork (a preexec_fn) about 3% of these children died of SIGABRT in gRPC's handlers."""
    pytest.importorskip("tritonclient.grpc")
    client = spawn([sys.executable, "-c", CLIENT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = client.communicate(timeout=600)
    assert client.returncode == 0, err
    assert out.strip() == "0"
