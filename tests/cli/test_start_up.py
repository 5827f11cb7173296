"""A signal while `vs-sr` is still starting (loading VapourSynth, numpy and the runtimes, most of a
second) ends it like one at any later moment: exit code 130, one line, no traceback.

The moment is observed, not guessed: Python reports every import as it finishes
(PYTHONPROFILEIMPORTTIME), and the signal goes out when numpy's line appears, which is in the
middle of the command's imports. The command itself would then wait on a hung ffprobe (a shim
that stops itself), so it cannot finish before the signal arrives whatever the machine's load."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import VS_SR, ffmpeg, processes, wait_until

NUMPY_LOADED = re.compile(r"^import time:.*\|\s*numpy$")


def hung_ffprobe(folder: Path) -> dict[str, str]:
    """PATH with an ffprobe that stops itself (SIGSTOP) instead of probing."""
    shim = folder / "ffprobe"
    shim.write_text("#!/bin/sh\nkill -STOP $$\nexec false\n")
    shim.chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}"}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_start_up_exits_130_without_a_traceback(tmp_path, signum):
    source = tmp_path / "in.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-c:v", "ffv1", str(source))
    shims = tmp_path / "shims"
    shims.mkdir()
    env = {**os.environ, **hung_ffprobe(shims), "PYTHONPROFILEIMPORTTIME": "1"}
    job = subprocess.Popen([VS_SR, "upscale", str(source), str(tmp_path / "out.mkv")], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert job.stderr is not None
        seen = []
        for line in job.stderr:
            seen.append(line)
            if NUMPY_LOADED.match(line.rstrip()):
                break
        else:
            raise AssertionError(f"vs-sr ended before numpy was loaded: {''.join(seen[-5:])}")
        job.send_signal(signum)
        _, rest = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    errors = [line for line in rest.splitlines() if not line.startswith("import time:")]
    assert job.returncode == 130, errors
    assert errors == ["vs-sr: interrupted; nothing was written"]
    wait_until(lambda: not processes(str(shims)), 30, "the stopped ffprobe to be gone")


def test_the_commands_tests_start_take_ctrl_c_however_the_suite_was_started():
    """A suite started with `cmd &` from a script inherits SIGINT ignored, which would pass on to
    every vs-sr it starts and make the Ctrl-C tests above fail; child_processes undoes that."""
    done = subprocess.run([sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT))"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.stdout.strip() == str(signal.default_int_handler)


FINALISER = """
import os, signal, sys
import vs_sr.cli as cli


class Finaliser:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)  # our handler runs here, inside __del__, where Python drops exceptions
        sum(range(10))


def run(args):
    Finaliser()
    return 0


cli.run_command = run  # a command whose object is finalised just as the signal comes (OpenVINO's, in eval)
sys.exit(cli.main(["info"]))
"""


def test_a_signal_that_lands_in_a_finaliser_still_ends_the_run_with_130():
    done = subprocess.run([sys.executable, "-c", FINALISER], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr == "vs-sr: interrupted (the signal came as the command ended: what it wrote is complete)\n"
