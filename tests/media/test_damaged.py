"""Damaged media is never reported as done: a file cut short (a faststart MP4 whose media data
stops half-way) or one that cannot be opened fails with the numbers; --salvage upscales what
decodes and the exit status still says the result is incomplete. The damage is real: ffmpeg
writes the files, and they are cut as an interrupted copy leaves them."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cut_short, ffmpeg, vs_sr

from vs_sr.media.probe import count_frames
from vs_sr.media.timeline import read_timeline


@pytest.fixture(scope="module")
def cut_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A faststart MP4 with audio (its index, which declares all 102 frames and 4.08 s, comes
    first) of which the bytes up to its 60th frame arrived."""
    folder = tmp_path_factory.mktemp("cut")
    whole = folder / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=4.08", "-f", "lavfi", "-i",
           "sine=duration=4.08", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart",
           str(whole))
    return cut_short(whole, folder / "cut.mp4", 60)


def test_a_file_cut_short_fails_with_the_numbers_unless_salvaged(ncnn_models, cut_mp4, tmp_path):
    clip, timeline = read_timeline(cut_mp4)
    frames, seconds = clip.num_frames, timeline.end - timeline.starts[0]
    assert frames < 80  # the decoder gives what arrived
    output = tmp_path / "out.mkv"
    done = vs_sr("upscale", str(cut_mp4), str(output))
    assert done.returncode == 1 and not output.exists()
    assert done.stderr.startswith(f"vs-sr: error: cut.mp4 is incomplete or damaged: its container declares 102 frames "
                                  f"(4.08 s) but only {frames} ({seconds:.2f} s) decode") and "--salvage" in done.stderr
    done = vs_sr("upscale", str(cut_mp4), str(output), "--salvage")
    assert done.returncode == 3, done.stderr
    assert "salvaged: cut.mp4 is incomplete or damaged: its container declares 102 frames" in done.stdout
    assert done.stderr.splitlines()[-1].startswith("vs-sr: incomplete: cut.mp4 is incomplete or damaged")
    assert count_frames(output) == frames


def test_a_video_file_that_cannot_be_opened_fails(ncnn_models, cut_mp4, tmp_path):
    head = tmp_path / "head.mp4"
    head.write_bytes(cut_mp4.read_bytes()[:600])  # the start of its index, nothing more
    done = vs_sr("upscale", str(head), str(tmp_path / "out.mkv"))
    assert done.returncode == 1 and done.stderr.startswith(f"vs-sr: error: cannot read {head}")
