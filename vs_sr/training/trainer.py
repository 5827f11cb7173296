"""Fine-tuning: L1 loss, Adam with a multi-step schedule, EMA weights, periodic validation PSNR,
resumable checkpoints, and a `.pth` that `sr.Upscale(model=path)` loads directly.

Defaults follow the hackathon recipe that reached 33.6 dB: Adam 2e-5, 10k iterations, EMA,
batch 16, 256-pixel high-res crops, every 250th frame.
"""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

import numpy as np

from ..atomic import atomic_output
from ..errors import SRError
from ..media.tools import check_input
from ..paths import make_folder
from ..progress import Progress
from ..quality import metrics
from .data import FramePairs, PatchSampler, paired, synthesized
from .degrade import Degradation

if TYPE_CHECKING:
    import torch


@dataclass
class TrainConfig:
    model: str
    """Starting weights: a registry name or a .pth/.safetensors file (any architecture spandrel loads)."""
    output: Path
    hr: list[Path]
    lr: list[Path] = field(default_factory=list)
    """Low-res videos paired with `hr` (same order); empty: degrade `hr` synthetically."""
    val_hr: list[Path] = field(default_factory=list)
    val_lr: list[Path] = field(default_factory=list)
    """Held-out videos for validation; without them every 10th sampled frame is held out."""
    scale: int = 4
    every: int = 250
    iterations: int = 10_000
    batch: int = 16
    patch: int = 256
    learning_rate: float = 2e-5
    milestones: tuple[int, ...] = (5_000, 7_500)
    gamma: float = 0.5
    ema: float = 0.999
    val_every: int = 500
    checkpoint_every: int = 500
    degradation: Degradation = field(default_factory=Degradation)
    seed: int = 0
    device: str = "auto"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return cast(dict[str, Any], json.loads(json.dumps(data, default=str)))


class HistoryRow(TypedDict):
    """One line of history.csv: the validation PSNR at an iteration, and the mean loss since the last."""

    iteration: int
    loss: float | None  # None before training
    val_psnr: float


@dataclass
class Outcome:
    weights: Path
    start_psnr: float
    best_psnr: float
    final_psnr: float
    iterations: int


def _pairs(config: TrainConfig, hr: list[Path], lr: list[Path], seed: int) -> list[FramePairs]:
    if lr and len(lr) != len(hr):
        raise SRError(f"{len(lr)} low-res videos for {len(hr)} high-res ones: give one --lr per --hr, in order.")
    if lr:
        return [paired(low, high, config.every, config.scale) for low, high in zip(lr, hr, strict=True)]
    return [synthesized(high, config.every, config.scale, config.degradation, seed + i) for i, high in enumerate(hr)]


def datasets(config: TrainConfig) -> tuple[list[FramePairs], list[FramePairs]]:
    """(training pairs, validation pairs)."""
    if not config.hr:
        raise SRError("give at least one high-res video (--hr).")
    train = _pairs(config, config.hr, config.lr, config.seed)
    if config.val_hr:
        return train, _pairs(config, config.val_hr, config.val_lr, config.seed + 1000)
    held_out = [(np.arange(len(p.frames)) % 10) == 9 for p in train]
    if not any(mask.any() for mask in held_out):
        raise SRError("too few frames to hold some out for validation: lower --every or pass --val-hr.")
    return [p.take(~m) for p, m in zip(train, held_out, strict=True)], [p.take(m) for p, m in zip(train, held_out, strict=True)]


def validation_psnr(module: torch.nn.Module, pairs: list[FramePairs], scale: int, device: torch.device) -> float:
    """Mean Y PSNR (crop = scale) of the network on whole held-out frames."""
    import torch

    values = []
    module.eval()
    with torch.inference_mode():
        for pair in pairs:
            for low, high in zip(pair.lr, pair.hr, strict=True):
                x = torch.from_numpy(low).permute(2, 0, 1)[None].float().div(255).to(device)
                y = module(x).clamp(0, 1)[0].float().cpu().numpy()
                reference = high.transpose(2, 0, 1).astype(np.float32) / 255
                values.append(metrics.psnr(metrics.prepare(y, "y", scale), metrics.prepare(reference, "y", scale)))
    return float(np.mean(values))


