"""Training the WaveNet ASR of Tits et al. (2018) with CTC through the shared Trainer.

The encoder (:class:`emovox.encoders.wavenet.WaveNetASR`) only computes; this module holds what
trains and scores it as an ASR::

    trainer = Trainer(model, data, cfg, step=training_step, evaluate=validation)

Batches (see :func:`emovox.train.pad_collate`) hold ``audio`` (B, S) with ``audio_lengths`` or
``feats``/``feats_lengths`` (MFCCs), and ``targets`` (B, U) token ids of the model's vocabulary
with ``targets_lengths``.
"""

from __future__ import annotations

import torch

from ..encoders.wavenet import WaveNetASR
from ..evaluate.wer import cer
from ..heads.ctc import greedy_decode
from ..train.losses import ctc_loss


def _log_probs(model: WaveNetASR, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    if "feats" in batch:
        _, logp, frames = model.forward_features(batch["feats"], batch.get("feats_lengths"))
        return logp, frames
    return model.ctc_log_probs(batch["audio"], batch.get("audio_lengths"))


def _target_lengths(batch: dict) -> torch.Tensor:
    targets = batch["targets"]
    tl = batch.get("targets_lengths")
    if tl is None:
        tl = torch.full((targets.shape[0],), targets.shape[1], dtype=torch.long, device=targets.device)
    return tl


def loss(model: WaveNetASR, batch: dict) -> torch.Tensor:
    """CTC loss of a batch (mean over the batch of per-utterance loss / target length)."""
    logp, frames = _log_probs(model, batch)
    return ctc_loss(logp, batch["targets"], frames, _target_lengths(batch), blank=model.vocab.blank)


def training_step(model: WaveNetASR, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    """The Trainer's step: (loss, {"ctc": value})."""
    value = loss(model, batch)
    return value, {"ctc": float(value.detach())}


@torch.no_grad()
def decode(model: WaveNetASR, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """Greedy (best path) decoding of CTC log-probabilities (B, T, vocab) to text."""
    vocab = model.vocab
    return [vocab.decode(ids) for ids in greedy_decode(log_probs, lengths, blank=vocab.blank)]


@torch.no_grad()
def transcribe(model: WaveNetASR, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> list[str]:
    """16 kHz audio (B, S) -> greedy transcripts."""
    return decode(model, *model.ctc_log_probs(audio, lengths))


@torch.no_grad()
def validation(model: WaveNetASR, batches) -> dict[str, float]:
    """The Trainer's evaluation hook: mean CTC loss (``ctc``) and greedy-decoding character error
    rate (``cer``) over the batches (monitor ``cer`` with mode ``min``)."""
    vocab = model.vocab
    total, n, refs, hyps = 0.0, 0, [], []
    for batch in batches:
        tl = _target_lengths(batch)
        total += float(loss(model, batch)) * len(tl)
        n += len(tl)
        hyps += decode(model, *_log_probs(model, batch))
        refs += [vocab.decode(t[:int(k)].tolist()) for t, k in zip(batch["targets"], tl)]
    return {"ctc": total / max(n, 1), "cer": cer(refs, hyps, normalize=False)}
