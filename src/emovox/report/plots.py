"""PNG plots drawn with matplotlib's non-interactive Agg canvas (safe on servers and in CI).

Every function writes one PNG atomically and returns its path:

- :func:`heatmap`: a matrix with row and column labels (confusion matrices, layer x unit
  correlation maps);
- :func:`bar_plot`: named values, optionally with error bars (e.g. fold spread);
- :func:`line_plot`: curves over a shared x axis (losses or metrics over epochs).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..utils import atomic_write_bytes

__all__ = ["heatmap", "bar_plot", "line_plot", "confusion_heatmap"]


def _figure(width: float, height: float):
    """A (figure, axes) pair drawn by the Agg canvas, without touching pyplot's global state
    (so an interactive backend chosen by the caller is left alone)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig, path: str | os.PathLike, dpi: int) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _tick_positions(n: int, max_ticks: int) -> np.ndarray:
    if n <= max_ticks:
        return np.arange(n)
    step = int(np.ceil(n / max_ticks))
    return np.arange(0, n, step)


def heatmap(matrix: Any, row_labels: Sequence[str] | None, col_labels: Sequence[str] | None,
            path: str | os.PathLike, title: str = "", fmt: str | None = None, cmap: str = "viridis",
            vmin: float | None = None, vmax: float | None = None, colorbar_label: str = "",
            xlabel: str = "", ylabel: str = "", max_ticks: int = 40, dpi: int = 120) -> Path:
    """Draw ``matrix`` (R, C) as an image; ``nan`` cells are left blank.

    ``fmt`` (e.g. ``"d"`` or ``".2f"``) writes each value in its cell; only sensible for small
    matrices. Wide matrices (e.g. 4 layers x 384 units) get a proportionate figure and thinned
    tick labels (at most ``max_ticks`` per axis). ``row_labels``/``col_labels`` of ``None`` mean
    0..R-1 / 0..C-1.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"heatmap needs a non-empty 2-D matrix, got shape {m.shape}")
    rows, cols = m.shape
    row_labels = [str(r) for r in (row_labels if row_labels is not None else range(rows))]
    col_labels = [str(c) for c in (col_labels if col_labels is not None else range(cols))]
    if len(row_labels) != rows or len(col_labels) != cols:
        raise ValueError(f"matrix is {rows}x{cols} but got {len(row_labels)} row and {len(col_labels)} column labels")
    width = float(np.clip(2.5 + 0.45 * cols, 5.0, 18.0))
    height = float(np.clip(1.5 + 0.45 * rows, 2.5, 12.0))
    fig, ax = _figure(width, height)
    masked = np.ma.masked_invalid(m)
    im = ax.imshow(masked, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax)
    if colorbar_label:
        cbar.set_label(colorbar_label)
    xt, yt = _tick_positions(cols, max_ticks), _tick_positions(rows, max_ticks)
    ax.set_xticks(xt, [col_labels[i] for i in xt], rotation=45 if cols <= max_ticks else 90, ha="right")
    ax.set_yticks(yt, [row_labels[i] for i in yt])
    if fmt is not None:
        for i in range(rows):
            for j in range(cols):
                if np.isfinite(m[i, j]):
                    text = format(int(round(m[i, j])), fmt) if fmt == "d" else format(m[i, j], fmt)
                    r, g, b, _ = im.cmap(im.norm(m[i, j]))
                    dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # text readable on the cell colour
                    ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _save(fig, path, dpi)


def confusion_heatmap(confusion: Any, labels: Sequence[str], path: str | os.PathLike, title: str = "",
                      normalize: bool = False) -> Path:
    """A confusion matrix (rows true, columns predicted); ``normalize`` shows row fractions."""
    m = np.asarray(confusion, dtype=np.float64)
    if normalize:
        m = m / np.clip(m.sum(1, keepdims=True), 1, None)
    return heatmap(m, labels, labels, path, title=title, fmt=".2f" if normalize else "d", cmap="Blues",
                   xlabel="predicted", ylabel="true")


def bar_plot(values: Mapping[str, float] | Sequence[float], path: str | os.PathLike,
             labels: Sequence[str] | None = None, errors: Mapping[str, float] | Sequence[float] | None = None,
             title: str = "", ylabel: str = "", ylim: tuple[float, float] | None = None,
             dpi: int = 120) -> Path:
    """Bars for named values; ``errors`` (same keys/order) draw error bars (e.g. fold std)."""
    if isinstance(values, Mapping):
        labels = list(values.keys())
        heights = [float(values[k]) for k in labels]
        if isinstance(errors, Mapping):
            errors = [float(errors.get(k, 0.0)) for k in labels]
    else:
        heights = [float(v) for v in values]
        labels = [str(x) for x in (labels if labels is not None else range(len(heights)))]
    if not heights:
        raise ValueError("bar_plot needs at least one value")
    if len(labels) != len(heights):
        raise ValueError(f"{len(heights)} values but {len(labels)} labels")
    if errors is not None and len(errors) != len(heights):
        raise ValueError(f"{len(heights)} values but {len(errors)} errors")
    fig, ax = _figure(float(np.clip(1.5 + 0.6 * len(heights), 4.0, 16.0)), 4.0)
    x = np.arange(len(heights))
    ax.bar(x, heights, yerr=errors, capsize=3 if errors is not None else 0, color="tab:blue")
    ax.set_xticks(x, labels, rotation=30 if len(heights) > 4 else 0, ha="right" if len(heights) > 4 else "center")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path, dpi)


def line_plot(curves: Mapping[str, Sequence[float]], path: str | os.PathLike, x: Sequence[float] | None = None,
              title: str = "", xlabel: str = "epoch", ylabel: str = "", logy: bool = False,
              dpi: int = 120) -> Path:
    """One line per named curve (e.g. ``{"train loss": [...], "validation loss": [...]}``).

    ``x`` defaults to 1..N for each curve (epochs); curves may have different lengths.
    """
    if not curves:
        raise ValueError("line_plot needs at least one curve")
    fig, ax = _figure(6.0, 4.0)
    for name, ys in curves.items():
        ys = np.asarray(ys, dtype=np.float64)
        xs = np.asarray(x, dtype=np.float64)[: len(ys)] if x is not None else np.arange(1, len(ys) + 1)
        ax.plot(xs, ys, label=str(name), marker="o" if len(ys) <= 30 else None, markersize=3)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path, dpi)
