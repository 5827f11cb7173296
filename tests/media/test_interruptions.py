"""A `vs-sr upscale` stopped in any step leaves nothing behind: no process of the job, no output,
no temporary file; a SIGKILLed run's leftovers are removed by the next run to the same output;
two runs to one output cannot both succeed.

Faults are real: signals to the real process, and tools that hang. A hung tool is the real one
behind a shim on PATH that stops itself (SIGSTOP) when its arguments say it is the step under
test, which is how a stuck ffmpeg or a frozen network mount behaves."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import VS_SR, ffmpeg, hung_tool, processes, stopped, wait_until

pytestmark = pytest.mark.timing  # run again beside busy CPU hogs by scripts/load_check.sh

FPS = 25


@pytest.fixture(scope="module")
def long_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("long")
    (folder / "subs.srt").write_text("1\n00:00:00,100 --> 00:00:00,900\nHello\n")
    path = folder / "long.mkv"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=128x96:rate={FPS}:duration=40", "-f", "lavfi", "-i", "sine=duration=40",
           "-i", str(folder / "subs.srt"), "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-pix_fmt",
           "yuv420p", "-c:a", "aac", "-c:s", "srt", str(path))
    return path


def processes_mentioning(token: str) -> list[str]:
    """Command lines of running processes that mention `token` (our output's name is in every
    command of the job: the work folder is named after it)."""
    return [p.cmdline for p in processes(token)]


def ours(folder: Path, name: str) -> list[str]:
    """Everything of a run beside its output: the output itself and any work folder."""
    return sorted(p.name for p in folder.iterdir() if p.name == name or p.name.startswith(f".{name}.vs-sr-"))


def start(spawn, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`vs-sr upscale`, killed when the test ends if it still runs."""
    return spawn([VS_SR, "upscale", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                 env={**os.environ, **(env or {})})


def wait_for_frames(job: subprocess.Popen[str]) -> None:
    assert job.stderr is not None
    for line in job.stderr:
        if re.search(r"\d+/\d+ frames", line):
            return
    raise AssertionError("the job ended before any frame was encoded")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_encoding_stops_everything_and_leaves_nothing(ncnn_models, long_source, tmp_path, spawn, signum):
    output = tmp_path / f"out-{signum.name}.mkv"
    job = start(spawn, str(long_source), str(output))
    wait_for_frames(job)
    assert processes_mentioning(output.name)  # vspipe and ffmpeg are running
    job.send_signal(signum)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 130 and "interrupted; nothing was written" in err
    wait_until(lambda: not processes_mentioning(output.name), 30, "the job's processes to end")
    assert ours(tmp_path, output.name) == []


def test_sigkill_leaves_no_process_and_the_next_run_clears_the_leftovers(ncnn_models, long_source, tmp_path, spawn):
    output = tmp_path / "out.mkv"
    job = start(spawn, str(long_source), str(output))
    wait_for_frames(job)
    job.kill()
    job.wait(timeout=30)
    # The children had a parent-death signal: the native vspipe and ffmpeg die with vs-sr.
    wait_until(lambda: not processes_mentioning(output.name), 30, "vspipe and ffmpeg to die with vs-sr")
    leftovers = ours(tmp_path, output.name)
    assert leftovers and all(".vs-sr-" in name for name in leftovers)  # the SIGKILLed run's work folder
    done = subprocess.run([VS_SR, "upscale", str(long_source), str(output), "--end", "4"], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert done.returncode == 0, done.stderr
    assert ours(tmp_path, output.name) == [output.name]  # the leftovers are gone, the output is there


def test_only_our_own_temporaries_are_removed(ncnn_models, long_source, tmp_path):
    output = tmp_path / "clip.mkv"
    strangers = [tmp_path / ".clip.mkv.part", tmp_path / ".clip.tmp", tmp_path / ".other.mkv.vs-sr-abc"]
    for path in strangers:
        path.write_text("not ours")
    done = subprocess.run([VS_SR, "upscale", str(long_source), str(output), "--end", "2"], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert done.returncode == 0, done.stderr
    assert all(path.read_text() == "not ours" for path in strangers)


@pytest.mark.parametrize(("step", "tool", "pattern", "signum"), [
    ("start-up: probing the input", "ffprobe", "-show_chapters", signal.SIGTERM),
    ("cutting the other tracks to the range", "ffmpeg", "-copyts -ss", signal.SIGHUP),
    ("joining the video and applying the frame times", "mkvmerge", "--timestamps", signal.SIGTERM),
    ("the final check of the output", "ffprobe", "packet=pts_time", signal.SIGTERM),
])
def test_a_signal_in_any_step_exits_130_and_leaves_nothing(ncnn_models, long_source, tmp_path, step, tool, pattern,
                                                           signum, spawn):
    shims = tmp_path / "shims"
    shims.mkdir()
    output = tmp_path / "range.mkv"
    job = start(spawn, str(long_source), str(output), "--start", "10", "--end", "14", env=hung_tool(shims, tool, pattern))
    wait_until(lambda: stopped(pattern.split()[0]) or job.poll() is not None, 300, f"the {step} step")
    assert job.poll() is None, job.communicate()[1]
    job.send_signal(signum)
    _, err = job.communicate(timeout=60)
    assert job.returncode == 130, err
    wait_until(lambda: not processes_mentioning(output.name) and not stopped(pattern.split()[0]), 30,
               "the job's processes to end")
    assert ours(tmp_path, output.name) == []



@pytest.mark.parametrize(("step", "pattern"), [
    ("start-up: probing the input", "-show_chapters"),
    ("the final check of the output", "packet=pts_time"),
])
def test_a_sigkill_in_a_quick_step_leaves_no_tool_behind(ncnn_models, long_source, tmp_path, step, pattern, spawn):
    """The quick tools (ffprobe) die with vs-sr like the long ones: a SIGKILL leaves no clean-up to
    run, and a signal that lands while Python is still starting the tool leaves none either."""
    shims = tmp_path / "shims"
    shims.mkdir()
    output = tmp_path / "range.mkv"
    job = start(spawn, str(long_source), str(output), "--start", "10", "--end", "14",
                env=hung_tool(shims, "ffprobe", pattern))
    wait_until(lambda: stopped(pattern) or job.poll() is not None, 300, f"the {step} step")
    assert job.poll() is None, job.communicate()[1]
    job.kill()
    job.wait(timeout=30)
    wait_until(lambda: not processes(pattern), 30, "the hung ffprobe to die with vs-sr")

def test_two_runs_to_one_output_cannot_both_succeed(ncnn_models, long_source, tmp_path, spawn):
    output = tmp_path / "shared.mkv"
    first = start(spawn, str(long_source), str(output))
    wait_for_frames(first)
    second = subprocess.run([VS_SR, "upscale", str(long_source), str(output), "--overwrite"], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert second.returncode == 1
    assert f"another vs-sr run is writing {output}" in second.stderr
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    assert ours(tmp_path, output.name) == []


@pytest.mark.parametrize("spelling", ["a symlinked folder", "sub/../"])
def test_two_spellings_of_one_output_share_its_lock(ncnn_models, long_source, tmp_path, spelling, spawn):
    """The second run names the first's output another way; it must be refused, not go on and
    remove the first's live work folder as a leftover."""
    (tmp_path / "sub").mkdir()
    output = tmp_path / "shared.mkv"
    if spelling == "sub/../":
        other = tmp_path / "sub" / ".." / "shared.mkv"
    else:
        (tmp_path / "link").symlink_to(tmp_path)
        other = tmp_path / "link" / "shared.mkv"
    first = start(spawn, str(long_source), str(output))
    wait_for_frames(first)
    work = [p for p in tmp_path.iterdir() if p.name.startswith(".shared.mkv.vs-sr-")]
    second = subprocess.run([VS_SR, "upscale", str(long_source), str(other), "--overwrite"], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert second.returncode == 1
    assert f"another vs-sr run is writing {other}" in second.stderr
    assert work and all(p.is_dir() for p in work)  # the first run's work folder is still there
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    assert first.returncode == 130
    assert ours(tmp_path, output.name) == []


def test_the_lock_folder_keeps_no_file_of_a_finished_or_killed_run(ncnn_models, long_source, tmp_path, spawn):
    cache = tmp_path / "cache"
    env = {"VS_SR_CACHE_DIR": str(cache)}
    killed = start(spawn, str(long_source), str(tmp_path / "killed.mkv"), env=env)
    wait_for_frames(killed)
    killed.kill()
    killed.wait(timeout=30)
    assert len(list((cache / "locks").iterdir())) == 1  # a SIGKILLed run cannot clean up
    for name in ("one.mkv", "two.mkv"):
        done = subprocess.run([VS_SR, "upscale", str(long_source), str(tmp_path / name), "--end", "2"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600,
                              env={**os.environ, **env})
        assert done.returncode == 0, done.stderr
    assert list((cache / "locks").iterdir()) == []
