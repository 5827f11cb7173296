"""Every encoder `vs-sr upscale` offers, end to end with the real vspipe and ffmpeg: the software
encoders write what they promise (codec, pixel format, every frame at its source time, the other
tracks in the container's forms); the hardware encoders, whose GPUs this machine lacks, and options
a codec or container cannot take are refused in one line before anything is upscaled; ffmpeg is
asked about an encoder once (the answer is cached)."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from conftest import ffmpeg, framemd5, vs_sr

from vs_sr.media.probe import count_frames, probe
from vs_sr.media.timeline import read_timeline
from vs_sr.media.verify import frame_times

FRAMES = 25


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s of 64x48 (x4: 256x192, above DNxHR's minimum) with a 4:3 sample aspect and BT.709 tags,
    AAC audio, an SRT subtitle track and two chapters."""
    folder = tmp_path_factory.mktemp("encoders")
    (folder / "subs.srt").write_text("1\n00:00:00,200 --> 00:00:00,700\nHello\n")
    (folder / "meta.txt").write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\ntitle=One\n"
                                     "[CHAPTER]\nTIMEBASE=1/1000\nSTART=500\nEND=1000\ntitle=Two\n")
    path = folder / "source.mkv"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=64x48:rate=25:duration={FRAMES / 25}", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=1", "-i", str(folder / "subs.srt"), "-i", str(folder / "meta.txt"),
           "-map", "0", "-map", "1", "-map", "2", "-map_chapters", "3", "-vf", "setsar=4/3", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
           "-c:a", "aac", "-c:s", "srt", str(path))
    return path


def check_output(output: Path, source: Path, video: tuple[str, str], others: list[str]) -> None:
    """(codec, pixel format) of the video, every frame at its source time, the SAR and colour
    tags, the other tracks' codecs and the chapters."""
    media = probe(output)
    info = media.video.info
    assert (media.video.codec, info["pix_fmt"], info["width"], info["height"]) == (*video, 256, 192)
    # WebM stores the display size in whole pixels: 256x192 at 4:3 is shown 341 wide (SAR 341:256).
    assert abs(Fraction(info["sample_aspect_ratio"].replace(":", "/")) - Fraction(4, 3)) < 0.01
    assert info.get("color_primaries") == "bt709"
    assert count_frames(output) == FRAMES
    _, timeline = read_timeline(source)
    times = frame_times(output)
    assert max(abs((a - times[0]) - (b - timeline.starts[0])) for a, b in zip(times, timeline.starts, strict=True)) \
        <= 0.002
    assert [t.codec for t in media.tracks if t.kind in ("audio", "subtitle")] == others
    assert [c.title for c in media.chapters] == ["One", "Two"]
    audio, original = media.of_kind("audio")[0], probe(source).of_kind("audio")[0]
    assert abs(audio.duration - original.duration) <= 0.04  # Opus's padding included
    assert abs((audio.start_time - media.video.start_time) - (original.start_time - probe(source).video.start_time)) \
        <= 0.04


@pytest.mark.parametrize(("name", "args", "video", "others"), [
    ("out.webm", ["--codec", "svt-av1", "--preset", "12"], ("av1", "yuv420p"), ["opus", "webvtt"]),
    ("out.mkv", ["--codec", "aom-av1", "--depth", "10", "--preset", "8"], ("av1", "yuv420p10le"), ["aac", "subrip"]),
    ("out.mp4", ["--codec", "x265", "--depth", "10", "--preset", "ultrafast"], ("hevc", "yuv420p10le"),
     ["aac", "mov_text"]),
    ("out.mov", ["--codec", "prores"], ("prores", "yuv422p10le"), ["aac", "mov_text"]),
    ("out.mkv", ["--codec", "prores", "--profile", "4444"], ("prores", "yuv444p12le"), ["aac", "subrip"]),
    ("out.mov", ["--codec", "dnxhr", "--profile", "hqx"], ("dnxhd", "yuv422p10le"), ["aac", "mov_text"]),
    ("out.mkv", ["--codec", "dnxhr", "--profile", "lb"], ("dnxhd", "yuv422p"), ["aac", "subrip"]),
])
def test_each_software_encoder_end_to_end(ncnn_models, source, tmp_path, name, args, video, others):
    output = tmp_path / name
    done = vs_sr("upscale", str(source), str(output), *args)
    assert done.returncode == 0, done.stderr
    check_output(output, source, video, others)
    if video[0] == "hevc" and name.endswith((".mp4", ".mov")):  # the tag Apple's players and editors open
        assert probe(output).video.info["codec_tag_string"] == "hvc1"
    if name.endswith(".webm"):
        assert "audio #1 (aac): re-encoded to Opus" in done.stdout
        assert "subtitle #2 (subrip): converted to WebVTT" in done.stdout


