"""`vs-sr batch`: remaster many files, in chunks, resumable; `vs-sr batch status DIR`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .common import INCOMPLETE, default, options_given, positive
from .upscale_command import add_encoder_options, add_filter_options, add_output_options, printer, tool_printer

if TYPE_CHECKING:
    from ..batch import Outcome

STATUS = "status"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..batch.driver import RunOptions
    from ..batch.settings import CONTAINERS, INTERMEDIATES

    batch = commands.add_parser(
        "batch", help="upscale many files in chunks, in parallel, resumable after any crash (also: batch status DIR)",
        description="Upscale every video of INPUT... into --output-dir, cut into chunks that run in parallel on this "
        "machine or a Ray cluster. Running the same command again continues where it stopped. "
        "`vs-sr batch status DIR [--json]` shows a batch's progress.")
    batch.add_argument("inputs", nargs="+", metavar="INPUT", help="video files and/or folders of them")
    batch.add_argument("--output-dir", metavar="DIR", help="where the results go (DIR/<relative path>/<name>.mkv); "
                       "the batch's state lives in DIR/.vs-sr-batch/")
    add_filter_options(batch)
    add_encoder_options(batch)
    batch.add_argument("--container", choices=list(CONTAINERS), default="mkv", help="output container (default mkv; prores/dnxhr: mkv or mov; webm: AV1 only)")
    batch.add_argument("--jobs", type=positive, help="chunks at once (default: one per GPU the model runs on, else 1; "
                       "with --ray: the cluster's CPUs or GPUs)")
    batch.add_argument("--chunk-frames", type=positive,
                       help="frames per chunk (default: max(1000, a quarter of a video per worker))")
    batch.add_argument("--intermediate", choices=INTERMEDIATES, default="ffv1",
                       help="chunks in lossless FFV1, encoded to --codec when joined (default), or in the final "
                       "codec (smaller, joined as they are); a video of one chunk is always in the final codec")
    batch.add_argument("--max-tries", type=positive, default=default(RunOptions, "max_tries"),
                       help="attempts per chunk when a process is killed, crashes or stalls (default 3)")
    batch.add_argument("--stall-seconds", type=positive, default=int(default(RunOptions, "stall_seconds")),
                       help="a chunk with no new frame for this long is stopped and retried (default 600)")
    batch.add_argument("--recursive", action="store_true", help="descend into subfolders of folder inputs")
    batch.add_argument("--restart", action="store_true", help="forget DIR's batch state and start over")
    batch.add_argument("--keep-chunks", action="store_true", help="keep chunk files after a video is assembled")
    batch.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                       help="run chunks as Ray tasks: on a Ray started here, or on the cluster at HOST:PORT "
                       "(inputs and DIR must be on a file system every node shares)")
    add_output_options(batch)
    batch.add_argument("--json", action="store_true", help="with `status`: print the state as JSON")
    batch.add_argument("--all", action="store_true", help="with `status`: list every video (without it, the finished "
                       "ones are counted, not listed)")
    batch.set_defaults(run=run, interrupted="interrupted; the batch continues where it stopped when run again",
                       parser=batch)


def run(args: argparse.Namespace) -> int:
    from ..errors import SRError

    if args.inputs[0] == STATUS and (args.output_dir is None or not Path(STATUS).exists()):
        if len(args.inputs) != 2:  # a usage error, as argparse's own (exit status 2)
            args.parser.error("status takes one folder: vs-sr batch status DIR [--json]")
        others = options_given(args.parser, args, keep=("json", "all", "quiet", "verbose"))  # (those two: harmless)
        if others:  # (they were taken, and did nothing)
            args.parser.error(f"status takes one folder, --json and --all, not {', '.join(others)}: vs-sr batch status "
                              "DIR [--json] [--all]")
        return status(Path(args.inputs[1]), args.json, args.all)
    for option, given in (("--json", args.json), ("--all", args.all)):
        if given:
            args.parser.error(f"{option} goes with status: vs-sr batch status DIR {option}")
    if args.output_dir is None or not args.output_dir.strip():  # ('' was taken as the current folder)
        raise SRError("give --output-dir DIR: where the results and the batch's state go.")
    from ..batch import BatchSettings, RunOptions, run_batch
    from ..batch.settings import CONTAINERS
    from ..media.encoders import check_encoding
    from ..media.job import check_model

    job = {name: getattr(args, name) for name in ("model", "scale", "width", "height", "backend", "precision", "tile",
                                                   "overlap", "num_streams", "server", "noise", "codec", "crf", "preset",
                                                   "deinterlace", "profile", "depth")}
    job["ffmpeg_args"] = args.ffmpeg_args or []
    # Once for the batch, before any video is planned: a codec this ffmpeg or machine cannot use.
    check_encoding(args.codec, CONTAINERS[args.container], args.crf, args.preset, args.profile, args.depth)
    settings = BatchSettings(job=job, container=args.container, chunk_frames=args.chunk_frames,
                             intermediate=args.intermediate)
    if args.ray is None:  # a model, scale, runtime or precision that cannot run here: said once, before any video
        check_model(settings.job_for(Path("input"), Path("output")))  # (a cluster's nodes judge their own)
    options = RunOptions(max_tries=args.max_tries, stall_seconds=float(args.stall_seconds),
                         keep_chunks=args.keep_chunks, salvage=args.salvage, tool_log=tool_printer(args))
    log = printer(args)
    outcome = run_batch([Path(p) for p in args.inputs], Path(args.output_dir), settings, options, jobs=args.jobs,
                        recursive=args.recursive, restart=args.restart, ray=args.ray, log=log, quiet=args.quiet)
    return summary(outcome, args.output_dir, log)


def summary(outcome: Outcome, directory: str, log: Callable[[str], None]) -> int:
    """The end of a run: every video not made completely, by name, and the exit status (0 only
    when every input was made completely; 1 when any failed; INCOMPLETE when some were salvaged)."""
    total = len(outcome.done) + len(outcome.failed)
    if outcome.salvaged:
        print(f"vs-sr batch: {len(outcome.salvaged)} of {total} video(s) are incomplete (salvaged with --salvage):",
              file=sys.stderr)
        for video in outcome.salvaged:
            print(f"  {video.input}: {video.salvaged}", file=sys.stderr)
    if outcome.failed:
        print(f"vs-sr batch: {len(outcome.failed)} of {total} video(s) failed (the same command tries them again; "
              "verified chunks are kept):", file=sys.stderr)
        for video in outcome.failed:
            print(f"  {video.input}: {video.error}", file=sys.stderr)
        return 1
    if outcome.salvaged:
        return INCOMPLETE
    log(f"all {total} video(s) done in {directory}")
    return 0


def status(directory: Path, as_json: bool, every: bool = False) -> int:
    """The batch's progress: a line of counts, then the videos not finished cleanly (failed,
    unfinished, salvaged); `every`: all of them (a library's thousands of done ones hid the few
    that need a look)."""
    from ..batch import batch_status

    data = batch_status(directory)
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    states = [video["state"] for video in data["videos"]]
    counts = ", ".join(f"{states.count(state)} {state}" for state in dict.fromkeys(sorted(states)))
    print(f"{data['frames_done']}/{data['frames_total']} frames verified; {len(states)} video(s): {counts or 'none'}")
    unfinished = [v for v in data["videos"] if v["state"] not in ("done", "failed")]
    if unfinished and not data["running"]:
        print(f"no vs-sr batch is running on {directory}: the same vs-sr batch command continues it")
    listed = [v for v in data["videos"] if every or v["state"] != "done" or v["salvaged"]]
    for video in listed:
        chunks = video["chunks"]
        done = sum(c["state"] == "done" for c in chunks)
        line = f"{video['state']:<8} {video['frames_done']}/{video['frames_total']} frames, {done}/{len(chunks)} chunks  " \
               f"{video['input']}"
        print(line + (f"  ({video['error']})" if video["error"] else "")
              + (f"  (salvaged: {video['salvaged']})" if video["salvaged"] else ""))
    if len(listed) < len(data["videos"]):
        print(f"({len(data['videos']) - len(listed)} done video(s) not listed: --all lists every video)")
    return 0
