"""The SUPERB-style probe: a frozen encoder's layers -> softmax-weighted sum -> mean over time ->
2-layer head (hidden 256) -> emotion logits and/or attribute values. The same module holds the
simpler heads compared against it: all layers side by side (``combine="concat"``), with a hidden
layer (an MLP) or without (``hidden=0``: a linear model).

Mean over time and the layer-weighted sum commute, so the probe reads cached pooled features
``(batch, layers, dim)`` (see :meth:`emovox.encoders.base.EncoderOutput.pooled`); it also
accepts the raw hidden states with their lengths. eGeMAPS functionals are the same head with one
"layer". Inputs are standardised with statistics fitted on the training set (stored in the
model, so inference needs nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..tensors import masked_mean


@dataclass
class ProbeConfig:
    """Head architecture (Dutta & Ganapathy 2024 / SUPERB downstream)."""

    num_layers: int
    dim: int
    num_classes: int = 0  # 0 = no category head
    num_attributes: int = 0  # 0 = no attribute head (3 for valence, arousal, dominance)
    hidden: int = 256  # 0 = no hidden layer: linear heads
    dropout: float = 0.1
    clip: float | None = None  # clip standardised inputs to +-clip (None = no clipping)
    combine: str = "weighted"  # "weighted": softmax-weighted sum of layers (SUPERB); "concat": all layers side by side

    def __post_init__(self) -> None:
        if self.num_layers < 1 or self.dim < 1:
            raise ValueError(f"ProbeConfig: need num_layers >= 1 and dim >= 1, got {self.num_layers}, {self.dim}")
        if self.num_classes <= 0 and self.num_attributes <= 0:
            raise ValueError("ProbeConfig: the probe needs a category head, an attribute head or both")
        if self.num_classes == 1:
            raise ValueError("ProbeConfig: a category head needs at least 2 classes")
        if self.combine not in ("weighted", "concat"):
            raise ValueError(f"ProbeConfig: combine must be 'weighted' or 'concat', got {self.combine!r}")
        if self.hidden < 0:
            raise ValueError(f"ProbeConfig: hidden must be >= 0, got {self.hidden}")


@dataclass
class ProbeOutput:
    logits: torch.Tensor | None  # (B, num_classes)
    attributes: torch.Tensor | None  # (B, num_attributes), on the [-1, 1] scale of the targets


class Probe(nn.Module):
    """``forward(pooled (B, L, D)) -> ProbeOutput``; or ``forward(hidden_states list of (B, T, D),
    lengths (B,))`` which mean-pools each layer over its valid frames first."""

    def __init__(self, config: ProbeConfig):
        super().__init__()
        self.config = config
        L, D = config.num_layers, config.dim
        self.layer_logits = nn.Parameter(torch.zeros(L))
        self.register_buffer("feature_mean", torch.zeros(L, D))
        self.register_buffer("feature_std", torch.ones(L, D))
        width = L * D if config.combine == "concat" else D
        if config.hidden:
            self.hidden = nn.Sequential(nn.Linear(width, config.hidden), nn.ReLU(), nn.Dropout(config.dropout))
            width = config.hidden
        else:
            self.hidden = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(width, config.num_classes) if config.num_classes else None
        self.regressor = nn.Linear(width, config.num_attributes) if config.num_attributes else None

    def layer_weights(self) -> torch.Tensor:
        """(L,) softmax of the learnt layer logits."""
        return torch.softmax(self.layer_logits, dim=0)

    @torch.no_grad()
    def fit_normalizer(self, pooled: torch.Tensor, eps: float = 1e-5) -> None:
        """Standardise inputs with the per-(layer, dim) mean/std of training features (N, L, D)."""
        pooled = pooled.to(self.feature_mean.device, torch.float32)
        self.feature_mean.copy_(pooled.mean(0))
        self.feature_std.copy_(pooled.std(0, unbiased=False).clamp_min(eps))

    def combine(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> standardised, layer-weighted sum (B, D), or with ``combine="concat"`` the
        standardised layers side by side (B, L * D)."""
        if pooled.dim() != 3 or pooled.shape[1:] != self.feature_mean.shape:
            raise ValueError(f"Probe expects (batch, {self.config.num_layers}, {self.config.dim}) "
                             f"features, got {tuple(pooled.shape)}")
        x = (pooled.float() - self.feature_mean) / self.feature_std
        if self.config.clip:
            x = x.clamp(-self.config.clip, self.config.clip)
        if self.config.combine == "concat":
            return x.reshape(len(x), -1)
        return (self.layer_weights()[None, :, None] * x).sum(1)

    def forward(self, features: torch.Tensor | Sequence[torch.Tensor],
                lengths: torch.Tensor | None = None) -> ProbeOutput:
        if not isinstance(features, torch.Tensor):
            if lengths is None:
                raise ValueError("Probe: hidden states need their lengths")
            features = torch.stack([masked_mean(h, lengths) for h in features], dim=1)
        h = self.hidden(self.combine(features))
        return ProbeOutput(self.classifier(h) if self.classifier is not None else None,
                           self.regressor(h) if self.regressor is not None else None)