def test_depth_10_is_upscaled_in_10_bits(ncnn_models, source, tmp_path):
    """Lossless FFV1 shows what the network gave: values between 8-bit steps (not multiples of 4)."""
    output = tmp_path / "deep.mkv"
    done = vs_sr("upscale", str(source), str(output), "--codec", "ffv1", "--depth", "10", "--end", "1")
    assert done.returncode == 0, done.stderr
    clip = vs.core.bs.VideoSource(str(output))
    assert clip.format.id == vs.YUV420P10
    luma = np.asarray(clip.get_frame(1)[0])
    assert np.count_nonzero(luma % 4) > luma.size // 4


HARDWARE = {"h264-nvenc": "an NVIDIA GPU", "hevc-nvenc": "an NVIDIA GPU", "h264-qsv": "an Intel GPU",
            "hevc-qsv": "an Intel GPU", "h264-vaapi": "a VA-API device", "hevc-vaapi": "a VA-API device"}


@pytest.mark.parametrize("codec", list(HARDWARE))
def test_hardware_encoders_without_their_hardware_are_refused_first(source, tmp_path, codec):
    output = tmp_path / "out.mkv"
    done = vs_sr("upscale", str(source), str(output), "--codec", codec)
    assert done.returncode == 1
    assert done.stderr.startswith(f"vs-sr: error: --codec {codec} cannot encode here ({codec.replace('-', '_')}: ")
    assert f"it needs {HARDWARE[codec]}" in done.stderr and done.stderr.count("\n") == 1
    assert done.stdout == ""  # the plan line comes before upscaling: nothing started
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_batch_refuses_a_missing_encoder_before_anything(source, tmp_path):
    out = tmp_path / "out"
    done = vs_sr("batch", str(source), "--output-dir", str(out), "--codec", "hevc-nvenc", "--depth", "10")
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "--codec hevc-nvenc cannot encode here" in done.stderr and not out.exists()


