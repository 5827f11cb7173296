"""`vs-sr upscale` end to end with the real vspipe and ffmpeg: streams kept in sync, frame ranges
frame-accurate, and failures or interruptions leave no output behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from conftest import VS_SR, ffmpeg, frame_hash, on_a_small_disk, small_compact_weights, vs_sr

from vs_sr.backends import get_backend
from vs_sr.media.probe import count_frames, packet_span, probe
from vs_sr.models import resolve

core = vs.core
FPS = 25


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-second 128x96 clip with AAC audio, an SRT subtitle track, an attachment, chapters and a title."""
    folder = tmp_path_factory.mktemp("media")
    (folder / "subs.srt").write_text("1\n00:00:00,200 --> 00:00:00,900\nHello\n\n2\n00:00:01,000 --> 00:00:01,800\nWorld\n")
    (folder / "meta.txt").write_text(";FFMETADATA1\ntitle=Test clip\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\n"
                                     "title=One\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=1000\nEND=2000\ntitle=Two\n")
    (folder / "notes.txt").write_text("an attachment")
    path = folder / "source.mkv"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=128x96:rate={FPS}:duration=2", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=2", "-i", str(folder / "subs.srt"), "-i", str(folder / "meta.txt"),
           "-map", "0", "-map", "1", "-map", "2", "-map_metadata", "3", "-map_chapters", "3",
           "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "srt",
           "-metadata:s:a:0", "language=eng", "-attach", str(folder / "notes.txt"),
           "-metadata:s:t", "mimetype=text/plain", str(path))
    return path


def upscale(*args: str) -> subprocess.CompletedProcess:
    return vs_sr("upscale", *args)


def leftovers(folder: Path) -> list[str]:
    """Temporary files or work folders of a run (see media.output)."""
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name or ".vs-sr-" in p.name)


def test_upscale_keeps_every_stream_in_sync(ncnn_models, source, tmp_path):
    output = tmp_path / "out.mkv"
    done = upscale(str(source), str(output))
    assert done.returncode == 0, done.stderr
    assert f"wrote {output}: 50 frames at 512x384, 1 audio, 1 subtitle stream(s)" in done.stdout
    assert "50/50 frames" in done.stderr or "frames (" in done.stderr  # progress lines when not a terminal
    media = probe(output)
    assert count_frames(output) == 50
    assert (media.video.info["width"], media.video.info["height"], media.video.codec) == (512, 384, "h264")
    kinds = [s.kind for s in media.tracks]
    assert kinds == ["video", "audio", "subtitle", "attachment"]
    audio, original = media.of_kind("audio")[0], probe(source).of_kind("audio")[0]
    assert audio.codec == "aac" and audio.info["tags"]["language"] == "eng"  # copied, tags kept
    assert abs(audio.duration - original.duration) <= 1 / FPS
    assert abs(audio.start_time - original.start_time) <= 1 / FPS
    assert media.of_kind("attachment")[0].info["tags"]["mimetype"] == "text/plain"
    assert [c.title for c in media.chapters] == ["One", "Two"]
    assert leftovers(tmp_path) == []


def test_mp4_output_says_what_it_converts_or_drops(ncnn_models, source, tmp_path):
    output = tmp_path / "out.mp4"
    done = upscale(str(source), str(output), "--codec", "x265", "--width", "427", "--height", "320")
    assert done.returncode != 0  # 4:2:0 output: the options as typed, and the sizes that work
    assert "needs --width a multiple of 2 and --height a multiple of 2; got 427x320: pass --width 426 or --width 428" \
        in done.stderr
    done = upscale(str(source), str(output), "--codec", "x265", "--width", "428", "--height", "320")
    assert done.returncode == 0, done.stderr
    assert "subtitle #2 (subrip): converted to mov_text" in done.stdout
    assert "attachment #3 (unknown): dropped (mp4 cannot hold attachments; use .mkv to keep it)" in done.stdout
    media = probe(output)
    assert [s.codec for s in media.tracks if s.kind != "data"] == ["hevc", "aac", "mov_text"]
    assert media.video.info["sample_aspect_ratio"] == "320:321"  # 128x96 -> 428x320: same display aspect
    assert count_frames(output) == 50


