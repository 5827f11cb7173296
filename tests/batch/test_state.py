"""The batch state and its readers: a reader never meets a half-made database, and a state that
is damaged, emptied or on a full disk ends in a one-line message with a way on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import VS_SR, SmallDisk, ffmpeg, signal_one, small_disk, vs_sr, wait_until
from test_batch import framemd5, status, vspipes

from vs_sr.batch import batch_status
from vs_sr.batch.state import State, state_path
from vs_sr.errors import SRError
from vs_sr.media.probe import count_frames


def test_readers_polling_while_states_are_made_never_see_a_half_made_one(tmp_path):
    """Four threads read `batch_status` in a loop while the state is created: each read finds no
    batch yet or a whole one, never a database without its tables."""
    errors: list[str] = []
    for attempt in range(20):
        directory = tmp_path / f"batch-{attempt}"
        directory.mkdir()
        made = threading.Event()
        reads_after: list[int] = []

        def read(directory: Path = directory, made: threading.Event = made, reads_after: list[int] = reads_after) -> None:
            while True:
                finished = made.is_set()
                try:
                    batch_status(directory)
                    reads_after.append(1)
                except SRError as error:
                    if "holds no vs-sr batch" not in error.message or finished:
                        errors.append(error.message)
                except Exception as error:  # sqlite3.OperationalError: no such table: videos
                    errors.append(repr(error))
                if finished:
                    return

        readers = [threading.Thread(target=read) for _ in range(4)]
        for reader in readers:
            reader.start()
        State(state_path(directory)).close()
        made.set()
        for reader in readers:
            reader.join()
        assert len(reads_after) >= 4  # each reader read the whole state at least once
    assert not errors, errors[:3]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 frames of 64x48 with audio: four chunks of 25."""
    path = tmp_path_factory.mktemp("clip") / "clip.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=4", "-f", "lavfi", "-i", "sine=duration=4",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))
    return path