@pytest.mark.parametrize(("name", "args", "message"), [
    ("out.mp4", ["--codec", "prores"], "prores cannot be stored in .mp4; use .mkv or .mov."),
    ("out.mp4", ["--codec", "dnxhr"], "dnxhr cannot be stored in .mp4; use .mkv or .mov."),
    ("out.mov", ["--codec", "svt-av1"], "svt-av1 cannot be stored in .mov; use .mkv, .mp4 or .webm."),
    ("out.webm", ["--codec", "x264"],
     ".webm holds AV1 video of the codecs vs-sr writes: use --codec svt-av1 or aom-av1"),
    ("out.mp4", ["--codec", "ffv1"], "ffv1 cannot be stored in .mp4; use .mkv."),
    ("out.M4V", ["--codec", "ffv1"], "ffv1 cannot be stored in .m4v; use .mkv."),  # the user's name, not the muxer's
    ("out.mov", ["--codec", "prores", "--crf", "20"], "prores takes no --crf: its quality is set by --profile "
     "(proxy, lt, standard, hq, 4444; default hq)."),
    ("out.mkv", ["--codec", "svt-av1", "--crf", "0"], "svt-av1 takes --crf 1-63 (ffmpeg's -crf), not 0."),
    ("out.mkv", ["--codec", "x264", "--crf", "60"], "x264 takes --crf 0-51 (ffmpeg's -crf), not 60."),
    ("out.mkv", ["--codec", "svt-av1", "--preset", "slow"], "svt-av1 presets are 0-13 (0 slowest), not 'slow'."),
    ("out.mkv", ["--codec", "dnxhr", "--preset", "fast"], "dnxhr has no speed presets; drop --preset."),
    ("out.mkv", ["--codec", "x264", "--profile", "hq"], "x264 has no --profile (profiles belong to prores: "),
    ("out.mkv", ["--codec", "prores", "--profile", "lb"], "prores profiles are proxy, lt, standard, hq, 4444, not 'lb'."),
    ("out.mkv", ["--codec", "dnxhr", "--depth", "10"], "dnxhr hq is 8-bit; use --profile hqx or 444 for 10-bit."),
    ("out.mkv", ["--codec", "prores", "--depth", "8"], "prores hq is 10-bit; drop --depth."),
    ("out.mkv", ["--codec", "h264-nvenc", "--depth", "10"],
     "h264-nvenc encodes 8-bit only, not 10-bit; use --codec hevc-nvenc for 10-bit."),
    ("out.mkv", ["--codec", "ffv1", "--crf", "3"], "ffv1 is lossless: --crf and --preset do not apply."),
    ("out.mkv", ["--codec", "dnxhr", "--width", "128", "--height", "96"],
     "a 128x96 output is too small for dnxhr, which takes at least 256x120"),
])
def test_options_a_codec_or_container_cannot_take_are_refused(ncnn_models, source, tmp_path, name, args, message):
    done = vs_sr("upscale", str(source), str(tmp_path / name), *args)
    assert done.returncode == 1 and done.stderr.startswith(f"vs-sr: error: {message}"), done.stderr
    assert done.stderr.count("\n") == 1 and list(tmp_path.iterdir()) == []


def test_an_encoder_this_ffmpeg_lacks_is_named():
    """The real ffmpeg asked for an encoder it has not got (as an ffmpeg built without libsvtav1 would be)."""
    from vs_sr.errors import SRError
    from vs_sr.media.codecs import CODECS
    from vs_sr.media.encoders import probe_encoder

    lacking = dataclasses.replace(CODECS["svt-av1"], encoder="libsvtav1_not_built")
    with pytest.raises(SRError, match=r"has no libsvtav1_not_built encoder, which --codec svt-av1 needs: install an "
                       r"ffmpeg built with it"):
        probe_encoder(lacking, None, None)


def test_the_answer_is_cached_and_a_second_run_does_not_ask_again(source, tmp_path):
    cache = tmp_path / "cache"
    env = {"VS_SR_CACHE_DIR": str(cache)}
    first = vs_sr("upscale", str(source), str(tmp_path / "out.mkv"), "--codec", "h264-vaapi", env=env)
    assert first.returncode == 1
    entries = list((cache / "encoders").iterdir())
    assert [p.name.startswith("h264_vaapi-") for p in entries] == [True]  # one answer, no temporary left
    answer = json.loads(entries[0].read_text())
    assert answer["ok"] is False and answer["reason"] in first.stderr
    before = entries[0].stat()
    second = vs_sr("upscale", str(source), str(tmp_path / "out.mkv"), "--codec", "h264-vaapi", env=env)
    assert second.stderr == first.stderr
    after = entries[0].stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not asked, not rewritten
    # What the cache says is what the next run answers: plant an answer ffmpeg would never give.
    entries[0].write_text(json.dumps({**answer, "reason": "a planted answer"}))
    third = vs_sr("upscale", str(source), str(tmp_path / "out.mkv"), "--codec", "h264-vaapi", env=env)
    assert "(h264_vaapi: a planted answer)" in third.stderr