def test_a_portrait_phone_video_stays_portrait(tmp_path):
    """Landscape frames and a display matrix turning them by 90 degrees: bestsource turns the frames
    upright, and the pixel aspect was corrected from the unturned shape (shown 5:3, stretched 2.8x)."""
    frames = tmp_path / "frames.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25:duration=0.4", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(frames))
    phone = tmp_path / "phone.mp4"
    ffmpeg("-i", str(frames), "-c", "copy", "-metadata:s:v", "rotate=90", str(phone))
    assert probe(phone).quarter_turned
    for args, shape in [(["--model", "faithful", "--scale", "2"], "192,320,1:1,3:5"),
                        (["--width", "854", "--height", "480"], "854,480,144:427,3:5")]:
        output = tmp_path / "out.mp4"  # (a phone's container; the aspect is set on the encoder, the same for any)
        done = upscale(str(phone), str(output), *args, "-y")
        assert done.returncode == 0, done.stderr
        shown = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                                "stream=width,height,sample_aspect_ratio,display_aspect_ratio", "-of", "csv=p=0",
                                str(output)], capture_output=True, text=True, check=True).stdout.strip()
        assert shown == shape, (args, shown)


def test_an_untagged_sd_source_made_hd_says_the_matrix_its_colours_are_in(tmp_path):
    """The filter converts an untagged SD frame with BT.601 (the default for its size); an untagged
    720p output is read as BT.709 by players: hues shifted. The output names the matrix."""
    source = tmp_path / "phone.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x72:rate=25:duration=0.2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(source))
    assert probe(source).video.info.get("color_space") is None
    output = tmp_path / "out.mp4"
    done = upscale(str(source), str(output), "--model", "faithful", "--width", "1280", "--height", "720")
    assert done.returncode == 0, done.stderr
    assert probe(output).video.info.get("color_space") == "smpte170m"


def test_cover_art_and_a_second_video_track_are_said_not_to_be_carried(tmp_path):
    """They were dropped without a word (ffprobe lists cover art as a video track)."""
    clip, cover, album = tmp_path / "clip.mp4", tmp_path / "cover.png", tmp_path / "album.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(clip))
    ffmpeg("-f", "lavfi", "-i", "color=red:size=32x32", "-frames:v", "1", str(cover))
    ffmpeg("-i", str(clip), "-i", str(cover), "-map", "0", "-map", "1", "-c", "copy", "-disposition:v:1",
           "attached_pic", str(album))
    done = upscale(str(album), str(tmp_path / "out.mkv"), "--model", "faithful", "--scale", "2")
    assert done.returncode == 0, done.stderr
    assert "note: video #1 (png): cover art, not carried over (vs-sr writes the upscaled video only)" in done.stdout


def test_an_mpeg_ts_recording_with_audio_is_written(tmp_path):
    """MPEG-TS stores no track durations: ffprobe's estimate of the audio's (1.83 s for 2.03 s) made
    every .ts/.m2ts with audio fail the output check, after the whole upscale."""
    recording = tmp_path / "camcorder.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=2", "-f", "lavfi", "-i", "sine=duration=2",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts", str(recording))
    audio = probe(recording).of_kind("audio")[0]
    measured = packet_span(recording, audio.index)
    assert measured is not None and abs(measured - 2.0) < 0.05 < abs((audio.duration or 0) - measured)  # (the guess)
    output = tmp_path / "out.mkv"
    done = upscale(str(recording), str(output), "--model", "faithful", "--scale", "2")
    assert done.returncode == 0, done.stderr
    assert abs((probe(output).of_kind("audio")[0].duration or 0) - measured) < 0.05


