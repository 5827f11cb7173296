"""The scripts vs_sr hands to vspipe, and the one argument protocol between them.

vspipe passes `-a key=value` pairs into a script's globals as bytes. Every value goes over as
text with None written as "none"; a script names the function that builds its clip, and that
function gets the arguments back as a dict of str (None restored). A script that fails with
an `SRError` writes the bare message to the file named by the `error_report` argument, so the
caller can show the user our message rather than a traceback. `vs-sr upscale`, batch chunks and
the benchmark all use this: there is one way to call vs_sr through vspipe.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from ..errors import SRError

PREFIX = "sr_"
NONE = "none"
ERROR_REPORT = "error_report"


def write_script(directory: Path, module: str, function: str) -> Path:
    """A .vpy in `directory` that outputs `module.function(arguments)`."""
    path = directory / f"{function}.vpy"
    path.write_text("from vs_sr.media.script import run_script\n"
                    f"run_script(globals(), {module!r}, {function!r})\n", encoding="utf-8")
    return path


def vspipe_arguments(values: Mapping[str, object]) -> list[str]:
    """`-a sr_key=value` for each item; None goes over as "none"."""
    arguments = []
    for key, value in values.items():
        arguments += ["-a", f"{PREFIX}{key}={NONE if value is None else value}"]
    return arguments


def script_arguments(namespace: Mapping[str, object]) -> dict[str, str | None]:
    """The arguments `vspipe_arguments` sent, from a script's globals."""
    found: dict[str, str | None] = {}
    for key, value in namespace.items():
        if key.startswith(PREFIX):
            text = value.decode() if isinstance(value, bytes) else str(value)
            found[key.removeprefix(PREFIX)] = None if text == NONE else text
    return found


def run_script(namespace: Mapping[str, object], module: str, function: str) -> None:
    """Build the clip with `module.function(arguments)` and set it as the script's output."""
    arguments = script_arguments(namespace)
    build = getattr(importlib.import_module(module), function)
    try:
        clip = build(arguments)
    except SRError as error:
        report = arguments.get(ERROR_REPORT)
        if report:
            Path(report).write_text(error.message, encoding="utf-8")
        raise
    clip.set_output()
