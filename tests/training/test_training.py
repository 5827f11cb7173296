"""vs-sr train: a small network trained on generated data lowers its loss and raises validation
PSNR, resumes exactly from its checkpoint, and its .pth runs through sr.Upscale."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import frame_planes, photo, rgb_clip, small_compact_weights

import vs_sr as sr
from vs_sr.errors import SRError
from vs_sr.quality.samples import make_pair
from vs_sr.training.data import paired, synthesized
from vs_sr.training.degrade import Degradation, degrade
from vs_sr.training.trainer import TrainConfig, train


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("train")
    train_hr, _ = make_pair(folder, "retina", (256, 192), (64, 48), frames=12)
    val_hr, val_lr = make_pair(folder, "hubble_deep_field", (256, 192), (64, 48), frames=6)
    return {"train_hr": train_hr, "val_hr": val_hr, "val_lr": val_lr}


@pytest.fixture(scope="module")
def small_compact(tmp_path_factory) -> Path:
    return small_compact_weights(tmp_path_factory.mktemp("start"))


def config(start: Path, clips: dict[str, Path], output: Path, **overrides) -> TrainConfig:
    settings = dict(model=str(start), output=output, hr=[clips["train_hr"]], val_hr=[clips["val_hr"]],
                    val_lr=[clips["val_lr"]], every=1, iterations=40, batch=4, patch=64, learning_rate=2e-3,
                    milestones=(30,), ema=0.9, val_every=20, checkpoint_every=20,
                    degradation=Degradation(blur=(0.0, 1.0), noise=2.0, crf=30))
    settings.update(overrides)
    return TrainConfig(**settings)


def test_training_lowers_loss_and_raises_validation_psnr(small_compact, clips, tmp_path):
    outcome = train(config(small_compact, clips, tmp_path / "run"), log=lambda line: None)
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    losses = [float(line.split(",")[1]) for line in history[2:]]
    assert losses[-1] < losses[0]  # mean L1 over the last 20 iterations below the first 20
    assert outcome.final_psnr > outcome.start_psnr + 1.0
    # The saved weights are an ordinary .pth: Upscale detects the architecture and runs it.
    image = photo(32, 48)
    out = frame_planes(sr.Upscale(rgb_clip([image]), outcome.weights, 4, backend="ort").get_frame(0))
    ema = torch.load(outcome.weights, weights_only=True)["params_ema"]
    from spandrel import ModelLoader

    module = ModelLoader().load_from_state_dict(ema).model.eval()
    with torch.inference_mode():
        expected = module(torch.from_numpy(image)[None]).clamp(0, 1)[0].numpy()
    assert np.abs(out - expected).max() < 1e-4


def test_checkpoint_resumes_exactly(small_compact, clips, tmp_path):
    straight = train(config(small_compact, clips, tmp_path / "straight"), log=lambda line: None)
    train(config(small_compact, clips, tmp_path / "stopped", iterations=20), log=lambda line: None)
    with pytest.raises(Exception, match="pass --resume"):
        train(config(small_compact, clips, tmp_path / "stopped"), log=lambda line: None)
    resumed = train(config(small_compact, clips, tmp_path / "stopped"), resume=True, log=lambda line: None)
    a = torch.load(straight.weights, weights_only=True)
    b = torch.load(resumed.weights, weights_only=True)
    for key in ("params", "params_ema"):
        for name, value in a[key].items():
            assert torch.allclose(value, b[key][name], atol=1e-6), (key, name)
    assert abs(straight.final_psnr - resumed.final_psnr) < 1e-4


def test_a_resume_with_other_options_is_refused_and_a_killed_save_is_cleared(small_compact, clips, tmp_path):
    output = tmp_path / "run"
    train(config(small_compact, clips, output, iterations=20), log=lambda line: None)
    killed = output / ".checkpoint.x1y2z3.part.pt"  # what a save cut short by SIGKILL leaves
    killed.write_bytes(b"half a checkpoint")
    for change, said in [({"batch": 2}, "--batch 4 -> 2"), ({"learning_rate": 1e-3}, "--learning-rate 0.002 -> 0.001"),
                         ({"model": "faithful"}, f"--model {small_compact} -> faithful")]:
        with pytest.raises(SRError, match=f"holds a run made with other options \\({re.escape(said)}\\): resume it"):
            train(config(small_compact, clips, output, **change), resume=True, log=lambda line: None)
    # (it named "--degradation" and showed a Python dict)
    with pytest.raises(SRError, match=re.escape("other options (--noise-sigma 2.0 -> 5.0): resume it")):
        changed = Degradation(blur=(0.0, 1.0), noise=5.0, crf=30)
        train(config(small_compact, clips, output, degradation=changed), resume=True, log=lambda line: None)
    with pytest.raises(SRError, match="vs-sr train runs on cpu or cuda, not 'meta'"):
        train(config(small_compact, clips, output, device="meta"), resume=True, log=lambda line: None)
    outcome = train(config(small_compact, clips, output, iterations=30, val_every=10), resume=True,
                    log=lambda line: None)  # going on longer, reporting more often: the same run
    assert outcome.iterations == 30 and not killed.exists()


def test_options_that_would_do_nothing_are_refused_before_any_work(small_compact, clips, tmp_path):
    """Each was taken without a word: a --resume that found no run started a new one, --val-lr
    without --val-hr validated on training frames, and degradations with paired videos shaped nothing."""
    output = tmp_path / "typo"
    with pytest.raises(SRError, match="typo holds no checkpoint to continue \\(--resume\\); check --output, or drop"):
        train(config(small_compact, clips, output), resume=True, log=lambda line: None)
    with pytest.raises(SRError, match="--val-lr needs --val-hr"):
        train(config(small_compact, clips, output, val_hr=[]), log=lambda line: None)
    paired = dict(lr=[clips["val_lr"]], hr=[clips["val_hr"]])
    with pytest.raises(SRError, match="--blur, --noise-sigma, --crf: they shape the low-res frames made from a "):
        train(config(small_compact, clips, output, **paired), log=lambda line: None)
    assert not output.exists()
    output.write_text("a file")  # (it said only "[Errno 17] File exists")
    with pytest.raises(SRError, match="--output .*typo is a file: give a folder"):
        train(config(small_compact, clips, output), log=lambda line: None)


def test_a_pair_that_is_not_the_same_frames_scale_times_apart_is_refused(tmp_path):
    high, low = make_pair(tmp_path, "retina", (128, 96), (64, 48), frames=3)  # a x2 pair
    with pytest.raises(SRError, match=r"retina_96p\.mkv \(128x96\) is 2 times .* \(64x48\), far from --scale 4: its frames "
                                      r"would be resized 2x to make the targets\. Pass --scale 2, or check that --hr "
                                      r"and --lr are not swapped\."):
        paired(low, high, every=1, scale=4)
    with pytest.raises(SRError, match="far from --scale 2"):
        paired(high, low, every=1, scale=2)  # swapped
    shorter = tmp_path / "shorter.mkv"
    import subprocess

    subprocess.run(["ffmpeg", "-v", "error", "-i", str(low), "-frames:v", "2", "-c:v", "ffv1", str(shorter)], check=True)
    with pytest.raises(SRError, match="shorter.mkv has 2 frames and .* 3; paired videos must be frame-aligned"):
        paired(shorter, high, every=5, scale=2)  # (every 5th frame of either is frame 0 alone)


@pytest.mark.parametrize("fixture", ["hat_s_pth", "rrdb_pth"])
def test_hat_and_rrdbnet_train_too(request, fixture, clips, tmp_path):
    start = request.getfixturevalue(fixture)
    outcome = train(config(start, clips, tmp_path / "run", iterations=2, batch=1, patch=64, val_every=2, every=3),
                    log=lambda line: None)  # (every 3rd frame: whole-frame validation is most of the time)
    assert outcome.weights.is_file() and outcome.iterations == 2


def test_degradations_are_reproducible_and_include_x264(clips):
    from vs_sr.training.data import read_frames

    hr, _ = read_frames(clips["train_hr"], every=4)
    first = degrade(hr, 4, Degradation(crf=30), seed=3)
    assert first.shape == (3, 48, 64, 3)
    assert np.array_equal(first, degrade(hr, 4, Degradation(crf=30), seed=3))
    uncompressed = degrade(hr, 4, Degradation(crf=None), seed=3)
    assert not np.array_equal(first, uncompressed)  # the x264 round trip really happened
    assert np.abs(first.astype(int) - uncompressed.astype(int)).mean() < 10
    pairs = synthesized(clips["train_hr"], 4, 4, Degradation(crf=30), seed=3)
    assert np.array_equal(pairs.lr, first) and pairs.hr.shape == (3, 192, 256, 3)


def test_paired_non_integer_ratio_resizes_the_reference_to_the_scale(tmp_path):
    high, low = make_pair(tmp_path, "retina", (856, 480), (214, 144), frames=2)
    pairs = paired(low, high, every=1, scale=4)
    assert pairs.lr.shape == (2, 144, 214, 3) and pairs.hr.shape == (2, 576, 856, 3)


def training_started(spawn, small_compact: Path, clips: dict[str, Path], output: Path, checkpoint_every: int):
    """`vs-sr train` in a child process, once it has measured the validation PSNR (training runs)."""
    import subprocess

    from conftest import VS_SR

    job = spawn([VS_SR, "train", "--model", str(small_compact), "--hr", str(clips["train_hr"]), "--output",
                 str(output), "--every", "1", "--iterations", "100000", "--batch", "2", "--patch", "64",
                 "--checkpoint-every", str(checkpoint_every), "--val-every", "100000"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert job.stdout is not None
    for line in job.stdout:
        if "validation PSNR before training" in line:
            break
    return job


def test_a_run_killed_between_checkpoints_resumes_to_the_same_history(small_compact, clips, tmp_path, spawn):
    """The loss of a history row is the mean since the row before; a run killed after a checkpoint
    inside that interval, and resumed, writes the same rows as a straight run (it lost the losses
    before the checkpoint and averaged only those after)."""
    import csv
    import signal

    from conftest import VS_SR, vs_sr, wait_until

    def command(output: Path) -> list[str]:
        return ["train", "--model", str(small_compact), "--hr", str(clips["train_hr"]), "--output", str(output),
                "--every", "1", "--iterations", "120", "--batch", "2", "--patch", "64", "--checkpoint-every", "10",
                "--val-every", "60"]

    def history(output: Path) -> list[dict[str, str]]:
        return list(csv.DictReader((output / "history.csv").open()))

    straight = vs_sr(*command(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr
    killed = tmp_path / "killed"
    job = spawn([VS_SR, *command(killed)])
    wait_until(lambda: (killed / "checkpoint.pt").exists() or job.poll() is not None, 600, "the first checkpoint")
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=60)
    assert not (killed / "history.csv").exists()  # killed before the end (else the test proves nothing)
    resumed = vs_sr(*command(killed), "--resume")
    assert resumed.returncode == 0 and "resumed at iteration" in resumed.stdout, resumed.stderr
    rows, expected = history(killed), history(tmp_path / "straight")
    assert [r["iteration"] for r in rows] == [r["iteration"] for r in expected] == ["0", "60", "120"]
    for row, straight_row in zip(rows[1:], expected[1:], strict=True):
        assert float(row["loss"]) == pytest.approx(float(straight_row["loss"]), rel=1e-5)


def test_ctrl_c_in_training_points_at_the_checkpoint(small_compact, clips, tmp_path, spawn):
    import signal

    from conftest import wait_until

    output = tmp_path / "run"
    job = training_started(spawn, small_compact, clips, output, checkpoint_every=5)
    wait_until(lambda: (output / "checkpoint.pt").exists() or job.poll() is not None, 600, "the first checkpoint")
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 130
    assert "the last checkpoint in --output continues with --resume" in err and "nothing was written" not in err
    assert (output / "checkpoint.pt").is_file()


def test_ctrl_c_before_the_first_checkpoint_says_there_is_nothing_to_resume(small_compact, clips, tmp_path, spawn):
    import signal

    output = tmp_path / "run"
    job = training_started(spawn, small_compact, clips, output, checkpoint_every=100000)
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 130 and not (output / "checkpoint.pt").exists()
    assert err.rstrip().endswith("vs-sr: interrupted before the first checkpoint; nothing to resume: run the same "
                                 "command again (without --resume)"), err
