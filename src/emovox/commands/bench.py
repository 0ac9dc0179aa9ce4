"""``emovox bench NAME``: speed and memory benchmarks. Each lives in ``emovox.bench.<name>``
with ``register(subparsers)``, discovered here like the top-level commands."""

from __future__ import annotations

import importlib
import pkgutil

from ._common import add_group


def register(sub) -> None:
    from .. import bench

    inner = add_group(sub, "bench", "speed and memory benchmarks (features, predict, sa2sr, ...)", "BENCHMARK",
                      "Benchmarks that measure speed and memory; results go to stdout (markdown, or JSON "
                      "with --json) and can be pasted into docs/RESULTS.md.")
    for mod in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{bench.__name__}.{mod.name}").register(inner)
