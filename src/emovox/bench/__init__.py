"""Benchmarks for ``emovox bench``: one module each, with ``register(subparsers)``."""
