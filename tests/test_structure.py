"""The package's shape: imports go down the layers of docs/ARCHITECTURE.md, never up and never in
a circle, and no module grows past 500 lines. Every import counts, at module level or inside a
function (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "emovox"
MAX_LINES = 500

LAYERS: list[list[str]] = [
    ["emovox.utils", "emovox.tensors", "emovox.distributed", "emovox.version", "emovox.jobs"],
    ["emovox.audio", "emovox.containers", "emovox.resample", "emovox.manifest", "emovox.report.tables", "emovox.report.plots", "emovox.text.vocab",
     "emovox.text.normalize", "emovox.report.palette"],
    ["emovox.corpora", "emovox.splits"],
    ["emovox.features"],
    ["emovox.encoders"],
    ["emovox.featurize", "emovox.text", "emovox.vad"],
    ["emovox.heads"],
    ["emovox.train"],
    ["emovox.evaluate"],
    ["emovox.emotion_model", "emovox.records"],
    ["emovox.recipes", "emovox.report"],
    ["emovox.scoring", "emovox.formats", "emovox.export", "emovox.predict_runs"],
    ["emovox.predict"],
    ["emovox.serve", "emovox.gate"],
    ["emovox.bench", "emovox.commands", "emovox.cli", "emovox.__main__", "emovox"],
]
"""docs/ARCHITECTURE.md's layers, bottom first. A module belongs to the longest prefix listed."""


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(module: str, is_package: bool, node: ast.AST) -> list[str]:
    """The emovox modules an import statement names."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - node.level + 1]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix for a in node.names]
    out = []
    for n in names:
        while n not in MODULES and "." in n:
            n = n.rsplit(".", 1)[0]
        if n in MODULES and n != module:
            out.append(n)
    return out


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps.update(_targets(name, path.name == "__init__.py", node))
        graph[name] = deps
    return graph


def layer(module: str) -> int:
    best = None
    for rank, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (rank, len(p))
    assert best is not None, f"{module} is in no layer of LAYERS (add it, and to docs/ARCHITECTURE.md)"
    return best[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_go_down_the_layers():
    upward = [f"{m} (layer {layer(m)}) imports {d} (layer {layer(d)})"
              for m, deps in sorted(import_graph().items()) for d in sorted(deps) if layer(d) > layer(m)]
    assert upward == []


def test_export_and_predict_do_not_import_each_other():
    g = import_graph()
    assert "emovox.export" not in g["emovox.predict"] and "emovox.predict" not in g["emovox.export"]


def test_no_module_over_500_lines():
    long = {name: n for name, p in MODULES.items()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
