"""The SA2SR emotion regressor (Ghriss et al. 2022) on top of any encoder's states.

Shapes::

    states (B, T, D), lengths (B,) frames
    -> masked Conv1d(D, 64, kernel 6, stride 3) -> per-sample normalisation -> LeakyReLU(0.3)
       lengths ceil(T / 3)
    -> masked Conv1d(64, 64, kernel 3, stride 2) -> per-sample normalisation -> LeakyReLU(0.3)
       lengths ceil(T / 6)
    -> 4-head self-attention, 64 dims, padded frames masked out
    -> masked mean ++ masked variance over time: (B, 128)
    -> linear: (B, outputs)   (3 = activation, valence, dominance; or class logits)

"Masks carried through": every block zeroes its padded frames and passes on the new lengths, so
an item's output does not depend on how much padding its batch has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from ..tensors import lengths_to_mask


@dataclass
class RegressorConfig:
    """The paper's regressor. ``outputs`` = 3 attributes, or the number of classes."""

    channels: int = 64
    kernels: tuple[int, int] = (6, 3)
    strides: tuple[int, int] = (3, 2)
    heads: int = 4
    negative_slope: float = 0.3
    dropout: float = 0.0
    outputs: int = 3


class MaskedConv1d(nn.Module):
    """Conv1d over (B, T, C) that ignores padding: inputs are zeroed beyond each length, the
    right edge is padded by ``kernel - 1`` so every item of length >= 1 gives >= 1 frame, and
    output lengths are ``ceil(length / stride)``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv1d(cin, cout, kernel, stride)

    def out_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths + self.stride - 1, self.stride, rounding_mode="floor")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x * lengths_to_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
        y = self.conv(F.pad(x.transpose(1, 2), (0, self.kernel - 1))).transpose(1, 2)
        out_len = self.out_lengths(lengths).clamp(min=1, max=y.shape[1])
        return y * lengths_to_mask(out_len, y.shape[1]).unsqueeze(-1).to(y.dtype), out_len


def masked_normalize(x: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-sample normalisation: each item's channels to zero mean, unit variance over its valid
    frames. (B, T, C) -> (B, T, C), padded frames stay 0."""
    m = lengths_to_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
    n = m.sum(1, keepdim=True).clamp_min(1.0)
    mean = (x * m).sum(1, keepdim=True) / n
    var = (((x - mean) * m) ** 2).sum(1, keepdim=True) / n
    return (x - mean) / torch.sqrt(var + eps) * m


def mean_var_pool(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Masked mean and variance over time: (B, T, C) -> (B, 2C)."""
    m = lengths_to_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
    n = m.sum(1).clamp_min(1.0)
    mean = (x * m).sum(1) / n
    var = (((x - mean.unsqueeze(1)) * m) ** 2).sum(1) / n
    return torch.cat([mean, var], dim=-1)


class EmotionRegressor(nn.Module):
    """Encoder states -> emotion attributes (or class logits). See the module docstring."""

    def __init__(self, dim: int, config: RegressorConfig | None = None):
        super().__init__()
        self.cfg = c = config or RegressorConfig()
        self.convs = nn.ModuleList([
            MaskedConv1d(dim, c.channels, c.kernels[0], c.strides[0]),
            MaskedConv1d(c.channels, c.channels, c.kernels[1], c.strides[1]),
        ])
        self.act = nn.LeakyReLU(c.negative_slope)
        self.attention = nn.MultiheadAttention(c.channels, c.heads, dropout=c.dropout, batch_first=True)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(2 * c.channels, c.outputs)

    def frames(self, states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The attended frame sequence: (B, ceil(T/6), channels) and its lengths."""
        x = states
        for conv in self.convs:
            x, lengths = conv(x, lengths)
            x = self.act(masked_normalize(x, lengths))
        pad = ~lengths_to_mask(lengths, x.shape[1])
        y, _ = self.attention(x, x, x, key_padding_mask=pad, need_weights=False)
        return y * (~pad).unsqueeze(-1).to(y.dtype), lengths

    def forward(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, D), (B,) frames -> (B, outputs)."""
        lengths = lengths.clamp(min=1, max=states.shape[1])
        x, lengths = self.frames(states, lengths)
        return self.out(self.drop(mean_var_pool(x, lengths)))

    @staticmethod
    def output_frames(frames: int, strides: tuple[int, ...] = (3, 2)) -> int:
        for s in strides:
            frames = math.ceil(frames / s)
        return frames
