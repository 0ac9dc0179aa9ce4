"""Text sentiment against speech emotion (Table 1 of Ghriss et al., ICASSP 2022).

Given a labelled manifest (``emovox label``), count how the proxy text sentiment of each
utterance (negative / neutral / positive) falls against a categorical label of the speech
(``emotion``, or any other such as BAVED's ``level``), and measure their agreement with the
Spearman rank correlation after grouping the label's classes into negative (-1), neutral (0)
and positive (+1). The grouping is configurable; :data:`DEFAULT_GROUPS` covers the common
emotion names of the supported corpora and BAVED's ordinal levels (low / neutral / high, which
are arousal-like: read the correlation as "sentiment vs level" rather than vs valence).

Classes without a group (e.g. ``surprised`` is deliberately left neutral by default, ``other``
unmapped) still appear in the confusion counts but not in the correlation.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..manifest import SENTIMENTS, Manifest

GROUP_VALUE = {"negative": -1, "neutral": 0, "positive": 1}

DEFAULT_GROUPS: dict[str, str] = {
    # negative valence
    **dict.fromkeys(["angry", "anger", "ang", "sad", "sadness", "fear", "fearful", "fea", "disgust", "disgusted",
                     "dis", "contempt", "con", "frustrated", "frustration", "fru", "bored", "boredom"], "negative"),
    # neutral
    **dict.fromkeys(["neutral", "neu", "calm", "surprised", "surprise", "sur"], "neutral"),
    # positive valence
    **dict.fromkeys(["happy", "happiness", "hap", "joy", "excited", "excitement", "exc", "pleasant_surprise",
                     "pleasant surprise", "ps", "amused", "content"], "positive"),
    # BAVED levels (ordinal, arousal-like)
    "low": "negative", "high": "positive",
}


@dataclass
class SentimentEmotionTable:
    """Counts ``counts[i][j]`` of label class ``classes[i]`` with sentiment ``SENTIMENTS[j]``."""

    label: str
    classes: list[str]
    counts: list[list[int]]
    groups: dict[str, str]  # class -> negative/neutral/positive, for the classes that have one
    grouped_counts: list[list[int]]  # 3 x 3: label group x sentiment
    spearman: float  # label group (-1/0/1) vs sentiment label (-1/0/1)
    spearman_p: float
    spearman_score: float  # label group vs P(pos) - P(neg)
    spearman_score_p: float
    n: int  # utterances counted
    n_correlated: int  # utterances whose class has a group
    skipped: int  # without sentiment or without the label
    labeler: str | None = None
    transcriber: str | None = None
    corpus: str = ""
    unmapped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sentiments"] = list(SENTIMENTS)
        return d

    def markdown(self) -> str:
        """The confusion counts (with row percentages), the grouped table and the correlations."""
        head = f"| {self.label} | n | " + " | ".join(SENTIMENTS) + " |"
        lines = [head, "|---|---:|" + "---:|" * 3]
        for c, row in zip(self.classes, self.counts):
            total = sum(row)
            cells = [f"{v} ({100 * v / total:.0f}%)" if total else "0" for v in row]
            group = self.groups.get(c)
            name = f"{c} ({group})" if group else f"{c} (unmapped)"
            lines.append(f"| {name} | {total} | " + " | ".join(cells) + " |")
        lines += ["", f"| {self.label} group | n | " + " | ".join(SENTIMENTS) + " |", "|---|---:|" + "---:|" * 3]
        for g, row in zip(SENTIMENTS, self.grouped_counts):
            total = sum(row)
            cells = [f"{v} ({100 * v / total:.0f}%)" if total else "0" for v in row]
            lines.append(f"| {g} | {total} | " + " | ".join(cells) + " |")
        lines += ["", f"Spearman rho ({self.label} group vs sentiment label): {_fmt(self.spearman)} "
                      f"(p = {_fmt_p(self.spearman_p)}, n = {self.n_correlated})",
                  f"Spearman rho ({self.label} group vs P(pos) - P(neg)): {_fmt(self.spearman_score)} "
                  f"(p = {_fmt_p(self.spearman_score_p)})"]
        if self.skipped:
            lines.append(f"{self.skipped} utterances skipped (no sentiment or no {self.label}).")
        return "\n".join(lines) + "\n"

    def plot(self, path: str | os.PathLike, title: str | None = None) -> Path:
        """Heatmap PNG of the row-normalised counts, each cell annotated with the fraction."""
        from ..report.plots import heatmap

        m = np.asarray(self.counts, dtype=np.float64)
        frac = m / np.maximum(m.sum(1, keepdims=True), 1)
        rows = [f"{c} (n={int(t)})" for c, t in zip(self.classes, m.sum(1))]
        title = title or (f"{self.corpus + ': ' if self.corpus else ''}text sentiment vs {self.label}"
                          f" (rho={_fmt(self.spearman)})")
        return heatmap(frac, rows, list(SENTIMENTS), path, title=title, fmt=".2f", vmin=0, vmax=1,
                       colorbar_label="fraction of the row", xlabel=f"text sentiment ({self.labeler or '?'})",
                       ylabel=self.label)


def _fmt(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3f}"


def _fmt_p(p: float) -> str:
    return "n/a" if p is None or not math.isfinite(p) else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")


def _spearman(a: list[float], b: list[float]) -> tuple[float, float]:
    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return float("nan"), float("nan")
    from scipy.stats import spearmanr

    r = spearmanr(a, b)
    return float(r.statistic), float(r.pvalue)


def sentiment_vs_label(manifest: Manifest, label: str = "emotion",
                       groups: Mapping[str, str] | None = None) -> SentimentEmotionTable:
    """Build the table for ``label`` (a field or an ``extra`` key). ``groups`` overrides or adds
    class -> negative/neutral/positive entries on top of :data:`DEFAULT_GROUPS` (a value of
    ``None`` or "" removes a class from the correlation)."""
    merged = {k.lower(): v for k, v in DEFAULT_GROUPS.items()}
    for k, v in (groups or {}).items():
        if v and v not in GROUP_VALUE:
            raise ValueError(f"group of {k!r} must be one of {list(GROUP_VALUE)}, not {v!r}")
        merged[k.lower()] = v
    rows = [(str(r.get(label)), r) for r in manifest if r.get(label) is not None and r.sentiment in SENTIMENTS]
    skipped = len(manifest) - len(rows)
    if not rows:
        raise ValueError(f"no utterance has both a sentiment and a {label!r} label "
                         f"(run 'emovox label' first; labels present: {sorted(manifest.labels)})")
    vocab = [c for c in manifest.labels.get(label, [])]
    seen = Counter(c for c, _ in rows)
    classes = [c for c in vocab if seen[c]] + sorted(c for c in seen if c not in vocab)
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), 3), dtype=int)
    grouped = np.zeros((3, 3), dtype=int)
    xs, ys, scores = [], [], []
    cls_groups = {c: merged.get(c.lower()) for c in classes}
    cls_groups = {c: g for c, g in cls_groups.items() if g}
    for c, r in rows:
        j = SENTIMENTS.index(r.sentiment)
        counts[index[c], j] += 1
        g = cls_groups.get(c)
        if g:
            grouped[SENTIMENTS.index(g), j] += 1
            xs.append(GROUP_VALUE[g])
            ys.append(j - 1)
            p = r.sentiment_probs or [0.0, 1.0, 0.0]
            scores.append(p[2] - p[0])
    rho, p = _spearman(xs, ys)
    rho_s, p_s = _spearman(xs, scores)
    meta = manifest.meta.get("labeling", {}) if isinstance(manifest.meta, dict) else {}
    labelers = Counter(r.extra.get("sentiment_labeler") for _, r in rows)
    transcribers = Counter(r.extra.get("transcriber") for _, r in rows)
    return SentimentEmotionTable(
        label=label, classes=classes, counts=counts.tolist(), groups=cls_groups, grouped_counts=grouped.tolist(),
        spearman=rho, spearman_p=p, spearman_score=rho_s, spearman_score_p=p_s, n=len(rows),
        n_correlated=len(xs), skipped=skipped,
        labeler=meta.get("labeler") or (labelers.most_common(1)[0][0] if labelers else None),
        transcriber=meta.get("transcriber") or (transcribers.most_common(1)[0][0] if transcribers else None),
        corpus=manifest.corpus, unmapped=[c for c in classes if c not in cls_groups])
