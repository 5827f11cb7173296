"""Throughput side by side: the filter and vs-mlrt's OpenVINO / ONNX Runtime plugins, each run
by vspipe on the same source and the same ONNX graph, and the bare runtime on the same tiles
(which makes the difference the filter's own overhead). Runs are interleaved and repeated; the
median counts."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import vapoursynth as vs

from .backends import choose_backend
from .backends.openvino import HINTS
from .models import resolve
from .models.export import export_onnx
from .tools import find_tool

core = vs.core
RUNNERS = ("vs_sr", "vs-mlrt-ov", "vs-mlrt-ort")
SCRIPT = """\
from vs_sr import bench
from vs_sr.tools import script_args
bench.pipeline(**{k.removeprefix("bench_"): v for k, v in script_args(globals(), "bench_").items()}).set_output()
"""
ARGS = ("runner", "model", "scale", "backend", "precision", "width", "height", "streams", "frames", "fmt", "tile")


@dataclass(frozen=True)
class Setup:
    model: str
    scale: int
    backend: str
    precision: str
    width: int
    height: int
    streams: int
    frames: int
    fmt: str = "RGBS"
    tile: int | None = None

    def label(self) -> str:
        return (f"{self.model} x{self.scale}, {self.width}x{self.height} {self.fmt}, {self.precision}, "
                f"{self.streams} stream(s)" + (f", tile {self.tile}" if self.tile else ""))


def source_clip(width: int, height: int, frames: int, fmt: int) -> vs.VideoNode:
    """`frames` frames cycling through 4 distinct textured ones, generated once and cached."""
    blank = core.std.BlankClip(format=vs.RGBS, width=width, height=height, length=4, fpsnum=25, fpsden=1)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)

    def paint(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        rng = np.random.default_rng(n)  # per frame: the same pixels whatever order frames come in
        for p in range(3):
            wave = 0.5 + 0.25 * np.sin(x / (7 + p + n) + y / (5 + 2 * p)) + 0.1 * rng.random((height, width))
            np.copyto(np.asarray(out[p]), wave.astype(np.float32))
        return out

    clip = blank.std.ModifyFrame(blank, paint).std.Loop(times=-(-frames // 4))[:frames]
    return clip if fmt == vs.RGBS else clip.resize.Bicubic(format=fmt, matrix=vs.MATRIX_BT709)


def pipeline(runner: str, model: str, scale: str, backend: str, precision: str, width: str, height: str,
             streams: str, frames: str, fmt: str, tile: str) -> vs.VideoNode:
    """The clip a vspipe benchmark run outputs (arguments arrive as strings from `vspipe -a`)."""
    from .filter import Upscale

    fmt_id = getattr(vs, fmt.upper())
    source = source_clip(int(width), int(height), int(frames), fmt_id)
    n_streams, tile_size = int(streams), int(tile) if tile != "none" else None
    if runner == "vs_sr":
        return Upscale(source, model, int(scale), backend=backend, precision=precision, tile=tile_size,
                       num_streams=n_streams)
    network = resolve(model, int(scale))
    onnx = str(export_onnx(network, 1, int(height), int(width)))
    rgbs = source if fmt_id == vs.RGBS else source.resize.Bicubic(format=vs.RGBS, matrix_in=vs.MATRIX_BT709)
    if runner == "vs-mlrt-ov":
        hint = HINTS[precision]
        out = core.ov.Model(rgbs, network_path=onnx, device="CPU", num_streams=n_streams,
                            config=lambda: {"INFERENCE_PRECISION_HINT": hint, "NUM_STREAMS": n_streams})
    else:
        out = core.ort.Model(rgbs, network_path=onnx, provider="CPU", num_streams=n_streams)
    if fmt_id == vs.RGBS:
        return out
    return out.resize.Spline36(format=fmt_id, matrix=vs.MATRIX_BT709, dither_type="error_diffusion")


def vspipe_fps(setup: Setup, runner: str) -> float:
    """Frames/s vspipe reports for one runner (a fresh process each time)."""
    vspipe = find_tool("vspipe")
    with tempfile.NamedTemporaryFile("w", suffix=".vpy", delete=False) as script:
        script.write(SCRIPT)
    args = [vspipe, script.name, "--"]
    values = {"runner": runner, **{k: getattr(setup, k) for k in ARGS if k != "runner"}}
    for key, value in values.items():
        args[1:1] = ["-a", f"bench_{key}={'none' if value is None else value}"]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    finally:
        Path(script.name).unlink()
    match = re.search(r"Output \d+ frames in [\d.]+ seconds \(([\d.]+) fps\)", done.stderr)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"{runner}: vspipe failed: {done.stderr[-1500:]}")
    return float(match.group(1))


def bare_fps(setup: Setup) -> tuple[float, str]:
    """Frames/s of the runtime alone: `streams` threads running the filter's own tiles back to back."""
    from .filter import prepare

    network = resolve(setup.model, setup.scale)
    runtime = choose_backend(setup.backend, network)
    prepared = prepare(runtime, network, setup.width, setup.height, setup.precision, setup.tile, None,
                       setup.streams, [0])
    plan, batch, sessions = prepared.plan, prepared.batch, prepared.pools[0].sessions
    # The filter's own input (runtimes can be content-dependent), cut into the same tiles.
    source = source_clip(setup.width, setup.height, 4, vs.RGBS)
    frames = [[np.asarray(source.get_frame(n)[p]) for p in range(3)] for n in range(4)]
    batches = [[plan.extract(planes, first, batch) for first in range(0, plan.count, batch)] for planes in frames]
    batches = [[b if len(b) == batch else np.resize(b, (batch, *b.shape[1:])) for b in frame] for frame in batches]
    remaining = [setup.frames]
    lock = threading.Lock()

    def worker(session) -> None:
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
                n = remaining[0] % len(batches)
            for tiles in batches[n]:
                session.run(tiles)

    for session in sessions:
        session.run(batches[0][0])  # warm-up
    threads = [threading.Thread(target=worker, args=(s,)) for s in sessions]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    note = f"{plan.count} tile(s) of {plan.tile_shape[1]}x{plan.tile_shape[0]}, batch {batch}, {runtime.name}"
    return setup.frames / (time.perf_counter() - start), note


