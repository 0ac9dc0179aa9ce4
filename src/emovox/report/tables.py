"""Tables for reports: markdown text, CSV and JSON files (written atomically), and the
``mean ± spread`` formatting used for cross-validation results.

A table is a list of rows, each a mapping from column name to value; ``columns`` fixes the
column order (default: the keys in order of first appearance).
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..utils import atomic_write_text
from ..utils import json_safe, write_json  # noqa: F401  (re-exported)

__all__ = ["columns_of", "format_value", "mean_spread", "format_pm", "format_mean_spread", "markdown_table",
           "write_markdown", "csv_text", "write_csv", "write_json", "json_safe", "read_csv"]

Row = Mapping[str, Any]


def columns_of(rows: Iterable[Row]) -> list[str]:
    """Column names in order of first appearance across the rows."""
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)


def format_value(v: Any, digits: int = 3) -> str:
    """Text for one cell: floats to ``digits`` decimals, ``nan``/``None`` as ``-``."""
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "-" if math.isnan(v) else f"{float(v):.{digits}f}"
    return str(v)


def mean_spread(values: Sequence[float], spread: str = "std") -> tuple[float, float]:
    """(mean, spread) of fold results ignoring ``nan``; ``spread`` is ``"std"`` or ``"var"``
    (population, ddof 0, as "variance over folds" in Tits et al.) ."""
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return float("nan"), float("nan")
    if spread not in ("std", "var"):
        raise ValueError(f"spread must be 'std' or 'var', got {spread!r}")
    s = a.std() if spread == "std" else a.var()
    return float(a.mean()), float(s)


def format_pm(mean: float, spread: float, digits: int = 3) -> str:
    """``"0.612 ± 0.034"``; ``"-"`` when the mean is ``nan``."""
    if mean is None or math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def format_mean_spread(values: Sequence[float] | tuple[float, float], digits: int = 3, spread: str = "std") -> str:
    """``"0.612 ± 0.034"`` for fold results (mean and std or variance, ignoring ``nan``).

    A *tuple* of exactly two numbers is taken as an already computed ``(mean, spread)`` pair
    (kept for callers written that way; prefer :func:`format_pm`); pass fold values as a list.
    """
    if isinstance(values, tuple) and len(values) == 2:
        return format_pm(values[0], values[1], digits)
    return format_pm(*mean_spread(values, spread), digits=digits)


def _escape_md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Row], columns: Sequence[str] | None = None, digits: int = 3,
                   align: Mapping[str, str] | None = None) -> str:
    """A GitHub-flavoured markdown table. Numeric columns are right-aligned unless ``align``
    says otherwise (``"l"``, ``"r"`` or ``"c"`` per column)."""
    columns = list(columns) if columns is not None else columns_of(rows)
    if not columns:
        raise ValueError("markdown_table needs at least one column")
    align = dict(align or {})
    for c in columns:
        if c not in align:
            vals = [r.get(c) for r in rows if r.get(c) is not None]
            numeric = vals and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                                   for v in vals)
            align[c] = "r" if numeric else "l"
    rule = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(_escape_md(str(c)) for c in columns) + " |",
             "|" + "|".join(rule[align[c]] for c in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_escape_md(format_value(r.get(c), digits)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(path: str | os.PathLike, text: str) -> Path:
    """Write markdown text atomically."""
    atomic_write_text(path, text if text.endswith("\n") else text + "\n")
    return Path(path)


def csv_text(rows: Sequence[Row], columns: Sequence[str] | None = None) -> str:
    """CSV with a header line; floats at full precision, ``None`` as an empty cell."""
    columns = list(columns) if columns is not None else columns_of(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else (float(r[c]) if isinstance(r[c], np.floating) else
                                                 int(r[c]) if isinstance(r[c], np.integer) else r[c])
                    for c in columns])
    return buf.getvalue()


def write_csv(path: str | os.PathLike, rows: Sequence[Row], columns: Sequence[str] | None = None) -> Path:
    """Write rows as CSV atomically."""
    atomic_write_text(path, csv_text(rows, columns))
    return Path(path)


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a CSV file with a header line, values as strings."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
