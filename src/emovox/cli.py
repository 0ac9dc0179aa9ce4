"""The ``emovox`` command. Each subcommand lives in ``emovox.commands.<name>`` and exposes
``register(subparsers)``; this module only discovers them and dispatches."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__
from .audio import AudioError
from .manifest import ManifestError
from .utils import setup_logging


def build_parser() -> argparse.ArgumentParser:
    from . import commands

    parser = argparse.ArgumentParser(
        prog="emovox",
        description="Speech emotion recognition that knows what is said as well as how it is said.",
        epilog="Run 'emovox COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"emovox {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{mod.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (AudioError, ManifestError, FileNotFoundError, ValueError) as e:
        print(f"emovox {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("emovox: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
