"""A batch never reads "all done" when an input was not made completely: a video file cut short
fails with the numbers (or, with --salvage, is made from what decodes and reported incomplete,
exit 3), a file named as a video that cannot be opened fails instead of being skipped, and the
exit status is non-zero whenever any input was not made completely."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import cut_short, ffmpeg, vs_sr
from test_batch import status

from vs_sr.media.probe import count_frames


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """good.mkv; cut.mp4 (a faststart MP4, its index declaring 100 frames and 4 s, that stops after
    50 frames); broken.mp4 (stops half-way through a frame: the decoder cannot index it); head.mp4
    (only the start of its index); notes.txt (not a video)."""
    folder = tmp_path_factory.mktemp("library")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=25:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(folder / "good.mkv"))
    whole = folder.parent / f"{folder.name}-whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=4", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", str(whole))
    cut_short(whole, folder / "cut.mp4", 50)
    cut_short(whole, folder / "broken.mp4", 50, partial=True)
    (folder / "head.mp4").write_bytes(whole.read_bytes()[:600])
    (folder / "notes.txt").write_text("not a video")
    return folder


def assert_progress_counts_add_up(stderr: str) -> None:
    counts = [(int(done), int(total)) for done, total in re.findall(r"(\d+)/(\d+) frames", stderr)]
    assert counts and all(done <= total for done, total in counts), counts


def test_damaged_inputs_fail_and_are_named(ncnn_models, library, tmp_path):
    out = tmp_path / "out"
    done = vs_sr("batch", str(library), "--output-dir", str(out))
    assert done.returncode == 1
    assert f"skipped {library / 'notes.txt'}: not a video file" in done.stdout
    assert "all " not in done.stdout
    assert "3 of 4 video(s) failed" in done.stderr
    assert f"{library / 'cut.mp4'}: cut.mp4 is incomplete or damaged: its container declares 100 frames (4.00 s)" \
           in done.stderr
    assert f"{library / 'broken.mp4'}: cannot decode broken.mp4 (damaged, or not indexable by bestsource)" in done.stderr
    assert f"{library / 'head.mp4'}: cannot read {library / 'head.mp4'}" in done.stderr
    states = {Path(v["input"]).name: v["state"] for v in status(out)["videos"]}
    assert states == {"broken.mp4": "failed", "cut.mp4": "failed", "good.mkv": "done", "head.mp4": "failed"}
    # The same command with --salvage: the cut file is made from what decodes, and still reported.
    done = vs_sr("batch", str(library), "--output-dir", str(out), "--salvage")
    assert done.returncode == 1  # the other two still fail
    assert "1 of 4 video(s) are incomplete (salvaged with --salvage)" in done.stderr
    assert "2 of 4 video(s) failed" in done.stderr
    assert_progress_counts_add_up(done.stderr)  # failed videos retried: counted once they are planned again
    salvaged = {Path(v["input"]).name: v["salvaged"] for v in status(out)["videos"]}
    assert salvaged["cut.mp4"].startswith("cut.mp4 is incomplete or damaged") and salvaged["good.mkv"] is None
    assert 0 < count_frames(out / "cut.mkv") < 100


def test_a_salvaged_batch_exits_3_and_never_reads_all_done(ncnn_models, library, tmp_path):
    out = tmp_path / "out"
    done = vs_sr("batch", str(library / "cut.mp4"), str(library / "good.mkv"), "--output-dir", str(out), "--salvage")
    assert done.returncode == 3, done.stderr
    assert "all " not in done.stdout and "1 of 2 video(s) are incomplete" in done.stderr
    shown = vs_sr("batch", "status", str(out))
    assert "(salvaged: cut.mp4 is incomplete or damaged" in shown.stdout
    # A done video is counted, not listed (a library's thousands hid the few that need a look); --all lists it
    assert "good.mkv" not in shown.stdout and "(1 done video(s) not listed: --all lists every video)" in shown.stdout
    every = vs_sr("batch", "status", str(out), "--all").stdout
    assert "good.mkv" in every and "not listed" not in every



def test_inputs_refused_leave_no_output_folder_or_lock(library, tmp_path):
    """Two inputs written to one name, a missing input, or nothing that is a video: refused before the
    output folder and the batch's lock are made (they were left behind, a stray .vs-sr-batch)."""
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "good.mp4").write_bytes((library / "good.mkv").read_bytes())
    out = tmp_path / "out"
    (twin / "cut.mkv").write_bytes((library / "good.mkv").read_bytes())
    both = f"{library / 'good.mkv'} and {twin / 'good.mp4'} would both be written to {out / 'good.mkv'}; " \
        f"{library / 'cut.mp4'} and {twin / 'cut.mkv'} would both be written to {out / 'cut.mkv'}; rename one of each"
    refusals = [([str(library / "good.mkv"), str(library / "cut.mp4"), str(twin / "good.mp4"), str(twin / "cut.mkv")],
                 both),  # every clash at once (one a run)
                ([str(tmp_path / "missing.mkv")], "not found"),
                ([str(library / "notes.txt")], "no video among the inputs")]
    for inputs, message in refusals:
        done = vs_sr("batch", *inputs, "--output-dir", str(out))
        assert done.returncode == 1 and message in done.stderr, done.stderr
        assert not out.exists()
    # A scale the model does not have: once, before any video (each video failed on its own, "tried again").
    done = vs_sr("batch", str(library / "good.mkv"), "--output-dir", str(out), "--model", "faithful", "--scale", "3")
    assert done.returncode == 1 and done.stderr == "vs-sr: error: model 'faithful' has no trained x3 network (it " \
        "has x2, x4). Pick one of those scales, and pass --width/--height for any other output size.\n"
    assert not out.exists()


