"""Every output frame keeps its source time: variable frame rates, frame ranges, audio that starts
late, subtitles that straddle a range's ends, and frames the decoder has to drop (--salvage)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ffmpeg, vs_sr

from vs_sr.media.probe import count_frames, probe
from vs_sr.media.timeline import read_timeline
from vs_sr.media.verify import frame_times

TOLERANCE = 0.002  # seconds


@pytest.fixture(scope="module")
def vfr_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A phone-like file: 2 s at 10 fps then 2 s at 30 fps (80 frames), audio throughout, and
    subtitles, one of them on screen across the rate change."""
    folder = tmp_path_factory.mktemp("vfr")
    (folder / "subs.srt").write_text("1\n00:00:00,500 --> 00:00:02,600\nAcross\n\n"
                                     "2\n00:00:03,000 --> 00:00:03,900\nLate\n")
    path = folder / "vfr.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=2", "-f", "lavfi", "-i",
           "testsrc2=size=64x48:rate=30:duration=2", "-f", "lavfi", "-i", "sine=frequency=440:duration=4",
           "-i", str(folder / "subs.srt"), "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]",
           "-map", "2:a", "-map", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "srt",
           "-fps_mode", "vfr", str(path))
    return path


def relative(times: list[float]) -> list[float]:
    return [t - times[0] for t in times]


def assert_times(output: Path, expected: list[float]) -> None:
    got = relative(frame_times(output))
    assert len(got) == len(expected)
    worst = max(abs(a - b) for a, b in zip(got, relative(expected), strict=True))
    assert worst <= TOLERANCE, f"a frame is {worst * 1000:.1f} ms off its source time"


def test_variable_frame_rate_keeps_every_frame_time_and_the_audio(ncnn_models, vfr_source, tmp_path):
    _, timeline = read_timeline(vfr_source)
    assert not timeline.is_constant()  # really variable: 100 ms then 33 ms frames
    output = tmp_path / "out.mkv"
    done = vs_sr("upscale", str(vfr_source), str(output), "--codec", "ffv1")
    assert done.returncode == 0, done.stderr
    assert_times(output, list(timeline.starts))
    media, source = probe(output), probe(vfr_source)
    audio, original = media.of_kind("audio")[0], source.of_kind("audio")[0]
    assert abs(audio.duration - original.duration) <= 0.034
    # In sync: audio against video as in the source.
    assert abs((audio.start_time - media.video.start_time) - (original.start_time - source.video.start_time)) <= TOLERANCE
    assert count_frames(output) == 80


@pytest.mark.parametrize(("rate", "container"), [("24", "mkv"), ("24000/1001", "mkv"), ("24000/1001", "mp4")])
def test_a_constant_rate_is_declared_as_the_source_declares_it(ncnn_models, tmp_path, rate, container):
    """Matroska stores whole milliseconds: 24 fps reads as steps of 42, 41, 42 ms, and the output
    declared 23.81 fps (the first step); mp4 stores finer times. Frame times stay the source's."""
    source = tmp_path / f"film.{container}"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=32x24:rate={rate}:duration=1", "-c:v", "libx264", "-pix_fmt",
           "yuv420p", str(source))
    output = tmp_path / "out.mkv"
    done = vs_sr("upscale", str(source), str(output), "--codec", "ffv1", "--start", "3")
    assert done.returncode == 0, done.stderr
    declared = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                               "stream=r_frame_rate,avg_frame_rate", "-of", "csv=p=0", str(output)],
                              capture_output=True, text=True, check=True).stdout.strip()
    fraction = rate if "/" in rate else f"{rate}/1"
    assert declared == f"{fraction},{fraction}"
    assert_times(output, list(read_timeline(source)[1].starts[3:]))
    if container != "mkv":
        return  # (into MP4 below: from Matroska's millisecond times, the case that went wrong)
    # Into MP4: whole frames of its clock apart (ms-rounded times on a 1/16000 clock read as 24.02 fps)
    output = tmp_path / "out.mp4"
    assert vs_sr("upscale", str(source), str(output), "--codec", "x264", "--preset", "ultrafast").returncode == 0
    stamps = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=dts", "-of",
                             "csv=p=0", str(output)], capture_output=True, text=True, check=True).stdout.split()
    assert len({int(b) - int(a) for a, b in zip(stamps, stamps[1:], strict=False)}) == 1, stamps


