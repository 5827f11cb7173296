"""`vs-sr triton`: export a model into a Triton model repository, and serve a repository with the
Triton server from PyPI (python backend) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..backends import BACKEND_MODULES
from ..serving.model_repository import KINDS, PLATFORMS, WIRE_PRECISIONS, ExportOptions
from ..serving.triton_server import STARTUP_TIMEOUT
from .common import (
    TILE_METAVAR,
    add_noise_option,
    default,
    fixed_port,
    listen_address,
    non_negative,
    pair,
    positive,
    seconds,
    tile,
)

if TYPE_CHECKING:
    from ..serving.triton_server import TritonServer


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    triton = commands.add_parser("triton", help="Triton Inference Server: export models, serve a repository",
                                 description="Share inference between many encoders: export models into a Triton "
                                 "model repository, serve it, and point Upscale(backend='triton', server=...) or "
                                 "`vs-sr upscale --backend triton --server URL` at it.")
    triton_commands = triton.add_subparsers(dest="triton_command", metavar="COMMAND", required=True)
    add_export_parser(triton_commands)
    add_serve_parser(triton_commands)


def add_export_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        "export", help="write a model into a Triton model repository",
        description="Write MODEL into the repository DIR as <name>-x<scale> (a file: its stem), the name "
        "backend='triton' asks for. An earlier export of that name is replaced.")
    export.add_argument("model", metavar="MODEL", help="registry name or weight/ONNX file")
    export.add_argument("--scale", type=positive, metavar="N", default=4, help="the network's scale (default 4)")
    add_noise_option(export, "; the served name ends in -noise<level>")
    export.add_argument("--repo", type=Path, required=True, metavar="DIR", help="the model repository (created if missing)")
    export.add_argument("--platform", choices=PLATFORMS, default=default(ExportOptions, "platform"),
                        help="python: Triton's python backend runs vs_sr's own session (the only platform the PyPI "
                        "server loads); onnxruntime: ONNX with a dynamic batch; openvino: OpenVINO IR (CPU); "
                        "tensorrt: writes the ONNX and build_plan.sh, to run on the server (a plan only runs on "
                        "the TensorRT version and GPU it was built with). Default python")
    export.add_argument("--max-batch-size", type=positive, metavar="N", default=default(ExportOptions, "max_batch_size"),
                        help="most tiles the server runs at once (default 4)")
    export.add_argument("--preferred-batch-size", type=positive, nargs="+", default=[], metavar="N",
                        help="batch sizes the dynamic batcher aims for (default: none, take what is queued)")
    export.add_argument("--max-queue-delay-us", type=non_negative, metavar="N", default=default(ExportOptions, "max_queue_delay_us"),
                        help="microseconds the batcher waits for more tiles before running a batch (default 0)")
    export.add_argument("--instances", type=positive, metavar="N", default=default(ExportOptions, "instances"),
                        help="model instances (per GPU with --kind gpu) that run batches in parallel (default 1)")
    export.add_argument("--kind", choices=KINDS, default=default(ExportOptions, "kind"),
                        help="where instances run (default cpu)")
    export.add_argument("--precision", choices=WIRE_PRECISIONS, default=default(ExportOptions, "precision"),
                        help="tensor type on the wire and of the graph (python: the wire only); fp16 halves the "
                        "bytes per tile (default fp32)")
    export.add_argument("--tile", type=tile, metavar=TILE_METAVAR,
                        help="serve one tile size only: N (NxN) or WIDTHxHEIGHT (default: any size where the network "
                        "allows; HAT: 256x256)")
    export.add_argument("--runtime", choices=[b for b in ["auto", *BACKEND_MODULES] if b != "triton"],
                        default=default(ExportOptions, "runtime"),
                        help="python platform: the vs_sr backend inside the server (default auto)")
    export.add_argument("--threads", type=positive, metavar="N", help="CPU threads per instance (default: the runtime's choice)")
    export.add_argument("--tensorrt-accelerator", action="store_true",
                        help="onnxruntime on GPUs: run through ONNX Runtime's TensorRT execution provider")
    export.add_argument("--json", action="store_true", help="print the result as JSON")
    export.set_defaults(run=run_export)


def add_serve_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve", help="serve a model repository (Triton from PyPI, python backend) until Ctrl-C",
        description="Start tritonserver (from the nvidia-pytriton wheel) on DIR, print its URLs when every "
        "model is ready, and run until Ctrl-C or SIGTERM; stopping leaves no process or shared memory behind.")
    serve.add_argument("--repo", type=Path, required=True, metavar="DIR", help="the model repository")
    serve.add_argument("--http-port", type=fixed_port, metavar="N", help="HTTP port (default: a free one)")
    serve.add_argument("--grpc-port", type=fixed_port, metavar="N", help="gRPC port (default: a free one)")
    serve.add_argument("--address", type=listen_address, default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; 0.0.0.0 serves other machines)")
    serve.add_argument("--log", type=Path, metavar="FILE", help="append the server's log to FILE (default: kept "
                       "only while it runs)")
    serve.add_argument("--restarts", type=non_negative, metavar="N", default=3,
                       help="start a tritonserver that dies again, on the same ports, up to N times in 10 minutes "
                       "(default 3; 0: never); each restart is said on stderr with the exit status")
    serve.add_argument("--startup-timeout", type=seconds, metavar="SECONDS", default=STARTUP_TIMEOUT,
                       help=f"how long every model may take to load, at the start and at each restart, before serve "
                       f"gives up (default {STARTUP_TIMEOUT:g}; a model that builds an engine at load needs more)")
    serve.add_argument("--json", action="store_true", help="print the URLs as one JSON line when ready (again "
                       "after each restart: the pid changes)")
    serve.set_defaults(run=run_serve, parser=serve)


def run_export(args: argparse.Namespace) -> int:
    from google.protobuf import text_format

    from ..serving.model_repository import export_model

    options = ExportOptions(
        platform=args.platform, max_batch_size=args.max_batch_size,
        preferred_batch_sizes=tuple(args.preferred_batch_size), max_queue_delay_us=args.max_queue_delay_us,
        instances=args.instances, kind=args.kind, precision=args.precision,
        tile=None if args.tile is None else pair(args.tile), runtime=args.runtime, threads=args.threads,
        tensorrt_accelerator=args.tensorrt_accelerator)
    exported = export_model(args.model, args.scale, args.repo, options, args.noise)
    if args.json:
        print(json.dumps({"name": exported.name, "directory": str(exported.directory), "platform": args.platform,
                          "files": [str(f) for f in exported.files], "replaced": exported.replaced,
                          "notes": list(exported.notes), "next_step": exported.next_step,
                          "config": text_format.MessageToString(exported.config)}))
        return 0
    print(f"{'replaced' if exported.replaced else 'wrote'} {exported.name} ({args.platform}) in {exported.directory}")
    for note in exported.notes:
        print(f"note: {note}")
    if exported.next_step:
        print(f"next: {exported.next_step}")
    elif args.platform == "python":
        print(f"serve it: vs-sr triton serve --repo {args.repo}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from ..serving.supervision import RestartBudget, keep_serving
    from ..serving.triton_server import TritonServer

    if args.http_port is not None and args.http_port == args.grpc_port:
        args.parser.error(f"--http-port and --grpc-port are both {args.http_port}: give each its own port")
    stop, serving, interrupted = threading.Event(), threading.Event(), threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()
        if not serving.is_set() and not interrupted.is_set():  # start-up is interrupted (exit 130), not waited out
            interrupted.set()  # once: a second signal must not cut short the server's stop that follows
            raise KeyboardInterrupt

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, on_signal)
    server = TritonServer(args.repo, host=args.address, http_port=args.http_port, grpc_port=args.grpc_port,
                          log=args.log, startup_timeout=args.startup_timeout)
    try:
        server.start()
        serving.set()  # before the announcement: a client's SIGTERM right after it is a normal stop (0)
        announce(server, args.json)
        keep_serving(server, stop, lambda line: print(f"vs-sr triton serve: {line}", file=sys.stderr, flush=True),
                     RestartBudget(args.restarts), lambda: announce(server, args.json, again=True))
    finally:
        server.stop()
    if not args.json:
        print("stopped", flush=True)
    return 0


def announce(server: TritonServer, as_json: bool, again: bool = False) -> None:
    """The URLs, once the server is ready: one JSON line, or lines for a person."""
    assert server.process is not None
    if as_json:
        print(json.dumps({"grpc": server.grpc_url, "http": server.http_url, "models": server.models(),
                          "pid": server.process.pid, "repository": str(server.repository)}), flush=True)
    elif again:
        print(f"serving again (pid {server.process.pid})", flush=True)
    else:
        print(f"serving {', '.join(server.models())} from {server.repository}\n"
              f"  grpc: {server.grpc_url}\n  http: {server.http_url}\n(Ctrl-C stops)", flush=True)