def test_linked_folders_are_walked_and_what_is_passed_over_is_said(ncnn_models, library, tmp_path):
    """A library spread over disks by symbolic links: the linked folders were skipped without a word,
    and the batch said "all 1 video(s) done"."""
    top, elsewhere, out = tmp_path / "top", tmp_path / "elsewhere", tmp_path / "out"
    (top / "real").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(library / "good.mkv", top / "real" / "a.mkv")
    shutil.copy(library / "good.mkv", elsewhere / "b.mkv")
    shutil.copy(library / "good.mkv", top / ".hidden.mkv")
    (top / "ext").symlink_to(elsewhere)
    (top / "loop").symlink_to(top)  # a link back up the tree: walked once
    (top / "gone.mkv").symlink_to(tmp_path / "nowhere.mkv")
    (top / "again.mkv").symlink_to(top / "real" / "a.mkv")  # a link to a file already among them: made once
    earlier = top / "upscaled"  # another batch's output folder: results, not inputs
    (earlier / ".vs-sr-batch").mkdir(parents=True)
    shutil.copy(library / "good.mkv", earlier / "a.mkv")
    done = vs_sr("batch", str(top), "--recursive", "--output-dir", str(out), "--codec", "ffv1")
    assert done.returncode == 0, done.stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.mkv")) == ["ext/b.mkv", "real/a.mkv"]
    assert f"skipped {top / 'gone.mkv'}: a broken symbolic link (what it points to is missing, or a loop)" in done.stdout
    assert f"skipped {top / 'again.mkv'}: the same file as {top / 'real' / 'a.mkv'}" in done.stdout
    assert f"skipped {earlier}: another vs-sr batch's output folder" in done.stdout
    assert f"skipped 1 hidden file(s) or folder(s) in {top} (names that begin with '.')" in done.stdout


def test_a_failed_video_whose_file_is_gone_is_left_out(ncnn_models, library, tmp_path):
    """Its "input file not found" failed every later run (exit 1 for ever, unless --restart); it is
    left out while it is gone, and tried again when it is back."""
    folder, out = tmp_path / "tapes", tmp_path / "out"
    folder.mkdir()
    shutil.copy(library / "good.mkv", folder / "good.mkv")
    shutil.copy(library / "head.mp4", folder / "head.mp4")  # fails: only the start of its index
    assert vs_sr("batch", str(folder), "--output-dir", str(out), "--codec", "ffv1").returncode == 1
    (folder / "head.mp4").rename(tmp_path / "head.mp4")
    done = vs_sr("batch", str(folder), "--output-dir", str(out), "--codec", "ffv1")
    assert done.returncode == 0, done.stderr
    assert f"{folder / 'head.mp4'}: gone, and not among the inputs; left out of this run" in done.stdout
    assert "all 1 video(s) done" in done.stdout
    states = {Path(v["input"]).name: v["state"] for v in status(out)["videos"]}
    assert states == {"good.mkv": "done", "head.mp4": "failed"}  # as it was left (not "pending": nothing continues it)
    (tmp_path / "head.mp4").rename(folder / "head.mp4")
    done = vs_sr("batch", str(folder), "--output-dir", str(out), "--codec", "ffv1")
    assert done.returncode == 1 and "1 of 2 video(s) failed" in done.stderr


