"""Sentiment head of SA2SR: a recurrent summariser over the encoder states, then a softmax over
negative / neutral / positive (``emovox.manifest.SENTIMENTS`` order).

Shapes: states (B, T, D), lengths (B,) frames -> logits (B, classes).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class SentimentHead(nn.Module):
    """A one-layer bidirectional GRU whose last forward and first backward states (read at each
    item's own length, padding ignored) are concatenated and mapped to ``classes`` logits."""

    def __init__(self, dim: int, hidden: int = 128, classes: int = 3, dropout: float = 0.0):
        super().__init__()
        self.rnn = nn.GRU(dim, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, classes)

    def forward(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, D), (B,) -> (B, classes) logits (apply softmax for probabilities)."""
        lengths = lengths.clamp(min=1, max=states.shape[1]).cpu()
        packed = pack_padded_sequence(states, lengths, batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)  # (2, B, hidden): final forward state, final backward state
        summary = torch.cat([h[0], h[1]], dim=-1)
        return self.out(self.drop(summary))
