"""Evaluation metrics for emotion recognition: numpy (or lists) in, python ``float`` out.

Regression (dimensional attributes): :func:`mse`, :func:`ccc`, :func:`pearson`.
Classification (categories): :func:`unweighted_average_recall` (UA, the mean of per-class
recalls), :func:`weighted_accuracy` (WA, the overall accuracy, as the SER literature uses the
name), :func:`weighted_f1` (per-class F1 weighted by support), :func:`confusion_matrix` (fixed
label order), :func:`roc_auc` (binary, or one-vs-rest macro over 3 sentiment classes from
probabilities). :func:`classification_summary` and :func:`regression_summary` give all of them
at once as a dict.

:func:`compute_metrics` is what every recipe reports, with fixed names: ``ua``, ``wa``,
``weighted_f1`` for a categorical target; ``ccc_<attribute>``, ``mse_<attribute>``,
``pearson_<attribute>`` for each regression column, and ``ccc``, their mean CCC.

Labels may be any hashable values (strings or integers). When ``labels`` is given it fixes the
class order; otherwise the sorted union of the values seen is used.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = [
    "mse", "mae", "ccc", "pearson", "spearman",
    "unweighted_average_recall", "weighted_accuracy", "weighted_f1", "macro_f1",
    "per_class", "confusion_matrix", "roc_auc",
    "classification_summary", "regression_summary", "compute_metrics", "METRIC_NAMES",
]

METRIC_NAMES = ("ua", "wa", "weighted_f1", "ccc")
"""The metric names of :func:`compute_metrics` besides the per-attribute ones."""


# ---------------------------------------------------------------------------- helpers
def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two flat float64 arrays of the same, non-zero length."""
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}")
    if t.size == 0:
        raise ValueError("metrics need at least one value, got none")
    return t, p


def _labels(y_true: Sequence, y_pred: Sequence | None, labels: Sequence | None) -> list:
    if labels is not None:
        labels = list(labels)
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels contain duplicates: {labels}")
        return labels
    seen = set(np.asarray(y_true).reshape(-1).tolist())
    if y_pred is not None:
        seen |= set(np.asarray(y_pred).reshape(-1).tolist())
    return sorted(seen)


def _codes(values: Sequence, labels: list, what: str) -> np.ndarray:
    index = {v: i for i, v in enumerate(labels)}
    flat = np.asarray(values).reshape(-1).tolist()
    try:
        return np.fromiter((index[v] for v in flat), dtype=np.int64, count=len(flat))
    except KeyError as e:
        raise ValueError(f"{what} holds {e.args[0]!r}, which is not one of the labels {labels}") from None


# ---------------------------------------------------------------------------- regression
def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean((t - p) ** 2))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def pearson(x: Any, y: Any) -> float:
    """Pearson correlation; ``nan`` when either side is constant (undefined)."""
    a, b = _pair(x, y)
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    if denom == 0.0:
        return float("nan")
    return float(np.clip((a @ b) / denom, -1.0, 1.0))


def spearman(x: Any, y: Any) -> float:
    """Spearman rank correlation (Pearson of average ranks, ties shared)."""
    from scipy.stats import rankdata

    a, b = _pair(x, y)
    return pearson(rankdata(a), rankdata(b))


def ccc(y_true: Any, y_pred: Any) -> float:
    """Lin's concordance correlation coefficient with population (biased) moments::

        CCC = 2 cov(t, p) / (var(t) + var(p) + (mean(t) - mean(p))^2)

    1.0 when both sides are the same constant, 0.0 when only the prediction is constant.
    """
    t, p = _pair(y_true, y_pred)
    mt, mp = t.mean(), p.mean()
    cov = np.mean((t - mt) * (p - mp))
    denom = t.var() + p.var() + (mt - mp) ** 2
    if denom == 0.0:
        return 1.0
    return float(2.0 * cov / denom)


def regression_summary(y_true: Any, y_pred: Any) -> dict[str, float]:
    """``{"ccc", "mse", "mae", "pearson"}`` for one attribute."""
    return {"ccc": ccc(y_true, y_pred), "mse": mse(y_true, y_pred), "mae": mae(y_true, y_pred),
            "pearson": pearson(y_true, y_pred)}


