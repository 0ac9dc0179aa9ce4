"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse


def add_command(sub, name: str, help: str, example: str, func) -> argparse.ArgumentParser:
    """A subparser whose --help ends with an example, dispatching to ``func(args)``."""
    p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p
