# PYTHON_ARGCOMPLETE_OK
"""The `vs-sr` command: a module per command group, each parsing its options, calling the
library and printing. Errors are one line on stderr, in shell syntax, with a non-zero exit code;
SIGINT, SIGTERM and SIGHUP stop any step, clean up, and exit 130. A reader that stops reading
(`vs-sr ... | head`) ends the command quietly with 141, as SIGPIPE ends other Unix tools."""

from __future__ import annotations

import argparse
import os
import re
import select
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from .. import __version__
from ..errors import SRError
from . import (
    batch_command,
    engines_command,
    evaluate_command,
    info_command,
    models_command,
    studio_command,
    train_command,
    triton_command,
    upscale_command,
)
from .common import attach_values

INTERRUPTED = "interrupted; nothing was written"
BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell reports for a tool SIGPIPE ended
# Python keyword arguments in the library's messages, and the options they are on the command line.
KEYWORD = re.compile(r"\b(width|height|tile|overlap|precision|backend|num_streams|scale|model|device_id|server|noise)="
                     r"('[^']*'(?:/'[^']*')*|\w+)?|\b(num_streams|device_id)\b")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vs-sr", description="Neural super-resolution for VapourSynth.")
    parser.add_argument("--version", action="version", version=f"vs-sr {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (models_command, upscale_command, batch_command, studio_command, evaluate_command, train_command,
                  engines_command, triton_command, info_command):
        group.add_parser(commands)
    return parser


def shell_syntax(message: str) -> str:
    """A library message with `width=`, `precision='fp16'` ... written as command-line options."""
    def option(match: re.Match[str]) -> str:
        name, value = match.group(1) or match.group(3), (match.group(2) or "").replace("'", "")
        return f"--{name.replace('_', '-')}" + (f" {value}" if value else "")

    return KEYWORD.sub(option, message)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # here, not at exit: a reader that went away is noticed while it can be handled
    except BrokenPipeError as error:
        if not _stdout_gone():  # a pipe to a tool of ours broke: an error like any other
            print(f"vs-sr: error: {error}", file=sys.stderr)
            return 1
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush must not fail again
        return BROKEN_PIPE


def _stdout_gone() -> bool:
    """Our standard output is a pipe whose reader has closed it."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (OSError, ValueError):
        return False


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        import argcomplete

        argcomplete.autocomplete(parser)
    except ImportError:  # completion is a nicety: without the package the command works the same
        pass
    args = parser.parse_args(attach_values(sys.argv[1:] if argv is None else argv))
    run: Callable[[argparse.Namespace], int] = args.run
    # A service manager's SIGTERM and a closed terminal's SIGHUP end a run the way Ctrl-C does:
    # every step's clean-up runs (children stopped, temporaries removed), exit code 130.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        return run(args)
    except SRError as error:
        print(f"vs-sr: error: {shell_syntax(error.message)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # (main decides whose pipe it was)
    except OSError as error:  # a disk full, a permission refused: say which file, not a traceback
        print(f"vs-sr: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vs-sr: {getattr(args, 'interrupted', INTERRUPTED)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
