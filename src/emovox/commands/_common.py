"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse
import sys


def add_command(sub, name: str, help: str, example: str, func) -> argparse.ArgumentParser:
    """A subparser whose --help ends with an example, dispatching to ``func(args)``."""
    p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def add_group(sub, name: str, help: str, metavar: str, description: str | None = None,
              epilog: str | None = None):
    """A command whose work is done by subcommands (``emovox pretrain sa2sr``); called alone it
    prints its help on stderr and exits 2. Returns the subparsers to add those to."""
    p = sub.add_parser(name, help=help, description=description or help, epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=lambda args: p.print_help(sys.stderr) or 2)
    return p.add_subparsers(dest=f"{name}_command", metavar=metavar)


def parse_value(v: str):
    """A command-line value: true/false/yes/no, none/null, int, float, else the string."""
    low = v.lower()
    if low in {"true", "yes"}:
        return True
    if low in {"false", "no"}:
        return False
    if low in {"none", "null"}:
        return None
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def parse_pairs(items: list[str], what: str = "-O") -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a malformed item raises ValueError."""
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise ValueError(f"{what} expects KEY=VALUE, got {item!r}")
        out[k.strip()] = v.strip()
    return out


def parse_options(items: list[str], what: str = "-O") -> dict:
    """``["n_mels=80", "normalize=true"]`` -> ``{"n_mels": 80, "normalize": True}``."""
    return {k: parse_value(v) for k, v in parse_pairs(items, what).items()}
