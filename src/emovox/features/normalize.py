"""Feature normalisation shared by every recipe and baseline: per-group z-scores (a speaker's,
or a recording's, own statistics) and standardise-and-clip fitted on training rows.

Both work on numpy arrays of any trailing shape, (N, ...), statistics per feature over the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def group_normalize(x: np.ndarray, groups: Sequence[str], eps: float = 1e-8) -> np.ndarray:
    """Z-scores of every feature fitted on each group's own rows (labels unused): the per-speaker
    normalisation of the SER literature when ``groups`` are speakers. A feature constant within a
    group (or a group of one row) is only centred. Keeps float32/float64 as given."""
    x = np.asarray(x)
    out = np.empty(x.shape, dtype=np.result_type(x.dtype, np.float32))
    g = np.asarray(list(groups), dtype=object)
    if len(g) != len(x):
        raise ValueError(f"{len(g)} group names for {len(x)} rows")
    for name in dict.fromkeys(g.tolist()):
        rows = g == name
        block = x[rows].astype(np.float64)
        mu, sd = block.mean(0), block.std(0)
        out[rows] = (block - mu) / np.where(sd > eps, sd, 1.0)
    return out


speaker_normalize = group_normalize
"""``group_normalize`` with speakers as the groups."""


@dataclass
class Standardizer:
    """Z-scores with a training set's mean and standard deviation (std 0 -> 1), then clipped to
    +-``clip`` standard deviations (``None``: not clipped). eGeMAPS functionals carry outliers of
    tens of standard deviations, which a linear model must not see raw."""

    mean: np.ndarray
    std: np.ndarray
    clip: float | None = 5.0

    @classmethod
    def fit(cls, train: np.ndarray, clip: float | None = 5.0) -> "Standardizer":
        t = np.asarray(train, dtype=np.float64)
        sd = t.std(0)
        return cls(t.mean(0), np.where(sd > 0, sd, 1.0), clip)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        return np.clip(z, -self.clip, self.clip) if self.clip is not None else z


def standardize(train: np.ndarray, *others: np.ndarray, clip: float | None = 5.0) -> tuple[np.ndarray, ...]:
    """Standardise ``train`` and every array of ``others`` with ``train``'s statistics (float64)."""
    s = Standardizer.fit(train, clip)
    return (s(train), *(s(o) for o in others))