def test_frame_range_matches_the_full_run(ncnn_models, source, tmp_path):
    full, part = tmp_path / "full.mkv", tmp_path / "part.mkv"
    assert upscale(str(source), str(full), "--codec", "ffv1").returncode == 0
    done = upscale(str(source), str(part), "--codec", "ffv1", "--start", "10", "--end", "29")
    assert done.returncode == 0, done.stderr
    assert count_frames(part) == 20
    whole = core.bs.VideoSource(str(full))
    ranged = core.bs.VideoSource(str(part))
    assert ranged.num_frames == 20
    assert [frame_hash(ranged.get_frame(n)) for n in range(20)] == [frame_hash(whole.get_frame(n)) for n in range(10, 30)]
    media = probe(part)
    assert abs(media.of_kind("audio")[0].duration - 20 / FPS) <= 1 / FPS + 0.025  # cut to the span (+1 AAC packet)
    # Chapters are cut to the range on the input's own timeline, where frame 10 starts at 0.4 s
    # plus the video's start delay (the x264 stream starts a little after the audio).
    original = probe(source)
    begin = 10 / FPS + original.video.start_time - original.start_time
    expected = [(0.0, round(1.0 - begin, 3), "One"), (round(1.0 - begin, 3), 0.8, "Two")]
    assert [(round(c.start, 3), round(c.end, 3), c.title) for c in media.chapters] == expected


def test_a_model_file_given_relative_to_the_current_folder_is_found(source, tmp_path):
    # vspipe runs the script from the script's own folder: the path must reach it absolute
    (tmp_path / "runs").mkdir()
    small_compact_weights(tmp_path / "runs")
    done = vs_sr("upscale", str(source), "out.mkv", "--model", "runs/compact-small.pth", "--codec", "ffv1",
                 "--end", "4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert count_frames(tmp_path / "out.mkv") == 5
    assert probe(tmp_path / "out.mkv").video.info["width"] == 512


def test_bad_model_leaves_nothing(source, tmp_path):
    output = tmp_path / "out.mkv"
    done = upscale(str(source), str(output), "--model", "no-such-model")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("vs-sr: error: unknown model 'no-such-model'")
    assert not output.exists() and leftovers(tmp_path) == []


def test_a_backwards_or_too_late_range_and_a_name_without_extension_are_named_as_such(ncnn_models, source, tmp_path):
    done = upscale(str(source), str(tmp_path / "out.mkv"), "--start", "20", "--end", "10")
    assert done.returncode == 1
    assert "vs-sr: error: frame range 20-10 runs backwards: its first frame must not come after its last." in done.stderr
    done = upscale(str(source), str(tmp_path / "out.mkv"), "--start", "60")
    assert done.returncode == 1
    assert "vs-sr: error: --start 60 is past the input's last frame, 49 (it has 50 frames)." in done.stderr
    done = upscale(str(source), str(tmp_path / "out"))
    assert done.returncode == 1 and f"{tmp_path / 'out'} has no extension to name its container; end it in one of" \
        in done.stderr
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("arguments", "message"), [
    (["--precision", "fp16"], "on this machine, not fp16; pass one of those as --precision."),  # (fp32, bf16 or int8)
    (["--backend", "ort", "--precision", "int8"], "--precision int8 runs on OpenVINO's CPU device, not backend 'ort'"),
    (["--model", "realcugan", "--scale", "2", "--precision", "int8"], "realcugan x2 noise -1 has no int8"),
])
def test_a_precision_the_runtime_cannot_run_is_refused_before_the_pipeline(ncnn_models, source, tmp_path, arguments,
                                                                            message):
    """Asked of the runtime in vs-sr's own process, before vspipe starts: no plan line, and the
    runtime's reason rather than "vspipe failed"."""
    done = upscale(str(source), str(tmp_path / "out.mkv"), *arguments)
    assert done.returncode == 1 and done.stdout == "" and "vspipe" not in done.stderr
    assert done.stderr.startswith("vs-sr: error: ") and message in done.stderr and len(done.stderr.splitlines()) == 1


