"""CARE pre-training (Dutta & Ganapathy 2024), ``emovox pretrain care``::

    5 s random crop of every transcribed (or not) utterance, each epoch
      -> CareEncoder (emovox.encoders.care): common trunk, acoustic and semantic branches
    acoustic: frame-level MSE between the predicted and the computed frame descriptors
              (emovox.features.descriptors at the encoder's 50 Hz, each crop normalised
              (x - mean) / (std + 1)); records without a transcript count here only
    semantic: utterance-level MSE between the mean-pooled semantic output and the mean-pooled
              sentence embedding of the transcript by the same text model (emovox.text.embed)
    L = L_acoustic + L_semantic; the gradient routing lives in the model (the acoustic branch
    reads the common output detached), so each loss trains only its own parameters.
    AdamW, lr 1e-5; validation loss (same crops every time) selects the model.

Writes to OUT: ``last.pt``/``best.pt`` (the shared Trainer: a rerun resumes, torchrun trains
with DDP), ``care.pt`` (best model, loadable by ``load_encoder(OUT)``), ``config.json``,
``history.json``, ``result.json`` and ``curves.png``.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .. import distributed as D
from ..audio import load_audio
from ..encoders.care import CareConfig, CareEncoder, build_care, save_care
from ..features.descriptors import COMPONENTS, DescriptorConfig, frame_descriptors
from ..manifest import Manifest
from ..tensors import lengths_to_mask
from ..train.data import pad_collate
from ..train.runs import Clip, check_run_config, finish_run, make_trainer, split_clips

log = logging.getLogger("emovox.care")


@dataclass
class CarePretrainConfig:
    """Defaults: the paper's optimisation (AdamW 1e-5, batch 128, 200k steps, 5 s crops) with
    the offline stand-in models of DESIGN.md. Saved as OUT/config.json; a rerun with other
    values than the budget (steps, epochs, patience, checkpoint interval) is refused."""

    speech: str = "whisper-tiny.en"
    text: str = "minilm"
    text_layers: int = 6
    common_layers: int | None = None  # None = half of the speech encoder's layers
    branches: str = "full"  # "full", or the ablations "acoustic" / "semantic"
    descriptors: tuple[str, ...] = COMPONENTS  # frame descriptor components regressed
    crop_seconds: float = 5.0
    lr: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01  # AdamW's default
    batch_size: int = 128
    max_steps: int | None = 200_000
    max_minutes: float | None = None  # wall-clock budget of one run (resume continues)
    max_epochs: int = 100_000
    eval_every: int | None = None  # steps between validations (always at the end of an epoch)
    patience: int | None = None
    grad_clip: float | None = None
    validation_fraction: float = 0.05  # speakers held out per manifest without a validation split
    limit: int | None = None  # at most this many utterances per manifest (reduced budgets)
    seed: int = 0
    save_every: int | None = 200

    def __post_init__(self) -> None:
        self.descriptors = tuple(self.descriptors)
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        self.model_config()  # validates branches and sizes

    def descriptor_config(self) -> DescriptorConfig:
        """Targets at 50 Hz, frames centred on the encoder's (frame t at t / 50 s)."""
        return DescriptorConfig(components=self.descriptors, center=True)

    def model_config(self) -> CareConfig:
        return CareConfig(speech=self.speech, text=self.text, text_layers=self.text_layers,
                          common_layers=self.common_layers, branches=self.branches,
                          target_dim=self.descriptor_config().dim, seed=self.seed)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CarePretrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})


# ============================================================================ data
class CropSet(torch.utils.data.Dataset):
    """Clips -> ``{"audio" (S,), "sentence" (Dt,), "has_text" bool, "index"}``: a random crop of
    ``crop`` seconds per visit in training (the global torch RNG, which the Trainer checkpoints,
    draws the offset, so a resume sees the same crops), the first ``crop`` seconds otherwise."""

    def __init__(self, clips: Sequence[Clip], sentences: dict[str, np.ndarray], dim: int, crop: float,
                 train: bool):
        self.clips, self.sentences, self.dim = list(clips), sentences, dim
        self.crop, self.train = crop, train

    def __len__(self) -> int:
        return len(self.clips)

    def lengths(self) -> list[float]:
        return [min(c.seconds, self.crop) for c in self.clips]

    def __getitem__(self, i: int) -> dict[str, Any]:
        c = self.clips[i]
        offset = 0.0
        if self.train and c.seconds > self.crop:
            offset = float(torch.rand(()).item()) * (c.seconds - self.crop)
        start = (c.utt.start or 0.0) + offset
        audio = load_audio(c.manifest.audio_path(c.utt), start=start, end=start + min(self.crop, c.seconds))
        text = (c.utt.transcript or "").strip()
        vec = self.sentences.get(text)
        return {"audio": torch.from_numpy(audio),
                "sentence": torch.from_numpy(vec) if vec is not None else torch.zeros(self.dim),
                "has_text": vec is not None, "index": i}


