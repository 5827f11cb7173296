"""Damaged media is never reported as done: a file cut short (a faststart MP4 whose media data
stops half-way), one whose middle was lost (a transport stream that lost packets, frames missing
between two that decode), or one that cannot be opened fails with the numbers; --salvage upscales what
decodes and the exit status still says the result is incomplete. The damage is real: ffmpeg
writes the files, and they are cut as an interrupted copy leaves them."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cut_short, ffmpeg, vs_sr

from vs_sr.media.integrity import holes
from vs_sr.media.probe import count_frames
from vs_sr.media.timeline import Timeline, read_timeline


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


def test_a_stream_whose_middle_was_lost_fails_unless_salvaged(ncnn_models, tmp_path):
    """25 frames dropped from the middle of a 25 fps stream, the others keeping their times (what
    a remuxed capture with a dropout holds): the ends are in place, so only the hole tells."""
    hole = tmp_path / "hole.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=3", "-vf", r"select='not(between(n\,25\,49))'",
           "-fps_mode", "passthrough", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(hole))
    output = tmp_path / "out.mkv"
    done = vs_sr("upscale", str(hole), str(output), "--model", "faithful", "--scale", "2")
    assert done.returncode == 1 and not output.exists()
    assert done.stderr.startswith("vs-sr: error: hole.mkv is incomplete or damaged: 25 frames are missing inside the "
                                  "stream (none between 0.96 s and 2.00 s). Pass --salvage"), done.stderr
    done = vs_sr("upscale", str(hole), str(output), "--model", "faithful", "--scale", "2", "--salvage")
    assert done.returncode == 3 and count_frames(output) == 50, done.stderr


def test_a_transport_stream_that_lost_packets_is_refused_before_any_frame_is_made(ncnn_models, tmp_path):
    """The middle third of a transport stream's packets lost on the way: the decoder then gives frames
    whose times go backwards (or a hole), refused at the start, not after the render by mkvmerge."""
    whole, lost = tmp_path / "whole.ts", tmp_path / "lost.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(whole))
    data = whole.read_bytes()
    packets = len(data) // 188
    lost.write_bytes(data[:packets // 3 * 188] + data[2 * packets // 3 * 188:])
    output = tmp_path / "out.mkv"
    for salvage in ([], ["--salvage"]):
        done = vs_sr("upscale", str(lost), str(output), "--model", "faithful", "--scale", "2", *salvage)
        assert done.stderr.startswith("vs-sr: error: lost.ts is incomplete or damaged: "), done.stderr
        assert done.returncode == 1 and "frames (" not in done.stderr and not output.exists()
        assert "go backwards" in done.stderr or salvage == [] and "missing inside the stream" in done.stderr


def test_only_a_constant_rate_stream_that_skips_whole_frames_has_holes():
    def timeline(steps: list[float]) -> Timeline:
        starts = [0.0]
        for step in steps:
            starts.append(starts[-1] + step)
        return Timeline(tuple(starts), starts[-1] + 0.04)

    assert holes(timeline([0.04] * 30 + [1.0] + [0.04] * 30), 25) == (pytest.approx((1.2, 2.2)),)
    assert holes(timeline([0.04] * 30 + [0.08, 0.12] + [0.04] * 30), 25) == ()  # a capture's dropped frames
    assert holes(timeline([0.04] * 30 + [0.48] + [0.04] * 30), 25) == ()  # under 0.5 s: not judged
    screen = [0.04] * 20 + [2.317] + [0.04] * 20 + [0.021, 0.06] * 5  # a recording that paused on a still
    assert holes(timeline(screen), 25) == ()
    assert holes(timeline([1 / 60] * 30 + [1.0] + [1 / 60] * 30), 60) == (pytest.approx((0.5, 1.5)),)