# ---------------------------------------------------------------------------- classification
def confusion_matrix(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> np.ndarray:
    """(C, C) int64 counts: row = true class, column = predicted class, in ``labels`` order."""
    labels = _labels(y_true, y_pred, labels)
    t = _codes(y_true, labels, "y_true")
    p = _codes(y_pred, labels, "y_pred")
    if t.size != p.size:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}")
    if t.size == 0:
        raise ValueError("metrics need at least one value, got none")
    c = len(labels)
    return np.bincount(t * c + p, minlength=c * c).reshape(c, c).astype(np.int64)


def per_class(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> dict[Any, dict[str, float]]:
    """Precision, recall, F1 and support per class (0.0 where a ratio's denominator is 0)."""
    labels = _labels(y_true, y_pred, labels)
    cm = confusion_matrix(y_true, y_pred, labels)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1).astype(np.float64)
    predicted = cm.sum(0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {lab: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                  "support": int(support[i])} for i, lab in enumerate(labels)}


def unweighted_average_recall(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> float:
    """UA: the mean recall over the classes that occur in ``y_true`` (sklearn's
    ``balanced_accuracy_score``). Chance level is 1 / number of classes."""
    stats = per_class(y_true, y_pred, labels)
    recalls = [s["recall"] for s in stats.values() if s["support"] > 0]
    return float(np.mean(recalls))


def weighted_accuracy(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> float:
    """WA: overall accuracy (per-class recall weighted by class frequency)."""
    cm = confusion_matrix(y_true, y_pred, labels)
    return float(np.trace(cm) / cm.sum())


def weighted_f1(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> float:
    """Per-class F1 averaged with weights equal to each class' support in ``y_true``."""
    stats = per_class(y_true, y_pred, labels)
    support = np.array([s["support"] for s in stats.values()], dtype=np.float64)
    f1 = np.array([s["f1"] for s in stats.values()])
    return float((f1 * support).sum() / support.sum())


def macro_f1(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> float:
    """Unweighted mean of per-class F1 over the classes in ``labels`` (or seen)."""
    return float(np.mean([s["f1"] for s in per_class(y_true, y_pred, labels).values()]))


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count one half)."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc(y_true: Sequence, scores: Any, labels: Sequence | None = None) -> float:
    """Area under the ROC curve.

    Binary: ``scores`` is (N,) (score of the positive class, which is ``labels[1]``, or the
    larger label / ``True`` / 1 when ``labels`` is not given) or (N, 2) probabilities.
    Multi-class: ``scores`` is (N, C) probabilities in ``labels`` order; the result is the
    one-vs-rest macro average over the classes present in ``y_true`` and absent from nowhere
    (a class with no positive or no negative example is skipped). ``nan`` when no class can
    be scored.
    """
    s = np.asarray(scores, dtype=np.float64)
    n = len(np.asarray(y_true).reshape(-1))
    if s.shape[0] != n:
        raise ValueError(f"y_true has {n} values but scores has {s.shape[0]} rows")
    if s.ndim == 1 or (s.ndim == 2 and s.shape[1] == 1):
        labels = _labels(y_true, None, labels)
        if len(labels) > 2:
            raise ValueError(f"1-D scores need a binary target, got labels {labels}")
        if len(labels) == 1:
            return float("nan")
        t = _codes(y_true, labels, "y_true")
        return _binary_auc(t == 1, s.reshape(-1))
    if s.ndim != 2:
        raise ValueError(f"scores must be (N,) or (N, C), got shape {s.shape}")
    if labels is None:
        labels = _labels(y_true, None, None)
        if len(labels) != s.shape[1]:
            raise ValueError(f"scores has {s.shape[1]} columns but y_true holds {len(labels)} classes "
                             f"{labels}; pass labels= in column order")
    labels = list(labels)
    if len(labels) != s.shape[1]:
        raise ValueError(f"scores has {s.shape[1]} columns but {len(labels)} labels were given")
    t = _codes(y_true, labels, "y_true")
    if s.shape[1] == 2:
        return _binary_auc(t == 1, s[:, 1])
    aucs = [_binary_auc(t == c, s[:, c]) for c in range(len(labels))]
    aucs = [a for a in aucs if not math.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def classification_summary(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None,
                           scores: Any = None) -> dict[str, Any]:
    """Everything at once, JSON-ready: ``ua``, ``wa``, ``weighted_f1``, ``macro_f1``, ``auc``
    (when ``scores`` are given), ``labels``, ``confusion`` (nested list) and ``per_class``."""
    labels = _labels(y_true, y_pred, labels)
    out: dict[str, Any] = {
        "ua": unweighted_average_recall(y_true, y_pred, labels),
        "wa": weighted_accuracy(y_true, y_pred, labels),
        "weighted_f1": weighted_f1(y_true, y_pred, labels),
        "macro_f1": macro_f1(y_true, y_pred, labels),
    }
    if scores is not None:
        out["auc"] = roc_auc(y_true, scores, labels)
    out["labels"] = [lab if isinstance(lab, (str, int, float, bool)) else str(lab) for lab in labels]
    out["confusion"] = confusion_matrix(y_true, y_pred, labels).tolist()
    out["per_class"] = {str(k): v for k, v in per_class(y_true, y_pred, labels).items()}
    return out


# ---------------------------------------------------------------------------- every recipe's metrics
def compute_metrics(y_true: Any = None, y_pred: Any = None, num_classes: int | None = None,
                    a_true: Any = None, a_pred: Any = None, attributes: Sequence[str] = ()) -> dict[str, float]:
    """The metrics every recipe reports, under fixed names.

    Categories: ``y_true`` (N,) class indices (negative = no label, left out), ``y_pred`` (N,)
    predicted indices or (N, C) scores (argmax taken), ``num_classes`` the size of the class
    list -> ``ua``, ``wa``, ``weighted_f1``. Regression: ``a_true`` (N, K) with NaN where a value
    is missing, ``a_pred`` (N, K), ``attributes`` the K column names -> ``ccc_<name>``,
    ``mse_<name>``, ``pearson_<name>`` (CCC and Pearson NaN with fewer than 2 values) and
    ``ccc``, the mean of the finite per-column CCCs. NaN is what a metric is where it is
    undefined; writers turn it into JSON ``null``.
    """
    out: dict[str, float] = {}
    if y_true is not None and y_pred is not None:
        t = np.asarray(y_true).reshape(-1).astype(np.int64)
        p = np.asarray(y_pred)
        p = (p.argmax(-1) if p.ndim == 2 else p.reshape(-1)).astype(np.int64)
        keep = t >= 0
        classes = list(range(int(num_classes if num_classes is not None else max(t.max(), p.max()) + 1)))
        if keep.any():
            out.update(ua=unweighted_average_recall(t[keep], p[keep], classes),
                       wa=weighted_accuracy(t[keep], p[keep], classes),
                       weighted_f1=weighted_f1(t[keep], p[keep], classes))
        else:
            out.update(ua=math.nan, wa=math.nan, weighted_f1=math.nan)
    if a_true is not None and a_pred is not None and len(attributes):
        t = np.asarray(a_true, dtype=np.float64).reshape(-1, len(attributes))
        p = np.asarray(a_pred, dtype=np.float64).reshape(-1, len(attributes))
        if t.shape != p.shape or t.shape[1] != len(attributes):
            raise ValueError(f"a_true {t.shape}, a_pred {p.shape} and {len(attributes)} attribute names disagree")
        cccs = []
        for k, name in enumerate(attributes):
            keep = ~np.isnan(t[:, k])
            n = int(keep.sum())
            out[f"ccc_{name}"] = ccc(t[keep, k], p[keep, k]) if n >= 2 else math.nan
            out[f"mse_{name}"] = mse(t[keep, k], p[keep, k]) if n else math.nan
            out[f"pearson_{name}"] = pearson(t[keep, k], p[keep, k]) if n >= 2 else math.nan
            cccs.append(out[f"ccc_{name}"])
        finite = [c for c in cccs if math.isfinite(c)]
        out["ccc"] = float(np.mean(finite)) if finite else math.nan
    return out
