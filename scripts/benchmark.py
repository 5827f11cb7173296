#!/usr/bin/env python3
"""Frames/s of vs_sr next to the bare runtime (its overhead) and vs-mlrt's plugins, in one run.

Each contender is a separate vspipe process on the same generated source and ONNX graph; rounds
are interleaved and repeated, and the median is reported.

    .venv/bin/python scripts/benchmark.py --model realesr-animevideov3 --size 176x144 \\
        --precision fp32 bf16 --streams 1 2 --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import platform
import sys

from vs_sr import bench
from vs_sr.devices import cpu_count


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def publish(text: str, markdown: str | None) -> None:
    """Print a report and append it to the markdown file, if one was named."""
    print(text)
    if markdown:
        with open(markdown, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["realesr-animevideov3"],
                        help="one or more registry names (each at --scale, or NAME:SCALE)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--noise", type=int, default=None, help="denoise level (default: each model's)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--precision", nargs="+", default=["fp32"])
    parser.add_argument("--size", default="176x144", help="input WxH")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--format", default="RGBS", help="source format, e.g. RGBS or YUV420P8 (conversions included)")
    parser.add_argument("--tile", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true", help="skip vs-mlrt's plugins")
    parser.add_argument("--markdown", help="append the table to this file")
    args = parser.parse_args()

    width, height = map(int, args.size.lower().split("x"))
    rows = []
    for model in args.model:
        name, _, scale = model.partition(":")
        for precision in args.precision:
            for streams in args.streams:
                case = bench.BenchCase(name, int(scale or args.scale), args.backend, precision, width, height, streams,
                                       args.frames, args.format, args.tile, args.noise)
                result = bench.run(case, args.repeat, not args.no_peers)
                rows.append((case, result))
                print(case.label(), {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()},
                      flush=True)
    text = f"Machine: {cpu_name()}, {cpu_count()} cores; median of {args.repeat} interleaved runs, {args.frames} frames each.\n\n"
    text += bench.table(rows) + "\n"
    publish(text, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
