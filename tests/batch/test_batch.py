"""vs-sr batch with the real vspipe, ffmpeg and mkvmerge: chunks concatenate to exactly the full
run, timestamps stay exact across chunk borders, and killed processes or files lose nothing.

Clips are tiny (32x24, 64x48) so that many chunks stay fast; faults are real signals to real
processes and real damage to real files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import (
    VS_SR,
    ffmpeg,
    framemd5,
    hung_tool,
    processes,
    signal_one,
    small_compact_weights,
    small_disk,
    stopped,
    vfr_clip,
    vs_sr,
    wait_until,
)

from vs_sr.batch import batch_status
from vs_sr.media.probe import count_frames, probe
from vs_sr.media.timeline import read_timeline
from vs_sr.media.verify import frame_times


def status(directory: Path) -> dict:
    done = vs_sr("batch", "status", str(directory), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def open_gop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """x264 with open GOPs and B-frames, keyframes every 24 frames (chunk borders fall between),
    AAC audio, subtitles, chapters."""
    folder = tmp_path_factory.mktemp("gop")
    (folder / "subs.srt").write_text("1\n00:00:00,300 --> 00:00:01,500\nHello\n")
    (folder / "meta.txt").write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\ntitle=One\n"
                                     "[CHAPTER]\nTIMEBASE=1/1000\nSTART=1000\nEND=2400\ntitle=Two\n")
    path = folder / "gop.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=2.4", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=2.4", "-i", str(folder / "subs.srt"), "-i", str(folder / "meta.txt"),
           "-map", "0", "-map", "1", "-map", "2", "-map_chapters", "3", "-c:v", "libx264", "-bf", "3", "-g", "24",
           "-x264-params", "open_gop=1:scenecut=0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "srt", str(path))
    return path


def test_chunks_concatenate_to_exactly_the_full_run(ncnn_models, open_gop, tmp_path):
    single = tmp_path / "single.mkv"
    done = vs_sr("upscale", str(open_gop), str(single), "--codec", "ffv1")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    done = vs_sr("batch", str(open_gop), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "17",
                 "--jobs", "2", "-v")
    assert done.returncode == 0, done.stderr
    result = out / "gop.mkv"
    assert framemd5(result) == framemd5(single)  # 60 frames in 4 chunks, borders not on keyframes
    assert len([line for line in done.stdout.splitlines() if line.startswith("ran ")]) == 1  # said once, not per chunk
    for chunk in range(4):  # -v: each chunk's vspipe log (it was taken and ignored)
        assert f"gop.mkv: chunk {chunk}: Information: vs_sr: realesr-animevideov3 x4 on CPU" in done.stderr, done.stderr
    media, source = probe(result), probe(open_gop)
    assert [t.kind for t in media.tracks] == ["video", "audio", "subtitle"]
    assert [c.title for c in media.chapters] == ["One", "Two"]
    audio, original = media.of_kind("audio")[0], source.of_kind("audio")[0]
    assert abs(audio.duration - original.duration) <= 0.04
    assert abs((audio.start_time - media.video.start_time) - (original.start_time - source.video.start_time)) <= 0.04
    report = status(out)
    assert report["frames_total"] == report["frames_done"] == 60
    assert [(c["first"], c["last"], c["state"], c["attempts"]) for c in report["videos"][0]["chunks"]] == [
        (0, 16, "done", 1), (17, 33, "done", 1), (34, 50, "done", 1), (51, 59, "done", 1)]
    assert not (out / ".vs-sr-batch" / "chunks" / "video-00001").exists()  # chunks removed after assembly


def test_many_chunks_at_ntsc_rate_keep_exact_time(ncnn_models, tmp_path):
    source = tmp_path / "ntsc.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=24000/1001:duration=2.5", "-c:v", "libx264", "-pix_fmt",
           "yuv420p", str(source))
    out = tmp_path / "out"
    done = vs_sr("batch", str(source), "--output-dir", str(out), "--chunk-frames", "3", "--jobs", "2",
                 "--intermediate", "final", "--crf", "30", "--preset", "ultrafast")
    assert done.returncode == 0, done.stderr
    result = out / "ntsc.mkv"
    frames = count_frames(result)
    assert frames == 60 and len(status(out)["videos"][0]["chunks"]) == 20
    times = frame_times(result)
    duration = times[-1] - times[0] + 1001 / 24000
    assert abs(duration - frames * 1001 / 24000) <= 1001 / 24000  # within one frame over 20 borders
    _, timeline = read_timeline(source)
    assert max(abs((a - times[0]) - (b - timeline.starts[0])) for a, b in zip(times, timeline.starts, strict=True)) <= 0.002


def test_intermediates_encoded_at_the_end_keep_the_sources_times(ncnn_models, tmp_path):
    """FFV1 chunks re-encoded to x264 once joined: the encoder ran at 1/rate time base on the timed
    file and rounded a 24 fps Matroska source's millisecond times (frame 5 at 0.210 s, not 0.208),
    and the video's delay against the audio (0.040 s, not 0.023)."""
    plain, source = tmp_path / "plain.mkv", tmp_path / "film.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=24:duration=2", "-f", "lavfi", "-i", "sine=duration=2",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "flac", str(plain))
    ffmpeg("-itsoffset", "0.023", "-i", str(plain), "-i", str(plain), "-map", "0:v", "-map", "1:a", "-c", "copy",
           str(source))
    assert probe(source).video.start_time == 0.023
    options = ("--crf", "30", "--preset", "ultrafast")
    single = tmp_path / "single.mkv"
    done = vs_sr("upscale", str(source), str(single), *options)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    done = vs_sr("batch", str(source), "--output-dir", str(out), "--chunk-frames", "10", *options)
    assert done.returncode == 0, done.stderr
    assert len(status(out)["videos"][0]["chunks"]) == 5  # several chunks: FFV1 intermediates (the default)
    result = out / "film.mkv"
    assert framemd5(result) == framemd5(single) and frame_times(result) == frame_times(single)
    assert probe(result).video.start_time == probe(single).video.start_time == 0.023


