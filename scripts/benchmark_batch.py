#!/usr/bin/env python3
"""What chunking and assembly cost, and what a kill costs: ten short clips through `vs-sr batch
--jobs 1` and `--jobs 2` against ten sequential `vs-sr upscale` calls (same settings, rounds
interleaved, medians), then a longer clip killed mid-run and resumed against the same clip run
without interruption.

    .venv/bin/python scripts/benchmark_batch.py --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark import publish

from vs_sr.bench.machine import load_average, load_note, this_machine

VS_SR = str(Path(sys.executable).with_name("vs-sr"))


def make_clip(path: Path, seconds: float, size: str, seed: int) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={size}:rate=25:duration={seconds},hue=h={seed * 30}", "-f", "lavfi", "-i",
                    f"sine=frequency={300 + seed * 40}:duration={seconds}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(path)], check=True)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def sequential(clips: list[Path], out: Path, settings: list[str]) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    start = time.perf_counter()
    for clip in clips:
        subprocess.run([VS_SR, "upscale", str(clip), str(out / clip.name), *settings], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def batch(inputs: list[Path], out: Path, settings: list[str], *extra: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    return timed([VS_SR, "batch", *map(str, inputs), "--output-dir", str(out), *settings, *extra])


def killed_and_resumed(clip: Path, out: Path, settings: list[str], after: float) -> float:
    """Wall time of a batch SIGKILLed `after` seconds in, plus the run that finishes it."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    job = subprocess.Popen([VS_SR, "batch", str(clip), "--output-dir", str(out), *settings], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
    time.sleep(after)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    subprocess.run([VS_SR, "batch", str(clip), "--output-dir", str(out), *settings], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="176x144", help="clip size WxH")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each of the ten clips")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--markdown", help="append the tables to this file")
    args = parser.parse_args()
    settings = ["--codec", "x264", "--crf", "20", "--preset", "veryfast"]
    machine = this_machine()
    print(f"Machine: {machine.describe()}", flush=True)
    load_start = load_average()
    with tempfile.TemporaryDirectory(prefix="vs-sr-bench-batch-") as folder:
        root = Path(folder)
        clips = []
        for n in range(10):
            clips.append(root / f"clip{n}.mkv")
            make_clip(clips[-1], args.seconds, args.size, n)
        frames = round(10 * args.seconds * 25)
        runs: dict[str, list[float]] = {"sequential upscale": [], "batch --jobs 1": [], "batch --jobs 2": []}
        for _ in range(args.repeat):
            runs["sequential upscale"].append(sequential(clips, root / "seq", settings))
            runs["batch --jobs 1"].append(batch(clips, root / "b1", settings, "--jobs", "1"))
            runs["batch --jobs 2"].append(batch(clips, root / "b2", settings, "--jobs", "2"))
        base = statistics.median(runs["sequential upscale"])
        lines = [f"Machine: {machine.describe()}; ten {args.size} clips of {args.seconds:g} s "
                 f"({frames} frames in all), realesr-animevideov3 x4, x264 CRF 20 veryfast; median of {args.repeat} "
                 "interleaved rounds.", "", "| run | wall time (s) | frames/s | vs sequential |", "| --- | ---: | ---: | ---: |"]
        for name, values in runs.items():
            wall = statistics.median(values)
            lines.append(f"| {name} | {wall:.1f} | {frames / wall:.2f} | {100 * (wall / base - 1):+.1f}% |")

        long_clip = root / "long.mkv"
        make_clip(long_clip, args.seconds * 10, args.size, 11)
        chunked = [*settings, "--chunk-frames", str(round(args.seconds * 25 * 2))]
        whole = batch([long_clip], root / "whole", chunked)
        interrupted = killed_and_resumed(long_clip, root / "killed", chunked, whole / 2)
        chunk_seconds = whole / (frames // round(args.seconds * 25 * 2))
        lines += ["", f"Kill and resume: one {args.seconds * 10:g} s clip ({frames} frames) in chunks of "
                  f"{round(args.seconds * 25 * 2)} frames, SIGKILLed half-way and run again.", "",
                  "| run | wall time (s) |", "| --- | ---: |", f"| uninterrupted | {whole:.1f} |",
                  f"| killed at {whole / 2:.0f} s + resumed | {interrupted:.1f} |",
                  f"| lost to the kill | {interrupted - whole:.1f} (one chunk takes about {chunk_seconds:.1f}) |",
                  "", f"({load_note(load_start, load_average(), machine.cores)}.)"]
    publish("\n".join(lines) + "\n", args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