def test_unwritable_output_is_refused(source, tmp_path):
    # /proc refuses new files even to root; a 0500 folder refuses them to everyone else.
    done = upscale(str(source), "/proc/out.mkv")
    assert done.returncode == 1 and "vs-sr: error: cannot write to /proc:" in done.stderr
    missing = tmp_path / "missing dir"
    done = upscale(str(source), str(missing / "out.mkv"))
    assert done.returncode == 1
    assert f"output directory {missing} does not exist; create it first (mkdir -p '{missing}')." in done.stderr


@pytest.mark.parametrize(("arguments", "reason"), [
    ("-no_such_option 1", "(Unrecognized option 'no_such_option')"),
    ("-vf nosuchfilter", "(No such filter: 'nosuchfilter')"),
    ("-vf crop=1000:10", "(Invalid too big or non positive size for width '1000' or height '10')"),  # > 512x384
    ("-tune", "; its last option, -tune, may lack its value"),
])
def test_ffmpeg_arguments_ffmpeg_refuses_are_refused_before_any_work(ncnn_models, source, tmp_path, arguments, reason):
    """A one-frame encode at the output's size tries them first: ffmpeg's own reason, one line,
    before the model loads (no plan line), and nothing left behind."""
    output = tmp_path / "out.mkv"
    done = upscale(str(source), str(output), "--ffmpeg-args", arguments)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"vs-sr: error: --ffmpeg-args '{arguments}': ffmpeg refuses them ")
    assert reason in done.stderr and len(done.stderr.splitlines()) == 1
    assert not output.exists() and leftovers(tmp_path) == []


def test_an_ffmpeg_failure_names_its_cause_first():
    """ffmpeg reports the cause first and its consequences after it: a failed encode's message keeps
    the first line (real ffmpeg output, a filter it does not have)."""
    from vs_sr.media.processes import _summary

    done = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                           "testsrc2=d=0.1", "-vf", "nosuchfilter", "-f", "null", "-"], capture_output=True, text=True)
    assert done.returncode != 0 and len(done.stderr.splitlines()) > 3
    summary = _summary(done.stderr.splitlines())
    assert summary.startswith("No such filter: 'nosuchfilter' / ") and summary.count(" / ") == 2


def test_existing_output_needs_overwrite(source, tmp_path):
    output = tmp_path / "out.mkv"
    output.write_bytes(b"keep me")
    done = upscale(str(source), str(output))
    assert done.returncode == 1 and "--overwrite" in done.stderr
    assert output.read_bytes() == b"keep me"


VSPIPE = str(Path(sys.executable).with_name("vspipe"))
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def vspipe_info(script: str, *args: str) -> dict[str, str]:
    done = subprocess.run([VSPIPE, "--info", *args, str(EXAMPLES / script), "-"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)


def y4m_frames(script: str, *args: str) -> list[np.ndarray]:
    done = subprocess.run([VSPIPE, "-c", "y4m", "-e", "1", *args, str(EXAMPLES / script), "-"], capture_output=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    header, _, body = done.stdout.partition(b"\n")
    return [np.frombuffer(chunk, np.uint8) for chunk in body.split(b"FRAME\n")[1:]], header.decode()


def test_example_upscale(ncnn_models, source):
    info = vspipe_info("upscale.vpy", "-a", f"input={source}")
    assert (info["Width"], info["Height"], info["Frames"]) == ("512", "384", "50")


def test_example_exact_480p(ncnn_models, source):
    info = vspipe_info("exact_480p.vpy", "-a", f"input={source}", "-a", "width=856")
    assert (info["Width"], info["Height"]) == ("856", "480")
    frames, header = y4m_frames("exact_480p.vpy", "-a", f"input={source}", "-a", "width=856")
    assert "W856 H480" in header and len(frames) == 2


@pytest.mark.parametrize(("mode", "width", "frames"), [("side", "1024", "50"), ("interleave", "512", "100")])
def test_example_compare(ncnn_models, source, mode, width, frames):
    info = vspipe_info("compare.vpy", "-a", f"input={source}", "-a", f"mode={mode}")
    assert (info["Width"], info["Height"], info["Frames"]) == (width, "384", frames)


def test_example_pipe(ncnn_models, source, tmp_path):
    output = tmp_path / "piped.mkv"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(EXAMPLES / "pipe.sh"), str(source), str(output)], capture_output=True,
                          text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    media = probe(output)
    assert [s.kind for s in media.tracks] == ["video", "audio", "subtitle"]
    assert count_frames(output) == 50 and media.video.info["width"] == 512


def test_rgb_source_and_a_range_of_a_video_only_file(ncnn_models, tmp_path):
    """An RGB (FFV1 gbrp) file with nothing but video: converted to YUV for y4m and tagged as
    such; a frame range needs no other streams to cut."""
    rgb = tmp_path / "rgb.mkv"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=64x48:rate={FPS}:duration=1", "-c:v", "ffv1", "-pix_fmt", "gbrp",
           str(rgb))
    output = tmp_path / "out.mkv"
    done = upscale(str(rgb), str(output), "--start", "5", "--end", "14")
    assert done.returncode == 0, done.stderr
    media = probe(output)
    assert count_frames(output) == 10 and [s.kind for s in media.tracks] == ["video"]
    assert media.video.info["pix_fmt"] == "yuv444p" and media.video.info.get("color_space") == "smpte170m"
    assert done.stdout.rstrip().endswith("fps") and "10 frames at 256x192" in done.stdout