def care_collate(items):
    return pad_collate(items, pad_keys=("audio",))


def sentence_targets(texts: Sequence[str], text_model: str, device: str = "cpu") -> dict[str, np.ndarray]:
    """Mean-pooled sentence embedding (not L2-normalised) of every distinct non-empty text."""
    from ..text.embed import get_embedder

    distinct = sorted({t.strip() for t in texts if t and t.strip()})
    if not distinct:
        return {}
    emb = get_embedder(text_model, device=device, threads=torch.get_num_threads())
    vecs = emb.encode(distinct, batch_size=64)
    return {t: v.astype(np.float32) for t, v in zip(distinct, vecs)}


# ============================================================================ losses
def care_losses(model: CareEncoder, batch: dict[str, Any], descriptors: DescriptorConfig) -> dict[str, torch.Tensor]:
    """``{"acoustic": frame MSE, "semantic": utterance MSE}`` (the branches the model has). The
    acoustic MSE averages over valid frames and descriptor dims; the semantic one over the
    items with a transcript and the embedding dims (0, still connected, when none has one)."""
    out = model.pretrain_outputs(batch["audio"], batch["audio_lengths"])
    losses: dict[str, torch.Tensor] = {}
    if out.descriptors is not None:
        with torch.no_grad():
            target, target_frames = frame_descriptors(batch["audio"], batch["audio_lengths"], descriptors)
        t = min(out.descriptors.shape[1], target.shape[1])
        frames = torch.minimum(out.lengths.to(target_frames.device), target_frames).clamp(max=t)
        mask = lengths_to_mask(frames, t).to(out.descriptors.dtype)
        err = ((out.descriptors[:, :t] - target[:, :t].to(out.descriptors.dtype)) ** 2).mean(-1)
        losses["acoustic"] = (err * mask).sum() / mask.sum().clamp_min(1.0)
    if out.sentence is not None:
        has = batch["has_text"].to(out.sentence.dtype)
        err = ((out.sentence - batch["sentence"].to(out.sentence.dtype)) ** 2).mean(-1)
        losses["semantic"] = (err * has).sum() / has.sum().clamp_min(1.0)
    return losses


def _step(holder: dict[str, Any], descriptors: DescriptorConfig):
    def step(model, batch):
        losses = care_losses(model, batch, descriptors)
        loss = sum(losses.values())
        logs = {k: float(v.detach()) for k, v in losses.items()}
        if model.training:  # running training means, reported with the next validation
            for k, v in {"loss": float(loss.detach()), **logs}.items():
                holder.setdefault(k, []).append(v)
            holder["audio_seconds"] = holder.get("audio_seconds", 0.0) + float(batch["audio_lengths"].sum()) / 16000
            holder["steps"] = holder.get("steps", 0) + 1
        return loss, logs

    return step


def _evaluate(holder: dict[str, Any], descriptors: DescriptorConfig):
    def evaluate(model, batches) -> dict[str, float]:
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}
        for b in batches:
            n = {"acoustic": float(len(b["audio"])), "semantic": float(b["has_text"].sum())}
            for k, v in care_losses(model, b, descriptors).items():
                sums[k] = sums.get(k, 0.0) + float(v) * n[k]
                counts[k] = counts.get(k, 0.0) + n[k]
        metrics = {k: sums[k] / counts[k] for k in sums if counts[k] > 0}
        metrics["loss"] = sum(metrics.values())
        for k in ("loss", "acoustic", "semantic"):
            if holder.get(k):
                metrics[f"train_{k}"] = float(np.mean(holder.pop(k)))
        return metrics

    return evaluate


