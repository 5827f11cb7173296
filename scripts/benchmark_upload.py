#!/usr/bin/env python3
"""The platform case end to end: a 25 fps 256x144 upload to 854x480 through `vs-sr upscale`
(x264), at several precisions and stream counts, as a real-time factor (video seconds per
wall-clock second, 1.0 = real time). Every setting runs once untimed first (int8 quantizes on
first use), then rounds are interleaved and the median counts.

    .venv/bin/python scripts/benchmark_upload.py --precision fp32 auto int8 --streams 2 \\
        --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark import cpu_name

from vs_sr.devices import cpu_count

ROOT = Path(__file__).resolve().parents[1]
VS_SR = str(Path(sys.executable).with_name("vs-sr"))


def make_upload(path: Path, seconds: int) -> None:
    """A phone-like upload: moving, detailed content at 256x144, 25 fps, with AAC audio."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=256x144:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-crf", "23",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)


def upscale_seconds(source: Path, output: Path, model: str, precision: str, streams: int) -> float:
    started = time.monotonic()
    done = subprocess.run([VS_SR, "upscale", str(source), str(output), "--model", model, "--height", "480",
                           "--precision", precision, "--num-streams", str(streams), "--codec", "x264", "-y", "-q"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"vs-sr upscale --precision {precision}: {done.stderr.strip()}")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="realesr-animevideov3")
    parser.add_argument("--precision", nargs="+", default=["fp32", "auto", "int8"])
    parser.add_argument("--streams", type=int, nargs="+", default=[2])
    parser.add_argument("--seconds", type=int, default=8, help="length of the upload")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", help="append the table to this file")
    args = parser.parse_args()

    settings = [(precision, streams) for precision in args.precision for streams in args.streams]
    times: dict[tuple[str, int], list[float]] = {setting: [] for setting in settings}
    with tempfile.TemporaryDirectory(prefix="vs-sr-upload-") as folder:
        source = Path(folder) / "upload.mp4"
        make_upload(source, args.seconds)
        for precision, streams in settings:  # warm-up: caches (exports, the int8 model) filled here
            upscale_seconds(source, Path(folder) / "out.mp4", args.model, precision, streams)
        for _ in range(args.repeat):
            for setting in settings:
                seconds = upscale_seconds(source, Path(folder) / "out.mp4", args.model, *setting)
                times[setting].append(seconds)
                print(f"{setting}: {seconds:.1f} s", flush=True)
    lines = [f"Machine: {cpu_name()}, {cpu_count()} cores; `vs-sr upscale` of a {args.seconds} s 25 fps 256x144 "
             f"upload to 854x480 (x264, CRF 18, {args.model}); median of {args.repeat} interleaved runs, whole "
             "command (probe, vspipe, x264, mux, output check).", "",
             "| precision | streams | seconds | real-time factor |", "| --- | ---: | ---: | ---: |"]
    for (precision, streams), values in times.items():
        median = statistics.median(values)
        lines.append(f"| {precision} | {streams} | {median:.1f} | {args.seconds / median:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
