"""The ``mcolor`` command line.

Each subcommand lives in its own module (``mcolor/cli/<name>.py``) exposing
``register(subparsers) -> None``; the parser it adds sets ``func`` to a callable taking the parsed
namespace and returning an exit code. The CLI only parses arguments and calls library functions:
everything it does is reachable from Python and from the bundle configs.

Errors raised on purpose (:class:`mcolor.errors.McolorError`) are printed as one line,
``mcolor: error [reason]: message``, with exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from mcolor import __version__
from mcolor.errors import McolorError

SUBCOMMANDS = ("manifest", "infer", "bundle", "sweep", "card")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand (each imported only here, when the CLI runs)."""
    parser = argparse.ArgumentParser(
        prog="mcolor",
        description="Deep colorization for transfer learning on radiographs (MONAI bundles).",
    )
    parser.add_argument("--version", action="version", version=f"mcolor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"mcolor.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mcolor`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except McolorError as exc:
        print(f"mcolor: error [{exc.reason}]: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mcolor: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