def test_interlaced_input_is_refused_or_deinterlaced(ncnn_models, tmp_path):
    interlaced = tmp_path / "interlaced.mkv"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=64x48:rate={FPS}:duration=0.4", "-vf", "setfield=tff", "-c:v", "libx264",
           "-flags", "+ildct+ilme", "-x264-params", "interlaced=1:tff=1", "-pix_fmt", "yuv420p", str(interlaced))
    output = tmp_path / "out.mkv"
    done = upscale(str(interlaced), str(output))
    assert done.returncode == 1 and not output.exists()
    assert "interlaced.mkv is interlaced (top field first)" in done.stderr
    assert "--deinterlace bwdif" in done.stderr and "--deinterlace progressive" in done.stderr
    done = upscale(str(interlaced), str(output), "--deinterlace", "bwdif")
    assert done.returncode == 0, done.stderr
    assert count_frames(output) == 10  # the same frame rate
    assert probe(output).video.info.get("field_order") in (None, "progressive", "unknown")


@pytest.mark.parametrize("script", ["upscale.vpy", "exact_480p.vpy", "compare.vpy"])
def test_examples_say_what_they_need(script):
    done = subprocess.run([VSPIPE, "--info", str(EXAMPLES / script), "-"], capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "pass the video to read as an absolute path" in done.stderr


def test_compare_refuses_an_unknown_mode(ncnn_models, source):
    done = subprocess.run([VSPIPE, "--info", "-a", f"input={source}", "-a", "mode=bogus", str(EXAMPLES / "compare.vpy"),
                           "-"], capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "mode='bogus': use mode=side" in done.stderr


def test_verbose_shows_the_filter_line_and_quiet_shows_nothing(ncnn_models, source, tmp_path):
    loud = upscale(str(source), str(tmp_path / "loud.mkv"), "--end", "1", "-v")
    assert loud.returncode == 0, loud.stderr
    assert "vs_sr: realesr-animevideov3 x4 on CPU" in loud.stderr and "tiles of 128x96" in loud.stderr
    assert "(auto), " in loud.stderr and "ran realesr-animevideov3 x4 on CPU" in loud.stdout
    quiet = upscale(str(source), str(tmp_path / "quiet.mkv"), "--end", "1", "-q")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_tiles_that_do_not_fit_are_refused_before_the_plan(ncnn_models, source, tmp_path):
    """They were found by vspipe, after the plan line ("vspipe failed: tile width 32 is less ...")."""
    done = upscale(str(source), str(tmp_path / "out.mkv"), "--tile", "32", "--overlap", "40")
    assert done.returncode == 1 and done.stdout == "", done.stdout
    assert done.stderr == "vs-sr: error: tile width 32 is less than twice the overlap of 40 pixels; use a tile of at " \
                          "least 80, or a smaller --overlap.\n"


def test_a_cache_whose_lock_folder_cannot_be_written_still_runs(ncnn_models, source, tmp_path):
    """A cache shared read-only (built by its owner) refused every run: the output's lock lives there."""
    cache, temp = tmp_path / "cache", tmp_path / "tmp"
    cache.mkdir()
    temp.mkdir()
    (cache / "locks").write_text("not a folder: as unwritable as a read-only one")
    done = vs_sr("upscale", str(source), str(tmp_path / "out.mkv"), "--end", "1", "--codec", "ffv1",
                 env={"VS_SR_CACHE_DIR": str(cache), "TMPDIR": str(temp), "XDG_RUNTIME_DIR": ""})
    assert done.returncode == 0, done.stderr
    assert (temp / f"vs-sr-locks-{os.getuid()}").is_dir()  # the lock went there


def test_the_output_says_what_ran(ncnn_models, source, tmp_path):
    """The precision above all: `auto` picks it by the CPU, and it decides the speed."""
    done = upscale(str(source), str(tmp_path / "fp32.mkv"), "--end", "1", "--precision", "fp32")
    assert done.returncode == 0, done.stderr
    ran = [line for line in done.stdout.splitlines() if line.startswith("ran ")]
    assert len(ran) == 1 and ran[0].startswith("ran realesr-animevideov3 x4 on CPU (") and ", fp32, " in ran[0]
    assert "tiles of 128x96" in ran[0] and ran[0].endswith("2 stream(s)")
    auto = get_backend("openvino").auto_precision(resolve("realesr-animevideov3", 4), 0)
    default = upscale(str(source), str(tmp_path / "auto.mkv"), "--end", "1")
    assert default.returncode == 0, default.stderr
    assert f", {auto} (auto), " in default.stdout  # what auto picked for this model on this CPU


def test_a_job_gives_vapoursynth_one_thread_more_than_the_cores(ncnn_models, source, tmp_path):
    """A frame in flight parks a VapourSynth thread in the filter's callback: the clip vspipe builds
    for a job leaves a thread to decode and convert the next frames meanwhile."""
    from vs_sr.devices import cpu_count
    from vs_sr.media.job import Job
    from vs_sr.media.job_clip import job_clip

    threads = core.num_threads
    try:
        core.num_threads = 1
        job = Job(source, tmp_path / "out.mkv", width=256, height=192)
        clip = job_clip({key: None if value is None else str(value) for key, value in job.filter_arguments().items()})
        assert core.num_threads == cpu_count() + 1
        assert (clip.width, clip.height, clip.format.id) == (256, 192, vs.YUV420P8)
        clip.get_frame(0)
    finally:
        core.num_threads = threads


def test_the_last_check_refuses_an_output_short_of_frames_or_of_another_size(source, tmp_path):
    """What `verify` reads before an output is renamed into place, on real files: a 2 s plan
    checked against 1 s of it, and against the source itself (the plan's size is the upscaled one)."""
    from vs_sr.errors import SRError
    from vs_sr.media.job import Job, plan_job
    from vs_sr.media.verify import verify

    media = probe(source)
    plan = plan_job(Job(source, tmp_path / "out.mkv"), media, "matroska")
    short = tmp_path / "short.mkv"
    ffmpeg("-i", str(source), "-map", "0", "-t", "1", "-c", "copy", str(short))
    frames = count_frames(short)  # a cut without re-encoding ends where the packets allow
    assert frames < 2 * FPS
    with pytest.raises(SRError, match=f"the output has {frames} frames, expected {2 * FPS}; nothing was written"):
        verify(short, plan, media)
    with pytest.raises(SRError, match="the output is 128x96, expected 512x384; nothing was written"):
        verify(source, plan, media)


def test_an_old_ffmpeg_is_named():
    from vs_sr.errors import SRError
    from vs_sr.media.tools import check_ffmpeg_version, ffmpeg_version

    assert ffmpeg_version("/usr/bin/ffmpeg") >= (5, 1)  # the real one here
    with pytest.raises(SRError, match=r"/opt/ffmpeg is ffmpeg 4.4; vs-sr needs 5.1 or newer \(for -fps_mode\)"):
        check_ffmpeg_version("/opt/ffmpeg", (4, 4))


def test_a_full_disk_is_reported_as_such(ncnn_models, source, tmp_path):
    """The output folder on a 2 MB tmpfs (a private mount namespace: nothing outside sees it)."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    done = on_a_small_disk(folder, 2, [VS_SR, "upscale", str(source), f"{folder}/out.mkv", "--codec", "ffv1"])
    assert done.returncode == 1
    assert f"vs-sr: error: the disk holding {folder} is full" in done.stderr and "cannot count" not in done.stderr


def test_a_disk_that_fills_up_at_the_final_mux_is_named(ncnn_models, tmp_path):
    """The video fits (a few kB of x264), the 3 MB of 8-channel PCM audio beside it in the final
    file does not: whatever fails first (ffmpeg's write, its silently short file, the frame count
    of what it wrote), the message is that the disk is full, and where."""
    loud = tmp_path / "loud.mkv"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=64x48:rate={FPS}:duration=1", "-f", "lavfi", "-i",
           "anoisesrc=duration=4:sample_rate=48000", "-map", "0", "-map", "1", "-ac", "8", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", str(loud))
    folder = tmp_path / "small-disk"
    folder.mkdir()
    done = on_a_small_disk(folder, 1, [VS_SR, "upscale", str(loud), f"{folder}/out.mkv"])
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(f"vs-sr: error: the disk holding {folder} is full (")
    assert "out.mkv did not fit: free some space or write to another disk" in done.stderr
    assert "frames (100%)" in done.stderr  # every frame was encoded: the mux met the full disk


def test_a_range_without_subtitles_keeps_an_empty_subtitle_track(ncnn_models, source, tmp_path):
    """Frames 46-49 (1.84-2.0 s) hold no subtitle: like a cut by ffmpeg or mkvmerge, the output keeps
    the track (empty, with its tags), and says so."""
    for name, codec in (("part.mkv", "subrip"), ("part.mp4", "mov_text")):
        output = tmp_path / name
        done = upscale(str(source), str(output), "--start", "46", "--end", "49")
        assert done.returncode == 0, done.stderr
        assert "note: subtitle #2: no event within the frame range; kept as an empty track" in done.stdout
        assert "1 subtitle stream(s)" in done.stdout
        subtitles = probe(output).of_kind("subtitle")
        assert [s.codec for s in subtitles] == [codec]


@pytest.mark.parametrize(("codec", "output", "args", "kept"), [
    ("pcm_s24le", "out.mov", [], "pcm_s24le"),  # an editing intermediate's audio, copied as is
    ("alac", "out.mkv", [], "alac"),  # Matroska stores no ALAC packet durations: the copy ends where its last starts
    ("flac", "out.mp4", ["--start", "24", "--end", "47"], "aac"),  # cut by FLAC's 104 ms packets, then re-encoded
])
def test_lossless_audio_is_kept_and_checked_by_its_own_packets(ncnn_models, tmp_path, codec, output, args, kept):
    """Each failed the output check after every frame was made ("lasts 1.950 s, expected 2.000 s",
    "lasts 1.068 s, expected 1.000 s"), or, PCM into .mov, was re-encoded to AAC for no reason."""
    source = tmp_path / "source.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=48x32:rate=24:duration=2", "-f", "lavfi", "-i",
           "sine=duration=2:sample_rate=44100", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", codec, str(source))
    done = upscale(str(source), str(tmp_path / output), "--model", "faithful", "--scale", "2", *args)
    assert done.returncode == 0, done.stderr
    assert "re-encoded" not in done.stdout or kept == "aac", done.stdout
    assert [t.codec for t in probe(tmp_path / output).of_kind("audio")] == [kept]


def test_mp4_notes_say_what_it_loses_and_not_what_it_keeps(ncnn_models, tmp_path):
    """An MP4's chapter names are a data track: the chapters were kept, yet the note said "data #2
    (bin_data): not carried over". A track's title MP4 cannot hold was dropped unsaid."""
    (tmp_path / "meta.txt").write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\ntitle=One\n")
    for name in ("source.mp4", "source.mkv"):
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=48x32:rate=25:duration=1", "-f", "lavfi", "-i", "sine=duration=1",
               "-i", str(tmp_path / "meta.txt"), "-map", "0", "-map", "1", "-map_chapters", "2", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", "-c:a", "aac", "-metadata:s:a:0", "title=Commentary", "-metadata:s:a:0",
               "language=eng", str(tmp_path / name))
    assert [t.codec for t in probe(tmp_path / "source.mp4").tracks] == ["h264", "aac", "bin_data"]
    for name, expected in (("source.mp4", []), ("source.mkv", [
            "note: audio #1 (aac): track title not kept (mp4 has no place for it; .mkv keeps it), language kept"])):
        output = tmp_path / f"from-{name}.mp4"
        done = upscale(str(tmp_path / name), str(output), "--model", "faithful", "--scale", "2")
        assert done.returncode == 0, done.stderr
        assert [line for line in done.stdout.splitlines() if line.startswith("note:")] == expected
        assert [c.title for c in probe(output).chapters] == ["One"]
        assert probe(output).of_kind("audio")[0].info["tags"]["language"] == "eng"


def test_tracks_the_container_cannot_hold_are_converted_before_the_encode(ncnn_models, tmp_path):
    """Opus audio into .mov and mov_text subtitles into .mkv: ffmpeg refuses both at the final
    mux, so the plan converts them (and says so) before any frame is upscaled."""
    (tmp_path / "subs.srt").write_text("1\n00:00:00,100 --> 00:00:00,300\nHello\n")
    opus, mov_text = tmp_path / "opus.mkv", tmp_path / "mov_text.mp4"
    clip = ["-f", "lavfi", "-i", f"testsrc2=size=64x48:rate={FPS}:duration=0.4"]
    ffmpeg(*clip, "-f", "lavfi", "-i", "sine=duration=0.4", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a",
           "libopus", str(opus))
    ffmpeg(*clip, "-i", str(tmp_path / "subs.srt"), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:s", "mov_text",
           str(mov_text))
    for source, output, note, codecs in (
            (opus, "out.mov", "audio #1 (opus): re-encoded to AAC (this ffmpeg cannot copy opus into mov)",
             ["h264", "aac"]),
            (mov_text, "out.mkv", "subtitle #1 (mov_text): converted to SubRip (matroska subtitles)",
             ["h264", "subrip"])):
        done = upscale(str(source), str(tmp_path / output))
        assert done.returncode == 0, done.stderr
        assert f"note: {note}" in done.stdout
        assert [t.codec for t in probe(tmp_path / output).tracks] == codecs


def test_an_output_name_of_any_legal_length_works(ncnn_models, source, tmp_path):
    """255 bytes is the most a file name may have; the work folder beside the output is named
    after it and must fit too."""
    for name in ("x" * 251 + ".mkv", "é" * 125 + "x.mkv"):  # 255 bytes, in ASCII and with two-byte characters
        assert len(name.encode()) == 255
        done = upscale(str(source), str(tmp_path / name), "--end", "1")
        assert done.returncode == 0, done.stderr
        assert (tmp_path / name).is_file() and leftovers(tmp_path) == []


def test_a_tile_of_width_and_height_reaches_the_filter(ncnn_models, source, tmp_path):
    """--tile WxH, as `tile=(w, h)` in Python, through vspipe's arguments to the filter."""
    done = upscale(str(source), str(tmp_path / "tiled.mkv"), "--end", "1", "--tile", "64x48", "--overlap", "8", "-v")
    assert done.returncode == 0, done.stderr
    assert "tiles of 64x48 (overlap 8" in done.stderr