# What may change when a run is resumed: how long it goes on, how often it reports, where it runs.
RESUMABLE_CHANGES = {"iterations", "val_every", "checkpoint_every", "device", "output"}


def check_same_run(stored: dict[str, Any], config: TrainConfig, output: Path) -> None:
    """Refuse to resume a run with options that would make it another run (its weights were
    trained from another model, at another scale, on other data or with another recipe)."""
    stored, current = _as_options(stored), _as_options(config.as_dict())
    changes = [f"--{key.replace('_', '-')} {_shown(stored[key])} -> {_shown(current[key])}"
               for key in current if key not in RESUMABLE_CHANGES and key in stored and stored[key] != current[key]]
    if changes:
        raise SRError(f"{output} holds a run made with other options ({'; '.join(changes)}): resume it with its "
                      "own (only --iterations, --val-every, --checkpoint-every and --device may change), or start a "
                      "new one in another --output.")


# The degradation's fields by the names of the options that set them.
DEGRADATION_OPTIONS = {"blur": "blur", "noise": "noise_sigma", "crf": "crf", "kernels": "kernels"}


def _as_options(config: dict[str, Any]) -> dict[str, Any]:
    """A run's stored settings keyed by option (the degradation's fields are options of their own)."""
    degradation = config.get("degradation")
    if not isinstance(degradation, dict):
        return config
    flat = {key: value for key, value in config.items() if key != "degradation"}
    return flat | {DEGRADATION_OPTIONS.get(str(key), str(key)): value for key, value in degradation.items()}


def check_options(config: TrainConfig) -> None:
    """Options that would do nothing: validation videos without their pairs, and degradations where
    no low-res frame is synthesized (every --hr and --val-hr has its low-res video)."""
    if config.val_lr and not config.val_hr:
        raise SRError("--val-lr needs --val-hr: the held-out high-res videos they pair with, one per --val-lr.")
    synthesizes = not config.lr or bool(config.val_hr and not config.val_lr)
    default = Degradation()
    given = [option for option, value, usual in (("--blur", config.degradation.blur, default.blur),
                                                 ("--noise-sigma", config.degradation.noise, default.noise),
                                                 ("--crf", config.degradation.crf, default.crf)) if value != usual]
    if given and not synthesizes:
        raise SRError(f"{', '.join(given)}: they shape the low-res frames made from a high-res video alone, and "
                      "every --hr and --val-hr here has its low-res video (--lr, --val-lr); drop them.")


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def _open_run(config: TrainConfig, resume: bool) -> dict[str, Any] | None:
    """The checkpoint a run resumes from (None: a new run), once what needs no training is checked:
    a run in --output without --resume, a resume with other options, missing videos."""
    import torch

    checkpoint_path = config.output / "checkpoint.pt"
    if checkpoint_path.exists() and not resume:
        raise SRError(f"{config.output} already holds a run; pass --resume to continue it, or choose another --output.")
    if resume and not checkpoint_path.exists():  # (a mistyped --output would start the whole run again)
        raise SRError(f"{config.output} holds no checkpoint to continue (--resume); check --output, or drop --resume "
                      "to start a new run there.")
    check_options(config)
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=False) if resume else None
    if state is not None:
        check_same_run(state.get("config", {}), config, config.output)
    _check_inputs(config)
    make_folder(config.output, "--output")
    remove_killed_saves(config.output)
    return cast(dict[str, Any] | None, state)


def _check_inputs(config: TrainConfig) -> None:
    for path in [*config.hr, *config.lr, *config.val_hr, *config.val_lr]:
        check_input(Path(path), "training video")


def remove_killed_saves(output: Path) -> None:
    """The temporary files of checkpoint saves that a kill cut short (each up to a checkpoint's size)."""
    for leftover in output.glob(".*.part.pt"):
        leftover.unlink(missing_ok=True)


def _device(name: str) -> torch.device:
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SRError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N.") from None
    if device.type not in ("cpu", "cuda"):
        raise SRError(f"vs-sr train runs on cpu or cuda, not '{name}'; use auto, cpu, cuda or cuda:N.")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise SRError(f"no CUDA device {name} here ({count} GPU(s) usable by PyTorch); use --device cpu.")
    return device


