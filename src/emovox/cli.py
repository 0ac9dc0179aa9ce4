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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or only ``command``'s subparser when that module exists: registering a
    command may import heavy libraries (torch), so ``emovox corpus ...`` does not pay for all."""
    from . import commands

    parser = argparse.ArgumentParser(
        prog="emovox",
        description="Speech emotion recognition that knows what is said as well as how it is said.",
        epilog="Run 'emovox COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"emovox {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))
    wanted = (command or "").replace("-", "_")
    for name in [wanted] if wanted in names else names:
        importlib.import_module(f"{commands.__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first)
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
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly like other Unix tools
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("emovox: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
