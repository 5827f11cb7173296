"""`vs-sr upscale` of a long file runs in the batch layer's verified chunks: killed (SIGKILL of its
whole process group) or stopped, the same command continues where it stopped, and the result is
frame for frame the one-pass run's, with the same tracks, chapters and frame times.

The threshold for "long" is lowered through $VS_SR_RESUME_MINUTES (or --resume is given) so that
the clips stay a few seconds long; chunk borders fall between keyframes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import VS_SR, ffmpeg, framemd5, processes, vfr_clip, vs_sr, wait_until

from vs_sr.media.probe import probe
from vs_sr.media.timeline import read_timeline
from vs_sr.media.verify import frame_times

FRAMES = 200


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s (200 frames, one keyframe) with AAC audio, subtitles and chapters."""
    folder = tmp_path_factory.mktemp("film")
    (folder / "subs.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nOne\n\n2\n00:00:05,000 --> 00:00:06,500\nTwo\n")
    (folder / "meta.txt").write_text(";FFMETADATA1\ntitle=A film\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=4000\n"
                                     "title=One\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=4000\nEND=8000\ntitle=Two\n")
    path = folder / "film.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=8", "-f", "lavfi", "-i", "sine=duration=8",
           "-i", str(folder / "subs.srt"), "-i", str(folder / "meta.txt"), "-map", "0", "-map", "1", "-map", "2",
           "-map_metadata", "3", "-map_chapters", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-c:s", "srt", str(path))
    return path


