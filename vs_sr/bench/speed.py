"""Throughput side by side: the filter and vs-mlrt's OpenVINO / ONNX Runtime plugins, each run
by vspipe on the same source and the same ONNX graph, and the bare runtime on the same tiles
(which makes the difference the filter's own overhead). Runs are interleaved and repeated; the
median counts. vs-mlrt has no int8 of its own: an int8 case runs its OpenVINO plugin at bf16
(its fastest setting on CPUs with native bf16) and at fp32, and also on vs_sr's own int8 graph,
which compares the two filters' per-frame work at int8 speeds."""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import vapoursynth as vs

from ..backends import Session, choose_backend
from ..backends.openvino import HINTS
from ..children import run_child
from ..media.script import vspipe_arguments, write_script
from ..media.tools import find_tool
from ..models import resolve
from ..models.int8 import quantized_model
from ..models.onnx_export import export_onnx
from ..models.resolve import portable_model

core = vs.core
OV_PEER = "vs-mlrt-ov"
"""vs-mlrt's OpenVINO plugin; a contender name "vs-mlrt-ov:bf16" runs it at that precision."""
SAME_GRAPH_PEER = "vs-mlrt-ov-on-our-int8"
"""vs-mlrt's OpenVINO plugin running vs_sr's quantized graph (kept apart from OV_PEER's built-in
precisions: it is not something vs-mlrt offers by itself)."""


@dataclass(frozen=True)
class BenchCase:
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
    noise: int | None = None

    @classmethod
    def from_text(cls, args: dict[str, str | None]) -> BenchCase:
        """A case from the text arguments of a vspipe script (see `media.script`)."""
        values: dict[str, object] = {}
        for field in fields(cls):
            text = args.get(field.name)
            values[field.name] = text if text is None or field.type in ("str",) else int(text)
        return cls(**values)  # type: ignore[arg-type]

    def label(self) -> str:
        level = "" if self.noise is None else f" noise {self.noise}"
        return (f"{self.model} x{self.scale}{level}, {self.width}x{self.height} {self.fmt}, {self.precision}, "
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


def contender_clip(args: dict[str, str | None]) -> vs.VideoNode:
    """The clip a vspipe benchmark run outputs (arguments arrive as text: see `media.script`)."""
    from ..filter import Upscale

    case = BenchCase.from_text(args)
    fmt_id = getattr(vs, case.fmt.upper())
    source = source_clip(case.width, case.height, case.frames, fmt_id)
    contender = str(args["contender"])
    if contender == "vs_sr":
        return Upscale(source, case.model, case.scale, backend=case.backend, precision=case.precision,  # type: ignore[arg-type]
                       tile=case.tile, num_streams=case.streams, noise=case.noise)
    network = resolve(case.model, case.scale, case.noise)
    # The conversions vs_sr makes (Spline36 both ways, error diffusion to integers): like for like.
    rgbs = source if fmt_id == vs.RGBS else source.resize.Spline36(format=vs.RGBS, matrix_in=vs.MATRIX_BT709)
    if contender.startswith(OV_PEER):
        if contender == SAME_GRAPH_PEER:  # the QDQ graph runs on int8 kernels under int8's (f32) hint
            onnx, hint = str(quantized_model(network)), HINTS["int8"]
        else:
            onnx, hint = str(export_onnx(network, 1, case.height, case.width)), HINTS[contender.partition(":")[2]]
        streams = case.streams
        out = core.ov.Model(rgbs, network_path=onnx, device="CPU", num_streams=streams,
                            config=lambda: {"INFERENCE_PRECISION_HINT": hint, "NUM_STREAMS": streams})
    else:
        onnx = str(export_onnx(network, 1, case.height, case.width))
        out = core.ort.Model(rgbs, network_path=onnx, provider="CPU", num_streams=case.streams)
    if fmt_id == vs.RGBS:
        return out
    return out.resize.Spline36(format=fmt_id, matrix=vs.MATRIX_BT709, dither_type="error_diffusion")


def vspipe_fps(case: BenchCase, contender: str) -> float:
    """Frames/s vspipe reports for one contender (a fresh process each time)."""
    with tempfile.TemporaryDirectory(prefix="vs-sr-bench-") as folder:
        script = write_script(Path(folder), "vs_sr.bench.speed", "contender_clip")
        arguments = vspipe_arguments({"contender": contender, **asdict(case), "model": portable_model(case.model)})
        done = run_child([find_tool("vspipe"), *arguments, str(script), "--"], capture_output=True, text=True,
                         timeout=3600)
    match = re.search(r"Output \d+ frames in [\d.]+ seconds \(([\d.]+) fps\)", done.stderr)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"{contender}: vspipe failed: {done.stderr[-1500:]}")
    return float(match.group(1))


def bare_fps(case: BenchCase) -> tuple[float, str]:
    """Frames/s of the runtime alone: `streams` threads running the filter's own tiles back to back."""
    from ..filter.arguments import normalise
    from ..filter.upscale_clip import deploy

    network = resolve(case.model, case.scale, case.noise)
    args = normalise(case.model, case.scale, case.backend, case.precision, case.tile, None, case.streams, 0, None, None,
                     None, case.noise)
    runtime = choose_backend(args.backend, network)
    deployment = deploy(runtime, network, case.width, case.height, args)
    plan, batch = deployment.tiles.current()
    sessions = deployment.pools[0].sessions
    # The filter's own input (runtimes can be content-dependent), cut into the same tiles.
    source = source_clip(case.width, case.height, 4, vs.RGBS)
    frames = [[np.asarray(source.get_frame(n)[p]) for p in range(3)] for n in range(4)]
    batches = [[plan.extract(planes, first, batch) for first in range(0, plan.count, batch)] for planes in frames]
    batches = [[b if len(b) == batch else np.resize(b, (batch, *b.shape[1:])) for b in frame] for frame in batches]
    remaining = [case.frames]
    lock = threading.Lock()

    def worker(session: Session) -> None:
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
    return case.frames / (time.perf_counter() - start), note