@pytest.mark.parametrize("form", [["--ffmpeg-args", "-vf hqdn3d=8"], ["--ffmpeg-args=-vf hqdn3d=8"]])
def test_ffmpeg_args_may_begin_with_a_dash_and_keep_the_sar_and_colour_tags(ncnn_models, source, tmp_path, form):
    plain, filtered = tmp_path / "plain.mkv", tmp_path / "filtered.mkv"
    assert vs_sr("upscale", str(source), str(plain), "--codec", "ffv1", "--end", "4").returncode == 0
    done = vs_sr("upscale", str(source), str(filtered), "--codec", "ffv1", "--end", "4", *form)
    assert done.returncode == 0, done.stderr
    info = probe(filtered).video.info
    assert info["sample_aspect_ratio"] == "4:3"
    assert (info.get("color_primaries"), info.get("color_transfer"), info.get("color_space")) == ("bt709",) * 3
    assert framemd5(filtered) != framemd5(plain)  # the filter ran


@pytest.mark.parametrize(("args", "message"), [
    ("-c:v libx265", "-c:v is set by --codec; drop it from --ffmpeg-args."),  # the messages would name x264
    ("-s 100x100", "-s is set by --width/--height; drop it"),
    ("-t 0.5", "-t is set by --start/--end (every frame is kept at its source time); drop it"),
    ("{extra}", "is no option's value, so ffmpeg would write a second output file of that name"),
    ("-tune animation {extra}", "is no option's value, so ffmpeg would write a second output file of that name"),
    ("-bitexact {extra}", "is no option's value, so ffmpeg would write a second output file of that name"),
    # Each was written over vs-sr's own option, or did nothing, without a word
    ("-crf 40", "-crf is set by --crf; drop it"),
    ("-preset veryslow", "-preset is set by --preset; drop it"),
    ("-pix_fmt yuv420p", "-pix_fmt is set by --depth and the codec (its chroma); drop it"),
    ("-aspect 16:9", "-aspect is set by the source's shape (vs-sr writes the pixel aspect that keeps it); drop it"),
    ("-x264-params aq-mode=3:crf=40", "-x264-params crf= is set by --crf; drop it"),
    ("-an", "-an is not an option for the video, and they go to its encoder only (vs-sr carries the audio"),
    ("-c:a mp3", "-c:a is not an option for the video"),
    ("-map 0:v", "-map is not an option for the video"),
])
def test_ffmpeg_args_that_set_what_vs_sr_sets_or_name_a_second_output_are_refused(source, tmp_path, args, message):
    """Each ran the whole upscale: a second full encode written beside the output (which lost its
    SAR tag), HEVC in a file the messages called x264, or a size or length the output check then
    refused."""
    extra = tmp_path / "extra.mkv"
    done = vs_sr("upscale", str(source), str(tmp_path / "out.mkv"), "--ffmpeg-args", args.format(extra=extra))
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_profile_or_quantiser_is_refused_only_where_vs_sr_sets_it(ncnn_models, source, tmp_path):
    """x264 has no --profile, so its -profile:v is the caller's; ProRes has no --crf, so its -q:v is."""
    done = vs_sr("upscale", str(source), str(tmp_path / "high.mkv"), "--end", "1", "--model", "faithful", "--scale",
                 "2", "--ffmpeg-args", "-profile:v high")
    assert done.returncode == 0, done.stderr
    done = vs_sr("upscale", str(source), str(tmp_path / "out.mov"), "--end", "1", "--codec", "prores", "--ffmpeg-args",
                 "-profile:v 3")
    assert done.returncode == 1 and done.stderr == "vs-sr: error: --ffmpeg-args: -profile:v is set by --profile for " \
                                                   "prores; drop it from --ffmpeg-args.\n", done.stderr


@pytest.mark.parametrize(("args", "message"), [
    ("-vf scale=100:100", "--ffmpeg-args '-vf scale=100:100': they change the frame size (256x192 becomes 100x100): "
                          "--width/--height set it. Fix or drop them."),
    ("-vf fps=12", "--ffmpeg-args '-vf fps=12': they change the number of frames (4 become 2): every frame is kept at "
                   "its source time (--start/--end choose a range). Fix or drop them."),
])
def test_ffmpeg_args_that_resize_or_drop_frames_are_refused_before_any_frame(ncnn_models, source, tmp_path, args,
                                                                              message):
    done = vs_sr("upscale", str(source), str(tmp_path / "out.mkv"), "--ffmpeg-args", args)
    assert done.returncode == 1 and done.stderr == f"vs-sr: error: {message}\n"  # no frame made (no progress line)
    assert list(tmp_path.iterdir()) == []


