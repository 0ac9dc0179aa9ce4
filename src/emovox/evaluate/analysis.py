"""Analysis tools of Tits et al. (2018): Fisher scores, top-k unit selection from chosen layers,
and per-speaker correlation of every unit with a numeric target.

Neural features are the pooled per-layer encoder outputs, an array ``(N, L, D)``: N utterances,
L layers (input side first), D units a layer. Flattened to ``(N, L * D)`` column ``l * D + d`` is
unit d of layer l (:func:`layer_columns`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["fisher_scores", "discretize", "parse_layers", "layer_columns", "select_top_k",
           "unit_correlations", "per_speaker_correlations", "correlation_heatmap"]


# ---------------------------------------------------------------------------- Fisher score
def discretize(y: Any, bins: int = 5) -> np.ndarray:
    """Class codes (N,) for a numeric target, so that a Fisher score can rank features for it.

    Tits et al. score features with the Fisher criterion, which needs classes; a continuous
    target is therefore cut into ``bins`` classes of (about) equal frequency at its quantiles.
    A target with at most ``bins`` distinct values (e.g. an ordinal level 0/1/2 or annotations
    on an integer scale) keeps one class per value.
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(y)):
        raise ValueError("discretize: the target holds nan or inf")
    values = np.unique(y)
    if values.size <= bins:
        return np.searchsorted(values, y)
    edges = np.unique(np.quantile(y, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, y, side="right")


def fisher_scores(x: Any, classes: Any) -> np.ndarray:
    """Fisher score of every feature (column) of ``x`` (N, F) for class labels (N,)::

        F_j = sum_c n_c (mu_cj - mu_j)^2 / sum_c n_c var_cj

    (between-class scatter over within-class scatter; population variances). A feature that is
    constant everywhere scores 0; one that is constant within classes but differs between them
    scores ``inf``. Returns (F,) float64.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"fisher_scores needs (N, F) features, got shape {x.shape}")
    labels = np.asarray(classes).reshape(-1)
    if labels.shape[0] != x.shape[0]:
        raise ValueError(f"{x.shape[0]} feature rows but {labels.shape[0]} class labels")
    _, codes = np.unique(labels, return_inverse=True)
    mu = x.mean(0)
    between = np.zeros(x.shape[1])
    within = np.zeros(x.shape[1])
    for c in range(codes.max() + 1):
        xc = x[codes == c]
        n = xc.shape[0]
        between += n * (xc.mean(0) - mu) ** 2
        within += n * xc.var(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = between / within
    # tiny between-class scatter from rounding on constant columns is not information
    scale = np.maximum(np.abs(mu), 1.0) ** 2 * x.shape[0] * 1e-20
    scores[between <= scale] = 0.0
    return scores


# ---------------------------------------------------------------------------- layers
def parse_layers(spec: str | Sequence[int], num_layers: int) -> list[int]:
    """Layer indices (0 = input side) for a specification:

    ``"all"``; ``"firstN"`` / ``"lastN"`` (e.g. ``"first3"``, ``"last3"``, the paper's sets);
    ``"middle"`` (all but the first and last); ``"N"`` (one layer; negative counts from the end);
    ``"A-B"`` (inclusive range); a comma-separated list of these; or a sequence of ints.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if not isinstance(spec, str):
        items = [int(i) for i in spec]
    else:
        items = []
        for part in (p.strip().lower() for p in spec.split(",")):
            if part == "all":
                items += list(range(num_layers))
            elif part == "middle":
                items += list(range(1, num_layers - 1)) or list(range(num_layers))
            elif m := re.fullmatch(r"(first|last)(\d+)", part):
                n = min(int(m.group(2)), num_layers)
                if n < 1:
                    raise ValueError(f"layer set {part!r} selects no layer")
                items += list(range(n)) if m.group(1) == "first" else list(range(num_layers - n, num_layers))
            elif m := re.fullmatch(r"(-?\d+)-(-?\d+)", part):
                items += list(range(int(m.group(1)), int(m.group(2)) + 1))
            elif re.fullmatch(r"-?\d+", part):
                items.append(int(part))
            else:
                raise ValueError(f"unknown layer specification {part!r} (use all, firstN, lastN, middle, N, A-B)")
    out: list[int] = []
    for i in items:
        j = i + num_layers if i < 0 else i
        if not 0 <= j < num_layers:
            raise ValueError(f"layer {i} out of range for an encoder with {num_layers} layers")
        if j not in out:
            out.append(j)
    return sorted(out)


def layer_columns(layers: Sequence[int], dim: int) -> np.ndarray:
    """Columns of the flattened (N, L * dim) features that belong to ``layers``."""
    return np.concatenate([np.arange(l * dim, (l + 1) * dim) for l in layers]) if len(layers) else np.zeros(0, int)


def select_top_k(scores: Any, k: int, columns: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` highest scores among ``columns`` (all when None), best first.

    ``nan`` scores rank last; ties keep the lower index first. Fewer than ``k`` columns -> all.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    cols = np.arange(s.size) if columns is None else np.asarray(columns, dtype=np.int64)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    vals = np.where(np.isnan(s[cols]), -np.inf, s[cols])
    order = np.argsort(-vals, kind="stable")
    return cols[order[:k]]


# ---------------------------------------------------------------------------- correlations
def unit_correlations(features: Any, target: Any) -> np.ndarray:
    """Pearson correlation of every unit with a numeric target.

    ``features`` (N, ...) -> correlations with the trailing shape (e.g. (L, D)); ``nan`` where a
    unit (or the target) is constant.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64).reshape(-1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0]} feature rows but {y.shape[0]} target values")
    shape = x.shape[1:]
    x = x.reshape(x.shape[0], -1)
    xc = x - x.mean(0)
    yc = y - y.mean()
    denom = np.sqrt((xc ** 2).sum(0) * (yc ** 2).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (xc * yc[:, None]).sum(0) / denom
    r[(np.ptp(x, axis=0) == 0) | (np.ptp(y) == 0)] = np.nan
    return np.clip(r, -1.0, 1.0).reshape(shape)


def per_speaker_correlations(features: Any, target: Any, speakers: Sequence[str],
                             min_utterances: int = 3) -> dict[str, np.ndarray]:
    """For each speaker with at least ``min_utterances`` utterances (and a non-constant
    target), the Pearson correlation of every unit with the target over that speaker's
    utterances: ``{speaker: (L, D)}`` for features (N, L, D)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64).reshape(-1)
    spk = np.asarray(list(speakers), dtype=object)
    if not (x.shape[0] == y.shape[0] == spk.shape[0]):
        raise ValueError(f"{x.shape[0]} feature rows, {y.shape[0]} targets, {spk.shape[0]} speakers")
    out: dict[str, np.ndarray] = {}
    for s in sorted(set(spk.tolist()), key=str):
        m = spk == s
        if m.sum() < min_utterances or np.ptp(y[m]) == 0:
            continue
        out[str(s)] = unit_correlations(x[m], y[m])
    return out


def correlation_heatmap(corr: Any, path: str | os.PathLike, title: str = "",
                        layer_names: Sequence[str] | None = None) -> Path:
    """Draw a (layers, units) correlation map as a PNG (diverging colours, fixed range -1..1)."""
    from ..report.plots import heatmap

    c = np.asarray(corr, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"correlation map must be (layers, units), got shape {c.shape}")
    rows = list(layer_names) if layer_names is not None else [f"layer {i}" for i in range(c.shape[0])]
    return heatmap(c, rows, None, path, title=title, cmap="RdBu_r", vmin=-1.0, vmax=1.0,
                   colorbar_label="Pearson r", xlabel="unit", ylabel="layer", max_ticks=16)
