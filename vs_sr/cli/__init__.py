"""The `vs-sr` command: a module per command group, each parsing its options, calling the
library and printing. Errors are one line on stderr with a non-zero exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ..errors import SRError
from . import engines, evaluate, info, models, train, triton, upscale


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vs-sr", description="Neural super-resolution for VapourSynth.")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (models, upscale, evaluate, train, engines, triton, info):
        group.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except SRError as error:
        print(f"vs-sr: error: {error.message}", file=sys.stderr)
        return 1
    except OSError as error:  # a disk full, a permission refused: say which file, not a traceback
        print(f"vs-sr: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vs-sr: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
