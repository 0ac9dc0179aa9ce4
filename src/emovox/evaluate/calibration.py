"""Probability calibration: temperature scaling (Guo et al. 2017) and the expected calibration
error it is judged by.

``T = fit_temperature(logits, y)`` on held-out speakers, then ``softmax(logits / T)``: one
parameter, so the ranking of classes (and every accuracy) is unchanged; only how confident the
probabilities are moves.
"""

from __future__ import annotations

import numpy as np
import torch


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def fit_temperature(logits: np.ndarray, y: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature minimising the negative log-likelihood of ``y`` (N,) class indices (rows
    with y < 0 left out) under ``softmax(logits / T)`` (N, C); 1.0 when nothing is labelled."""
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    t = torch.as_tensor(np.asarray(y, dtype=np.int64))
    keep = t >= 0
    if not bool(keep.any()):
        return 1.0
    z, t = z[keep], t[keep]
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), t)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(log_t.exp().item(), *bounds))


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE: the mean over equal-width confidence bins of |accuracy - confidence|, weighted by the
    share of rows in each bin (top-1 confidence; rows with y < 0 left out; NaN without rows)."""
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(y, dtype=np.int64)
    keep = t >= 0
    if not keep.any():
        return float("nan")
    p, t = p[keep], t[keep]
    conf, pred = p.max(1), p.argmax(1)
    correct = (pred == t).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)