def available_contenders(case: BenchCase) -> list[str]:
    contenders = ["vs_sr"]
    if case.tile is None and hasattr(core, "ov"):
        peer_precisions = ["bf16", "fp32"] if case.precision == "int8" else [case.precision]
        contenders += [f"{OV_PEER}:{precision}" for precision in peer_precisions]
        if case.precision == "int8":
            contenders.append(SAME_GRAPH_PEER)
    if case.tile is None and hasattr(core, "ort") and case.precision == "fp32":
        contenders.append("vs-mlrt-ort")
    return contenders


def bare_fps_in_subprocess(case: BenchCase) -> tuple[float, str]:
    """`bare_fps` in a fresh process that, like vspipe, creates the VapourSynth core first, so
    the runtime libraries load in the same order as under vspipe."""
    code = (
        "import json, vapoursynth as vs; vs.core.std\n"
        "from vs_sr.bench.speed import BenchCase, bare_fps\n"
        f"print(json.dumps(bare_fps(BenchCase(**{asdict(case)!r}))))"
    )
    done = run_child([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"bare runtime: {done.stderr[-1500:]}")
    fps, note = json.loads(done.stdout.strip().splitlines()[-1])
    return fps, note


def run(case: BenchCase, repeat: int = 3, peers: bool = True) -> dict[str, float | str]:
    """Median frames/s of each contender over `repeat` interleaved rounds, and the bare runtime."""
    contenders = available_contenders(case) if peers else ["vs_sr"]
    samples: dict[str, list[float]] = {name: [] for name in [*contenders, "bare"]}
    note = ""
    for _ in range(repeat):
        for name in contenders:
            samples[name].append(vspipe_fps(case, name))
        fps, note = bare_fps_in_subprocess(case)
        samples["bare"].append(fps)
    result: dict[str, float | str] = {name: statistics.median(values) for name, values in samples.items()}
    result["note"] = note
    return result


def precision_table(rows: list[tuple[BenchCase, dict[str, float | str]]]) -> str:
    """vs_sr's frame rate at each precision measured for the same setup, and their ratios (the
    bare runtime's in brackets): how int8, bf16 and fp32 rank on this CPU. Empty when every setup
    ran at one precision."""
    groups: dict[BenchCase, dict[str, tuple[float, float]]] = {}
    for case, result in rows:
        groups.setdefault(replace(case, precision=""), {})[case.precision] = (float(result["vs_sr"]),
                                                                             float(result["bare"]))
    if all(len(found) < 2 for found in groups.values()):
        return ""
    pairs = [("bf16", "fp32"), ("int8", "bf16"), ("int8", "fp32")]
    lines = ["| setup | fp32 fps | bf16 fps | int8 fps | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " |",
             "| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in pairs) + " |"]
    for group, found in groups.items():
        cells = [f"{found[p][0]:.2f}" if p in found else "—" for p in ("fp32", "bf16", "int8")]
        for a, b in pairs:
            ok = a in found and b in found
            cells.append(f"{found[a][0] / found[b][0]:.2f}x ({found[a][1] / found[b][1]:.2f}x)" if ok else "—")
        lines.append(f"| {group.label().replace(', , ', ', ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def same_graph_table(rows: list[tuple[BenchCase, dict[str, float | str]]]) -> str:
    """vs_sr against vs-mlrt's plugin running vs_sr's own int8 graph, per int8 setup: the two
    filters' per-frame work compared at int8 speeds. Empty without such rows."""
    lines = ["| setup | vs_sr fps | vs-mlrt ov on vs_sr's int8 graph, fps | vs_sr / vs-mlrt |",
             "| --- | ---: | ---: | ---: |"]
    for case, result in rows:
        if SAME_GRAPH_PEER in result:
            ours, theirs = float(result["vs_sr"]), float(result[SAME_GRAPH_PEER])
            lines.append(f"| {case.label()} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f}x |")
    return "\n".join(lines) if len(lines) > 2 else ""


def table(rows: list[tuple[BenchCase, dict[str, float | str]]]) -> str:
    """One line per case; the vs-mlrt ov columns list every precision it ran at, and vs_sr's
    ratio is to the fastest of them."""
    lines = [
        "| setup | vs_sr fps | bare runtime fps | vs_sr overhead | vs-mlrt ov fps | vs_sr / fastest ov | vs-mlrt ort fps | vs_sr / ort | tiles, runtime |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for case, result in rows:
        ours, bare = float(result["vs_sr"]), float(result["bare"])
        ov = {name.partition(":")[2]: float(fps) for name, fps in result.items() if name.startswith(f"{OV_PEER}:")}
        if ov:
            shown = ", ".join(f"{fps:.2f} ({precision})" for precision, fps in ov.items())
            ov_cells = f"{shown} | {ours / max(ov.values()):.2f}x"
        else:
            ov_cells = "— | —"
        ort = result.get("vs-mlrt-ort")
        ort_cells = f"{float(ort):.2f} | {ours / float(ort):.2f}x" if ort else "— | —"
        lines.append(f"| {case.label()} | {ours:.2f} | {bare:.2f} | {100 * (1 - ours / bare):.1f}% | "
                     f"{ov_cells} | {ort_cells} | {result['note']} |")
    return "\n".join(lines)
