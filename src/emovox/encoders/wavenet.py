"""The WaveNet ASR of Tits, El Haddad & Dutoit (2018): speech-to-text-wavenet, trained with CTC.

Architecture (buriburisuri/speech-to-text-wavenet, the network the paper reads its features from):

* input: 20 MFCCs per 10 ms frame (25 ms window; :func:`emovox.features.filterbank.mfcc`),
  normalised per utterance;
* front: 1x1 convolution to 128 channels, batch norm, tanh;
* 3 blocks x dilations (1, 2, 4, 8, 16) = 15 residual layers of 128 units. Layer ``l``:
  ``g = tanh(BN(conv_f(z))) * sigmoid(BN(conv_g(z)))`` (kernel 7, dilation ``d``, non-causal,
  "same" padding) is the gated unit; ``o = tanh(BN(conv1x1(g)))``; ``z <- z + o`` (residual);
  ``skip <- skip + o``;
* output: ``tanh(BN(conv1x1(skip)))`` then 1x1 convolution to the 29 characters of
  :class:`emovox.text.vocab.CharVocab`, CTC loss.

Hidden states (``EncoderOutput.hidden_states``): the 15 gated-unit activations ``g``, each
``(B, T, 128)`` at 100 Hz: 15 x 128 = 1920 units, the units whose per-utterance means are the
paper's "neural features". Receptive field: 1 + 3 * 6 * (1 + 2 + 4 + 8 + 16) = 559 frames (5.6 s).

Padding never changes a clip's states: the residual stream is zeroed past each item's length
before every convolution (as the zero "same" padding of a clip alone) and batch norm takes its
statistics over valid frames only (:class:`MaskedBatchNorm1d`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..tensors import lengths_to_mask
from ..text.vocab import CharVocab
from ..utils import atomic_torch_save, read_torch
from .base import Encoder, EncoderOutput

CHECKPOINT_KIND = "emovox.wavenet"


@dataclass
class WaveNetConfig:
    """speech-to-text-wavenet's dimensions (the paper's defaults)."""

    n_mfcc: int = 20
    n_mels: int = 40  # mel bands under the MFCCs
    dim: int = 128  # units per layer
    blocks: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    kernel_size: int = 7
    vocab: tuple[str, ...] = field(default_factory=lambda: CharVocab().symbols)
    normalize_input: bool = True  # per-utterance mean/variance of the MFCCs
    dropout: float = 0.0  # on the skip sum before the output layers

    def __post_init__(self) -> None:
        self.dilations = tuple(int(d) for d in self.dilations)
        self.vocab = tuple(self.vocab)
        if self.kernel_size % 2 != 1:
            raise ValueError(f"WaveNetConfig.kernel_size must be odd (non-causal 'same' padding), got {self.kernel_size}")

    @property
    def num_layers(self) -> int:
        return self.blocks * len(self.dilations)

    @property
    def receptive_field(self) -> int:
        """Frames of input that one output frame sees (559 for the defaults)."""
        return 1 + self.blocks * (self.kernel_size - 1) * sum(self.dilations)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """Batch norm over ``(B, C, T)`` whose training statistics use only the valid frames."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if not self.training or mask is None:
            return super().forward(x)
        m = mask[:, None, :].to(x.dtype)  # (B, 1, T)
        n = m.sum().clamp_min(2.0)
        mean = (x * m).sum((0, 2)) / n
        var = (((x - mean[None, :, None]) * m) ** 2).sum((0, 2)) / n
        with torch.no_grad():
            self.num_batches_tracked += 1
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(var.detach() * n / (n - 1), self.momentum)
        y = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + self.eps)
        return y * self.weight[None, :, None] + self.bias[None, :, None]


