"""`vs-sr triton export`: repositories whose config.pbtxt parses back through Triton's protobuf for
every platform, with the files each platform loads; and the python platform's model on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_triton

VS_SR = str(Path(sys.executable).with_name("vs-sr"))


def vs_sr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([VS_SR, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600,
                          env=os.environ)


def export(repo: Path, *args: str) -> dict:
    done = vs_sr("triton", "export", "realesr-animevideov3", "--repo", str(repo), "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(autouse=True)
def triton_installed() -> None:
    needs_triton()


def test_onnxruntime_config(ncnn_models, tmp_path):
    from tritonclient.grpc import model_config_pb2 as mc

    from vs_sr.serving import read_config

    result = export(tmp_path, "--platform", "onnxruntime", "--kind", "gpu", "--tensorrt-accelerator",
                    "--max-batch-size", "8", "--preferred-batch-size", "4", "8", "--max-queue-delay-us", "2000",
                    "--instances", "2")
    model = tmp_path / "realesr-animevideov3-x4"
    assert result["name"] == "realesr-animevideov3-x4" and Path(result["directory"]) == model
    config = read_config(model / "config.pbtxt")
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 8
    assert list(config.input[0].dims) == [3, -1, -1] and list(config.output[0].dims) == [3, -1, -1]
    assert config.input[0].data_type == mc.TYPE_FP32
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert config.instance_group[0].count == 2 and config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP32"
    assert accelerator.parameters["trt_profile_max_shapes"] == "input:8x3x1024x1024"
    # The graph has a dynamic batch: one tile and three tiles give the same result for that tile.
    import onnxruntime as ort

    session = ort.InferenceSession(str(model / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    tiles = np.random.default_rng(0).random((3, 3, 24, 32), dtype=np.float32)
    three = session.run(None, {"input": tiles})[0]
    assert three.shape == (3, 3, 96, 128)
    assert np.abs(three[1:2] - session.run(None, {"input": tiles[1:2]})[0]).max() < 1e-5


def test_openvino_config(ncnn_models, tmp_path):
    from vs_sr.serving import read_config

    result = export(tmp_path, "--platform", "openvino", "--threads", "2", "--tile", "64x48")
    model = tmp_path / "realesr-animevideov3-x4"
    assert sorted(p.name for p in (model / "1").iterdir()) == ["model.bin", "model.xml"]
    config = read_config(model / "config.pbtxt")
    assert config.backend == "openvino" and config.default_model_filename == "model.xml"
    assert list(config.input[0].dims) == [3, 48, 64] and list(config.output[0].dims) == [3, 192, 256]
    assert config.parameters["INFERENCE_NUM_THREADS"].string_value == "2"
    assert result["next_step"] is None


def test_tensorrt_config_and_the_plan_left_to_the_server(ncnn_models, tmp_path):
    from tritonclient.grpc import model_config_pb2 as mc

    from vs_sr.serving import read_config

    result = export(tmp_path, "--platform", "tensorrt", "--kind", "gpu", "--max-batch-size", "2")
    model = tmp_path / "realesr-animevideov3-x4"
    config = read_config(model / "config.pbtxt")
    assert config.platform == "tensorrt_plan" and config.default_model_filename == "model.plan"
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert not (model / "1" / "model.plan").exists() and (model / "1" / "model.onnx").is_file()
    script = (model / "build_plan.sh").read_text()
    assert "trtexec --onnx=1/model.onnx --saveEngine=1/model.plan --minShapes=input:1x3x16x16" in script
    assert "--maxShapes=input:2x3x1024x1024" in script
    assert "the TensorRT version and GPU model it was built with" in result["next_step"]


def test_export_errors_are_one_line(ncnn_models, tmp_path):
    for args, message in [
        (["--platform", "tensorrt"], "TensorRT plans run on GPUs only: use --kind gpu."),
        (["--preferred-batch-size", "8"], "preferred batch sizes must lie in 1..4 (the max batch size), not [8]."),
        (["--platform", "openvino", "--kind", "gpu"], "Triton's OpenVINO backend runs on the CPU only"),
        # each was left out of the config without a word
        (["--platform", "onnxruntime", "--runtime", "torch"], "--runtime chooses the vs_sr backend inside a --platform "
                                                              "python model; --platform onnxruntime runs its own"),
        (["--platform", "tensorrt", "--kind", "gpu", "--threads", "2"], "--threads sets CPU threads, and TensorRT"),
        (["--kind", "gpu", "--runtime", "openvino"], "vs_sr's OpenVINO backend runs on the CPU: use --kind cpu"),
    ]:
        done = vs_sr("triton", "export", "realesr-animevideov3", "--repo", str(tmp_path), *args)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"vs-sr: error: {message}")
    assert not list(tmp_path.iterdir())  # nothing half-written
    taken = tmp_path / "repo"
    taken.write_text("a file")  # (it said only "[Errno 17] File exists")
    done = vs_sr("triton", "export", "realesr-animevideov3", "--repo", str(taken))
    assert done.returncode == 1 and done.stderr == f"vs-sr: error: --repo {taken} is a file: give a folder (it is " \
                                                   "made if missing).\n", done.stderr


def test_a_file_whose_name_is_near_the_limit_is_exported_under_it(tmp_path):
    """A weight file named by 250 bytes (the most a .pth may have): its staging folder would pass the
    255-byte limit with the export's own affixes; the model gets the file's whole name."""
    from conftest import small_compact_weights

    path = tmp_path / ("w" * 246 + ".pth")
    path.write_bytes(small_compact_weights(tmp_path).read_bytes())
    done = vs_sr("triton", "export", str(path), "--repo", str(tmp_path / "repo"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == path.stem
    assert [p.name for p in (tmp_path / "repo").iterdir()] == [path.stem]


def test_python_model_batches_requests_by_shape(ncnn_models, triton_repo):
    """The python platform's model without a server: requests of one shape run as one batch, each
    gets its own tiles back (equal to running it alone), in the wire's dtype."""
    from vs_sr.serving.python_model import Runner

    runner = Runner(triton_repo / "realesr-animevideov3-x4" / "1" / "model.onnx", 4, runtime="openvino")
    rng = np.random.default_rng(1)
    small = [rng.random((1, 3, 16, 24), dtype=np.float32) for _ in range(3)]
    large = rng.random((2, 3, 20, 20), dtype=np.float32)
    outputs = runner.run_all([small[0], large, small[1], small[2]], np.dtype(np.float32))
    assert [o.shape for o in outputs] == [(1, 3, 64, 96), (2, 3, 80, 80), (1, 3, 64, 96), (1, 3, 64, 96)]
    assert sorted(runner._sessions) == [(2, 3, 20, 20), (3, 3, 16, 24)]
    # A tile's result does not depend on the batch it ran in: frames stay bit-exact under batching.
    assert np.array_equal(outputs[2], runner.run_all([small[1]], np.dtype(np.float32))[0])
    half = runner.run_all([small[1].astype(np.float16)], np.dtype(np.float16))[0]
    assert half.dtype == np.float16 and np.abs(half.astype(np.float32) - outputs[2]).max() < 2e-3


@pytest.mark.slow
def test_hat_exports_one_tile_size_one_tile_per_request(hat_s_pth, tmp_path):
    """HAT's attention fixes the size, and its traced graph mixes up the tiles of a batch other
    than the traced one: the export has static dims, no batching, and computes the network."""
    from conftest import bare_network, photo

    from vs_sr.serving import ExportOptions, export_model
    from vs_sr.serving.python_model import Runner

    exported = export_model(hat_s_pth, 4, tmp_path, ExportOptions(tile=(32, 32)))
    assert exported.name == hat_s_pth.stem
    config = exported.config
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [1, 3, 32, 32] and list(config.output[0].dims) == [1, 3, 128, 128]
    assert any("one tile per request" in note for note in exported.notes)
    image = photo(32, 32)
    runner = Runner(exported.directory / "1" / "model.onnx", 4, runtime="openvino")
    got = runner.run_all([image[None]], np.dtype(np.float32))[0][0].clip(0, 1)
    assert np.abs(got - bare_network(str(hat_s_pth), 4, image)).max() < 1e-4