def available_runners(setup: Setup) -> list[str]:
    runners = ["vs_sr"]
    if setup.tile is None and hasattr(core, "ov"):
        runners.append("vs-mlrt-ov")
    if setup.tile is None and hasattr(core, "ort") and setup.precision == "fp32":
        runners.append("vs-mlrt-ort")
    return runners


def bare_fps_in_subprocess(setup: Setup) -> tuple[float, str]:
    """`bare_fps` in a fresh process that, like vspipe, creates the VapourSynth core first, so
    the runtime libraries load in the same order as under vspipe."""
    code = (
        "import json, vapoursynth as vs; vs.core.std\n"
        "from vs_sr import bench\n"
        f"print(json.dumps(bench.bare_fps(bench.Setup(**{setup.__dict__!r}))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"bare runtime: {done.stderr[-1500:]}")
    fps, note = json.loads(done.stdout.strip().splitlines()[-1])
    return fps, note


def run(setup: Setup, repeat: int = 3, peers: bool = True) -> dict[str, float | str]:
    """Median frames/s of each runner over `repeat` interleaved rounds, and the bare runtime."""
    runners = available_runners(setup) if peers else ["vs_sr"]
    samples: dict[str, list[float]] = {name: [] for name in [*runners, "bare"]}
    note = ""
    for _ in range(repeat):
        for name in runners:
            samples[name].append(vspipe_fps(setup, name))
        fps, note = bare_fps_in_subprocess(setup)
        samples["bare"].append(fps)
    result: dict[str, float | str] = {name: statistics.median(values) for name, values in samples.items()}
    result["note"] = note
    return result


def table(rows: list[tuple[Setup, dict[str, float | str]]]) -> str:
    lines = [
        "| setup | vs_sr fps | bare runtime fps | vs_sr overhead | vs-mlrt ov fps | vs_sr / ov | vs-mlrt ort fps | vs_sr / ort | tiles, runtime |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for setup, result in rows:
        ours, bare = float(result["vs_sr"]), float(result["bare"])
        peers = []
        for name in ("vs-mlrt-ov", "vs-mlrt-ort"):
            fps = result.get(name)
            peers.append(f"{fps:.2f} | {ours / float(fps):.2f}x" if fps else "— | —")
        lines.append(f"| {setup.label()} | {ours:.2f} | {bare:.2f} | {100 * (1 - ours / bare):.1f}% | "
                     f"{peers[0]} | {peers[1]} | {result['note']} |")
    return "\n".join(lines)