# ============================================================================ pre-training
def pretrain(manifests: Sequence[Manifest], out_dir: str | os.PathLike, config: CarePretrainConfig | None = None,
             resume: bool = True, validation: Sequence[Manifest] = (), device: str = "auto",
             num_workers: int = 0, callbacks: Sequence[Callable] = ()) -> dict[str, Any]:
    """Pre-train CARE on ``manifests`` (see the module docstring); returns the result dict."""
    cfg = config or CarePretrainConfig()
    out = Path(out_dir)
    check_run_config(out, cfg, resume)
    mcfg = cfg.model_config()
    train_clips, val_clips, failed = split_clips(
        manifests, validation, fraction=cfg.validation_fraction, seed=cfg.seed, need_text=mcfg.branches == "semantic",
        limit=cfg.limit, what="CARE pre-training")
    sentences = {}
    if mcfg.semantic:
        sentences = sentence_targets([c.utt.transcript or "" for c in train_clips + val_clips], cfg.text)
    model = build_care(mcfg)
    dim = model.text_dim
    if sentences and len(next(iter(sentences.values()))) != dim:
        raise ValueError(f"{cfg.text}: sentence embeddings of {len(next(iter(sentences.values())))} dims for a "
                         f"semantic branch of {dim}")
    train_set = CropSet(train_clips, sentences, dim, cfg.crop_seconds, train=True)
    val_set = CropSet(val_clips, sentences, dim, cfg.crop_seconds, train=False)
    hours = sum(c.seconds for c in train_clips) / 3600
    with_text = sum(1 for c in train_clips if (c.utt.transcript or "").strip() in sentences)
    (log.info if D.is_main() else log.debug)(
        "pre-training CARE (%s) on %d utterances (%.2f h; %d with a transcript), validation %d; %d trainable "
        "parameters", mcfg.branches, len(train_clips), hours, with_text, len(val_clips),
        sum(p.numel() for p in model.parameters() if p.requires_grad))
    holder: dict[str, Any] = {}
    desc = cfg.descriptor_config()
    trainer = make_trainer(model, train_set, val_set, cfg, out, _step(holder, desc), _evaluate(holder, desc),
                           train_set.lengths(), "loss", "min", care_collate, num_workers=num_workers,
                           device=device, log_every=10, callbacks=callbacks,
                           optimizer=lambda params: torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas,
                                                                      weight_decay=cfg.weight_decay))
    t0 = time.time()
    res = trainer.fit(resume=resume)
    seconds = time.time() - t0
    audio = holder.get("audio_seconds", 0.0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB (Linux)
    result = {"config": asdict(cfg), "model": asdict(mcfg), "train_utterances": len(train_clips),
              "train_hours": hours, "train_with_transcript": with_text, "validation_utterances": len(val_clips),
              "steps": res.step, "epochs": res.epoch, "out_of_time": res.out_of_time, "best_step": res.best_step, "best": res.best_metrics,
              "history": res.history, "failed": failed, "seconds": seconds,
              "steps_this_run": holder.get("steps", 0), "audio_seconds_per_second": audio / max(seconds, 1e-9),
              "peak_rss_mb": peak, "world_size": D.world_size()}
    if torch.cuda.is_available() and trainer.device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated(trainer.device) / 2**20
    if D.rank() == 0:
        save_care(model.cpu(), out / "care.pt", metrics=res.best_metrics, step=res.best_step,
                  source="emovox pretrain care")
    finish_run(out, result, plot_curves)
    return result


def plot_curves(history: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Training and validation losses per evaluation as a PNG (log scale; nothing without history)."""
    if not history:
        return
    from ..report.plots import line_plot

    nan = float("nan")
    curves = {f"{split} {k}": [h.get(f"{prefix}{k}", nan) for h in history]
              for split, prefix in (("train", "train_"), ("validation", "")) for k in ("acoustic", "semantic")
              if any(f"{prefix}{k}" in h for h in history)}
    line_plot(curves, path, x=[h.get("step", i + 1) for i, h in enumerate(history)], xlabel="step",
              ylabel="MSE", title="CARE pre-training", logy=True, dpi=100)
