"""The one encoder interface every recipe, probe, analysis and the predictor read.

An encoder maps a batch of 16 kHz mono audio to the hidden states of each of its layers::

    out = encoder(audio, lengths)     # audio (batch, samples) float32, lengths (batch,) samples
    out.hidden_states                 # list of (batch, frames, dim) tensors, input side first
    out.lengths                       # (batch,) valid frames per item
    out.frame_rate                    # frames per second

Downstream code never needs to know which encoder produced the states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn

from ..tensors import lengths_to_mask, pad_batch

if TYPE_CHECKING:
    import numpy as np


@dataclass
class EncoderOutput:
    hidden_states: list[torch.Tensor]
    lengths: torch.Tensor
    frame_rate: float

    def mask(self) -> torch.Tensor:
        """(batch, frames) bool, True on valid frames."""
        return lengths_to_mask(self.lengths, self.hidden_states[0].shape[1])

    def pooled(self) -> torch.Tensor:
        """Masked mean over time of every layer: (batch, layers, dim), the "neural features"
        of Tits et al. (2018). Layers of different widths are not supported here."""
        m = self.mask().unsqueeze(-1).to(self.hidden_states[0].dtype)  # (B, T, 1)
        denom = m.sum(1).clamp_min(1.0)  # (B, 1)
        return torch.stack([(h * m).sum(1) / denom for h in self.hidden_states], dim=1)


class Encoder(nn.Module):
    """Base class. Subclasses set the attributes below and implement ``forward``."""

    name: str = "encoder"
    sample_rate: int = 16000
    num_layers: int = 0  # len(hidden_states)
    dim: int = 0  # width of every hidden state
    frame_rate: float = 0.0

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:  # pragma: no cover
        raise NotImplementedError

    def config(self) -> dict:
        """What identifies this encoder's outputs (used in feature-cache keys and checkpoints)."""
        return {"name": self.name}

    @torch.no_grad()
    def encode(self, clips: Sequence[np.ndarray | torch.Tensor]) -> EncoderOutput:
        """Convenience for inference: a list of 1-D 16 kHz clips of any lengths -> one padded
        batch through ``forward`` on the encoder's device, without gradients."""
        device = next(iter(self.parameters()), torch.empty(0)).device
        audio, lengths = pad_batch(clips)
        return self(audio.to(device), lengths.to(device))


def checkpoint_key(encoder: Encoder) -> dict:
    """``{"checkpoint": digest}`` for an encoder whose weights a loader took from a trained
    checkpoint (it sets ``checkpoint_digest``), else ``{}``: part of ``config()``, so feature caches
    never mix a fine-tuned model's states with those of the released one it started from."""
    digest = getattr(encoder, "checkpoint_digest", None)
    return {"checkpoint": digest} if digest else {}
