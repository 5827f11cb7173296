#!/usr/bin/env python3
"""One Triton server shared by 1, 2, 4 concurrent vspipe clients, against the same clients each
running OpenVINO locally, on the same generated frames; and the per-tile cost of the wire.

Each client is a vspipe process (the benchmark's own script, `vs_sr.bench.speed.contender_clip`)
upscaling the same frames; its frames/s is what vspipe reports, the total is their sum. Modes are
interleaved within each round and rounds repeated; the median counts. The server is started here
(`vs-sr triton serve`'s launcher) on a python-platform export: vs_sr's OpenVINO session inside.

    .venv/bin/python scripts/triton_benchmark.py --clients 1 2 4 --frames 60 --repeat 3 \\
        --markdown docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from benchmark import publish

from vs_sr.bench.speed import BenchCase
from vs_sr.media.script import vspipe_arguments, write_script
from vs_sr.media.tools import find_tool

MODES = {  # mode: (backend, extra environment)
    "local OpenVINO": ("openvino", {}),
    "Triton gRPC": ("triton", {"VS_SR_TRITON_SHM": "off"}),
    "Triton gRPC + shm": ("triton", {"VS_SR_TRITON_SHM": "on"}),
}


def run_clients(case: BenchCase, clients: int, environment: dict[str, str], folder: Path) -> list[float]:
    """Frames/s of `clients` vspipe processes started together on the same frames."""
    script = write_script(folder, "vs_sr.bench.speed", "contender_clip")
    command = [find_tool("vspipe"), *vspipe_arguments({"contender": "vs_sr", **asdict(case)}), str(script), "--"]
    processes = [subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, env={**os.environ, **environment})
                 for _ in range(clients)]
    rates = []
    for process in processes:
        _, errors = process.communicate(timeout=3600)
        match = re.search(r"Output \d+ frames in [\d.]+ seconds \(([\d.]+) fps\)", errors)
        if process.returncode != 0 or not match:
            raise RuntimeError(f"vspipe failed: {errors[-1500:]}")
        rates.append(float(match.group(1)))
    return rates


def batch_stats(url: str, model: str) -> tuple[int, int]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url.removeprefix("grpc://"))
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def server_time_ns(url: str, model: str) -> tuple[int, int]:
    """(requests, ns) the server spent on them: queue + compute input/infer/output."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url.removeprefix("grpc://"))
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]["inference_stats"]
    parts = ("queue", "compute_input", "compute_infer", "compute_output")
    return int(stats["success"].get("count", 0)), sum(int(stats[p].get("ns", 0)) for p in parts)


def wire_overhead(case: BenchCase, url: str, stats_url: str, shm: str, requests: int) -> tuple[float, float]:
    """(median round trip, mean overhead) in ms of one tile through vs_sr's Triton session, one
    request at a time: the overhead is the round trip minus the server's own time."""
    from vs_sr.backends import SessionSpec
    from vs_sr.backends.triton import TritonBackend, served_network

    os.environ["VS_SR_TRITON_SHM"] = shm
    network = served_network(case.model, case.scale, url)
    session = TritonBackend(url).open(SessionSpec(network, 1, case.height, case.width, "fp32", 1, 0))[0]
    tile = np.random.default_rng(0).random((1, 3, case.height, case.width), dtype=np.float32)
    session.run(tile)
    count0, ns0 = server_time_ns(stats_url, network.served_name)
    trips = []
    for _ in range(requests):
        start = time.perf_counter()
        session.run(tile)
        trips.append(time.perf_counter() - start)
    count1, ns1 = server_time_ns(stats_url, network.served_name)
    server_ms = (ns1 - ns0) / max(1, count1 - count0) / 1e6
    return statistics.median(trips) * 1e3, statistics.mean(trips) * 1e3 - server_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="realesr-animevideov3")
    parser.add_argument("--size", default="176x144", help="input WxH")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--frames", type=int, default=60, help="frames per client")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--requests", type=int, default=60, help="sequential requests for the wire overhead")
    parser.add_argument("--instances", type=int, default=1, help="model instances on the server")
    parser.add_argument("--markdown", help="append the tables to this file")
    args = parser.parse_args()

    from vs_sr.bench.machine import load_average, load_note, this_machine
    from vs_sr.serving import ExportOptions, TritonServer, export_model

    width, height = map(int, args.size.lower().split("x"))
    case = BenchCase(args.model, 4, "openvino", "fp32", width, height, 1, args.frames)
    machine = this_machine()
    print(f"Machine: {machine.describe()}", flush=True)
    load_before = load_average()
    samples: dict[tuple[str, int], list[list[float]]] = {}
    batches: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="vs-sr-triton-bench-") as folder:
        repo = Path(folder) / "repo"
        name = export_model(args.model, 4, repo, ExportOptions(instances=args.instances)).name
        with TritonServer(repo) as server:
            os.environ["VS_SR_TRITON_URL"] = server.grpc_url
            for round_number in range(args.repeat):
                for clients in args.clients:
                    for mode, (backend, environment) in MODES.items():
                        before = batch_stats(server.grpc_url, name)
                        rates = run_clients(BenchCase(**{**asdict(case), "backend": backend}), clients, environment,
                                            Path(folder))
                        after = batch_stats(server.grpc_url, name)
                        samples.setdefault((mode, clients), []).append(rates)
                        if backend == "triton":
                            executions = max(1, after[1] - before[1])
                            batches.setdefault((mode, clients), []).append((after[0] - before[0]) / executions)
                        print(f"round {round_number + 1}: {clients} client(s), {mode}: "
                              + ", ".join(f"{r:.2f}" for r in rates) + " fps", flush=True)
            wire = {label: wire_overhead(case, url, server.grpc_url, shm, args.requests)
                    for label, url, shm in (("gRPC", server.grpc_url, "off"), ("gRPC + shm", server.grpc_url, "on"),
                                            ("HTTP", server.http_url, "off"), ("HTTP + shm", server.http_url, "on"))}

    load = load_note(load_before, load_average(), machine.cores)
    lines = [f"Machine: {machine.describe()} ({load}; interleaved rounds); "
             f"{args.model} x4, {width}x{height} RGBS, fp32, {args.frames} frames per client, median of "
             f"{args.repeat} rounds; server: 1 tritonserver, {args.instances} instance(s) of the python platform "
             "(vs_sr's OpenVINO session), dynamic batching up to 4.", "",
             "| clients | mode | fps per client | total fps | tiles per server execution |",
             "| ---: | --- | ---: | ---: | ---: |"]
    for clients in args.clients:
        for mode in MODES:
            runs = samples[(mode, clients)]
            per_client = statistics.median(statistics.mean(rates) for rates in runs)
            total = statistics.median(sum(rates) for rates in runs)
            batch = f"{statistics.median(batches[(mode, clients)]):.2f}" if (mode, clients) in batches else "—"
            lines.append(f"| {clients} | {mode} | {per_client:.2f} | {total:.2f} | {batch} |")
    lines += ["", f"One {width}x{height} tile per request, {args.requests} requests one after another "
              "(client round trip, and the part of it the server did not account for):", "",
              "| path | median round trip (ms) | wire + client overhead per tile (ms) |", "| --- | ---: | ---: |"]
    lines += [f"| {label} | {trip:.1f} | {overhead:.1f} |" for label, (trip, overhead) in wire.items()]
    publish("\n".join(lines) + "\n", args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
