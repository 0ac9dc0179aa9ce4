"""SA2SR models and how to load them.

- :class:`SA2SRModel`: encoder + CTC head + sentiment head (pre-training);
- :class:`EmotionModel`: encoder + emotion regressor (fine-tuning);
- :func:`load_sa2sr` reads a whole pre-trained model (``sa2sr.pt``), :func:`load_pretrained_encoder`
  the encoder of a pre-training output or a named encoder.

Checkpoint kinds: ``sa2sr.pt`` is ``{"kind": KIND, "config": PretrainConfig, "vocab", "model",
"metrics"}``; a fine-tuned fold's ``model.pt`` is ``{"kind": FINETUNED_KIND, "config":
FinetuneConfig, "targets": {"task", "names", "label"}, "model"}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ...encoders.base import Encoder
from ...encoders.bilstm import SA2SR_CHECKPOINT_KIND, BiLSTMConfig, BiLSTMEncoder, load_pretrained
from ...heads.ctc import CTCHead
from ...heads.regressor import EmotionRegressor, RegressorConfig
from ...heads.sentiment import SentimentHead
from ...manifest import SENTIMENTS
from ...utils import read_torch
from .config import PretrainConfig

KIND = SA2SR_CHECKPOINT_KIND
FINETUNED_KIND = "emovox.sa2sr.finetuned"


def make_vocab(kind: str, transcripts: Sequence[str]):
    """The CTC character vocabulary: English (29 characters) or derived from the transcripts."""
    from ...text.vocab import CharVocab

    if kind == "english":
        return CharVocab()
    if kind == "auto":
        return CharVocab.from_transcripts(list(transcripts))
    raise ValueError(f"vocab must be 'english' or 'auto', got {kind!r}")


def build_encoder(name: str, bilstm: BiLSTMConfig | None = None, seed: int = 0) -> Encoder:
    """A fresh encoder: the BiLSTM (random init) or a named pre-trained one (e.g. Whisper)."""
    if name == "bilstm":
        torch.manual_seed(seed)
        return BiLSTMEncoder(bilstm or BiLSTMConfig(), seed=seed)
    from ...encoders import load_encoder

    return load_encoder(name)


@dataclass
class SA2SROutput:
    log_probs: torch.Tensor  # (B, T, V)
    lengths: torch.Tensor  # (B,) frames
    sentiment_logits: torch.Tensor  # (B, 3) in SENTIMENTS order


class SA2SRModel(nn.Module):
    """Encoder + CTC head + sentiment head, both on the encoder's last hidden state."""

    def __init__(self, encoder: Encoder, vocab_size: int, sentiment_hidden: int = 128):
        super().__init__()
        self.encoder = encoder
        self.ctc = CTCHead(encoder.dim, vocab_size)
        self.sentiment = SentimentHead(encoder.dim, sentiment_hidden, classes=len(SENTIMENTS))

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> SA2SROutput:
        """(B, S) audio, (B,) samples -> CTC log-probabilities, frame lengths, sentiment logits."""
        out = self.encoder(audio, lengths)
        h = out.hidden_states[-1]
        return SA2SROutput(self.ctc(h), out.lengths, self.sentiment(h, out.lengths))


class EmotionModel(nn.Module):
    """Encoder + emotion regressor on hidden state ``layer``. ``forward`` takes audio, or the
    encoder's cached states (frozen variant) via :meth:`head`."""

    def __init__(self, encoder: Encoder, regressor: RegressorConfig, layer: int = -1, freeze: bool = False):
        super().__init__()
        self.encoder = encoder
        self.layer = layer
        self.frozen = freeze
        self.regressor = EmotionRegressor(encoder.dim, regressor)
        if freeze:
            for p in self.encoder.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> "EmotionModel":
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        aug = getattr(self.encoder, "spec_augment", None)
        if aug is not None:  # no SpecAugment while fine-tuning
            aug.eval()
        return self

    def states(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) audio -> the regressor's input (B, T, D) and lengths (B,)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.encoder(audio, lengths)
        return out.hidden_states[self.layer], out.lengths

    def head(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, D) states, (B,) frames -> (B, outputs)."""
        return self.regressor(states, lengths)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, S), (B,) samples -> (B, outputs)."""
        return self.head(*self.states(audio, lengths))


def load_pretrained_encoder(spec: str | os.PathLike, device: str = "cpu") -> Encoder:
    """The encoder of a pre-training run (an output folder, its ``sa2sr.pt`` or ``encoder.pt``;
    see :func:`emovox.encoders.bilstm.load_pretrained`), a randomly initialised BiLSTM for
    ``"bilstm"``, or any other name for ``emovox.encoders.load_encoder``."""
    if os.path.exists(spec):
        return load_pretrained(spec, device)
    if str(spec) == "bilstm":
        return build_encoder("bilstm")
    from ...encoders import load_encoder

    return load_encoder(str(spec), device=device)


def load_sa2sr(path: str | os.PathLike) -> SA2SRModel:
    """A pre-trained SA2SR model (``sa2sr.pt``), with ``.vocab`` and ``.config`` attached."""
    from ...text.vocab import CharVocab

    obj: Any = read_torch(path, "an SA2SR checkpoint", weights_only=False)
    if not (isinstance(obj, dict) and obj.get("kind") == KIND):
        raise ValueError(f"{path}: not an SA2SR checkpoint")
    cfg = PretrainConfig.from_dict(obj["config"])
    vocab = CharVocab.from_dict(obj["vocab"])
    model = SA2SRModel(build_encoder(cfg.encoder, cfg.bilstm), len(vocab), cfg.sentiment_hidden)
    model.load_state_dict(obj["model"])
    model.vocab, model.config = vocab, cfg
    return model.eval()


def reinitialise(encoder: Encoder, seed: int = 0) -> Encoder:
    """The same architecture with fresh random weights (the no-pre-training baseline)."""
    torch.manual_seed(seed)
    if isinstance(encoder, BiLSTMEncoder):
        return BiLSTMEncoder(encoder.cfg, seed=seed)
    for mod in encoder.modules():
        if mod is not encoder and hasattr(mod, "reset_parameters"):
            mod.reset_parameters()
    return encoder
