#!/usr/bin/env python3
"""Frames/s of vs_sr next to the bare runtime (its overhead) and vs-mlrt's plugins, in one run.

Each contender is a separate vspipe process on the same generated source and ONNX graph; rounds
are interleaved and repeated, and the median is reported. The report starts with the machine (CPU,
the ISA features that rank the precisions: AMX, VNNI, bf16) and the load average at the start and
end, and ends with the ratios: vs_sr against the bare runtime and vs-mlrt's ov plugin per setup,
and int8 / bf16 / fp32 against each other. With no options it measures what docs/benchmarks.md
records per CPU (realesr-animevideov3 x4 at 176x144 and 256x144, fp32, bf16 and int8, 1 and 2
streams; about half an hour on 2 cores). A precision this CPU does not run (bf16 without native
bf16) is left out with a line that says so:

    .venv/bin/python scripts/benchmark.py --markdown docs/benchmarks.md
    .venv/bin/python scripts/benchmark.py --precision bf16 --streams 2 --size 176x144 --format YUV420P8
"""

from __future__ import annotations

import argparse
import sys

from vs_sr import bench
from vs_sr.bench.machine import load_average, load_note, runnable_precisions, this_machine


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
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16", "int8"])
    parser.add_argument("--size", nargs="+", default=["176x144", "256x144"], help="input WxH, one or more")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--format", default="RGBS", help="source format, e.g. RGBS or YUV420P8 (conversions included)")
    parser.add_argument("--tile", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true", help="skip vs-mlrt's plugins")
    parser.add_argument("--markdown", help="append the table to this file")
    args = parser.parse_args()

    machine = this_machine()
    print(f"Machine: {machine.describe()}", flush=True)
    load_start = load_average()
    rows = []
    for model in args.model:
        name, _, scale = model.partition(":")
        precisions, left_out = runnable_precisions(args.precision, name, int(scale or args.scale), args.backend)
        if left_out:
            print(f"{name}: {left_out}", flush=True)
        for size in args.size:
            width, height = map(int, size.lower().split("x"))
            for precision in precisions:
                for streams in args.streams:
                    case = bench.BenchCase(name, int(scale or args.scale), args.backend, precision, width, height,
                                           streams, args.frames, args.format, args.tile, args.noise)
                    result = bench.run(case, args.repeat, not args.no_peers)
                    rows.append((case, result))
                    print(case.label(), {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()},
                          flush=True)
    text = (f"Machine: {machine.describe()}; {load_note(load_start, load_average(), machine.cores)}. Median of "
            f"{args.repeat} interleaved runs, {args.frames} frames each.\n\n")
    text += bench.table(rows) + "\n"
    precisions = bench.precision_table(rows)
    if precisions:
        text += "\nPrecisions against each other (vs_sr; the bare runtime in brackets):\n\n" + precisions + "\n"
    same_graph = bench.same_graph_table(rows)
    if same_graph:
        text += "\nint8 through either filter (vs-mlrt's ov plugin given vs_sr's quantized graph):\n\n" + same_graph + "\n"
    publish(text, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
