#!/usr/bin/env python3
"""The platform case end to end: a 25 fps 256x144 upload to 854x480 through `vs-sr upscale`
(x264), at several precisions, stream counts and x264 presets, as a real-time factor (video
seconds per wall-clock second of the whole command, 1.0 = real time) and as the frame rate while
encoding (`vs-sr upscale`'s own figure, without start-up and the final checks). Every setting
runs once untimed first (int8 quantizes on first use), then rounds are interleaved and the median
counts.

    .venv/bin/python scripts/benchmark_upload.py --precision fp32 auto int8 --streams 2 \\
        --preset medium veryfast --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark import cpu_name, publish

from vs_sr.devices import cpu_count

ROOT = Path(__file__).resolve().parents[1]
VS_SR = str(Path(sys.executable).with_name("vs-sr"))


def make_upload(path: Path, seconds: int) -> None:
    """A phone-like upload: moving, detailed content at 256x144, 25 fps, with AAC audio."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=256x144:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-crf", "23",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)


def upscale(source: Path, output: Path, model: str, precision: str, streams: int, preset: str) -> tuple[float, float]:
    """(wall seconds of the whole command, frames/s while encoding)."""
    started = time.monotonic()
    done = subprocess.run([VS_SR, "upscale", str(source), str(output), "--model", model, "--height", "480",
                           "--precision", precision, "--num-streams", str(streams), "--codec", "x264",
                           "--preset", preset, "-y"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"vs-sr upscale --precision {precision}: {done.stderr.strip()}")
    seconds = time.monotonic() - started
    rate = re.search(r"; ([0-9.]+) fps$", done.stdout.strip())
    return seconds, float(rate.group(1)) if rate else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="realesr-animevideov3")
    parser.add_argument("--precision", nargs="+", default=["fp32", "auto", "int8"])
    parser.add_argument("--streams", type=int, nargs="+", default=[2])
    parser.add_argument("--preset", nargs="+", default=["medium"], help="x264 presets (medium: x264's default)")
    parser.add_argument("--seconds", type=int, default=40, help="length of the upload")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", help="append the table to this file")
    args = parser.parse_args()

    settings = [(precision, streams, preset) for precision in args.precision for streams in args.streams
                for preset in args.preset]
    times: dict[tuple[str, int, str], list[tuple[float, float]]] = {setting: [] for setting in settings}
    with tempfile.TemporaryDirectory(prefix="vs-sr-upload-") as folder:
        source = Path(folder) / "upload.mp4"
        make_upload(source, args.seconds)
        for setting in settings:  # warm-up: caches (exports, the int8 model) filled here
            upscale(source, Path(folder) / "out.mp4", args.model, *setting)
        for _ in range(args.repeat):
            for setting in settings:
                seconds, rate = upscale(source, Path(folder) / "out.mp4", args.model, *setting)
                times[setting].append((seconds, rate))
                print(f"{setting}: {seconds:.1f} s, {rate:.2f} fps", flush=True)
    lines = [f"Machine: {cpu_name()}, {cpu_count()} cores; `vs-sr upscale` of a {args.seconds} s 25 fps 256x144 "
             f"upload to 854x480 (x264 CRF 18, {args.model}); median of {args.repeat} interleaved runs. Seconds and "
             "real-time factor: the whole command (probe, vspipe, x264, mux, output check); fps: while encoding.", "",
             "| precision | streams | x264 preset | seconds | real-time factor | fps while encoding |",
             "| --- | ---: | --- | ---: | ---: | ---: |"]
    for (precision, streams, preset), values in times.items():
        seconds = statistics.median(value[0] for value in values)
        rate = statistics.median(value[1] for value in values)
        lines.append(f"| {precision} | {streams} | {preset} | {seconds:.1f} | {args.seconds / seconds:.2f}x | {rate:.2f} |")
    publish("\n".join(lines) + "\n", args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
