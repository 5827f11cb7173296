#!/usr/bin/env python3
"""The platform case end to end: a 25 fps 256x144 upload (AAC audio and a subtitle track) to
854x480 through the command a user types, `vs-sr upscale in.mp4 out.mp4 --width 854 --height
480` (x264 CRF 18, preset medium: the defaults), with every check on.

Reported per setting: the whole command's wall time and real-time factor (video seconds per
second; the goal is 1.33x), the frame rate while encoding (`vs-sr upscale`'s own figure), the
precision that ran (from its `ran ...` line: what `auto` chose), the CPU seconds of all its
processes, and the speed against the bf16 run of the same setting. The report starts with the
machine (CPU, ISA features, load average at the start and end): on a machine shared with other
work the wall times are not a quiet machine's, while CPU seconds and the ratios of interleaved
runs still compare. Every setting runs once untimed first (int8 quantizes on first use), then
rounds are interleaved and medians count. A precision this CPU does not run (bf16 without
native bf16) is left out with a line that says so.

    .venv/bin/python scripts/benchmark_upload.py --markdown docs/benchmarks.md
    .venv/bin/python scripts/benchmark_upload.py --precision bf16 int8 --preset medium veryfast \\
        --extra "" "--num-streams 1"
"""

from __future__ import annotations

import argparse
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmark import publish

from vs_sr.bench.machine import load_average, load_note, runnable_precisions, this_machine

VS_SR = str(Path(sys.executable).with_name("vs-sr"))


def srt_time(seconds: float) -> str:
    return f"{int(seconds) // 3600:02d}:{int(seconds) // 60 % 60:02d}:{int(seconds) % 60:02d},{round(seconds % 1 * 1000):03d}"


def make_upload(folder: Path, seconds: int) -> Path:
    """A phone-like upload: moving, detailed content at 256x144, 25 fps, AAC audio, mov_text subtitles."""
    subtitles = folder / "upload.srt"
    subtitles.write_text("".join(f"{n + 1}\n{srt_time(2 * n)} --> {srt_time(2 * n + 1.5)}\nLine {n + 1} of the upload\n\n"
                                 for n in range(seconds // 2)), encoding="utf-8")
    path = folder / "upload.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=256x144:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-i", str(subtitles), "-map", "0",
                    "-map", "1", "-map", "2", "-c:v", "libx264", "-crf", "23", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-c:s", "mov_text", str(path)], check=True)
    return path


@dataclass(frozen=True)
class Setting:
    precision: str
    streams: int
    preset: str
    extra: str
    """More `vs-sr upscale` arguments, as one shell-quoted string ("" for none)."""

    def arguments(self) -> list[str]:
        return ["--precision", self.precision, "--num-streams", str(self.streams), "--preset", self.preset,
                *shlex.split(self.extra)]


@dataclass(frozen=True)
class Run:
    seconds: float
    fps: float
    cpu: float
    """CPU seconds of the command and every process it started."""
    ran: str
    """The precision the filter ran at."""


def upscale(source: Path, output: Path, model: str, setting: Setting) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run([VS_SR, "upscale", str(source), str(output), "--model", model, "--width", "854", "--height",
                           "480", *setting.arguments(), "-y"], capture_output=True, text=True)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"vs-sr upscale {' '.join(setting.arguments())}: {done.stderr.strip()}")
    rate = re.search(r"; ([0-9.]+) fps$", done.stdout.strip())
    ran = re.search(r"^ran .*?, (fp32|fp16|bf16|int8)(?: \(auto\))?, ", done.stdout, re.MULTILINE)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Run(seconds, float(rate.group(1)) if rate else float("nan"), cpu, ran.group(1) if ran else "?")


def report(runs: dict[Setting, list[Run]], seconds: int, cores: int) -> list[str]:
    """The table: medians per setting, and each setting's speed against bf16 with the rest equal."""
    lines = ["| precision | ran | streams | x264 preset | extra arguments | seconds | real-time factor | "
             "fps while encoding | CPU s | CPU-bound real-time factor | vs bf16 |",
             "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    medians = {s: statistics.median(r.seconds for r in values) for s, values in runs.items()}
    for setting, values in runs.items():
        wall, cpu = medians[setting], statistics.median(r.cpu for r in values)
        fps = statistics.median(r.fps for r in values)
        bf16 = next((medians[s] for s in runs if s.precision == "bf16" and (s.streams, s.preset, s.extra) ==
                     (setting.streams, setting.preset, setting.extra)), None)
        versus = f"{bf16 / wall:.2f}x" if bf16 else "—"
        lines.append(f"| {setting.precision} | {values[0].ran} | {setting.streams} | {setting.preset} | "
                     f"{setting.extra or '—'} | {wall:.1f} | {seconds / wall:.2f}x | {fps:.2f} | {cpu:.1f} | "
                     f"{seconds * cores / cpu:.2f}x | {versus} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="realesr-animevideov3")
    parser.add_argument("--precision", nargs="+", default=["auto", "bf16", "int8"])
    parser.add_argument("--streams", type=int, nargs="+", default=[2])
    parser.add_argument("--preset", nargs="+", default=["medium"], help="x264 presets (medium: vs-sr's default)")
    parser.add_argument("--extra", nargs="+", default=[""],
                        help="sets of more vs-sr upscale arguments to compare, each one quoted string")
    parser.add_argument("--seconds", type=int, default=40, help="length of the upload")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", help="append the table to this file")
    args = parser.parse_args()

    machine = this_machine()
    print(f"Machine: {machine.describe()}", flush=True)
    load_start = load_average()
    precisions, left_out = runnable_precisions(args.precision, args.model, 4)
    if left_out:
        print(left_out, flush=True)
    settings = [Setting(p, s, preset, extra) for p in precisions for s in args.streams for preset in args.preset
                for extra in args.extra]
    runs: dict[Setting, list[Run]] = {setting: [] for setting in settings}
    with tempfile.TemporaryDirectory(prefix="vs-sr-upload-") as folder:
        source = make_upload(Path(folder), args.seconds)
        for setting in settings:  # warm-up: caches (exports, the int8 model) filled here
            upscale(source, Path(folder) / "out.mp4", args.model, setting)
        for _ in range(args.repeat):
            for setting in settings:
                run = upscale(source, Path(folder) / "out.mp4", args.model, setting)
                runs[setting].append(run)
                print(f"{setting}: {run}", flush=True)
    lines = [f"Machine: {machine.describe()}; {load_note(load_start, load_average(), machine.cores)}.", "",
             f"`vs-sr upscale upload.mp4 out.mp4 --width 854 --height 480` of a {args.seconds} s 25 fps 256x144 upload "
             f"with AAC audio and mov_text subtitles (x264 CRF 18, {args.model}); median of {args.repeat} interleaved "
             "runs. Seconds and real-time factor: the whole command (probe, vspipe, x264, mux, output checks); fps: "
             "while encoding; CPU s: all its processes; CPU-bound real-time factor: what the cores would give if "
             "that CPU time were spread over them with nothing else running (an upper bound, for loaded machines).",
             "", *report(runs, args.seconds, machine.cores)]
    publish("\n".join(lines) + "\n", args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