class ConvBN(nn.Module):
    """Conv1d (no bias) + masked batch norm, ``(B, C_in, T) -> (B, C_out, T)``, same length."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2, bias=False)
        self.bn = MaskedBatchNorm1d(c_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x), mask)


class ResidualLayer(nn.Module):
    """One gated dilated layer: returns (gated units ``g``, layer output ``o``), both (B, dim, T)."""

    def __init__(self, dim: int, kernel: int, dilation: int):
        super().__init__()
        self.filter = ConvBN(dim, dim, kernel, dilation)
        self.gate = ConvBN(dim, dim, kernel, dilation)
        self.proj = ConvBN(dim, dim)

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.tanh(self.filter(z, mask)) * torch.sigmoid(self.gate(z, mask))
        return g, torch.tanh(self.proj(g, mask))


class WaveNetASR(Encoder):
    """speech-to-text-wavenet as an :class:`Encoder` with a CTC output.

    ``forward(audio (B, S) 16 kHz, lengths (B,)) -> EncoderOutput`` (15 gated states);
    :meth:`ctc_log_probs` for ASR; training and decoding live in :mod:`emovox.recipes.wavenet_asr`.
    """

    frame_rate = 100.0

    def __init__(self, config: WaveNetConfig | None = None):
        super().__init__()
        self.cfg = config or WaveNetConfig()
        c = self.cfg
        self.name = "wavenet"
        self.vocab = CharVocab(c.vocab)
        self.num_layers = c.num_layers
        self.dim = c.dim
        self.front = ConvBN(c.n_mfcc, c.dim)
        self.layers = nn.ModuleList(ResidualLayer(c.dim, c.kernel_size, d) for _ in range(c.blocks) for d in c.dilations)
        self.out_bn = ConvBN(c.dim, c.dim)
        self.out = nn.Conv1d(c.dim, len(self.vocab), 1)
        self.drop = nn.Dropout(c.dropout)

    @property
    def receptive_field(self) -> int:
        return self.cfg.receptive_field

    def config(self) -> dict:
        """Architecture plus a digest of the current weights (feature caches must not mix the
        states of two differently trained models)."""
        return {"name": self.name, **asdict(self.cfg), "weights": self.weights_digest()}

    def weights_digest(self) -> str:
        import hashlib

        h = hashlib.sha256()
        for k, t in self.state_dict().items():
            h.update(k.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ computation

    def features(self, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, S), lengths (B,) samples -> MFCC (B, T, n_mfcc), frame lengths (B,)."""
        from ..features.filterbank import mfcc, normalize

        feats, frames = mfcc(audio, lengths, n_mfcc=self.cfg.n_mfcc, n_mels=self.cfg.n_mels)
        if self.cfg.normalize_input:
            feats = normalize(feats, frames)
        return feats, frames

    def forward_features(self, feats: torch.Tensor, lengths: torch.Tensor | None = None
                         ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """feats (B, T, n_mfcc), lengths (B,) frames -> (15 gated states (B, T, dim),
        log-probabilities (B, T, vocab), lengths (B,))."""
        b, t, _ = feats.shape
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=feats.device)
        lengths = lengths.to(feats.device)
        mask = lengths_to_mask(lengths.to(feats.device), t)  # (B, T)
        m = mask[:, None, :].to(feats.dtype)
        z = torch.tanh(self.front(feats.transpose(1, 2) * m, mask)) * m
        skip = torch.zeros_like(z)
        states = []
        for layer in self.layers:
            g, o = layer(z, mask)
            o = o * m
            z = z + o
            skip = skip + o
            states.append((g * m).transpose(1, 2))
        h = torch.tanh(self.out_bn(self.drop(skip), mask)) * m
        logits = self.out(h).transpose(1, 2)
        return states, logits.log_softmax(-1), lengths

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        feats, frames = self.features(audio, lengths)
        states, _, frames = self.forward_features(feats, frames)
        return EncoderOutput(states, frames, self.frame_rate)

    def ctc_log_probs(self, audio: torch.Tensor, lengths: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """audio -> (log-probabilities (B, T, vocab), frame lengths (B,))."""
        feats, frames = self.features(audio, lengths)
        _, logp, frames = self.forward_features(feats, frames)
        return logp, frames

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike, **extra) -> None:
        """Atomic checkpoint with the config (vocabulary included) and the weights."""
        atomic_torch_save({"kind": CHECKPOINT_KIND, "config": asdict(self.cfg), "state_dict": self.state_dict(),
                           **extra}, path)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "WaveNetASR":
        """A model saved by :meth:`save`, or a Trainer checkpoint (``best.pt``/``last.pt``) whose
        state dict fits the default config."""
        blob = read_torch(path, "a WaveNet checkpoint", map_location=map_location)
        if not isinstance(blob, dict):
            raise ValueError(f"{path}: not a WaveNet checkpoint")
        cfg = WaveNetConfig(**blob["config"]) if blob.get("kind") == CHECKPOINT_KIND else WaveNetConfig()
        state = blob.get("state_dict") or blob.get("model")
        if state is None:
            raise ValueError(f"{path}: no weights (expected a 'state_dict' or 'model' entry)")
        model = cls(cfg)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"{path}: weights do not fit WaveNetASR({cfg}): {e}") from None
        return model
