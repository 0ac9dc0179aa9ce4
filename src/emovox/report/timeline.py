"""A PNG timeline of one recording's segment records (``emovox predict --plot``).

Drawn on matplotlib's Agg canvas without pyplot, like :mod:`emovox.report.plots`, so a
backend chosen by the caller (an interactive one in a notebook) is left alone.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..utils import atomic_write_bytes

if TYPE_CHECKING:  # records are read by attribute only: report stays below the product path
    from ..records import SegmentRecord

__all__ = ["plot_timeline"]


def plot_timeline(records: Sequence["SegmentRecord"], path: str | os.PathLike, title: str = "") -> Path:
    """A PNG timeline of one recording: valence and arousal per segment (steps over time) and
    the emotion category of each segment as coloured spans."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    labels = sorted({l for r in records for l in r.emotion.probs}) or ["none"]
    cmap = colormaps["tab10"]
    colours = {l: cmap(i % 10) for i, l in enumerate(labels)}
    end = max((r.end for r in records), default=1.0)
    fig = Figure(figsize=(max(8.0, min(24.0, end / 10)), 5))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for key, style, colour in (("valence", "-", "C0"), ("arousal", "--", "C3")):
        points = [r for r in records if getattr(r, key) is not None]
        for j, r in enumerate(points):
            ax1.plot([r.start, r.end], [getattr(r, key)] * 2, style, color=colour, lw=2,
                     label=key if j == 0 else None)
    ax1.axhline(0, color="grey", lw=0.5)
    ax1.set_ylim(-1.05, 1.05)
    ax1.set_ylabel("value")
    if any(r.valence is not None or r.arousal is not None for r in records):
        ax1.legend(loc="upper right")
    for r in records:
        ax2.axvspan(r.start, r.end, color=colours[r.emotion.label], alpha=0.8)
    handles = [Rectangle((0, 0), 1, 1, color=colours[l]) for l in labels]
    ax2.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=min(len(labels), 8),
               fontsize="small", frameon=False)
    ax2.set_yticks([])
    ax2.set_xlabel("time (s)")
    ax2.set_xlim(0, end)
    ax1.set_title(title or (records[0].file if records else ""))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path
