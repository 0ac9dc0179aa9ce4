"""Generic cross-validation: run a function on every fold, collect per-fold metrics and
predictions, and summarise them as mean, variance and standard deviation over folds.

Any cross-validated experiment (the Tits et al. recipe, the SUPERB probe, SA2SR fine-tuning)
uses it the same way::

    from emovox.evaluate.crossval import FoldResult, run_folds

    def one_fold(fold) -> FoldResult:
        model = fit(fold.train)
        preds = model.predict(fold.test)
        return FoldResult(fold.name, metrics={"ua": ..., "wa": ...},
                          predictions=[{"id": i, "target": t, "prediction": p}, ...])

    cv = run_folds(folds, one_fold)          # under torchrun each rank runs its share
    cv.summary()    # {"ua": {"mean": .., "var": .., "std": .., "min": .., "max": .., "n": ..}, ...}
    cv.table_row()  # {"ua": "0.612 ± 0.034", ...} for report.tables.markdown_table

Folds are anything with a ``name`` attribute (e.g. :class:`emovox.splits.Fold`). Metrics that
are ``nan`` in a fold (undefined there, e.g. a correlation on a single test utterance) are left
out of that metric's mean and counted in ``n``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import distributed
from ..report.tables import format_pm

log = logging.getLogger("emovox.evaluate.crossval")

__all__ = ["FoldResult", "CrossValResult", "summarize", "run_folds", "pooled"]


@dataclass
class FoldResult:
    """What one fold produced: its metrics, its per-utterance prediction rows (dicts with at
    least ``id``), and anything else worth keeping (``extra``: selected units, weights, ...)."""

    fold: str
    metrics: dict[str, float]
    predictions: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def summarize(per_fold: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, population variance (ddof 0), standard deviation, min, max and count of finite
    values of every metric over folds, in order of first appearance."""
    names: dict[str, None] = {}
    for m in per_fold:
        for k in m:
            names.setdefault(k, None)
    out: dict[str, dict[str, float]] = {}
    for name in names:
        vals = np.asarray([m.get(name, math.nan) for m in per_fold], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            out[name] = {"mean": math.nan, "var": math.nan, "std": math.nan, "min": math.nan,
                         "max": math.nan, "n": 0}
        else:
            out[name] = {"mean": float(vals.mean()), "var": float(vals.var()), "std": float(vals.std()),
                         "min": float(vals.min()), "max": float(vals.max()), "n": int(vals.size)}
    return out


def pooled(predictions: Sequence[Mapping[str, Any]], metric_fns: Mapping[str, Callable[[Any, Any], float]],
           target: str = "target", prediction: str = "prediction") -> dict[str, float]:
    """Metrics computed once over the predictions of all folds together (for folds too small to
    score alone, e.g. leave-one-out)."""
    t = [p[target] for p in predictions]
    y = [p[prediction] for p in predictions]
    return {name: float(fn(t, y)) for name, fn in metric_fns.items()}


@dataclass
class CrossValResult:
    """Every fold's result, in fold order."""

    folds: list[FoldResult]

    def per_fold(self) -> list[dict[str, float]]:
        return [f.metrics for f in self.folds]

    def summary(self) -> dict[str, dict[str, float]]:
        return summarize(self.per_fold())

    def predictions(self) -> list[dict[str, Any]]:
        """All folds' prediction rows, each with its ``fold`` name."""
        return [{"fold": f.fold, **p} for f in self.folds for p in f.predictions]

    def table_row(self, digits: int = 3, spread: str = "std") -> dict[str, str]:
        """``{"metric": "mean ± spread"}`` for a markdown table (``spread`` "std" or "var")."""
        return {k: format_pm(v["mean"], v[spread], digits) for k, v in self.summary().items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: summary plus per-fold metrics (predictions are written separately)."""
        return {"summary": self.summary(),
                "folds": [{"fold": f.fold, "metrics": f.metrics, **({"extra": f.extra} if f.extra else {})}
                          for f in self.folds]}


def run_folds(folds: Sequence[Any], run_fold: Callable[[Any], FoldResult], distribute: bool = True,
              on_error: str = "raise") -> CrossValResult:
    """Run ``run_fold`` on every fold and collect the results in fold order.

    Under ``torchrun`` with an initialised process group (``distribute=True``), rank r runs
    folds r, r + world, ... and the results are gathered so that every rank returns all folds.
    ``on_error="skip"`` logs a failing fold and leaves it out instead of raising.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    multi = False
    if distribute and distributed.world_size() > 1:
        import torch.distributed as dist

        multi = dist.is_available() and dist.is_initialized()
    indices = list(range(len(folds)))
    mine = distributed.shard(indices) if multi else indices
    results: list[tuple[int, FoldResult]] = []
    for i in mine:
        name = getattr(folds[i], "name", str(i))
        try:
            res = run_fold(folds[i])
        except Exception as e:  # noqa: BLE001 - reported, then skipped or raised
            if on_error == "raise":
                raise
            log.warning("fold %s failed and is left out: %s", name, e)
            continue
        log.info("fold %s: %s", res.fold, ", ".join(f"{k}={v:.4g}" if isinstance(v, (int, float)) else f"{k}={v}"
                                                 for k, v in res.metrics.items()))
        results.append((i, res))
    if multi:
        gathered: list[Any] = [None] * distributed.world_size()
        dist.all_gather_object(gathered, results)
        results = [r for part in gathered for r in part]
    results.sort(key=lambda x: x[0])
    return CrossValResult([r for _, r in results])
