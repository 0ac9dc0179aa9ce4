"""Losses shared by every recipe: cross entropy with class weights, CCC on mini-batch
statistics, CTC, and weighted sums.

Shapes: ``logits`` (B, C); ``pred``/``target`` for CCC (B,) or (B, K) (one CCC per column);
CTC ``log_probs`` (B, T, C) batch-first.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F


def ccc(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Lin's concordance correlation coefficient per column, on the batch's own statistics
    (population variances): 2 cov / (var_p + var_t + (mean_p - mean_t)^2). (B,) -> (), (B, K) -> (K,)."""
    if pred.shape != target.shape:
        raise ValueError(f"ccc: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.shape[0] < 2:
        raise ValueError("ccc needs at least 2 items in the batch")
    pred, target = pred.float(), target.float()
    mp, mt = pred.mean(0), target.mean(0)
    vp = ((pred - mp) ** 2).mean(0)
    vt = ((target - mt) ** 2).mean(0)
    cov = ((pred - mp) * (target - mt)).mean(0)
    return 2 * cov / (vp + vt + (mp - mt) ** 2 + eps)


def ccc_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
             weights: Sequence[float] | None = None) -> torch.Tensor:
    """1 - CCC, averaged over the K columns (e.g. valence, arousal, dominance).

    ``mask`` (B, K) bool drops missing targets column by column (a column with < 2 valid items
    contributes nothing); ``weights`` (K,) weights the columns (default equal).
    """
    if pred.dim() == 1:
        pred, target = pred[:, None], target[:, None]
        mask = None if mask is None else mask[:, None]
    terms, ws = [], []
    for k in range(pred.shape[1]):
        p, t = pred[:, k], target[:, k]
        if mask is not None:
            p, t = p[mask[:, k]], t[mask[:, k]]
        if p.shape[0] < 2:
            continue
        terms.append(1.0 - ccc(p, t))
        ws.append(1.0 if weights is None else float(weights[k]))
    if not terms:
        return pred.sum() * 0.0
    w = torch.tensor(ws, device=pred.device)
    return (torch.stack(terms) * w).sum() / w.sum()


def class_weights(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """Balanced class weights n / (C * count_c) (classes absent from ``labels`` get weight 0)."""
    counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=num_classes).float()
    w = torch.where(counts > 0, counts.sum() / (num_classes * counts.clamp_min(1)), torch.zeros_like(counts))
    return w


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                  ignore_index: int = -100, label_smoothing: float = 0.0, class_mask: torch.Tensor | None = None,
                  sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross entropy of (B, C) logits against (B,) class indices, optionally class-weighted.

    ``class_mask`` (B, C) bool restricts each row's softmax to its True classes: a corpus that
    never annotates a class is not taught that its clips are not of that class (the masked
    logits get no gradient from that row). ``sample_weight`` (B,) weights rows (e.g. corpus and
    class balance); the result is the weighted mean. Returns 0 (with a graph) when every
    target is ``ignore_index``."""
    keep = target != ignore_index
    if keep.sum() == 0:
        return logits.sum() * 0.0
    if weight is not None:
        weight = weight.to(logits.device, logits.dtype)
    if class_mask is not None:
        logits = logits.masked_fill(~class_mask.to(device=logits.device, dtype=torch.bool),
                                    torch.finfo(logits.dtype).min / 4)
    if sample_weight is None:
        return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                               label_smoothing=label_smoothing)
    per = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                          label_smoothing=label_smoothing, reduction="none")
    w = sample_weight.to(logits.device, logits.dtype) * keep
    if weight is not None:
        w_norm = w * weight[target.clamp_min(0)]
    else:
        w_norm = w
    return (per * w).sum() / w_norm.sum().clamp_min(torch.finfo(logits.dtype).tiny)


CTC_REDUCTIONS = ("utterance", "character")


def ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor, input_lengths: torch.Tensor,
             target_lengths: torch.Tensor, blank: int = 0, reduction: str = "character") -> torch.Tensor:
    """CTC of batch-first (B, T, C) log-probabilities against padded (B, U) targets, averaged
    over the batch. ``reduction``: "character" divides each utterance's negative log-likelihood
    by its target length first (PyTorch's "mean", about 3 per character at the blank plateau);
    "utterance" keeps the per-utterance sum (TensorFlow's and ESPnet's convention, tens to
    hundreds per utterance), the scale a loss weight such as SA2SR's lambda = 200 is set against.
    Impossible alignments give 0 instead of inf."""
    if reduction not in CTC_REDUCTIONS:
        raise ValueError(f"ctc_loss: reduction must be one of {CTC_REDUCTIONS}, got {reduction!r}")
    per_utt = F.ctc_loss(log_probs.transpose(0, 1).float(), targets, input_lengths, target_lengths,
                         blank=blank, reduction="none", zero_infinity=True)
    if reduction == "character":  # exactly PyTorch's "mean"
        per_utt = per_utt / target_lengths.to(per_utt.device).clamp_min(1)
    return per_utt.mean()


def weighted_sum(losses: Mapping[str, torch.Tensor],
                 weights: Mapping[str, float] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """sum_k w_k * L_k (missing weights = 1). Returns the total and logs
    ``{"loss": total, "loss/<name>": L_k}`` as floats, e.g. SA2SR's L_CTC + 200 L_CE::

        loss, logs = weighted_sum({"ctc": l_ctc, "ce": l_ce}, {"ce": 200.0})
    """
    if not losses:
        raise ValueError("weighted_sum: no losses")
    weights = weights or {}
    unknown = set(weights) - set(losses)
    if unknown:
        raise ValueError(f"weighted_sum: weights for unknown losses {sorted(unknown)}")
    total = sum(float(weights.get(k, 1.0)) * v for k, v in losses.items())
    logs = {"loss": float(total.detach())} | {f"loss/{k}": float(v.detach()) for k, v in losses.items()}
    return total, logs