def test_a_range_across_the_rate_change_keeps_times_and_clips_subtitles(ncnn_models, vfr_source, tmp_path):
    _, timeline = read_timeline(vfr_source)
    output = tmp_path / "part.mkv"
    done = vs_sr("upscale", str(vfr_source), str(output), "--codec", "ffv1", "--start", "12", "--end", "60")
    assert done.returncode == 0, done.stderr
    assert_times(output, list(timeline.starts[12:61]))
    begin, end = timeline.starts[12], timeline.stop(60)
    media = probe(output)
    assert abs(media.of_kind("audio")[0].duration - (end - begin)) <= 0.034
    # "Across" (0.5-2.6 s) is on screen when the range starts (frame 12, 1.2 s): it starts at 0 on the
    # range's clock; "Late" (3.0-3.9 s) is still on screen when the range ends (after frame 60,
    # about 3.37 s) and is clipped to the end.
    subtitles = subprocess.run(["ffmpeg", "-v", "error", "-i", str(output), "-map", "0:s", "-f", "srt", "-"],
                               capture_output=True, text=True, check=True).stdout
    blocks = {block.split("\n")[2]: block.split("\n")[1] for block in subtitles.strip().split("\n\n")}
    assert blocks["Across"].startswith("00:00:00,000 --> ")
    late_end = blocks["Late"].split(" --> ")[1]
    assert abs(_seconds(late_end) - (end - begin)) <= TOLERANCE
    file_duration = float(media.duration or 0)
    assert file_duration <= (end - begin) + 0.05  # no subtitle stretches the file past the range


def _seconds(srt_time: str) -> float:
    hours, minutes, rest = srt_time.strip().split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest.replace(",", "."))


def test_offset_audio_keeps_its_delay_in_a_range(ncnn_models, tmp_path):
    """Audio that starts 1 s after the video: a range from 0.4 s puts it 0.6 s into the output."""
    source = tmp_path / "offset.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=3", "-f", "lavfi", "-i", "sine=duration=2",
           "-filter_complex", "[1:a]adelay=1000:all=1[a]", "-map", "0:v", "-map", "[a]", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-c:a", "flac", str(source))
    # Give the audio a real start time of 1 s (not leading silence): remux with an offset.
    delayed = tmp_path / "delayed.mkv"
    ffmpeg("-i", str(source), "-itsoffset", "1", "-f", "lavfi", "-i", "sine=duration=2", "-map", "0:v", "-map", "1:a",
           "-c:v", "copy", "-c:a", "flac", str(delayed))
    original = probe(delayed)
    audio_start = original.of_kind("audio")[0].start_time - original.video.start_time
    assert audio_start > 0.9
    output = tmp_path / "part.mkv"
    done = vs_sr("upscale", str(delayed), str(output), "--codec", "ffv1", "--start", "10", "--end", "59")
    assert done.returncode == 0, done.stderr
    media = probe(output)
    shift = media.of_kind("audio")[0].start_time - media.video.start_time
    assert abs(shift - (audio_start - 10 / 25)) <= 0.03  # within an audio packet


def test_frames_the_decoder_drops_are_refused_or_salvaged_and_the_rest_keep_their_times(ncnn_models, tmp_path):
    source = tmp_path / "damaged.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=2", "-f", "lavfi", "-i", "sine=duration=2",
           "-c:v", "mjpeg", "-q:v", "3", "-c:a", "pcm_s16le", str(source))
    packets = json.loads(subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                                         "packet=pos,size", "-of", "json", str(source)],
                                        capture_output=True, text=True, check=True).stdout)["packets"]
    data = bytearray(source.read_bytes())
    for packet in packets[20:23]:  # three frames in the middle lose their JPEG data (the container is intact)
        start = data.find(b"\xff\xd8", int(packet["pos"]))
        data[start:start + int(packet["size"])] = bytes(int(packet["size"]))
    source.write_bytes(data)
    _, timeline = read_timeline(source)
    assert timeline.frames < 50
    output = tmp_path / "out.mkv"
    done = vs_sr("upscale", str(source), str(output), "--codec", "ffv1")
    assert done.returncode == 1 and not output.exists()
    assert f"damaged.mkv is incomplete or damaged: it holds 50 frames but only {timeline.frames} (2.00 s) decode; " \
           f"{50 - timeline.frames} of the 50 frames that could be read are damaged. Pass --salvage" in done.stderr
    done = vs_sr("upscale", str(source), str(output), "--codec", "ffv1", "--salvage")
    assert done.returncode == 3, done.stderr  # written, but incomplete
    assert f"{50 - timeline.frames} of the 50 frames that could be read are damaged" in done.stdout
    assert "vs-sr: incomplete: damaged.mkv is incomplete or damaged" in done.stderr
    assert_times(output, list(timeline.starts))  # the frames after the gap are not pulled forward
    audio = probe(output).of_kind("audio")[0]
    assert abs(audio.duration - 2.0) <= 0.05