def batch(clip: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return vs_sr("batch", str(clip), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "25", *args)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The error of a failed command, which must be a single line (no traceback)."""
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("vs-sr: error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    return errors[0]


def test_a_damaged_state_is_named_and_restart_keeps_the_verified_chunks(ncnn_models, clip, tmp_path):
    out = tmp_path / "out"
    assert batch(clip, out, "--keep-chunks").returncode == 0
    frames = framemd5(out / "clip.mkv")
    (out / "clip.mkv").unlink()
    state = out / ".vs-sr-batch" / "state.db"
    state.write_bytes(b"not a database " * 400)
    for done in (batch(clip, out, "--keep-chunks"), vs_sr("batch", "status", str(out))):
        error = one_line_error(done)
        assert f"the batch state {state} is damaged (file is not a database)" in error and "--restart" in error
    done = batch(clip, out, "--restart")
    assert done.returncode == 0, done.stderr
    assert "clip.mkv: 4 chunk(s) made earlier still verify; they are kept" in done.stdout
    assert framemd5(out / "clip.mkv") == frames
    report = status(out)
    assert report["frames_done"] == report["frames_total"] == 100
    assert [c["attempts"] for c in report["videos"][0]["chunks"]] == [0, 0, 0, 0]  # none was made again
    assert not (out / ".vs-sr-batch" / "chunks.restart").exists()


def test_a_finished_batch_run_again_or_with_its_state_emptied(ncnn_models, clip, tmp_path):
    out = tmp_path / "out"
    assert batch(clip, out).returncode == 0
    written = (out / "clip.mkv").stat().st_mtime_ns
    again = batch(clip, out)
    assert again.returncode == 0, again.stderr
    assert "missing or truncated" not in again.stdout and "all 1 video(s) done" in again.stdout
    report = status(out)
    assert report["frames_done"] == report["frames_total"] == 100
    state = out / ".vs-sr-batch" / "state.db"
    state.write_bytes(b"")  # emptied: SQLite would take it for a new database
    error = one_line_error(batch(clip, out))
    assert f"the batch state {state} is empty: it was lost" in error and "--restart" in error
    done = batch(clip, out, "--restart")
    assert done.returncode == 0, done.stderr
    assert f"kept {out / 'clip.mkv'}: this batch made it from the same input with the same settings" in done.stdout
    assert (out / "clip.mkv").stat().st_mtime_ns == written  # not made again
    assert status(out)["frames_done"] == 100


def test_a_moved_batch_folder_is_continued_where_it_is_now(ncnn_models, clip, tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    assert batch(clip, before).returncode == 0
    before.rename(after)
    (after / "clip.mkv").unlink()
    done = batch(clip, after)
    assert done.returncode == 0, done.stderr
    assert f"{after / 'clip.mkv'} is gone; it is made again" in done.stdout
    assert count_frames(after / "clip.mkv") == 100 and not before.exists()
    assert status(after)["videos"][0]["output"] == str(after.resolve() / "clip.mkv")


def test_a_chunk_failed_without_its_video_is_tried_again_and_never_reads_done(ncnn_models, clip, tmp_path):
    """What a full disk can leave: a chunk recorded as failed, its video's failure never written.
    The next run tries the chunk again (here: taken back from its record) instead of ending with
    nothing to do and "all 0 video(s) done"."""
    out = tmp_path / "out"
    assert batch(clip, out, "--keep-chunks").returncode == 0
    (out / "clip.mkv").unlink()
    state = State(state_path(out))
    try:
        state.fail_chunk((1, 2), "ffmpeg failed: No space left on device", final=True)
        state.set_video(1, "running")
    finally:
        state.close()
    done = batch(clip, out, "--keep-chunks")
    assert done.returncode == 0, done.stderr
    assert "all 1 video(s) done" in done.stdout and count_frames(out / "clip.mkv") == 100


def on_small_disk(small: SmallDisk, out: Path) -> list[dict]:
    """The videos of the batch in `out` on the small disk, as `vs-sr batch status` inside its
    namespace sees them (nothing while there is no state). (From outside, through /proc/PID/root,
    the database cannot be opened: SQLite resolves the link, which leads outside the namespace.)"""
    done = small.run(VS_SR, "batch", "status", str(out), "--json")
    return json.loads(done.stdout)["videos"] if done.returncode == 0 else []


def verified(small: SmallDisk, out: Path) -> dict[int, int]:
    """{first frame: attempts} of the batch's verified chunks."""
    return {c["first"]: c["attempts"] for v in on_small_disk(small, out) for c in v["chunks"] if c["state"] == "done"}


def finished(small: SmallDisk, out: Path) -> int:
    """Frames of the batch's finished videos."""
    return sum(v["frames_total"] for v in on_small_disk(small, out) if v["state"] == "done")


def test_a_full_disk_while_a_chunk_encodes_stops_the_batch_and_the_same_command_continues(ncnn_models, clip, tmp_path):
    """The disk fills while a chunk is half-way (its vspipe is held with SIGSTOP meanwhile): the
    batch stops with one line saying so; once space is freed, the same command finishes, and the
    chunks verified before are not made again."""
    disk = tmp_path / "disk"
    disk.mkdir()
    with small_disk(disk, 128) as small:
        out = disk / "out"
        command = [VS_SR, "batch", str(clip), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "10"]
        job = subprocess.Popen(small.command(*command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        records = small.outside(out / ".vs-sr-batch" / "chunks" / "video-00001")
        try:  # ten chunks, one at a time: after the first is verified (its record written), nine are to come
            wait_until(lambda: list(records.glob("chunk-*.json")), 600, "a verified chunk")
            victim = signal_one(lambda: vspipes(out), signal.SIGSTOP, "a chunk's vspipe")
            filler = small.fill()
            os.kill(victim, signal.SIGCONT)
            _, err = job.communicate(timeout=600)
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
        error = one_line_error(subprocess.CompletedProcess(command, job.returncode, "", err))
        assert "no space left" in error and "run the same command again" in error
        before = verified(small, out)
        filler.unlink()
        done = small.run(*command)
        assert done.returncode == 0, done.stderr
        assert finished(small, out) == 100
        after = verified(small, out)
    assert before and all(after[first] == attempts == 1 for first, attempts in before.items())


def test_a_full_disk_while_a_video_is_assembled_stops_the_batch_and_the_same_command_continues(
        ncnn_models, clip, tmp_path):
    """Its chunks are verified (kept from a first run whose output was then deleted); the disk has
    room for the state but not for the joined video: one line says so, and once space is freed
    the same command assembles it without making any chunk again."""
    disk = tmp_path / "disk"
    disk.mkdir()
    with small_disk(disk, 128) as small:
        out = disk / "out"
        command = [VS_SR, "batch", str(clip), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "25",
                   "--keep-chunks"]
        assert small.run(*command).returncode == 0
        small.outside(out / "clip.mkv").unlink()
        chunks = sum(f.stat().st_size for f in small.outside(out).rglob("chunk-*.mkv"))
        filler = small.fill(leave=chunks // 4)  # room for the state, not for the joined video
        error = one_line_error(small.run(*command))
        assert "no space left" in error and "run the same command again" in error
        assert error.count(" free)") + error.count(" free in ") == 1, error  # when it failed, not also after clean-up
        filler.unlink()
        done = small.run(*command)
        assert done.returncode == 0, done.stderr
        assert finished(small, out) == 100
        assert set(verified(small, out).values()) == {0}  # all four taken back from their records: none made again