def test_a_later_input_of_a_made_output_name_is_refused_and_a_moved_one_is_the_same_video(ncnn_models, library,
                                                                                         tmp_path):
    """A second video of the same name, in a later run to the same folder, replaced the first's output
    without a word, and both read "done"; a library folder renamed is the same videos."""
    first, second, out = tmp_path / "first", tmp_path / "second", tmp_path / "out"
    first.mkdir()
    second.mkdir()
    shutil.copy(library / "good.mkv", first / "x.mkv")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=30:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(second / "x.mkv"))
    assert vs_sr("batch", str(first / "x.mkv"), "--output-dir", str(out), "--codec", "ffv1").returncode == 0
    made = (out / "x.mkv").read_bytes()
    done = vs_sr("batch", str(second / "x.mkv"), "--output-dir", str(out), "--codec", "ffv1")
    assert done.returncode == 1 and done.stderr == f"vs-sr: error: {second / 'x.mkv'} would be written to " \
        f"{out / 'x.mkv'}, which this batch makes of {first / 'x.mkv'}; rename one of each, or give it another " \
        "--output-dir.\n"
    assert (out / "x.mkv").read_bytes() == made
    moved = tmp_path / "renamed"
    first.rename(moved)
    done = vs_sr("batch", str(moved / "x.mkv"), "--output-dir", str(out), "--codec", "ffv1")
    assert done.returncode == 0, done.stderr
    assert f"{moved / 'x.mkv'}: taken as {first / 'x.mkv'}, moved (its output is the same)" in done.stdout
    assert [v["input"] for v in status(out)["videos"]] == [str(moved / "x.mkv")]
    assert (out / "x.mkv").read_bytes() == made  # the same video: kept, not made again


def test_a_rerun_reads_only_the_inputs_that_are_new_or_changed(ncnn_models, tmp_path):
    """Every run read every file of the library with ffprobe, the finished ones too: a re-run of
    600 files spent 90 s before any work."""
    import os
    import subprocess

    folder, out, shims = tmp_path / "library", tmp_path / "out", tmp_path / "shims"
    folder.mkdir()
    shims.mkdir()
    for name in ("a", "b"):
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=25:duration=0.2", "-c:v", "ffv1",
               str(folder / f"{name}.mkv"))
    options = ("--output-dir", str(out), "--model", "faithful", "--scale", "2", "--codec", "ffv1")
    assert vs_sr("batch", str(folder), *options).returncode == 0
    calls = tmp_path / "ffprobe.log"  # what each ffprobe was asked, through a shim that runs the real one
    real = subprocess.run(["which", "ffprobe"], capture_output=True, text=True, check=True).stdout.strip()
    (shims / "ffprobe").write_text(f"#!/bin/sh\necho \"$*\" >> {calls}\nexec {real} \"$@\"\n")
    (shims / "ffprobe").chmod(0o755)
    env = {"PATH": f"{shims}:{os.environ['PATH']}"}
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=32x24:rate=25:duration=0.2", "-c:v", "ffv1", str(folder / "c.mkv"))
    done = vs_sr("batch", str(folder), *options, env=env)
    assert done.returncode == 0 and "all 3 video(s) done" in done.stdout, done.stderr
    asked = calls.read_text()
    assert str(folder / "c.mkv") in asked  # the new one is read
    assert str(folder / "a.mkv") not in asked and str(folder / "b.mkv") not in asked  # the finished ones are not
