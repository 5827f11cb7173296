"""`vs-sr info`: what works on this machine, and what to install for what does not."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    info = commands.add_parser("info", help="what works on this machine")
    info.add_argument("--json", action="store_true", help="print the report as JSON")
    info.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..report import machine_report

    data = machine_report()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print_report(data)
    return 0


def cpu_line(cpu: dict[str, Any]) -> str:
    """The CPU and the ISA features that decide precision="auto" (int8 units, native bf16)."""
    have = [name for name, present in cpu["features"].items() if present]
    missing = [name for name, present in cpu["features"].items() if not present]
    cap = f"; held to {cpu['isa_cap']}" if cpu["isa_cap"] else ""
    return (f"CPU: {cpu['name']}; ISA: {' '.join(have) or 'none of the below'}"
            + (f" (not: {' '.join(missing)})" if missing else "") + cap)


def print_report(data: dict[str, Any]) -> None:
    """The report for people. The library's reasons speak Python (backend='torch'); here they are
    written as the options a shell user types (--backend torch), as in the command's errors."""
    from ..report.machine import FAMILY_NAMES
    from . import shell_syntax

    def say(line: str) -> None:
        print(shell_syntax(line))

    say(f"vs_sr {data['vs_sr']}, Python {data['python']}")
    vsinfo = data["vapoursynth"]
    say(f"VapourSynth: R{vsinfo['release']} (API {vsinfo['api']})")
    say(f"vspipe: {data['vspipe']}")
    for name, tool in data["tools"].items():
        version = f" (version {tool['version']})" if tool.get("version") else ""
        say(f"{name}: {tool['path'] or ''}{version}" + (f"  [{tool['problem']}]" if tool["problem"] else ""))
    plugins = data["plugins"]
    say(f"source plugin bestsource: {'yes' if plugins['bestsource'] else 'missing: pip install vapoursynth-bestsource'}")
    say(f"deinterlacer bwdif: {'yes' if plugins['bwdif'] else 'missing: pip install vapoursynth-bwdif'}")
    say(f"vs-mlrt plugins loaded: {', '.join(plugins['vs-mlrt'])} (vs_sr runs beside them)" if plugins["vs-mlrt"]
        else "vs-mlrt plugins loaded: none (vs_sr does not need them)")
    gpus = data["cuda_gpus"]
    say(f"CPU cores: {data['cpu_cores']}; CUDA GPUs: {', '.join(gpus) if gpus else 'none'}")
    say(cpu_line(data["cpu"]))
    for name, backend in data["backends"].items():
        if backend["available"]:
            auto = backend["auto"]
            exact = " (--precision fp32 for fp32)" if set(auto.values()) != {"fp32"} else ""
            picks = (f"{next(iter(auto.values()))} for every model" if len(set(auto.values())) == 1 else
                     ", ".join(f"{auto[family]} for {FAMILY_NAMES[family]}" for family in auto))
            later, int8 = "", data["extras"]["int8"]
            if "int8" in backend["precisions"] and "int8" not in auto.values() and not int8["installed"]:
                later = f"; int8 for {FAMILY_NAMES['conv_int8']} once [int8] is installed ({int8['install']})"
            say(f"backend {name:<9} {backend['device']}; precisions {', '.join(backend['precisions'])}; auto: "
                f"{picks}{exact}{later}")
        else:
            say(f"backend {name:<9} unavailable: {backend['problem']}")
    say("extras: " + ", ".join(name if extra["installed"] else f"{name} (missing: {extra['install']})"
                               for name, extra in data["extras"].items()))
    models = data["models"]
    say(f"models: {models['installed']} of {models['known']} installed (`vs-sr models list`); "
        f"searched: {', '.join(models['searched'])}")
    limit = data["cache_limit"]
    kept = f"exports kept within {limit['bytes'] / 2**30:g} GiB per folder" if limit["bytes"] else "exports never removed"
    say(f"cache: {data['cache']} " + (f"(problem: {limit['problem']})" if limit["problem"] else
                                      f"({kept}: $VS_SR_CACHE_LIMIT_GB)"))
