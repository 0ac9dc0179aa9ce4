"""Tensor helpers every layer shares: length masks, masked means and padding.

The bottom of the package (beside ``audio`` and ``utils``): it imports nothing from emovox, so
features, encoders, heads, train and the product path all use these three instead of their own.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(batch,) lengths -> (batch, max_len) bool mask, True on valid positions.

    ``max_len`` defaults to the longest length."""
    lengths = torch.as_tensor(lengths)
    T = int(lengths.max().item()) if max_len is None else int(max_len)
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(x: torch.Tensor, lengths: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Mean of (B, T, ...) over the valid frames of each item -> (B, ...); all-padding items
    give zeros."""
    mask = lengths_to_mask(torch.as_tensor(lengths).to(x.device), x.shape[dim])
    shape = [mask.shape[0], mask.shape[1]] + [1] * (x.dim() - 2)
    m = mask.view(shape).to(x.dtype)
    return (x * m).sum(dim) / m.sum(dim).clamp_min(1.0)


def pad_sequence(items: Sequence[torch.Tensor | np.ndarray], value: float = 0.0,
                 min_length: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad tensors of shape (T_i, ...) along the first dim -> ((B, max(T_max, min_length), ...),
    lengths (B,) int64). Keeps the items' dtype."""
    if len(items) == 0:
        raise ValueError("pad_sequence: empty batch")
    items = [torch.as_tensor(x) for x in items]
    lengths = torch.tensor([x.shape[0] for x in items], dtype=torch.long)
    width = max(int(lengths.max()), int(min_length))
    out = items[0].new_full((len(items), width, *items[0].shape[1:]), value)
    for i, x in enumerate(items):
        out[i, : x.shape[0]] = x
    return out, lengths


def pad_batch(clips: Sequence[np.ndarray | torch.Tensor], device: str | torch.device = "cpu",
              min_length: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """1-D audio clips -> ``audio (B, max(S_max, min_length))`` float32 zero-padded and
    ``lengths (B,)`` int64 (samples), both on ``device``."""
    if len(clips) == 0:
        raise ValueError("pad_batch: no clips")
    audio, lengths = pad_sequence([torch.as_tensor(np.asarray(c, dtype=np.float32)).reshape(-1)
                                   if not isinstance(c, torch.Tensor) else c.float().reshape(-1)
                                   for c in clips], min_length=min_length)
    return audio.to(device), lengths.to(device)
