"""A PNG timeline of one recording's segment records (``emovox predict --plot``).

Two panels over time: valence (solid) and arousal (dashed) per segment as black steps, and the
emotion category of each segment as a band coloured from :mod:`emovox.report.palette` (anger
red, sadness blue, happiness amber, neutral grey ...), each span labelled with the start of its
transcript where the text fits (:func:`fit_snippet`: up to two lines, whole or cut after a word
with an ellipsis, left out when the span is too narrow for a few characters).

Drawn on matplotlib's Agg canvas without pyplot, like :mod:`emovox.report.plots`, so a
backend chosen by the caller (an interactive one in a notebook) is left alone.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..utils import atomic_write_bytes
from .palette import emotion_colour, text_colour

if TYPE_CHECKING:  # records are read by attribute only: report stays below the product path
    from ..records import SegmentRecord

__all__ = ["plot_timeline", "fit_snippet", "ELLIPSIS"]

ELLIPSIS = "\u2026"
SNIPPET_FONT_SIZE = 8.0
"""Points; the transcript snippets in the emotion band."""
SNIPPET_PAD = 3.0
"""Pixels left free at each end of a span."""
SNIPPET_LINES = 2
DPI = 100


def fit_snippet(text: str | None, width: float, measure: Callable[[str], float], lines: int = 1,
                min_chars: int = 3) -> str | None:
    """``text`` as it fits in ``lines`` lines of ``width`` (``measure(s)``: the width ``s`` takes,
    in the same unit), lines joined by ``"\n"``.

    Whitespace is collapsed and words fill the lines in turn; what does not fit ends, on the last
    line, in :data:`ELLIPSIS`, cut after a whole word when that keeps at least half of the line.
    None when the text is empty or not even ``min_chars`` characters and the ellipsis fit."""
    words = (text or "").split()
    if not words or width <= 0 or lines < 1:
        return None
    out: list[str] = []
    while words and len(out) < lines - 1:  # fill all lines but the last with whole words
        line = words[0]
        if measure(line) > width:
            break
        n = 1
        while n < len(words) and measure(f"{line} {words[n]}") <= width:
            line = f"{line} {words[n]}"
            n += 1
        out.append(line)
        words = words[n:]
    if words:  # the rest, on the last line: whole, or cut with the ellipsis (moved up a line if need be)
        last = _one_line(" ".join(words), width, measure, min_chars)
        if last is None and out:
            last = _one_line(out.pop() + " " + " ".join(words), width, measure, min_chars)
        if last is None:  # never a text cut short without its ellipsis
            return None
        out.append(last)
    return "\n".join(out)


def _one_line(text: str, width: float, measure: Callable[[str], float], min_chars: int) -> str | None:
    if measure(text) <= width:
        return text

    def cut(n: int) -> str:
        return text[:n].rstrip(" ,;:.-") + ELLIPSIS

    lo, hi = 0, len(text) - 1  # the longest prefix whose cut fits: measure grows with n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(cut(mid)) <= width:
            lo = mid
        else:
            hi = mid - 1
    if len(text[:lo].rstrip(" ,;:.-")) < min_chars:
        return None
    space = text.rfind(" ", 0, lo + 1)
    if space >= lo / 2 and len(text[:space].rstrip(" ,;:.-")) >= min_chars:
        return cut(space)
    return cut(lo)


def _labels(records: Sequence["SegmentRecord"]) -> list[str]:
    """The model's labels in its own order (from the records' probabilities), then any other used."""
    out: list[str] = []
    for r in records:
        for label in (*r.emotion.probs, r.emotion.label):
            if label and label not in out:
                out.append(label)
    return out or ["none"]


def plot_timeline(records: Sequence["SegmentRecord"], path: str | os.PathLike, title: str = "") -> Path:
    """A PNG timeline of one recording: valence and arousal per segment (steps over time), and
    the emotion category of each segment as a coloured span labelled with its transcript."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    labels = _labels(records)
    end = max((r.end for r in records), default=1.0)
    fig = Figure(figsize=(max(10.0, min(24.0, end / 5)), 5), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    for key, style in (("valence", "-"), ("arousal", "--")):
        for r in records:
            if getattr(r, key) is not None:
                ax1.plot([r.start, r.end], [getattr(r, key)] * 2, style, color="#1d2330", lw=2)
    ax1.axhline(0, color="#b0b0b0", lw=0.6)
    ax1.set_ylim(-1.05, 1.05)
    ax1.set_ylabel("value")
    ax1.grid(axis="x", alpha=0.25)
    if any(r.valence is not None or r.arousal is not None for r in records):
        ax1.legend([Line2D([], [], color="#1d2330", lw=2, ls=s) for s in ("-", "--")], ["valence", "arousal"],
                   loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize="small", frameon=False)
    for r in records:
        ax2.axvspan(r.start, r.end, color=emotion_colour(r.emotion.label), ec="white", lw=0.8)
    handles = [Rectangle((0, 0), 1, 1, color=emotion_colour(label)) for label in labels]
    ax2.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.5), ncol=min(len(labels), 8),
               fontsize="small", frameon=False)
    ax2.set_yticks([])
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("time (s)")
    ax2.set_xlim(0, end)
    ax1.set_title(title or (records[0].file if records else ""))
    fig.tight_layout()
    _snippets(ax2, records, canvas.get_renderer(), FontProperties(size=SNIPPET_FONT_SIZE))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _snippets(ax, records: Sequence["SegmentRecord"], renderer, font) -> None:
    """Each span's transcript where it fits (measured in pixels with the font drawn)."""
    box = ax.get_window_extent(renderer)
    x0, x1 = ax.get_xlim()
    per_second = box.width / max(x1 - x0, 1e-9)

    def measure(s: str) -> float:
        return renderer.get_text_width_height_descent(s, font, ismath=False)[0]

    for r in records:
        width = (min(r.end, x1) - max(r.start, x0)) * per_second - 2 * SNIPPET_PAD
        snippet = fit_snippet(r.transcript, width, measure, lines=SNIPPET_LINES)
        if snippet:
            ax.text(max(r.start, x0) + SNIPPET_PAD / per_second, 0.5, snippet, fontproperties=font, va="center",
                    ha="left", color=text_colour(emotion_colour(r.emotion.label)), clip_on=True, linespacing=1.3,
                    parse_math=False)