def _update_ema(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    import torch

    with torch.no_grad():
        for e, p in zip(ema.state_dict().values(), net.state_dict().values(), strict=True):
            if e.dtype.is_floating_point:
                e.mul_(decay).add_(p, alpha=1 - decay)
            else:
                e.copy_(p)


def _save(obj: object, target: Path) -> None:
    import torch

    with atomic_output(target) as temp:
        torch.save(obj, temp)


def train(config: TrainConfig, resume: bool = False, log: Callable[[str], None] = print) -> Outcome:
    from .. import extras

    extras.require("torch", "training")
    import torch

    from ..models import resolve, torch_module

    network = resolve(config.model, config.scale)
    if not network.has_torch_network:
        raise SRError(f"training needs a network PyTorch can build (.pth/.safetensors, HAT, Real-ESRGAN), not "
                      f"{network.label}, which runs as an ONNX graph only.")
    output = config.output
    checkpoint_path, weights_path = output / "checkpoint.pt", output / "model.pth"
    device = _device(config.device)
    state = _open_run(config, resume)

    torch.manual_seed(config.seed)
    net = copy.deepcopy(torch_module(network)).to(device).train()
    ema = copy.deepcopy(net).eval()
    for parameter in ema.parameters():
        parameter.requires_grad_(False)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate, betas=(0.9, 0.99))
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.milestones), config.gamma)
    train_pairs, val_pairs = datasets(config)
    sampler = PatchSampler(train_pairs, config.patch, config.scale, config.batch, config.seed)
    log(f"training {network.label} on {sum(len(p.frames) for p in train_pairs)} frames "
        f"({sum(len(p.frames) for p in val_pairs)} held out) on {device}")

    start = 0
    history: list[HistoryRow] = []
    recent: list[float] = []  # the losses since the last history row: checkpointed, so a resumed row is whole
    if state is not None:
        net.load_state_dict(state["net"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sampler.restore(state["sampler"])
        torch.set_rng_state(state["torch_rng"].cpu())  # map_location moved it to the training device
        start, history = state["iteration"], state["history"]
        recent = list(state.get("recent_losses", []))
        log(f"resumed at iteration {start}")
    else:
        history = [{"iteration": 0, "loss": None, "val_psnr": validation_psnr(ema, val_pairs, config.scale, device)}]
        log(f"validation PSNR before training: {history[0]['val_psnr']:.3f} dB")

    progress = Progress(config.iterations, label="vs-sr train", unit="it")
    progress.update(start)
    loss_fn = torch.nn.L1Loss()
    for iteration in range(start + 1, config.iterations + 1):
        net.train()
        low, high = sampler.next()
        loss = loss_fn(net(low.to(device)), high.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        _update_ema(ema, net, config.ema)
        recent.append(loss.item())
        progress.update(iteration, f"L1 {np.mean(recent[-50:]):.5f}")
        if iteration % config.val_every == 0 or iteration == config.iterations:
            value = validation_psnr(ema, val_pairs, config.scale, device)
            history.append({"iteration": iteration, "loss": float(np.mean(recent)), "val_psnr": value})
            recent = []
        if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
            _save({"iteration": iteration, "net": net.state_dict(), "ema": ema.state_dict(),
                   "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                   "sampler": sampler.state(), "torch_rng": torch.get_rng_state(), "history": history,
                   "recent_losses": recent, "config": config.as_dict()}, checkpoint_path)
    progress.finish()

    _save({"params_ema": ema.state_dict(), "params": net.state_dict()}, weights_path)
    _write_history(output / "history.csv", history)
    psnrs = [h["val_psnr"] for h in history]
    outcome = Outcome(weights_path, psnrs[0], max(psnrs), psnrs[-1], config.iterations)
    log(f"validation PSNR {outcome.start_psnr:.3f} -> {outcome.final_psnr:.3f} dB (best {outcome.best_psnr:.3f}); "
        f"weights: {weights_path}")
    return outcome


def _write_history(path: Path, history: list[HistoryRow]) -> None:
    with atomic_output(path) as temp, open(temp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["iteration", "loss", "val_psnr"])
        writer.writeheader()
        writer.writerows(history)
