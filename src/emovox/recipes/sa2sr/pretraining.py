"""SA2SR pre-training::

    audio -> speed perturbation (0.9 / 1.0 / 1.1) -> encoder (default 5 x BiLSTM(192) on stacked
    40 LFBE with SpecAugment) -> last hidden state (B, T, D)
        -> CTC head over characters           L_CTC
        -> recurrent sentiment head (3-way)   L_CE against proxy labels from ``emovox label``
    L = L_CTC + lambda * L_CE, lambda = 200 (0 = the ASR-only baseline); Adam 5e-5;
    after each epoch: validation CER and sentiment AUC; early stopping on M = CER - AUC
    (patience 25), or on CER alone for the ASR-only baseline.

The validation set is a manifest given as such, or per training manifest its own validation
split or a speaker-independent hold-out (:func:`emovox.splits.holdout`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import torch

from ... import distributed as D
from ...encoders.bilstm import BiLSTMEncoder, save_encoder
from ...heads.ctc import greedy_decode
from ...manifest import SENTIMENTS, Manifest
from ...train.runs import check_run_config, finish_run, make_trainer, split_clips
from ...utils import atomic_torch_save
from .config import PretrainConfig
from .data import PretrainSet, pretrain_collate
from .model import KIND, SA2SRModel, build_encoder, make_vocab

log = logging.getLogger("emovox.sa2sr")


def pretrain_step(model: SA2SRModel, batch: dict[str, Any], sentiment_weight: float, ctc_reduction: str):
    """L = L_CTC + lambda * L_CE (the sentiment head always runs, so DDP sees all parameters)."""
    from ...train.losses import cross_entropy, ctc_loss, weighted_sum

    out = model(batch["audio"], batch["audio_lengths"])
    losses = {"ctc": ctc_loss(out.log_probs, batch["tokens"], out.lengths, batch["tokens_lengths"],
                              reduction=ctc_reduction),
              "sentiment": cross_entropy(out.sentiment_logits, batch["sentiment"])}
    return weighted_sum(losses, {"sentiment": sentiment_weight})


def pretrain_metrics(model: SA2SRModel, batches, vocab) -> dict[str, float]:
    """Validation CER (greedy CTC decoding), sentiment AUC (one-vs-rest macro over the classes
    present; 0.5 stands in when it is undefined, e.g. all-neutral text) and M = CER - AUC."""
    from ...evaluate.metrics import roc_auc
    from ...evaluate.wer import cer

    refs, hyps, labels, probs = [], [], [], []
    for b in batches:
        out = model(b["audio"], b["audio_lengths"])
        hyps += [vocab.decode(ids) for ids in greedy_decode(out.log_probs, out.lengths)]
        refs += list(b["text"])
        labels += b["sentiment"].tolist()
        probs.append(out.sentiment_logits.softmax(-1).cpu())
    p = torch.cat(probs).numpy()
    keep = [i for i, y in enumerate(labels) if y >= 0]
    auc = roc_auc([labels[i] for i in keep], p[keep], labels=[0, 1, 2]) if keep else float("nan")
    c = cer(refs, hyps)
    return {"cer": c, "auc": auc, "m": c - (auc if math.isfinite(auc) else 0.5)}


def pretrain(manifests: Sequence[Manifest], out_dir: str | os.PathLike, config: PretrainConfig | None = None,
             resume: bool = True, validation: Sequence[Manifest] = ()) -> dict[str, Any]:
    """Pre-train on the transcribed records of ``manifests``; writes to ``out_dir``:
    ``last.pt``/``best.pt`` (trainer), ``sa2sr.pt`` (best model + config + vocabulary),
    ``encoder.pt`` (BiLSTM only, loadable by ``emovox.encoders.load_encoder("bilstm",
    checkpoint=...)``), ``config.json``, ``history.json``, ``curves.png`` and ``result.json``.
    Returns the result dictionary."""
    from ...train.losses import CTC_REDUCTIONS

    cfg = config or PretrainConfig()
    if cfg.ctc_reduction not in CTC_REDUCTIONS:
        raise ValueError(f"ctc_reduction must be one of {CTC_REDUCTIONS}, got {cfg.ctc_reduction!r}")
    out = Path(out_dir)
    check_run_config(out, cfg, resume)
    train_clips, val_clips, failed = split_clips(
        manifests, validation, fraction=cfg.validation_fraction, seed=cfg.seed, need_text=True, limit=cfg.limit,
        max_seconds=cfg.max_seconds)
    vocab = make_vocab(cfg.vocab, [c.utt.transcript or "" for c in train_clips])
    model = SA2SRModel(build_encoder(cfg.encoder, cfg.bilstm, cfg.seed), len(vocab), cfg.sentiment_hidden)
    train_set = PretrainSet(train_clips, vocab, cfg.speeds)
    val_set = PretrainSet(val_clips, vocab, (1.0,))
    hours = sum(c.seconds for c in train_clips) / 3600
    with_sent = sum(1 for c in train_clips if c.utt.sentiment in SENTIMENTS)
    (log.info if D.is_main() else log.debug)(
        "pre-training %s on %d utterances (%.2f h, x%d speeds), %d with proxy sentiment; validation %d; "
        "lambda=%g; monitor %s", cfg.encoder, len(train_clips), hours, len(cfg.speeds), with_sent,
        len(val_clips), cfg.sentiment_weight, cfg.monitor)
    trainer = make_trainer(model, train_set, val_set, cfg, out,
                           partial(pretrain_step, sentiment_weight=cfg.sentiment_weight,
                                   ctc_reduction=cfg.ctc_reduction),
                           partial(pretrain_metrics, vocab=vocab), train_set.lengths(), cfg.monitor, "min",
                           pretrain_collate)
    t0 = time.time()
    res = trainer.fit(resume=resume)
    result = {"config": asdict(cfg), "vocab_size": len(vocab), "train_utterances": len(train_clips),
              "train_hours": hours, "validation_utterances": len(val_clips),
              "steps": res.step, "epochs": res.epoch, "stopped_early": res.stopped_early, "out_of_time": res.out_of_time,
              "best_step": res.best_step, "best": res.best_metrics, "history": res.history,
              "failed": failed, "seconds": time.time() - t0}
    if D.rank() == 0:
        atomic_torch_save({"kind": KIND, "config": asdict(cfg), "vocab": vocab.to_dict(),
                           "model": model.state_dict(), "metrics": res.best_metrics}, out / "sa2sr.pt")
        if isinstance(model.encoder, BiLSTMEncoder):
            save_encoder(model.encoder, out / "encoder.pt", source="emovox pretrain sa2sr", metrics=res.best_metrics)
    finish_run(out, result, plot_curves)
    return result


def plot_curves(history: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Validation CER and sentiment AUC per evaluation as a PNG (nothing without history)."""
    if not history:
        return
    from ...report.plots import line_plot

    nan = float("nan")
    line_plot({"validation CER": [h.get("cer", nan) for h in history],
               "sentiment AUC": [h.get("auc", nan) for h in history]},
              path, x=[h.get("epoch", i + 1) for i, h in enumerate(history)], xlabel="epoch",
              title="SA2SR pre-training", dpi=100)
