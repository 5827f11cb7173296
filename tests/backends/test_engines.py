"""The GPU path's parts that do not need a GPU: the engine cache (keys, atomic builds under a
lock, stale and corrupt engines), the ONNX TensorRT is given, fp32 islands, profile exports.

The cache does not interpret engine bytes: here a builder writes a payload and the "deserializer"
checks it, which is all the cache relies on. Tests that need TensorRT or CUDA are skipped with
that reason where they are missing."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import VS_SR, vs_sr
from onnx import helper

from vs_sr.backends.tensorrt import installed_version
from vs_sr.backends.tensorrt.engine_cache import EngineCache, EngineKey
from vs_sr.devices import cuda_gpus
from vs_sr.models import resolve
from vs_sr.models.onnx_export import export_onnx
from vs_sr.models.onnx_graph import fp32_island_nodes, tensorrt_problems


def key(**changes) -> EngineKey:
    fields = dict(model="realesr-animevideov3 x4", onnx_sha256="ab" * 32, shape=(1, 144, 176), precision="fp16",
                  trt_version="10.13.0", gpu="NVIDIA H100 80GB HBM3", compute_capability="9.0")
    fields.update(changes)
    return EngineKey.static(**fields)


class Builder:
    """Writes an engine payload for a key and counts the builds."""

    def __init__(self, payload: bytes = b"engine:") -> None:
        self.payload = payload
        self.builds = 0

    def __call__(self, target: Path) -> None:
        self.builds += 1
        target.write_bytes(self.payload + b"x" * 1000)


def accept(data: bytes) -> bytes | None:
    return data if data.startswith(b"engine:") else None


def test_every_dependency_is_in_the_key():
    base = key()
    variants = [key(onnx_sha256="cd" * 32), key(shape=(1, 144, 192)), key(shape=(2, 144, 176)), key(precision="bf16"),
                key(trt_version="10.14.1"), key(gpu="NVIDIA H200"), key(compute_capability="8.9"),
                EngineKey("realesr-animevideov3 x4", "ab" * 32, (1, 64, 64), (1, 144, 176), (1, 256, 256), "fp16",
                          "10.13.0", "NVIDIA H100 80GB HBM3", "9.0")]
    stems = {v.file_stem() for v in variants}
    assert len(stems) == len(variants) and base.file_stem() not in stems
    assert base.file_stem() == key().file_stem()
    assert "b1x144x176-fp16-trt10.13.0-NVIDIAH10080GBHBM3-sm90" in base.file_stem()


def test_built_once_then_loaded(tmp_path):
    cache, builder = EngineCache(tmp_path), Builder()
    first = cache.get_or_build(key(), builder, accept)
    second = cache.get_or_build(key(), builder, accept)
    assert first == second and builder.builds == 1
    engine, manifest = cache.paths(key())
    assert engine.is_file() and manifest.is_file()
    assert [e.key for e in cache.entries()] == [key()]


def test_corrupt_stale_or_refused_engines_are_rebuilt(tmp_path):
    cache, builder = EngineCache(tmp_path), Builder()
    cache.get_or_build(key(), builder, accept)
    engine, manifest = cache.paths(key())
    data = bytearray(engine.read_bytes())
    data[500] ^= 0xFF  # a flipped byte: the hash no longer matches
    engine.write_bytes(bytes(data))
    assert cache.entry(key()) is None
    cache.get_or_build(key(), builder, accept)
    assert builder.builds == 2
    manifest.write_text(manifest.read_text().replace("10.13.0", "10.12.0"))  # a manifest for another key
    cache.get_or_build(key(), builder, accept)
    assert builder.builds == 3
    refused = []
    cache.get_or_build(key(), builder, lambda data: refused.append(1) or (None if len(refused) == 1 else data))
    assert builder.builds == 4  # TensorRT refused the cached engine (new driver, say): rebuilt


def test_an_engine_tensorrt_cannot_load_is_an_error(tmp_path):
    with pytest.raises(Exception, match="TensorRT could not load the engine it just built"):
        EngineCache(tmp_path).get_or_build(key(), Builder(b"garbage"), accept)
    assert list(tmp_path.iterdir()) == [tmp_path / (key().file_stem() + ".engine.lock")]


def test_a_failed_build_leaves_nothing(tmp_path):
    def failing(target: Path) -> None:
        target.write_bytes(b"engine: half")
        raise RuntimeError("out of memory while building")

    with pytest.raises(RuntimeError):
        EngineCache(tmp_path).get_or_build(key(), failing, accept)
    assert [p.name for p in tmp_path.iterdir()] == [key().file_stem() + ".engine.lock"]


@pytest.mark.timing
def test_two_processes_build_one_engine(tmp_path, spawn):
    """Two vspipe processes starting at once: one builds, the other waits and loads it."""
    log = tmp_path / "builds.log"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from vs_sr.backends.tensorrt.engine_cache import EngineCache, EngineKey
        key = EngineKey.static("m", "ab" * 32, (1, 64, 64), precision="fp16", trt_version="10", gpu="g",
                               compute_capability="9.0")
        def build(target):
            with open({str(log)!r}, "a") as handle:
                handle.write("build\\n")
            time.sleep(2)
            target.write_bytes(b"engine:" + b"x" * 1000)
        engine = EngineCache(Path({str(tmp_path / "cache")!r})).get_or_build(key, build, lambda d: d)
        print(len(engine))
    """)
    processes = [spawn([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0].strip() for p in processes]
    assert all(p.returncode == 0 for p in processes)
    assert outputs == ["1007", "1007"]
    assert log.read_text().count("build") == 1


def test_engines_list_and_clean(tmp_path):
    cache = EngineCache(tmp_path)
    cache.get_or_build(key(), Builder(), accept)
    cache.get_or_build(key(trt_version="8.6.1"), Builder(), accept)
    (tmp_path / "orphan.engine").write_bytes(b"no manifest")
    env = {"VS_SR_ENGINE_DIR": str(tmp_path)}
    listing = vs_sr("engines", "list", env=env)
    assert listing.returncode == 0 and f"engines in {tmp_path}: 2" in listing.stdout
    assert "TensorRT 10.13.0" in listing.stdout and "TensorRT 8.6.1" in listing.stdout
    if installed_version() is not None and cuda_gpus():
        cleaned = vs_sr("engines", "clean", env=env)
        assert cleaned.returncode == 0 and "orphan.engine" in cleaned.stdout
        assert all(e.key.trt_version != "8.6.1" for e in cache.entries())
        return
    # every engine looks stale here: a machine that only shares the folder must not empty it
    if installed_version() is None:
        assert listing.stdout.count("[stale: TensorRT not installed]") == 2
    refused = vs_sr("engines", "clean", env=env)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith(f"vs-sr: error: cannot tell which engines in {tmp_path} are stale: ")
    assert "vs-sr engines clean --all" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert len(cache.entries()) == 2 and (tmp_path / "orphan.engine").exists()
    everything = vs_sr("engines", "clean", "--all", env=env)
    assert everything.returncode == 0 and "5 file(s) removed" in everything.stdout  # 2 engines, 2 manifests ...
    assert cache.entries() == [] and not list(tmp_path.glob("*.engine"))  # ... and the orphan
    nothing = vs_sr("engines", "clean", env=env)  # no engine left to judge: nothing to refuse either
    assert nothing.returncode == 0 and f"0 file(s) removed from {tmp_path}" in nothing.stdout


@pytest.mark.timing
def test_clean_spares_an_engine_being_built_and_two_cleans_at_once_both_finish(tmp_path, spawn):
    """An engine renamed into place waits for its manifest under its lock: clean took it for an
    orphan. And of two cleans at once, one failed on a file the other had removed."""
    from filelock import FileLock

    building = tmp_path / "building.engine"
    building.write_bytes(b"finished, its manifest not yet written")
    for n in range(3000):
        (tmp_path / f"orphan{n}.engine").write_bytes(b"no manifest")
    env = {"VS_SR_ENGINE_DIR": str(tmp_path)}
    with FileLock(str(building) + ".lock"):
        cleans = [spawn([VS_SR, "engines", "clean", "--all"], env={**os.environ, **env}, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True) for _ in range(2)]
        said = [clean.communicate(timeout=300) for clean in cleans]
    assert [clean.returncode for clean in cleans] == [0, 0], said
    assert [path.name for path in tmp_path.glob("*.engine")] == ["building.engine"]
    assert not list(tmp_path.glob("orphan*"))  # nor their lock files (a clean left one beside each)


def test_engine_build_refuses_a_precision_tensorrt_does_not_build(tmp_path):
    done = vs_sr("engines", "build", "--model", "realesr-animevideov3", "--precision", "int8",
                 env={"VS_SR_ENGINE_DIR": str(tmp_path)})
    assert done.returncode == 2 and "argument --precision: invalid choice: 'int8'" in done.stderr
    offered = done.stderr.split("choose from", 1)[1]  # (quoted or not: argparse's format changed in 3.12's patches)
    assert [name for name in ("fp32", "fp16", "bf16", "int8") if name in offered] == ["fp32", "fp16", "bf16"]
    assert not list(tmp_path.iterdir())


def test_engine_build_without_tensorrt_says_what_to_install(tmp_path):
    if installed_version() is not None:
        pytest.skip("TensorRT is installed here")
    from vs_sr.devices import cuda_device_count

    done = vs_sr("engines", "build", "--model", "realesr-animevideov3", env={"VS_SR_ENGINE_DIR": str(tmp_path)})
    # Without a GPU, installing TensorRT would not help: that comes first (it named --backend, which this lacks).
    reason = "no CUDA GPU (TensorRT needs an NVIDIA GPU and its driver); build them on the machine whose GPU will " \
        "run them." if cuda_device_count() == 0 else "TensorRT is not installed: pip install 'vs_sr[tensorrt]'"
    assert done.returncode == 1 and f"cannot build TensorRT engines here: {reason}" in done.stderr, done.stderr


@pytest.mark.parametrize("name", ["realesr-animevideov3", "realesrgan-x4plus-anime"])
def test_our_exports_use_only_what_tensorrt_parses(ncnn_models, name):
    assert tensorrt_problems(export_onnx(resolve(name, 4), 2, 64, 96)) == []
    assert tensorrt_problems(export_onnx(resolve(name, 4), 1, 64, 96, dynamic=True)) == []


def test_hat_export_parses_and_keeps_its_attention_in_fp32(hat_s_pth):
    network = resolve(hat_s_pth, 4)
    path = export_onnx(network, 1, 32, 48)
    assert tensorrt_problems(path) == []
    policy = network.traits.precision
    islands = fp32_island_nodes(path, policy.fp32_ops, policy.fp32_attention)
    kinds = collections.Counter(next(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node
                                     if n.name == name) for name in islands)
    # HAT-S: 6 groups x (6 window-attention blocks + 1 overlapping cross-attention block)
    assert kinds == {"LayerNormalization": 86, "MatMul": 2 * 42, "Softmax": 42}


def test_conv_nets_have_no_fp32_islands(ncnn_models):
    network = resolve("realesr-animevideov3", 4)
    policy = network.traits.precision
    assert fp32_island_nodes(export_onnx(network, 1, 32, 32), policy.fp32_ops, policy.fp32_attention) == []


def test_unsupported_operators_are_reported(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Col2Im", ["x", "s", "b"], ["y"]), helper.make_node("Foo", ["y"], ["z"], domain="my.ops")],
        "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [1, 3, 4, 4])])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    assert tensorrt_problems(path) == ["opset 21 (TensorRT parses 9-20)", "Col2Im (not supported by TensorRT's ONNX parser)",
                                       "my.ops::Foo (custom domain)"]


def test_profile_export_runs_at_several_sizes(ncnn_models):
    import onnxruntime

    path = export_onnx(resolve("realesr-animevideov3", 4), 1, 64, 64, dynamic=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((32, 48), (64, 64)):
        assert session.run(None, {"input": np.zeros((1, 3, h, w), np.float32)})[0].shape == (1, 3, 4 * h, 4 * w)


def test_hat_refuses_a_profile(hat_s_pth):
    with pytest.raises(Exception, match="HAT exports for one input size only"):
        export_onnx(resolve(hat_s_pth, 4), 1, 32, 32, dynamic=True)


def test_tensorrt_engine_matches_pytorch(ncnn_models):
    """Needs TensorRT and a CUDA GPU; skipped (never faked) where they are missing."""
    from vs_sr.backends import get_backend

    reason = get_backend("trt").unavailable()
    if reason:
        pytest.skip(reason)
    from conftest import bare_network, frame_planes, photo, rgb_clip

    import vs_sr as sr

    image = photo(48, 64)
    out = frame_planes(sr.Upscale(rgb_clip([image]), "realesr-animevideov3", 4, backend="trt",
                                  precision="fp32").get_frame(0))
    assert np.abs(out - bare_network("realesr-animevideov3", 4, image)).max() < 1e-3
