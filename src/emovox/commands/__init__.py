"""Subcommands of ``emovox``: one module each, with ``register(subparsers)``."""