def test_colour_a_codec_subsamples_is_said(ncnn_models, tmp_path):
    """4:2:2 into SVT-AV1 (4:2:0 only) became 4:2:0 unsaid; into x265 it stays 4:2:2, with no note."""
    source = tmp_path / "s422.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-c:v", "libx264", "-pix_fmt", "yuv422p",
           str(source))
    for codec, extra, pix_fmt, note in (
            ("svt-av1", ["--preset", "12"], "yuv420p",
             ["note: --codec svt-av1 encodes 4:2:0 colour: the source's 4:2:2 is subsampled (x265 and ffv1 keep it)"]),
            ("x265", [], "yuv422p", [])):
        output = tmp_path / f"{codec}.mkv"
        done = vs_sr("upscale", str(source), str(output), "--model", "faithful", "--scale", "2", "--codec", codec,
                     *extra)
        assert done.returncode == 0, done.stderr
        assert [line for line in done.stdout.splitlines() if line.startswith("note:")] == note
        assert probe(output).video.info["pix_fmt"] == pix_fmt


def test_hdr10_metadata_is_written_by_x265_and_svt_av1_and_named_where_it_is_not(ncnn_models, tmp_path):
    """A PQ source's mastering display and light levels were dropped by every encoder, unsaid."""
    from vs_sr.media.probe import hdr10

    source = tmp_path / "hdr.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-c:v", "libx265", "-pix_fmt",
           "yuv420p10le", "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
           "-x265-params", "log-level=error:hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)"
           "WP(15635,16450)L(10000000,1):max-cll=1000,400", str(source))
    given = hdr10(probe(source))
    assert given is not None and given.light == (1000, 400) and given.luminance == (1000.0, 0.0001)
    # (the caller's own x265 parameters join vs-sr's: they replaced them, and the metadata with them)
    for codec, extra in (("x265", ["--ffmpeg-args", "-x265-params aq-mode=3"]), ("svt-av1", ["--preset", "12"]),
                         ("x264", [])):
        output = tmp_path / f"{codec}.mkv"
        done = vs_sr("upscale", str(source), str(output), "--model", "faithful", "--scale", "2", "--codec", codec,
                     *extra)
        assert done.returncode == 0, done.stderr
        written = hdr10(probe(output))
        if codec == "x264":
            assert written is None
            assert ("note: the source's HDR10 metadata (mastering display, light levels) is not written by --codec "
                    "x264; --codec x265 or svt-av1 keeps it") in done.stdout
            continue
        assert written is not None and written.light == given.light, codec
        assert codec != "x265" or b"aq-mode=3" in output.read_bytes()  # x265 writes its settings into the stream
        assert written.luminance == pytest.approx(given.luminance, rel=1e-3, abs=1e-4), codec  # (AV1: 1/16384 steps)
        assert np.allclose(written.primaries, given.primaries, atol=1e-4), codec
        assert "HDR10" not in done.stdout


@pytest.mark.parametrize(("codec", "container", "family"), [("prores", "mov", "prores"), ("svt-av1", "webm", "av1")])
def test_batch_chunks_in_a_new_final_codec(ncnn_models, source, tmp_path, codec, container, family):
    out = tmp_path / "out"
    done = vs_sr("batch", str(source), "--output-dir", str(out), "--codec", codec, "--container", container,
                 "--intermediate", "final", "--chunk-frames", "13")
    assert done.returncode == 0, done.stderr
    result = out / f"source.{container}"
    media = probe(result)
    assert media.video.codec == family and count_frames(result) == FRAMES
    assert [t.kind for t in media.tracks if t.kind != "data"] == ["video", "audio", "subtitle"]
    if codec == "prores":  # intra-only and deterministic: two chunks are the one-pass encode, frame for frame
        single = tmp_path / "single.mov"
        assert vs_sr("upscale", str(source), str(single), "--codec", "prores").returncode == 0
        assert framemd5(result) == framemd5(single)
