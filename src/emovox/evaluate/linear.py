"""The one linear model of the project: L2-regularised multinomial logistic regression for
categories and ridge (or plain least squares) regression for numeric targets.

Solved in torch in float64 on one thread (full-batch L-BFGS for the logistic loss, closed form
for ridge): exact for these convex problems and faster than scikit-learn on 2k-dimensional
inputs. The Tits et al. recipe fits it on its selected units; :func:`linear_baseline` is the
baseline every probe and benchmark reports beside its own model.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from ..features.normalize import Standardizer
from .metrics import ccc, compute_metrics, weighted_f1
from .targets import Targets

LOGISTIC_C = (0.001, 0.01, 0.1)
"""Inverse regularisation strengths tried on a validation set (0.01 without one)."""
RIDGE_ALPHA = (1.0, 10.0, 100.0, 1000.0)
"""Ridge strengths tried on a validation set (100 without one)."""


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class LinearModel:
    """``x (N, D) -> x @ weight + bias``: weight (D, C), bias (C,), float64."""

    weight: torch.Tensor
    bias: torch.Tensor

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = torch.as_tensor(np.asarray(x, dtype=np.float64))
        return (z @ self.weight + self.bias).numpy()

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return torch.softmax(torch.as_tensor(self(x)), -1).numpy()


def fit_logistic(x: np.ndarray, y: np.ndarray, num_classes: int, C: float = 1.0, seed: int = 0,
                 iters: int = 200) -> LinearModel:
    """Multinomial logistic regression on rows with ``y >= 0``, minimising mean cross-entropy +
    ||W||^2 / (2 C n): scikit-learn's ``C * sum CE + ||W||^2 / 2`` divided by ``C n``, so ``C``
    means what it means there; the bias is not penalised."""
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64))
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    keep = yt >= 0
    xt, yt = xt[keep], yt[keep]
    torch.manual_seed(seed)
    W = torch.zeros(xt.shape[1], num_classes, dtype=xt.dtype, requires_grad=True)
    b = torch.zeros(num_classes, dtype=xt.dtype, requires_grad=True)
    lam = 1.0 / (2.0 * C * len(xt))
    with _one_thread():
        opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=iters, tolerance_grad=1e-6,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(xt @ W + b, yt) + lam * (W * W).sum()
            loss.backward()
            return loss

        opt.step(closure)
    return LinearModel(W.detach(), b.detach())


def select_logistic(z_train: np.ndarray, y_train: np.ndarray, num_classes: int, z_val: np.ndarray | None = None,
                    y_val: np.ndarray | None = None, seed: int = 0) -> LinearModel:
    """:func:`fit_logistic` with ``C`` chosen from :data:`LOGISTIC_C` by weighted F1 on the
    labelled validation rows (``y_val >= 0``); C = 0.01 without validation rows."""
    has_val = z_val is not None and y_val is not None and len(y_val) > 0
    best = None
    for c in LOGISTIC_C if has_val else (0.01,):
        model = fit_logistic(z_train, y_train, num_classes, c, seed)
        s = 0.0
        if has_val and (y_val >= 0).any():
            keep = y_val >= 0
            s = weighted_f1(y_val[keep], model(z_val[keep]).argmax(1), list(range(num_classes)))
        if best is None or s > best[0]:
            best = (s, model)
    return best[1]


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float = 0.0) -> LinearModel:
    """Ridge regression of ``y`` (N,) or (N, K) on ``x`` (N, D), intercept unpenalised, in closed
    form; ``alpha = 0`` is ordinary least squares (minimum-norm where ``x`` is rank deficient)."""
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64))
    yt = torch.as_tensor(np.asarray(y, dtype=np.float64))
    yt = yt[:, None] if yt.dim() == 1 else yt
    xm, ym = xt.mean(0), yt.mean(0)
    xc = xt - xm
    with _one_thread():
        if alpha > 0:
            w = torch.linalg.solve(xc.T @ xc + alpha * torch.eye(xt.shape[1], dtype=xt.dtype), xc.T @ (yt - ym))
        else:
            w = torch.linalg.lstsq(xc, yt - ym, driver="gelsd").solution
    return LinearModel(w, ym - xm @ w)


def linear_baseline(x_train: np.ndarray, train: Targets, x_test: np.ndarray, test: Targets,
                    x_val: np.ndarray | None = None, val: Targets | None = None,
                    clip_sigma: float | None = 5.0, seed: int = 0) -> dict[str, float]:
    """Fit the linear model on flattened, standardised (and clipped) features and score it on the
    test rows with :func:`~emovox.evaluate.metrics.compute_metrics`. Regularisation is chosen on
    the validation rows (weighted F1 for categories, CCC per regression column) when given."""
    flat = lambda x: np.asarray(x).reshape(len(x), -1)  # noqa: E731
    std = Standardizer.fit(flat(x_train), clip_sigma)
    ztr, zte = std(flat(x_train)), std(flat(x_test))
    has_val = x_val is not None and val is not None and len(val) > 0
    zva = std(flat(x_val)) if has_val else None
    logits = attrs = None
    if train.y is not None:
        model = select_logistic(ztr, train.y, len(train.labels), zva, val.y if has_val else None, seed)
        logits = model(zte)
    if train.a is not None:
        attrs = np.zeros((len(test), len(train.attributes)), np.float64)
        for k in range(len(train.attributes)):
            keep = ~np.isnan(train.a[:, k])
            best = None
            for alpha in RIDGE_ALPHA if has_val else (100.0,):
                model = fit_ridge(ztr[keep], train.a[keep, k], alpha)
                s = 0.0
                if has_val:
                    vk = ~np.isnan(val.a[:, k])
                    s = ccc(val.a[vk, k], model(zva[vk])[:, 0]) if vk.sum() >= 2 else 0.0
                if best is None or s > best[0]:
                    best = (s, model)
            attrs[:, k] = best[1](zte)[:, 0]
    return compute_metrics(test.y, logits, len(test.labels), test.a, attrs, test.attributes)
