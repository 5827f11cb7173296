"""File names and environments as they come: names that are not UTF-8 or too long, an output of
".", a locale the system lacks or one that is not UTF-8, closed standard streams, a relative cache
folder, a cache or batch folder that cannot be written. Each is one line before any work, or works."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import VS_SR, ffmpeg

from vs_sr.media.probe import probe

FAST = ["--model", "faithful", "--scale", "2", "--precision", "fp32", "-q"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "plain.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=0.5", "-f", "lavfi", "-i", "sine=duration=0.5",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path))
    return path


def run(*args: str | bytes, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([VS_SR, *args], capture_output=True, cwd=cwd, stdin=subprocess.DEVNULL, timeout=600,
                          env={**os.environ, **(env or {})})
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(errors="replace"),
                                       done.stderr.decode(errors="replace"))


def one_line(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert done.returncode == code and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


def test_a_name_that_is_not_utf8_is_one_line_for_upscale_eval_and_batch(ncnn_models, clip, tmp_path):
    bad = b"bad\xffname.mp4"
    shutil.copy(clip, os.path.join(os.fsencode(tmp_path), bad))
    expected = r"bad\xffname.mp4 has a name that is not UTF-8 text"
    assert expected in one_line(run("upscale", bad, "out.mkv", *FAST, cwd=tmp_path))
    assert expected in one_line(run("eval", str(clip), bad, cwd=tmp_path))
    assert r"o\xffut.mkv has a name that is not UTF-8 text" in \
        one_line(run("upscale", str(clip), b"o\xffut.mkv", *FAST, cwd=tmp_path))
    shutil.copy(clip, tmp_path / "good.mp4")
    done = run("batch", ".", "--output-dir", "results", *FAST, cwd=tmp_path)
    assert expected in one_line(done) and not (tmp_path / "results" / "good.mkv").exists()


def test_an_output_name_too_long_or_a_folder_is_one_line_before_any_work(ncnn_models, clip, tmp_path):
    long = "é" * 126 + ".mkv"  # 256 bytes
    assert "has a name of 256 bytes, more than the 255 a file name may have" in \
        one_line(run("upscale", str(clip), long, *FAST, cwd=tmp_path))
    for folder in (".", "/"):
        assert "is a folder; give the output file's name" in one_line(run("upscale", str(clip), folder, *FAST,
                                                                           cwd=tmp_path))
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(clip, library / "short.mp4")
    shutil.copy(clip, library / ("x" * 252 + ".ts"))  # its output, .mkv, would need 256
    done = run("batch", "library", "--output-dir", "results", *FAST, cwd=tmp_path)
    assert "has a name of 256 bytes" in one_line(done) and not (tmp_path / "results" / "short.mkv").exists()


def test_a_batch_writing_beside_its_inputs_is_refused_as_replacing_them(ncnn_models, clip, tmp_path):
    shutil.copy(clip, tmp_path / "in.mkv")
    done = run("batch", "in.mkv", "--output-dir", ".", *FAST, cwd=tmp_path)
    assert "in.mkv would replace it; give an --output-dir apart from the inputs" in one_line(done)
    assert "give --output-dir DIR" in one_line(run("batch", "in.mkv", "--output-dir", "", *FAST, cwd=tmp_path))


@pytest.mark.parametrize("env", [{"LANG": "xx_XX.UTF-8", "LC_ALL": ""}, {"LC_ALL": "C"}, {"LC_ALL": "POSIX"}],
                         ids=["missing-locale", "C", "POSIX"])
def test_a_locale_the_system_lacks_or_that_is_not_utf8_still_upscales(ncnn_models, clip, tmp_path, env):
    """mkvmerge aborted on a missing locale after the whole upscale; under C vspipe's Python could
    not open a non-ASCII name."""
    shutil.copy(clip, tmp_path / "日本語.mp4")
    done = run("upscale", "日本語.mp4", "出力.mkv", *FAST, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert probe(tmp_path / "出力.mkv").frame_size == (128, 96)


@pytest.mark.parametrize("closed", ["2>&-", ">&-", "<&-"])
def test_a_closed_standard_stream_is_no_failure(ncnn_models, clip, tmp_path, closed):
    done = subprocess.run(["sh", "-c", f'exec "$0" upscale "$1" out.mkv -q --model faithful --scale 2 {closed}',
                           VS_SR, str(clip)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert (tmp_path / "out.mkv").is_file()


def test_a_relative_cache_folder_is_kept_where_it_was_given(ncnn_models, clip, tmp_path):
    """vspipe runs in a work folder of its own: a relative $VS_SR_CACHE_DIR named a folder there,
    removed with it (the int8 graph was made again on every run)."""
    done = run("upscale", str(clip), "out.mkv", *FAST, cwd=tmp_path, env={"VS_SR_CACHE_DIR": "relative-cache"})
    assert done.returncode == 0, done.stderr
    assert any((tmp_path / "relative-cache" / "onnx").glob("*.onnx"))


def test_a_cache_home_that_cannot_be_written_names_the_variable_that_moves_it(ncnn_models, clip, tmp_path):
    (tmp_path / "read-only").mkdir(mode=0o555)
    done = as_a_user(["upscale", str(clip), "out.mkv", *FAST], tmp_path,
                     {"XDG_CACHE_HOME": str(tmp_path / "read-only"), "VS_SR_CACHE_DIR": ""})
    assert done.stderr.startswith("vs-sr: error: vspipe failed: cannot write to the cache folder ") and \
        done.stderr.endswith("(Permission denied): set VS_SR_CACHE_DIR to a folder you can write.\n"), done.stderr


def as_a_user(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`vs-sr ARGS` without the powers that let root write into any folder (the tests run as root
    on CI); skipped where they cannot be dropped."""
    done = subprocess.run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--inh-caps=-all",
                           VS_SR, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    if done.stderr.startswith("setpriv"):
        pytest.skip(f"setpriv cannot drop capabilities here: {done.stderr.strip()}")
    return done


def test_tags_given_to_the_encoder_are_refused(clip, tmp_path):
    done = run("upscale", str(clip), "out.mkv", *FAST, "--ffmpeg-args", "-metadata title=x", cwd=tmp_path)
    assert "-metadata would set tags on the video encoder's own file" in done.stderr and done.returncode == 2


def test_a_batch_folder_that_cannot_be_written_is_one_line(ncnn_models, clip, tmp_path):
    shutil.copy(clip, tmp_path / "in.mp4")
    (tmp_path / "results").mkdir(mode=0o555)
    done = as_a_user(["batch", "in.mp4", "--output-dir", "results", *FAST], tmp_path)
    assert done.stderr == "vs-sr: error: cannot make the batch's state in results (Permission denied); give an " \
                          "--output-dir you can write.\n"


def test_names_in_messages_are_one_line_that_moves_no_terminal():
    from vs_sr.paths import shown

    assert shown("a\nb\x1b[31m\x9b\u202eX.mp4") == "a\\nb\\x1b[31m\\x9b\\u202eX.mp4"
    assert shown(os.fsdecode(b"bad\xffname.mp4")) == "bad\\xffname.mp4"
