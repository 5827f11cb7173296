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
from typing import Any, NoReturn

from .. import __version__
from .environment import prepare

# Nothing heavy is imported above: `main` takes over the signals first, and the command modules
# (which load VapourSynth, numpy and the runtimes) come after, inside its Ctrl-C handling.
INTERRUPTED = "interrupted; nothing was written"
BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell reports for a tool SIGPIPE ended
# Python keyword arguments in the library's messages, and the options they are on the command line.
KEYWORD = re.compile(r"\b(width|height|tile|overlap|precision|backend|num_streams|scale|model|device_id|server|noise)="
                     r"('[^']*'(?:/'[^']*')*|-?\w+)?|\b(num_streams|device_id)\b")


class CommandParser(argparse.ArgumentParser):
    """argparse with the project's errors: one line on stderr (the usage is a --help away rather
    than a dozen lines above the reason), exit status 2, as argparse's own. Subcommands' parsers
    are of the same class (argparse makes them with the parent's)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_command(self, args: Sequence[str] | None = None) -> argparse.Namespace:
        """parse_args, with a word no option takes reported by the command it was given to: argparse
        reports it at the top ("see vs-sr --help", whose page lists no command's options)."""
        parsed, extras = self.parse_known_args(args)
        if extras:
            self._chosen(parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _chosen(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        """The innermost (sub)command parser `parsed` went through."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001 -- argparse has no public name for it
                chosen = action.choices.get(getattr(parsed, action.dest, None) or "")
                if chosen is not None:
                    return chosen._chosen(parsed) if isinstance(chosen, CommandParser) else chosen
        return self


def build_parser() -> CommandParser:
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

    parser = CommandParser(prog="vs-sr", description="Neural super-resolution for VapourSynth.")
    parser.add_argument("--version", action="version", version=f"vs-sr {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (models_command, upscale_command, batch_command, studio_command, evaluate_command, train_command,
                  engines_command, triton_command, info_command):
        group.add_parser(commands)
    return parser


def shell_syntax(message: str) -> str:
    """A library message with `width=`, `precision='fp16'` ... written as command-line options."""
    def option(match: re.Match[str]) -> str:
        if match.string[match.end():match.end() + 1] == ":":  # an ffmpeg filter's option list (scale=100:100): kept
            return match.group(0)
        name, value = match.group(1) or match.group(3), (match.group(2) or "").replace("'", "")
        return f"--{name.replace('_', '-')}" + (f" {value}" if value else "")

    return KEYWORD.sub(option, message)


_signalled: list[int] = []  # the signals that arrived: an interruption raised inside a finaliser is lost


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _signalled.append(signum)
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """A service manager's SIGTERM and a closed terminal's SIGHUP end a run the way Ctrl-C does:
    every step's clean-up runs (children stopped, temporaries removed), exit code 130."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where it is ignored (`cmd &`)
        signal.signal(signal.SIGINT, _interrupt)
    sys.unraisablehook = _unraisable


def _unraisable(unraisable: Any) -> None:
    """An interruption raised inside a finaliser is lost to it, not to us (main reads `_signalled`):
    no "Exception ignored" traceback for it."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)


def main(argv: Sequence[str] | None = None) -> int:
    # First of all, before the imports that take most of a second: a signal during start-up is
    # an interruption like any other (exit 130, one line), not a traceback from inside an import
    # or the default action's 143/129.
    stop_on_signals()
    prepare()
    _signalled.clear()  # (main may run more than once in a process: a test, an embedding application)
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # here, not at exit: a reader that went away is noticed while it can be handled
    except KeyboardInterrupt:  # in the last flush, after the command
        print("vs-sr: interrupted", file=sys.stderr)
        return 130
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
    args: argparse.Namespace | None = None
    try:
        from .common import attach_values

        parser = build_parser()
        complete(parser)
        args = parser.parse_command(attach_values(sys.argv[1:] if argv is None else argv))
        code = run_command(args)
    except KeyboardInterrupt:  # a command may say what an interruption leaves (args.interrupted, or a function of args)
        said = getattr(args, "interrupted", INTERRUPTED)
        print(f"vs-sr: {said(args) if callable(said) else said}", file=sys.stderr)
        return 130
    if _signalled and code == 0:  # raised where Python ignores exceptions (a __del__, a weakref callback)
        print("vs-sr: interrupted (the signal came as the command ended: what it wrote is complete)", file=sys.stderr)
        return 130
    return code


def complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion, when the shell asks for it (argcomplete then exits)."""
    try:
        import argcomplete
    except ImportError:  # completion is a nicety: without the package the command works the same
        return
    argcomplete.autocomplete(parser)


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; what the user can fix is one line on stderr and exit code 1."""
    import vapoursynth as vs

    from ..errors import SRError, one_line

    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except SRError as error:
        print(f"vs-sr: error: {shell_syntax(error.message)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # (main decides whose pipe it was)
    except OSError as error:  # a disk full, a permission refused: say which file, not a traceback
        print(f"vs-sr: error: {error}", file=sys.stderr)
    except vs.Error as error:  # a plugin's own complaint (a file bestsource cannot read, ...)
        print(f"vs-sr: error: {one_line(str(error))}", file=sys.stderr)
    return 1




if __name__ == "__main__":
    sys.exit(main())