@pytest.fixture(scope="module")
def one_pass(ncnn_models, film: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted one-pass run the resumable ones must equal."""
    output = tmp_path_factory.mktemp("one-pass") / "film.mkv"
    done = vs_sr("upscale", str(film), str(output), "--codec", "ffv1", "--no-resume")
    assert done.returncode == 0, done.stderr
    assert "resumable" not in done.stdout
    return output


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`vs-sr upscale` in a process group of its own (so that the test can kill the whole group)."""
    return subprocess.Popen([VS_SR, "upscale", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True,
                            env={**os.environ, **(env or {})})


def finished_chunk(folder: Path) -> list[Path]:
    """Chunk files renamed into place (verified) in a resumable run's folder."""
    return sorted((folder / ".vs-sr-batch" / "chunks").glob("video-*/chunk-*.mkv"))


def status(folder: Path) -> dict:
    done = vs_sr("batch", "status", str(folder), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_same_as(output: Path, reference: Path) -> None:
    """Frame for frame, time for time, track for track and chapter for chapter the reference."""
    assert framemd5(output) == framemd5(reference)
    times, expected = frame_times(output), frame_times(reference)
    assert len(times) == len(expected) == FRAMES
    assert max(abs((a - times[0]) - (b - expected[0])) for a, b in zip(times, expected, strict=True)) <= 0.002
    media, other = probe(output), probe(reference)
    assert [(t.kind, t.codec) for t in media.tracks] == [(t.kind, t.codec) for t in other.tracks]
    assert [(c.title, round(c.start, 3)) for c in media.chapters] == [(c.title, round(c.start, 3)) for c in other.chapters]
    audio, theirs = media.of_kind("audio")[0], other.of_kind("audio")[0]
    assert abs(audio.duration - theirs.duration) <= 0.002
    assert abs((audio.start_time - media.video.start_time) - (theirs.start_time - other.video.start_time)) <= 0.002


def test_a_killed_run_continues_where_it_stopped_and_equals_one_pass(one_pass, film, tmp_path):
    output = tmp_path / "film.mkv"
    folder = tmp_path / "film.mkv.vs-sr-resume"
    args = (str(film), str(output), "--codec", "ffv1", "--resume", "--chunk-frames", "60")
    job = start(*args)
    # The chunk's file is renamed into place before the driver records it as done; a kill between
    # the two leaves a chunk the next run encodes again, so wait for the record, not the file.
    wait_until(lambda: finished_chunk(folder) and status(folder)["frames_done"] >= 60, 600,
               "a chunk recorded as done")
    beside = vs_sr("upscale", str(film), str(output), "--no-resume", "-y")
    assert beside.returncode == 1 and f"another vs-sr run is writing {output}" in beside.stderr
    assert "interrupted" not in beside.stdout  # the resumable run is running, not interrupted
    os.killpg(job.pid, signal.SIGKILL)  # the whole process group: vs-sr and everything it started
    job.wait(timeout=60)
    wait_until(lambda: not processes(str(tmp_path)), 30, "every process of the run to die")
    assert not output.exists() and folder.is_dir()
    done_before = status(folder)["frames_done"]
    assert done_before >= 60
    done = vs_sr(*(["upscale", *args]))
    assert done.returncode == 0, done.stderr
    assert f"continuing the interrupted run in {folder}: {done_before}/{FRAMES} frames already done" in done.stdout
    assert f"wrote {output}: {FRAMES} frames at 256x192, 1 audio, 1 subtitle stream(s) (in chunks of" in done.stdout
    # As a one-pass run says them: the plan, and what ran (the precision `auto` chose).
    assert f"film.mkv: frames 0-{FRAMES - 1} -> 256x192 ffv1 (realesr-animevideov3 x4) into {output}" in done.stdout
    assert re.search(r"^ran realesr-animevideov3 x4 on CPU .* via OpenVINO .*, 2 stream\(s\)$", done.stdout, re.M)
    assert_same_as(output, one_pass)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.mkv"]  # the work folder went with success


def test_long_inputs_are_resumable_by_default_and_changed_options_are_refused(one_pass, film, tmp_path):
    output = tmp_path / "film.mkv"
    folder = tmp_path / "film.mkv.vs-sr-resume"
    shorter = {"VS_SR_RESUME_MINUTES": "0.1"}  # 6 s: the 8-s film is "long"
    job = start(str(film), str(output), "--codec", "ffv1", "--chunk-frames", "50", env=shorter)
    wait_until(lambda: finished_chunk(folder), 600, "a verified chunk")
    job.send_signal(signal.SIGINT)
    printed, err = job.communicate(timeout=120)
    assert "resumable run in chunks of 50 frames" in printed
    assert job.returncode == 130 and f"run the same command again to continue ({folder} keeps" in err
    assert not output.exists() and folder.is_dir()
    plain = vs_sr("upscale", str(film), str(output), "--no-resume", "--crf", "60")  # refused after the note
    assert plain.returncode == 1 and f"note: {folder} holds an interrupted resumable run" in plain.stdout
    other = vs_sr("upscale", str(film), str(output), "--codec", "x264", "--chunk-frames", "50", env=shorter)
    assert other.returncode == 1 and other.stderr.count("\n") == 1
    assert "holds an interrupted run of film.mkv with other options (--codec ffv1 -> x264)" in other.stderr
    assert f"delete {folder} to start over" in other.stderr
    stranger = tmp_path / "other.mkv"
    stranger.write_bytes(film.read_bytes())
    other = vs_sr("upscale", str(stranger), str(output), "--codec", "ffv1", "--chunk-frames", "50")
    assert other.returncode == 1
    assert f"holds an interrupted run of {film.resolve()} to film.mkv; run that to continue it" in other.stderr
    # Without the lowered threshold the film is short, but its interrupted run is continued all the same.
    done = vs_sr("upscale", str(film), str(output), "--codec", "ffv1", "--chunk-frames", "50")
    assert done.returncode == 0, done.stderr
    assert re.search(r"continuing the interrupted run in .*: \d+/200 frames already done", done.stdout)
    assert_same_as(output, one_pass)
    assert not folder.exists()


def test_a_failed_run_is_retried_by_the_same_command(one_pass, film, tmp_path):
    """The real ffmpeg behind a shim on PATH that refuses to encode chunk 1 (as a full disk or a
    crashing encoder would): the run fails naming why; the same command without the fault keeps
    chunk 0 and does the rest."""
    shims = tmp_path / "bin"
    shims.mkdir()
    shim = shims / "ffmpeg"
    shim.write_text(f'#!/bin/sh\ncase "$*" in *chunk-00001*) echo "shim: chunk 1 refused" >&2; exit 1;; esac\n'
                    f'exec {shutil.which("ffmpeg")} "$@"\n')
    shim.chmod(0o755)
    output = tmp_path / "film.mkv"
    args = ("upscale", str(film), str(output), "--codec", "ffv1", "--resume", "--chunk-frames", "60")
    failed = vs_sr(*args, env={"PATH": f"{shims}:{os.environ['PATH']}"})
    assert failed.returncode == 1
    error = failed.stderr.splitlines()[-1]
    assert error.startswith("vs-sr: error: chunk 1 (frames 60-119) failed after 1 attempt(s): ffmpeg failed: shim: "
                            "chunk 1 refused (the finished chunks stay in")
    assert error.endswith("the same command retries the rest)") and not output.exists()
    done = vs_sr(*args)
    assert done.returncode == 0, done.stderr
    assert f"interrupted run in {output}.vs-sr-resume: 60/{FRAMES} frames already done" in done.stdout
    assert_same_as(output, one_pass)


def test_variable_frame_rate_keeps_its_times_through_chunks(ncnn_models, tmp_path):
    source = vfr_clip(tmp_path / "vfr.mkv")
    output = tmp_path / "up.mkv"
    done = vs_sr("upscale", str(source), str(output), "--codec", "ffv1", "--resume", "--chunk-frames", "7")
    assert done.returncode == 0, done.stderr
    assert "vs-sr upscale: 50/50 frames" in done.stderr and "vs-sr batch" not in done.stderr  # the command typed
    _, timeline = read_timeline(source)
    times = frame_times(output)
    assert len(times) == timeline.frames == 50
    assert max(abs((a - times[0]) - (b - timeline.starts[0])) for a, b in zip(times, timeline.starts, strict=True)) <= 0.002


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--resume", "--start", "10"], {}, "--resume works on whole files: drop --start/--end, or run the range without --resume."),
    ([], {"VS_SR_RESUME_MINUTES": "soon"}, "$VS_SR_RESUME_MINUTES must be a number of minutes (e.g. 10), not 'soon'."),
    (["--no-resume", "--chunk-frames", "5"], {},  # (the chunk size was silently ignored)
     "--chunk-frames sizes the chunks of a resumable run; drop it, or drop --no-resume."),
    (["--end", "20", "--chunk-frames", "5"], {},
     "--chunk-frames sizes the chunks of a resumable run, which works on whole files: drop it, or drop --start/--end."),
])
def test_what_cannot_resume_is_refused_first(film, tmp_path, args, env, message):
    done = vs_sr("upscale", str(film), str(tmp_path / "out.mkv"), *args, env=env)
    assert done.returncode == 1 and done.stderr == f"vs-sr: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_chunk_frames_alone_makes_a_short_input_resumable(one_pass, film, tmp_path):
    """It was ignored below the 10-minute threshold: the run went in one pass, nothing to resume."""
    output = tmp_path / "film.mkv"
    done = vs_sr("upscale", str(film), str(output), "--codec", "ffv1", "--chunk-frames", "100")
    assert done.returncode == 0, done.stderr
    assert "resumable run in chunks of 100 frames" in done.stdout
    assert_same_as(output, one_pass)
