"""CTC head: per-frame token log-probabilities over a character vocabulary, and greedy decoding.

Shapes: states (B, T, D) -> log_probs (B, T, V), V = vocabulary size including the blank (index 0).
"""

from __future__ import annotations

import torch
from torch import nn


class CTCHead(nn.Module):
    """Linear projection + log-softmax. ``vocab_size`` counts the blank (29 for English)."""

    def __init__(self, dim: int, vocab_size: int = 29, dropout: float = 0.0):
        super().__init__()
        self.vocab_size = vocab_size
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, vocab_size)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, V) log-probabilities."""
        return self.proj(self.drop(states)).log_softmax(-1)


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path: argmax per frame, collapse repeats, drop blanks.

    log_probs (B, T, V), lengths (B,) frames -> one list of token ids per item."""
    best = log_probs.argmax(-1).cpu()
    out = []
    for row, n in zip(best, lengths.cpu().tolist()):
        ids = torch.unique_consecutive(row[: int(n)]).tolist()
        out.append([i for i in ids if i != blank])
    return out