def frames_encoding(out: Path) -> int:
    """Frames the running chunks of a one-video batch have encoded (0 before its state exists)."""
    done = vs_sr("batch", "status", str(out), "--json")
    videos = json.loads(done.stdout)["videos"] if done.returncode == 0 else []
    return videos[0]["frames_encoding"] if videos else 0


def vspipes(out: Path) -> list[int]:
    """The native vspipe processes rendering chunks of the batch in `out`."""
    return [p.pid for p in processes(str(out)) if "vspipe" in p.cmdline.split()[0]]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "long.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=8", "-f", "lavfi", "-i", "sine=duration=8",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))
    return path


def start_batch(spawn, source: Path, out: Path, *args: str) -> subprocess.Popen[str]:
    """`vs-sr batch` in its own process group, killed with it when the test ends."""
    return spawn([VS_SR, "batch", str(source), "--output-dir", str(out), "--codec", "ffv1", *args],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.timing
def test_a_killed_chunk_is_retried_and_the_output_is_the_same(ncnn_models, long_clip, tmp_path, spawn):
    out = tmp_path / "out"
    job = start_batch(spawn, long_clip, out, "--chunk-frames", "70")
    signal_one(lambda: vspipes(out), signal.SIGKILL, "a chunk's vspipe")
    printed, err = job.communicate(timeout=900)
    assert job.returncode == 0, err
    assert "attempt 1 failed (vspipe failed: killed by signal 9); retrying in 2 s" in printed
    chunks = status(out)["videos"][0]["chunks"]
    assert sorted(c["attempts"] for c in chunks) == [1, 1, 2]
    single = tmp_path / "single.mkv"
    assert vs_sr("upscale", str(long_clip), str(single), "--codec", "ffv1").returncode == 0
    assert framemd5(out / "long.mkv") == framemd5(single)


@pytest.mark.timing
def test_a_video_failed_by_one_chunk_keeps_that_reason(ncnn_models, long_clip, tmp_path, spawn):
    """The chunk stopped beside it came back as "stopped" and replaced the real reason (and said
    "retrying" for a video that had failed)."""
    out = tmp_path / "out"
    job = start_batch(spawn, long_clip, out, "--chunk-frames", "50", "--jobs", "2", "--max-tries", "1")
    signal_one(lambda: vspipes(out), signal.SIGKILL, "a chunk's vspipe")
    printed, err = job.communicate(timeout=900)
    assert job.returncode == 1, err
    video = status(out)["videos"][0]
    assert video["state"] == "failed" and video["error"].endswith("failed after 1 attempt(s): vspipe failed: killed "
                                                                    "by signal 9"), video["error"]
    assert "retrying" not in printed and sum(line.startswith("failed: ") for line in printed.splitlines()) == 1


@pytest.mark.timing
def test_killing_the_whole_batch_then_running_again_completes(ncnn_models, long_clip, tmp_path, spawn):
    out = tmp_path / "out"
    job = start_batch(spawn, long_clip, out, "--chunk-frames", "60", "--keep-chunks")
    wait_until(lambda: any(c["state"] == "done" for c in status(out)["videos"][0]["chunks"])
             if (out / ".vs-sr-batch" / "state.db").exists() else False, 600, "a finished chunk")
    assert status(out)["running"] is True
    os.killpg(job.pid, signal.SIGKILL)  # the whole process group: the driver and everything it started
    job.wait(timeout=60)
    wait_until(lambda: not processes(str(out)), 30, "every process of the batch to die")
    attempts = list((out / ".vs-sr-batch" / "chunks").glob("*/.chunk-*.attempt*"))
    assert attempts  # the killed attempts' work folders, each a chunk's worth of video
    report = status(out)  # what the killed driver left as running reads as interrupted
    assert report["running"] is False and report["videos"][0]["state"] == "interrupted"
    assert {c["state"] for c in report["videos"][0]["chunks"]} <= {"done", "pending", "interrupted"}
    assert report["videos"][0]["frames_encoding"] == 0
    printed = vs_sr("batch", "status", str(out)).stdout
    assert f"no vs-sr batch is running on {out}: the same vs-sr batch command continues it" in printed
    assert re.match(r"\d+/200 frames verified; 1 video\(s\): 1 interrupted\n", printed), printed
    before = {c["first"]: c for c in report["videos"][0]["chunks"]}
    finished = [first for first, c in before.items() if c["state"] == "done"]
    assert finished
    # Damage one finished chunk: it is found and done again.
    damaged = out / ".vs-sr-batch" / "chunks" / "video-00001" / "chunk-00000.mkv"
    if before[0]["state"] == "done":
        damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    done = vs_sr("batch", str(long_clip), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "60",
                 "--keep-chunks")
    assert done.returncode == 0, done.stderr
    after = {c["first"]: c for c in status(out)["videos"][0]["chunks"]}
    assert all(c["state"] == "done" for c in after.values())
    for first in finished:
        assert after[first]["attempts"] == (2 if first == 0 else 1)  # untouched chunks were not redone
    assert count_frames(out / "long.mkv") == 200
    assert not any(folder.exists() for folder in attempts)  # removed by the next run, --keep-chunks or not


@pytest.mark.timing
def test_a_file_that_appears_at_an_output_meanwhile_is_kept(ncnn_models, long_clip, tmp_path, spawn):
    """Written while a chunk's vspipe is held stopped (so before any assembly): the video fails
    with the reason, the stranger's file is untouched, and the next run, once it is moved away,
    makes the video from the chunks already done."""
    out = tmp_path / "out"
    job = start_batch(spawn, long_clip, out, "--chunk-frames", "100")
    held = signal_one(lambda: vspipes(out), signal.SIGSTOP, "a chunk's vspipe")
    # (while its chunk is held: a second batch on the folder is refused in one line)
    second = vs_sr("batch", str(long_clip), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "100")
    assert second.returncode == 1 and second.stderr == f"vs-sr: error: another vs-sr batch is running on {out}; " \
        "wait for it, or stop it first.\n"
    (out / "long.mkv").write_bytes(b"someone else's")
    os.kill(held, signal.SIGCONT)
    _, err = job.communicate(timeout=900)
    assert job.returncode == 1
    assert f"{out / 'long.mkv'} appeared while this run worked; it is not the batch's to replace: move it away" in err
    assert (out / "long.mkv").read_bytes() == b"someone else's"
    (out / "long.mkv").rename(tmp_path / "theirs.mkv")
    done = vs_sr("batch", str(long_clip), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "100")
    assert done.returncode == 0, done.stderr
    assert count_frames(out / "long.mkv") == 200


def test_changed_settings_are_refused_and_restart_starts_over(ncnn_models, open_gop, tmp_path):
    out = tmp_path / "out"
    assert vs_sr("batch", str(open_gop), "--output-dir", str(out), "--codec", "ffv1").returncode == 0
    done = vs_sr("batch", str(open_gop), "--output-dir", str(out), "--codec", "x264", "--crf", "20")
    assert done.returncode == 1
    assert "other settings (--codec ffv1 -> x264; --crf (default) -> 20)" in done.stderr
    assert "--restart" in done.stderr
    (out / "gop.mkv").unlink()
    done = vs_sr("batch", str(open_gop), "--output-dir", str(out), "--codec", "x264", "--crf", "20", "--restart")
    assert done.returncode == 0, done.stderr
    assert probe(out / "gop.mkv").video.codec == "h264"
    # What changes no frame is no change: a default given by its value, the streams, a deinterlacer
    # where none was (every video made without one was progressive); the output is kept as it is.
    made = (out / "gop.mkv").stat()
    done = vs_sr("batch", str(open_gop), "--output-dir", str(out), "--codec", "x264", "--crf", "20", "--preset",
                 "medium", "--num-streams", "1", "--deinterlace", "bwdif")
    assert done.returncode == 0, done.stderr
    done = vs_sr("batch", str(open_gop), "--output-dir", str(out), "--codec", "x264", "--crf", "20")  # and dropped
    assert done.returncode == 0, done.stderr
    assert (out / "gop.mkv").stat().st_mtime_ns == made.st_mtime_ns


def test_a_relative_model_file_works_and_is_the_same_batch_named_from_another_folder(open_gop, tmp_path):
    (tmp_path / "runs").mkdir()
    weights = small_compact_weights(tmp_path / "runs")
    done = vs_sr("batch", str(open_gop), "--output-dir", "out", "--model", "runs/compact-small.pth", "--codec", "ffv1",
                 "--chunk-frames", "30", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert count_frames(tmp_path / "out" / "gop.mkv") == 60
    # The settings hold the file's absolute path: the same batch, named from elsewhere, is the same batch.
    again = vs_sr("batch", str(open_gop), "--output-dir", str(tmp_path / "out"), "--model", str(weights),
                  "--codec", "ffv1", "--chunk-frames", "30", cwd=open_gop.parent)
    assert again.returncode == 0, again.stderr
    assert "other settings" not in again.stderr


def test_a_broken_file_fails_alone_and_is_named(ncnn_models, open_gop, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.mkv").write_bytes(open_gop.read_bytes())
    broken = folder / "broken.mkv"
    broken.write_bytes(open_gop.read_bytes()[:4000])  # the header survives, the frames do not
    (folder / "readme.txt").write_text("not a video")
    out = tmp_path / "out"
    done = vs_sr("batch", str(folder), "--output-dir", str(out), "--codec", "ffv1")
    assert done.returncode == 1
    assert f"skipped {folder / 'readme.txt'}: not a video file" in done.stdout
    assert "1 of 2 video(s) failed" in done.stderr and str(broken) in done.stderr
    assert count_frames(out / "good.mkv") == 60
    states = {Path(v["input"]).name: v["state"] for v in status(out)["videos"]}
    assert states == {"broken.mkv": "failed", "good.mkv": "done"}


def chunk_start(pid: int) -> int | None:
    """The first frame of the chunk a vspipe renders (its -s); None once it has ended (a process
    that is gone, or a zombie, whose command line reads empty)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    return int(arguments[arguments.index("-s") + 1]) if "-s" in arguments else None


def stop_a_chunk_after_its_first_frame(job: subprocess.Popen[str], out: Path) -> int:
    """SIGSTOP the vspipe of a running chunk whose frames the state already counts, and return its
    pid. A chunk stopped before its first frame would wait out the model start-up allowance (30
    min), not --stall-seconds; one whose frames the state does not show yet may still be before it
    (the state is written at most once a second), so only counted chunks are stopped."""
    def stop_one_with_frames() -> int | None:
        # a batch that ended first, every chunk done between two looks, says so now, not in 10 minutes
        assert job.poll() is None, f"the batch ended before a chunk could be stopped: {job.communicate()}"
        running = vspipes(out)  # (so the batch has made its state)
        counted = {c["first"] for video in (batch_status(out)["videos"] if running else [])
                   for c in video["chunks"] if c["frames_encoding"] > 0}
        for pid in running:
            if chunk_start(pid) in counted:
                try:
                    os.kill(pid, signal.SIGSTOP)
                    return pid
                except ProcessLookupError:  # it ended between the look and the stop
                    continue
        return None

    return wait_until(stop_one_with_frames, 600, "a chunk's vspipe after its first frames")


@pytest.fixture(scope="module")
def slow_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """176x144, 100 frames (two chunks of 50): at fp32 on one stream a chunk renders for several seconds,
    long past the state's once-a-second progress, even on an idle machine."""
    path = tmp_path_factory.mktemp("slow") / "slow.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=176x144:rate=25:duration=4", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(path))
    return path


@pytest.mark.timing
def test_a_stalled_chunk_is_stopped_and_retried(ncnn_models, slow_clip, tmp_path, spawn):
    out = tmp_path / "out"
    job = start_batch(spawn, slow_clip, out, "--chunk-frames", "50", "--stall-seconds", "20", "--precision", "fp32",
                      "--num-streams", "1")
    stopped = stop_a_chunk_after_its_first_frame(job, out)  # a hung decoder: alive, silent
    printed, err = job.communicate(timeout=900)
    assert job.returncode == 0, err
    assert "no frame for 20 s; stopping it" in printed
    assert chunk_start(stopped) is None  # the stopped vspipe was ended, not left behind
    assert sorted(c["attempts"] for c in status(out)["videos"][0]["chunks"]) == [1, 2]  # the other one went on
    assert count_frames(out / "slow.mkv") == 100


@pytest.mark.timing
def test_ctrl_c_stops_every_child_and_keeps_the_state(ncnn_models, long_clip, tmp_path, spawn):
    out = tmp_path / "out"
    job = start_batch(spawn, long_clip, out, "--chunk-frames", "100", "--jobs", "2")
    wait_until(lambda: len(vspipes(out)) == 2, 300, "two running chunks")
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 130 and "continues where it stopped" in err
    wait_until(lambda: not processes(str(out)), 30, "every process of the batch to end")
    chunks = status(out)["videos"][0]["chunks"]
    assert all(c["state"] in ("pending", "done") and c["attempts"] <= 1 for c in chunks)



@pytest.mark.timing
@pytest.mark.parametrize(("step", "tool", "pattern"), [("the join", "mkvmerge", "--timestamps"),
                                                       ("the output's check", "ffprobe", "packet=pts_time")])
def test_a_signal_while_a_video_is_assembled_stops_the_assembly_and_writes_nothing(ncnn_models, long_clip, tmp_path,
                                                                                  spawn, step, tool, pattern):
    """The assembly (join, final encode, mux, check) runs beside the driver; a signal stops its
    tools too, at once: no output appears after the signal, and the same command assembles it."""
    out = tmp_path / "out"
    shims = tmp_path / "shims"
    shims.mkdir()
    job = spawn([VS_SR, "batch", str(long_clip), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "100"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                env={**os.environ, **hung_tool(shims, tool, pattern)})
    wait_until(lambda: stopped(pattern) or job.poll() is not None, 300, f"{step} of the assembly")
    assert job.poll() is None, job.communicate()[1]
    job.send_signal(signal.SIGTERM)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 130 and "continues where it stopped" in err, err
    wait_until(lambda: not processes(str(out)), 30, "every process of the batch to end")
    assert sorted(p.name for p in out.iterdir()) == [".vs-sr-batch"]  # no output, no work folder beside it
    done = vs_sr("batch", str(long_clip), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "100")
    assert done.returncode == 0, done.stderr
    assert count_frames(out / "long.mkv") == 200

def test_a_variable_frame_rate_file_keeps_its_times_across_chunks(ncnn_models, tmp_path):
    source = vfr_clip(tmp_path / "vfr.mkv")
    out = tmp_path / "out"
    done = vs_sr("batch", str(source), "--output-dir", str(out), "--codec", "ffv1", "--chunk-frames", "7")
    assert done.returncode == 0, done.stderr
    _, timeline = read_timeline(source)
    times = frame_times(out / "vfr.mkv")
    assert len(times) == timeline.frames == 50
    assert max(abs((a - times[0]) - (b - timeline.starts[0])) for a, b in zip(times, timeline.starts, strict=True)) <= 0.002


def test_too_little_disk_is_refused_before_any_work(ncnn_models, open_gop, tmp_path):
    """The batch directory on a 2 MB tmpfs (a private mount namespace): refused at once, by size, in
    units that say it; the advice it gives (smaller chunks) is then taken without --restart, since
    nothing was made with the first settings."""
    out = tmp_path / "small"
    out.mkdir()
    with small_disk(out, 2) as small:
        command = [VS_SR, "batch", str(open_gop), "--output-dir", str(out), "--chunk-frames", "20"]
        done = small.run(*command)
        assert done.returncode == 1
        assert re.search(r"the remaining work needs about \d MiB in .*; \d+ (KiB|MiB) are free\. Free some space, "
                         r"or use --intermediate final \(smaller chunks\)\.", done.stderr), done.stderr
        assert "vs-sr batch:" not in done.stderr  # no chunk was started
        done = small.run(*command, "--intermediate", "final")
        assert done.returncode == 0, done.stderr
        assert "nothing was made with the batch's earlier settings (--intermediate ffv1 -> final); it starts with " \
               "these" in done.stdout


def test_ffmpeg_arguments_ffmpeg_refuses_stop_the_batch_before_any_chunk(ncnn_models, tmp_path):
    source = tmp_path / "clip.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=25:duration=1", "-c:v", "ffv1", str(source))
    out = tmp_path / "out"
    done = vs_sr("batch", str(source), "--output-dir", str(out), "--ffmpeg-args", "-vf nosuchfilter")
    assert done.returncode == 1, done.stderr
    assert "--ffmpeg-args '-vf nosuchfilter': ffmpeg refuses them (No such filter: 'nosuchfilter')" in done.stderr
    assert "vs-sr batch:" not in done.stderr and not list(out.glob("**/*.mkv"))  # no chunk was started


def test_a_failed_video_says_the_output_there_is_an_earlier_one(ncnn_models, tmp_path):
    source = tmp_path / "clip.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=25:duration=1", "-c:v", "ffv1", str(source))
    out = tmp_path / "out"
    assert vs_sr("batch", str(source), "--output-dir", str(out), "--codec", "ffv1").returncode == 0
    earlier = (out / "clip.mkv").read_bytes()
    longer = tmp_path / "longer.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=25:duration=4", "-c:v", "ffv1", str(longer))
    source.write_bytes(longer.read_bytes()[: longer.stat().st_size * 2 // 3])  # changed, and cut off
    done = vs_sr("batch", str(source), "--output-dir", str(out), "--codec", "ffv1")
    assert done.returncode == 1 and "clip.mkv is incomplete or damaged" in done.stderr
    assert "; the clip.mkv there is an earlier output of this batch, left as it was" in done.stderr
    assert (out / "clip.mkv").read_bytes() == earlier


def test_an_input_that_changed_is_done_again(ncnn_models, tmp_path):
    source = tmp_path / "clip.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=25:duration=1", "-c:v", "ffv1", str(source))
    out = tmp_path / "out"
    assert vs_sr("batch", str(source), "--output-dir", str(out), "--codec", "ffv1").returncode == 0
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=25:duration=2", "-c:v", "ffv1", str(source))
    done = vs_sr("batch", str(source), "--output-dir", str(out), "--codec", "ffv1")
    assert done.returncode == 0, done.stderr
    assert "changed since the batch last saw it" in done.stdout
    assert count_frames(out / "clip.mkv") == 50  # the batch's own earlier output was replaced
    (out / "clip.mkv").unlink()
    done = vs_sr("batch", str(source), "--output-dir", str(out), "--codec", "ffv1")
    assert done.returncode == 0 and "clip.mkv is gone; it is made again" in done.stdout
    assert count_frames(out / "clip.mkv") == 50
    whole = (out / "clip.mkv").stat().st_size
    os.truncate(out / "clip.mkv", 1000)  # a copy or a failing disk cut it short
    done = vs_sr("batch", str(source), "--output-dir", str(out), "--codec", "ffv1")
    assert done.returncode == 0 and (f"clip.mkv is 1000 bytes, not the {whole} this batch wrote (cut short or "
                                     "changed); it is made again") in done.stdout, done.stdout
    assert count_frames(out / "clip.mkv") == 50
    (out / "stranger.mkv").write_bytes(b"not ours")
    other = tmp_path / "stranger.mkv"
    other.write_bytes(source.read_bytes())
    done = vs_sr("batch", str(source), str(other), "--output-dir", str(out), "--codec", "ffv1")
    assert done.returncode == 1 and "stranger.mkv exists and was not written by this batch" in done.stderr
    assert (out / "stranger.mkv").read_bytes() == b"not ours"
