"""SA2SR: sentiment-aware ASR pre-training, then emotion fine-tuning (Ghriss et al., ICASSP 2022).

Pre-training (:func:`pretrain`)::

    audio -> speed perturbation (0.9 / 1.0 / 1.1) -> encoder (default 5 x BiLSTM(192) on stacked
    40 LFBE with SpecAugment) -> last hidden state (B, T, D)
        -> CTC head over characters           L_CTC
        -> recurrent sentiment head (3-way)   L_CE against proxy labels from ``emovox label``
    L = L_CTC + lambda * L_CE, lambda = 200 (0 = the ASR-only baseline); Adam 5e-5;
    after each epoch: validation CER and sentiment AUC; early stopping on M = CER - AUC
    (patience 25), or on CER alone for the ASR-only baseline.

Fine-tuning (:func:`finetune`)::

    pre-trained encoder (frozen or not, or randomly initialised) -> emotion regressor
    (heads/regressor.py) -> activation/valence/dominance with the CCC loss, an ordinal label
    (e.g. BAVED level) with the CCC loss, or categories with cross entropy;
    cross-validated over speaker folds (emovox.splits.make_folds).

Every value of the paper is a default of :class:`PretrainConfig` / :class:`FinetuneConfig`.
Training goes through the shared :class:`emovox.train.Trainer` (checkpoints, exact resume,
early stopping, torchrun).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .. import distributed as D
from ..audio import AudioError, info, load_audio
from ..encoders.base import Encoder
from ..encoders.bilstm import BiLSTMConfig, BiLSTMEncoder, is_bilstm_checkpoint, load_bilstm, save_encoder
from ..features.augment import SPEED_FACTORS, speed_perturb
from ..heads.ctc import CTCHead, greedy_decode
from ..heads.regressor import EmotionRegressor, RegressorConfig
from ..heads.sentiment import SentimentHead
from ..manifest import SENTIMENTS, Manifest, Utterance
from ..train.data import pad_collate, pad_sequence
from ..utils import atomic_torch_save, read_torch, write_json

log = logging.getLogger("emovox.sa2sr")

KIND = "emovox.sa2sr"
FINETUNED_KIND = "emovox.sa2sr.finetuned"
MIN_SECONDS = 0.1  # shorter clips give no stacked frame


# ============================================================================ configs


def _from_dict(cls, d: dict[str, Any]):
    """Rebuild a (nested) config dataclass from ``asdict`` output; unknown keys are ignored."""
    kw = {}
    for f in fields(cls):
        if f.name not in d:
            continue
        v = d[f.name]
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if is_dataclass(default) and isinstance(v, dict):
            v = _from_dict(type(default), v) if not hasattr(type(default), "from_dict") else type(default).from_dict(v)
        elif isinstance(v, list):
            v = tuple(v)
        kw[f.name] = v
    return cls(**kw)


@dataclass
class PretrainConfig:
    """SA2SR pre-training. Defaults are the paper's (batch size and epoch cap are not stated
    there and are ours)."""

    encoder: str = "bilstm"  # or any emovox.encoders.load_encoder name, e.g. "whisper-tiny.en"
    bilstm: BiLSTMConfig = field(default_factory=BiLSTMConfig)
    vocab: str = "english"  # "english" (29 characters) or "auto" (characters of the transcripts)
    sentiment_weight: float = 200.0  # lambda; 0 = ASR-only baseline
    # L_CTC per utterance (summed over its characters, averaged over the batch): lambda = 200 only
    # balances a cross entropy of about 1 against a loss of that scale; per character (about 3)
    # it would leave the encoder a sentiment classifier. "character" = PyTorch's "mean".
    ctc_reduction: str = "utterance"
    sentiment_hidden: int = 128
    speeds: tuple[float, ...] = SPEED_FACTORS
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 32
    max_epochs: int = 200
    max_steps: int | None = None
    patience: int = 25
    grad_clip: float | None = None
    max_seconds: float = 30.0  # longer training clips are skipped (memory)
    validation_fraction: float = 0.1  # held out per manifest that has no validation split
    limit: int | None = None  # use at most this many utterances per manifest (reduced budgets)
    seed: int = 0
    save_every: int | None = 200

    @property
    def monitor(self) -> str:
        return "m" if self.sentiment_weight > 0 else "cer"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PretrainConfig":
        return _from_dict(cls, d)


@dataclass
class FinetuneConfig:
    """Emotion fine-tuning. Regressor and loss are the paper's; the optimiser settings, epochs
    and folds are not stated there and are ours."""

    encoder: str = "bilstm"  # a pre-training output (folder, sa2sr.pt, encoder.pt) or encoder name
    no_pretraining: bool = False  # random initialisation (baseline)
    freeze_encoder: bool = False
    layer: int = -1  # which hidden state feeds the regressor
    task: str = "attributes"  # "attributes" | "ordinal" | "categorical"
    label: str = "emotion"  # categorical/ordinal label name (e.g. emotion, level)
    attributes: tuple[str, ...] = ("arousal", "valence", "dominance")
    regressor: RegressorConfig = field(default_factory=RegressorConfig)
    class_weighted: bool = True  # categorical: balanced class weights in the cross entropy
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 32
    max_epochs: int = 50
    max_steps: int | None = None
    patience: int = 10
    protocol: str = "kfold"
    folds: int = 5
    run_folds: int | None = None  # run only the first N folds (reduced budgets)
    validation_fraction: float = 0.1
    max_seconds: float = 30.0  # clips are cut to this length
    cache_frozen: bool = True  # frozen encoder: compute its states once and train the head on them
    seed: int = 0

    @property
    def monitor(self) -> str:
        return "ua" if self.task == "categorical" else "ccc"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FinetuneConfig":
        return _from_dict(cls, d)


# ============================================================================ vocabulary


def make_vocab(kind: str, transcripts: Sequence[str]):
    """The CTC character vocabulary: English (29 characters) or derived from the transcripts."""
    from ..text.vocab import CharVocab

    if kind == "english":
        return CharVocab()
    if kind == "auto":
        return CharVocab.from_transcripts(list(transcripts))
    raise ValueError(f"vocab must be 'english' or 'auto', got {kind!r}")


def vocab_state(vocab) -> dict[str, Any]:
    return vocab.to_dict()


def vocab_from_state(state: dict[str, Any]):
    from ..text.vocab import CharVocab

    return CharVocab.from_dict(state)


# ============================================================================ models


def build_encoder(name: str, bilstm: BiLSTMConfig | None = None, seed: int = 0) -> Encoder:
    """A fresh encoder: the BiLSTM (random init) or a named pre-trained one (e.g. Whisper)."""
    if name == "bilstm":
        torch.manual_seed(seed)
        return BiLSTMEncoder(bilstm or BiLSTMConfig(), seed=seed)
    from ..encoders import load_encoder

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
        return self.regressor(states, lengths)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, S), (B,) samples -> (B, outputs)."""
        return self.head(*self.states(audio, lengths))


def load_pretrained_encoder(spec: str | os.PathLike, device: str = "cpu") -> Encoder:
    """The encoder of a pre-training run: an output folder (its ``sa2sr.pt``), an ``sa2sr.pt`` or
    ``encoder.pt`` file, or an encoder name for ``emovox.encoders.load_encoder``."""
    path = Path(spec)
    if path.is_dir():
        path = path / "sa2sr.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{spec}: no sa2sr.pt in this folder (is it a pre-training output?)")
    if path.is_file():
        obj = read_torch(path, "an SA2SR or BiLSTM checkpoint", weights_only=False)
        if is_bilstm_checkpoint(obj):
            return load_bilstm(path, device)
        if isinstance(obj, dict) and obj.get("kind") == KIND:
            return load_sa2sr(path).encoder.to(device)
        raise ValueError(f"{path}: not an SA2SR or BiLSTM checkpoint")
    if str(spec) == "bilstm":
        return build_encoder("bilstm")
    from ..encoders import load_encoder

    return load_encoder(str(spec), device=device)


def load_sa2sr(path: str | os.PathLike) -> SA2SRModel:
    """A pre-trained SA2SR model (``sa2sr.pt``), with ``.vocab`` and ``.config`` attached."""
    obj = read_torch(path, "an SA2SR checkpoint", weights_only=False)
    if not (isinstance(obj, dict) and obj.get("kind") == KIND):
        raise ValueError(f"{path}: not an SA2SR checkpoint")
    cfg = PretrainConfig.from_dict(obj["config"])
    vocab = vocab_from_state(obj["vocab"])
    model = SA2SRModel(build_encoder(cfg.encoder, cfg.bilstm), len(vocab), cfg.sentiment_hidden)
    model.load_state_dict(obj["model"])
    model.vocab, model.config = vocab, cfg
    return model.eval()


# ============================================================================ data


@dataclass
class Clip:
    """One usable utterance: where its audio is and how long it is (s)."""

    manifest: Manifest
    utt: Utterance
    seconds: float

    def load(self, max_seconds: float | None = None) -> torch.Tensor:
        u = self.utt
        end = u.end
        if max_seconds is not None:
            start = u.start or 0.0
            end = min(end, start + max_seconds) if end is not None else start + max_seconds
            end = min(end, (u.start or 0.0) + self.seconds)
        return torch.from_numpy(load_audio(self.manifest.audio_path(u), start=u.start, end=end))


def scan(manifest: Manifest, records: Sequence[Utterance] | None = None,
         min_seconds: float = MIN_SECONDS) -> tuple[list[Clip], list[dict[str, str]]]:
    """Check every record's audio header; returns usable clips and ``{"id", "error"}`` for the
    others (missing, unreadable, too short) so that a batch job can go on and report them."""
    clips, failed = [], []
    for u in records if records is not None else manifest.records:
        try:
            if u.start is not None and u.end is not None:
                secs = u.end - u.start
                path = manifest.audio_path(u)
                if not path.is_file():
                    raise AudioError(path, "file not found")
            else:
                secs = info(manifest.audio_path(u)).duration - (u.start or 0.0)
            if secs < min_seconds:
                raise AudioError(manifest.audio_path(u), f"too short ({secs:.3f} s < {min_seconds} s)")
            clips.append(Clip(manifest, u, secs))
        except AudioError as e:
            failed.append({"id": u.id, "error": str(e)})
    for f in failed:
        log.warning("skipping %s: %s", f["id"], f["error"])
    return clips, failed


class PretrainSet(torch.utils.data.Dataset):
    """(clip, speed) pairs -> {"audio" (S,), "tokens" (U,), "sentiment" int, "text" str}.

    Sentiment is the proxy label's index in SENTIMENTS, or -100 (ignored) when absent."""

    def __init__(self, clips: Sequence[Clip], vocab, speeds: Sequence[float] = (1.0,)):
        self.items = [(c, s) for c in clips for s in speeds]
        self.vocab = vocab

    def __len__(self) -> int:
        return len(self.items)

    def lengths(self) -> list[float]:
        return [c.seconds / s for c, s in self.items]

    def text(self, clip: Clip) -> str:
        return self.vocab.decode(self.vocab.encode(clip.utt.transcript or ""))

    def __getitem__(self, i: int) -> dict[str, Any]:
        clip, speed = self.items[i]
        audio = speed_perturb(clip.load(), speed)
        tokens = torch.tensor(self.vocab.encode(clip.utt.transcript or ""), dtype=torch.long)
        s = clip.utt.sentiment
        return {"audio": audio, "tokens": tokens, "sentiment": SENTIMENTS.index(s) if s in SENTIMENTS else -100,
                "text": self.text(clip), "index": i}


pretrain_collate = partial(pad_collate, pad_keys=("audio", "tokens"))


def _holdout(clips: list[Clip], fraction: float, seed: int) -> tuple[list[Clip], list[Clip]]:
    """(train, validation): the manifest's own validation split when it has one, else a seeded
    ``fraction`` of the clips (by speaker when speakers are known, so none is in both)."""
    val_names = {"validation", "valid", "dev"}
    if any(c.utt.split in val_names for c in clips):
        return ([c for c in clips if c.utt.split not in val_names], [c for c in clips if c.utt.split in val_names])
    rng = np.random.default_rng(seed)
    speakers = sorted({c.utt.speaker for c in clips if c.utt.speaker})
    if len(speakers) >= 5:
        n = max(1, round(fraction * len(speakers)))
        held = set(rng.permutation(speakers)[:n].tolist())
        return [c for c in clips if c.utt.speaker not in held], [c for c in clips if c.utt.speaker in held]
    order = rng.permutation(len(clips))
    n = max(1, round(fraction * len(clips))) if len(clips) > 1 else 0
    held = set(order[:n].tolist())
    return [c for i, c in enumerate(clips) if i not in held], [c for i, c in enumerate(clips) if i in held]


# ============================================================================ run folders

BUDGET_KEYS = frozenset({"max_epochs", "max_steps", "patience", "run_folds", "save_every"})


def check_run_config(out: Path, cfg, resume: bool) -> None:
    """A run folder keeps the settings it was started with (``OUT/config.json``). Resuming with
    other settings than the budget (epochs, steps, patience, folds to run, checkpoint interval)
    would mix two experiments in one result, so it is refused with the differences named."""
    path = out / "config.json"
    now = json.loads(json.dumps(asdict(cfg)))  # tuples as lists, as stored
    if resume and path.is_file():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: unreadable run configuration ({e})") from e
        diff = [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(before) | set(now))
                if k not in BUDGET_KEYS and before.get(k) != now.get(k)]
        if diff:
            raise ValueError(f"{out}: this run was started with other settings ({'; '.join(diff)}); resume "
                             "with the same ones, or start over (--restart) or in another folder")
    if D.rank() == 0:
        write_json(path, now)


# ============================================================================ pre-training


def _reseeding_step(step_fn, holder: dict[str, Any], seed: int):
    """Wrap a step so the encoder's SpecAugment draws from (seed, step, rank): the same masks on
    a rerun and after a resume."""

    def step(model, batch):
        aug = getattr(getattr(model, "encoder", None), "spec_augment", None)
        trainer = holder.get("trainer")
        if aug is not None and trainer is not None:
            aug.reseed(seed * 1_000_003 + trainer.step * 101 + D.rank())
        return step_fn(model, batch)

    return step


def pretrain_step(model: SA2SRModel, batch: dict[str, Any], sentiment_weight: float, ctc_reduction: str):
    """L = L_CTC + lambda * L_CE (the sentiment head always runs, so DDP sees all parameters)."""
    from ..train.losses import cross_entropy, ctc_loss, weighted_sum

    out = model(batch["audio"], batch["audio_lengths"])
    losses = {"ctc": ctc_loss(out.log_probs, batch["tokens"], out.lengths, batch["tokens_lengths"],
                              reduction=ctc_reduction),
              "sentiment": cross_entropy(out.sentiment_logits, batch["sentiment"])}
    return weighted_sum(losses, {"sentiment": sentiment_weight})


def pretrain_metrics(model: SA2SRModel, batches, vocab) -> dict[str, float]:
    """Validation CER (greedy CTC decoding), sentiment AUC (one-vs-rest macro over the classes
    present; 0.5 stands in when it is undefined, e.g. all-neutral text) and M = CER - AUC."""
    from ..evaluate.metrics import roc_auc
    from ..evaluate.wer import cer

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


def _trainer(model, train_set, val_set, cfg, out: Path, step, evaluate, lengths, monitor: str, mode: str,
             collate, patience: int | None):
    from ..train import TrainConfig, Trainer

    tc = TrainConfig(lr=cfg.lr, betas=cfg.betas, batch_size=cfg.batch_size, max_epochs=cfg.max_epochs,
                     max_steps=cfg.max_steps, monitor=monitor, mode=mode, patience=patience,
                     grad_clip=getattr(cfg, "grad_clip", None), seed=cfg.seed, checkpoint_dir=str(out),
                     save_every=getattr(cfg, "save_every", None), progress=None)
    holder: dict[str, Any] = {}
    trainer = Trainer(model, train_set, tc, collate=collate, step=_reseeding_step(step, holder, cfg.seed),
                      validation_data=val_set, evaluate=evaluate, lengths=lengths)
    holder["trainer"] = trainer
    return trainer


def pretrain(manifests: Sequence[Manifest], out_dir: str | os.PathLike, config: PretrainConfig | None = None,
             resume: bool = True, validation: Sequence[Manifest] = ()) -> dict[str, Any]:
    """Pre-train on the transcribed records of ``manifests``; writes to ``out_dir``:
    ``last.pt``/``best.pt`` (trainer), ``sa2sr.pt`` (best model + config + vocabulary),
    ``encoder.pt`` (BiLSTM only, loadable by ``emovox.encoders.load_encoder``), ``history.json``,
    ``curves.png`` and ``result.json``. Returns the result dictionary."""
    from ..train.losses import CTC_REDUCTIONS

    cfg = config or PretrainConfig()
    if cfg.ctc_reduction not in CTC_REDUCTIONS:
        raise ValueError(f"ctc_reduction must be one of {CTC_REDUCTIONS}, got {cfg.ctc_reduction!r}")
    out = Path(out_dir)
    check_run_config(out, cfg, resume)
    train_clips, val_clips, failed, untranscribed = [], [], [], 0
    for m in manifests:
        recs = [u for u in m.records if (u.transcript or "").strip()]
        untranscribed += len(m.records) - len(recs)
        if cfg.limit:
            recs = recs[: cfg.limit]
        clips, bad = scan(m, recs)
        failed += bad
        long_ = [c for c in clips if c.seconds > cfg.max_seconds]
        clips = [c for c in clips if c.seconds <= cfg.max_seconds]
        failed += [{"id": c.utt.id, "error": f"longer than max_seconds={cfg.max_seconds}"} for c in long_]
        if validation:
            train_clips += clips
        else:
            tr, va = _holdout(clips, cfg.validation_fraction, cfg.seed)
            train_clips += tr
            val_clips += va
    for m in validation:
        clips, bad = scan(m, [u for u in m.records if (u.transcript or "").strip()])
        val_clips += clips
        failed += bad
    if untranscribed:
        log.warning("%d record(s) without a transcript are not used for pre-training", untranscribed)
    if not train_clips:
        raise ValueError("pre-training: no usable transcribed utterance in the given manifest(s)")
    if not val_clips:
        raise ValueError("pre-training: no validation utterance (give a validation manifest or more data)")
    vocab = make_vocab(cfg.vocab, [c.utt.transcript or "" for c in train_clips])
    model = SA2SRModel(build_encoder(cfg.encoder, cfg.bilstm, cfg.seed), len(vocab), cfg.sentiment_hidden)
    train_set = PretrainSet(train_clips, vocab, cfg.speeds)
    val_set = PretrainSet(val_clips, vocab, (1.0,))
    with_sent = sum(1 for c in train_clips if c.utt.sentiment in SENTIMENTS)
    say = log.info if D.is_main() else log.debug
    say("pre-training %s on %d utterances (%.2f h, x%d speeds), %d with proxy sentiment; "
             "validation %d; lambda=%g; monitor %s", cfg.encoder, len(train_clips),
             sum(c.seconds for c in train_clips) / 3600, len(cfg.speeds), with_sent, len(val_clips),
             cfg.sentiment_weight, cfg.monitor)
    trainer = _trainer(model, train_set, val_set, cfg, out,
                       partial(pretrain_step, sentiment_weight=cfg.sentiment_weight, ctc_reduction=cfg.ctc_reduction),
                       partial(pretrain_metrics, vocab=vocab), train_set.lengths(), cfg.monitor, "min",
                       pretrain_collate, cfg.patience)
    t0 = time.time()
    res = trainer.fit(resume=resume)
    result = {"config": asdict(cfg), "vocab_size": len(vocab), "train_utterances": len(train_clips),
              "train_hours": sum(c.seconds for c in train_clips) / 3600, "validation_utterances": len(val_clips),
              "steps": res.step, "epochs": res.epoch, "stopped_early": res.stopped_early,
              "best_step": res.best_step, "best": res.best_metrics, "history": res.history,
              "failed": failed, "seconds": time.time() - t0}
    if D.rank() == 0:
        atomic_torch_save({"kind": KIND, "config": asdict(cfg), "vocab": vocab_state(vocab),
                           "model": model.state_dict(), "metrics": res.best_metrics}, out / "sa2sr.pt")
        if isinstance(model.encoder, BiLSTMEncoder):
            save_encoder(model.encoder, out / "encoder.pt", source="emovox pretrain sa2sr", metrics=res.best_metrics)
        write_json(out / "history.json", res.history)
        write_json(out / "result.json", result)
        plot_curves(res.history, out / "curves.png")
    D.barrier()
    return result


def plot_curves(history: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Validation CER and sentiment AUC per evaluation as a PNG."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from ..utils import atomic_open

    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(epochs, [h.get("cer", float("nan")) for h in history], marker="o", label="validation CER")
    ax.plot(epochs, [h.get("auc", float("nan")) for h in history], marker="s", label="sentiment AUC")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylim(0, max(1.05, max(h.get("cer", 0) for h in history) + 0.05))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


# ============================================================================ fine-tuning


@dataclass
class Targets:
    """What the regressor predicts: ``names`` (columns or classes) and how to read them."""

    task: str
    names: list[str]
    label: str = ""

    @property
    def outputs(self) -> int:
        return len(self.names)

    def of(self, manifest: Manifest, u: Utterance) -> tuple[list[float], list[bool]] | int:
        """Regression: (values in [-1, 1], present flags); categorical: class index or -100."""
        if self.task == "categorical":
            v = u.get(self.label)
            return self.names.index(v) if v in self.names else -100
        if self.task == "ordinal":
            vocab = manifest.labels.get(self.label) or []
            v = u.get(self.label)
            if v not in vocab or len(vocab) < 2:
                return [0.0], [False]
            return [2.0 * vocab.index(v) / (len(vocab) - 1) - 1.0], [True]
        vals, ok = [], []
        for a in self.names:
            v = u.get(a)
            if v is not None and a in manifest.scales:
                v = manifest.to_unit(v, a)
            vals.append(float(v) if v is not None else 0.0)
            ok.append(v is not None)
        return vals, ok


def targets_for(manifest: Manifest, cfg: FinetuneConfig) -> Targets:
    if cfg.task == "categorical":
        vocab = manifest.labels.get(cfg.label)
        if not vocab:
            present = sorted({str(u.get(cfg.label)) for u in manifest if u.get(cfg.label) is not None})
            if not present:
                raise ValueError(f"{manifest.corpus or 'manifest'}: no {cfg.label!r} labels to fine-tune on")
            vocab = present
        used = {u.get(cfg.label) for u in manifest}
        return Targets("categorical", [c for c in vocab if c in used], cfg.label)
    if cfg.task == "ordinal":
        if len(manifest.labels.get(cfg.label) or []) < 2:
            raise ValueError(f"{manifest.corpus or 'manifest'}: ordinal task needs a vocabulary for "
                             f"{cfg.label!r} in the manifest (has {sorted(manifest.labels)})")
        return Targets("ordinal", [cfg.label], cfg.label)
    if cfg.task != "attributes":
        raise ValueError(f"task must be attributes, ordinal or categorical, got {cfg.task!r}")
    names = [a for a in cfg.attributes if any(u.get(a) is not None for u in manifest)]
    if not names:
        raise ValueError(f"{manifest.corpus or 'manifest'}: none of the attributes {list(cfg.attributes)} "
                         f"has a value; use --task categorical/ordinal --label NAME")
    return Targets("attributes", names)


class EmotionSet(torch.utils.data.Dataset):
    """Clips -> {"audio" (S,) or "states" (T, D), "target"/"target_mask" or "label", "id"}."""

    def __init__(self, clips: Sequence[Clip], targets: Targets, max_seconds: float,
                 states: dict[str, torch.Tensor] | None = None):
        self.clips, self.targets, self.max_seconds, self.states = list(clips), targets, max_seconds, states

    def __len__(self) -> int:
        return len(self.clips)

    def lengths(self) -> list[float]:
        return [min(c.seconds, self.max_seconds) for c in self.clips]

    def __getitem__(self, i: int) -> dict[str, Any]:
        c = self.clips[i]
        item: dict[str, Any] = {"id": c.utt.id}
        if self.states is not None:
            item["states"] = self.states[c.utt.id]
        else:
            item["audio"] = c.load(self.max_seconds)
        t = self.targets.of(c.manifest, c.utt)
        if self.targets.task == "categorical":
            item["label"] = t
        else:
            item["target"] = torch.tensor(t[0], dtype=torch.float32)
            item["target_mask"] = torch.tensor(t[1], dtype=torch.bool)
        return item


finetune_collate = partial(pad_collate, pad_keys=("audio", "states"))


def _predict(model: EmotionModel, b: dict[str, Any]) -> torch.Tensor:
    if "states" in b:
        return model.head(b["states"], b["states_lengths"])
    return model(b["audio"], b["audio_lengths"])


def finetune_step(model: EmotionModel, batch: dict[str, Any], task: str, weight: torch.Tensor | None):
    from ..train.losses import ccc_loss, cross_entropy

    pred = _predict(model, batch)
    if task == "categorical":
        loss = cross_entropy(pred, batch["label"], weight=weight)
    else:
        loss = ccc_loss(pred, batch["target"], mask=batch["target_mask"])
    return loss, {}


def emotion_predictions(model: EmotionModel, batches) -> dict[str, Any]:
    ids, preds, golds, masks = [], [], [], []
    for b in batches:
        p = _predict(model, b).float().cpu()
        ids += list(b["id"])
        preds.append(p)
        if "label" in b:
            golds.append(b["label"].cpu())
        else:
            golds.append(b["target"].cpu())
            masks.append(b["target_mask"].cpu())
    return {"ids": ids, "pred": torch.cat(preds).numpy(), "gold": torch.cat(golds).numpy(),
            "mask": torch.cat(masks).numpy() if masks else None}


def emotion_metrics(p: dict[str, Any], targets: Targets) -> dict[str, float]:
    """CCC per column and their mean ("ccc"), or UA, weighted F1 and accuracy for categories."""
    from ..evaluate import metrics as M

    if targets.task == "categorical":
        keep = p["gold"] >= 0
        y, yhat = p["gold"][keep], p["pred"][keep].argmax(-1)
        labels = list(range(targets.outputs))
        return {"ua": M.unweighted_average_recall(y, yhat, labels=labels),
                "wf1": M.weighted_f1(y, yhat, labels=labels),
                "accuracy": float((y == yhat).mean()) if len(y) else float("nan")}
    out = {}
    for k, name in enumerate(targets.names):
        m = p["mask"][:, k]
        out[f"ccc_{name}"] = M.ccc(p["gold"][m, k], p["pred"][m, k]) if m.sum() >= 2 else float("nan")
    vals = [v for v in out.values() if math.isfinite(v)]
    out["ccc"] = float(np.mean(vals)) if vals else float("nan")
    return out


def _evaluate_fn(targets: Targets):
    def evaluate(model, batches):
        return emotion_metrics(emotion_predictions(model, batches), targets)

    return evaluate


def cache_states(encoder: Encoder, clips: Sequence[Clip], layer: int, max_seconds: float,
                 batch_size: int = 8) -> dict[str, torch.Tensor]:
    """A frozen encoder's hidden state ``layer`` for every clip: {id: (T, D)}. Each rank
    computes its shard; under torchrun the shards are exchanged so every rank has all."""
    from ..utils import progress

    encoder.eval()
    D.init_process_group()  # no-op without torchrun
    mine = D.shard(list(clips))
    states: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for s in progress(range(0, len(mine), batch_size), desc="encoder states", unit="batch"):
            chunk = mine[s:s + batch_size]
            audio = [c.load(max_seconds) for c in chunk]
            x, lengths = pad_sequence(audio)
            out = encoder(x, lengths)
            h = out.hidden_states[layer]
            for c, hi, n in zip(chunk, h, out.lengths.tolist()):
                states[c.utt.id] = hi[: max(int(n), 1)].clone()
    if D.world_size() > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            gathered: list[Any] = [None] * D.world_size()
            dist.all_gather_object(gathered, states)
            states = {k: v for part in gathered for k, v in part.items()}
    return states


def reinitialise(encoder: Encoder, seed: int = 0) -> Encoder:
    """The same architecture with fresh random weights (the no-pre-training baseline)."""
    torch.manual_seed(seed)
    if isinstance(encoder, BiLSTMEncoder):
        return BiLSTMEncoder(encoder.cfg, seed=seed)
    for mod in encoder.modules():
        if mod is not encoder and hasattr(mod, "reset_parameters"):
            mod.reset_parameters()
    return encoder


def _new_model(cfg: FinetuneConfig, outputs: int) -> EmotionModel:
    enc = load_pretrained_encoder(cfg.encoder)
    if cfg.no_pretraining:
        enc = reinitialise(enc, cfg.seed)
    torch.manual_seed(cfg.seed)
    return EmotionModel(enc, RegressorConfig(**{**asdict(cfg.regressor), "outputs": outputs}), cfg.layer,
                        cfg.freeze_encoder)


def finetune(manifest: Manifest, out_dir: str | os.PathLike, config: FinetuneConfig | None = None,
             resume: bool = True) -> dict[str, Any]:
    """Cross-validated emotion fine-tuning over speaker folds. Writes ``fold-NN/`` (trainer
    checkpoints, ``result.json``, ``model.pt``) and ``result.json`` (per-fold test metrics, their
    mean and standard deviation) under ``out_dir``; finished folds are skipped on a rerun."""
    from ..splits import make_folds
    from ..train.losses import class_weights

    cfg = config or FinetuneConfig()
    out = Path(out_dir)
    check_run_config(out, cfg, resume)
    targets = targets_for(manifest, cfg)
    clips, failed = scan(manifest)
    by_id = {c.utt.id: c for c in clips}
    folds = make_folds(manifest.filter(lambda u: u.id in by_id), cfg.protocol, k=cfg.folds, seed=cfg.seed,
                       validation=cfg.validation_fraction)
    if cfg.run_folds:
        folds = folds[: cfg.run_folds]
    states = None
    if cfg.freeze_encoder and cfg.cache_frozen:
        encoder = _new_model(cfg, targets.outputs).encoder
        states = cache_states(encoder, clips, cfg.layer, cfg.max_seconds)
    per_fold = []
    t0 = time.time()
    for i, fold in enumerate(folds):
        fdir = out / f"fold-{i:02d}"
        done = fdir / "result.json"
        if resume and done.is_file():
            per_fold.append(json.loads(done.read_text()))
            log.info("fold %s already done: %s", fold.name, per_fold[-1]["test"])
            continue
        sets = {part: EmotionSet([by_id[j] for j in getattr(fold, part) if j in by_id], targets, cfg.max_seconds,
                                 states) for part in ("train", "validation", "test")}
        model = _new_model(cfg, targets.outputs)
        if states is not None:
            model.encoder.requires_grad_(False)
        weight = None
        if targets.task == "categorical" and cfg.class_weighted:
            labels = [sets["train"].targets.of(c.manifest, c.utt) for c in sets["train"].clips]
            weight = class_weights([y for y in labels if y >= 0], targets.outputs)
        val = sets["validation"] if len(sets["validation"]) else sets["test"]
        trainer = _trainer(model, sets["train"], val, cfg, fdir,
                           partial(finetune_step, task=targets.task, weight=weight), _evaluate_fn(targets),
                           sets["train"].lengths(), cfg.monitor, "max", finetune_collate, cfg.patience)
        res = trainer.fit(resume=resume)
        test = _test_metrics(trainer, sets["test"], targets)
        fr = {"fold": fold.name, "index": i, "train": len(sets["train"]), "validation": len(sets["validation"]),
              "test_size": len(sets["test"]), "best_step": res.best_step, "epochs": res.epoch,
              "validation_best": res.best_metrics, "test": test}
        if D.rank() == 0:
            atomic_torch_save({"kind": FINETUNED_KIND, "config": asdict(cfg), "targets": asdict(targets),
                               "model": model.state_dict()}, fdir / "model.pt")
            write_json(done, fr)
        per_fold.append(fr)
        if D.is_main():
            log.info("fold %s test: %s", fold.name, " ".join(f"{k}={v:.4f}" for k, v in test.items()))
    summary = summarize([f["test"] for f in per_fold])
    result = {"config": asdict(cfg), "targets": asdict(targets), "folds": per_fold, "summary": summary,
              "failed": failed, "seconds": time.time() - t0}
    if D.rank() == 0:
        write_json(out / "result.json", result)
    D.barrier()
    return result


def _test_metrics(trainer, test_set: EmotionSet, targets: Targets) -> dict[str, float]:
    saved = trainer.validation_data, trainer.evaluate_fn
    trainer.validation_data, trainer.evaluate_fn = test_set, _evaluate_fn(targets)
    try:
        return trainer.evaluate()
    finally:
        trainer.validation_data, trainer.evaluate_fn = saved


def summarize(metrics: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """{metric: {"mean", "std", "n"}} over folds (population std; NaNs left out)."""
    keys = sorted({k for m in metrics for k in m})
    out = {}
    for k in keys:
        v = np.array([m[k] for m in metrics if k in m and math.isfinite(m[k])], dtype=float)
        out[k] = {"mean": float(v.mean()) if len(v) else float("nan"),
                  "std": float(v.std()) if len(v) else float("nan"), "n": int(len(v))}
    return out


# ============================================================================ config files


def load_config(cls, path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None):
    """A config: the class defaults, then a JSON file's values, then ``overrides`` (dotted keys
    such as ``"bilstm.layers"``; None values are skipped), so the command line wins."""
    d = asdict(cls())
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: config file not found")
        try:
            given = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from e
        _merge(d, given, str(p))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        *parents, last = key.split(".")
        node = d
        for k in parents:
            node = node[k]
        if last not in node:
            raise ValueError(f"unknown config key {key!r}")
        node[last] = value
    return cls.from_dict(d)


def _merge(base: dict[str, Any], given: dict[str, Any], source: str, prefix: str = "") -> None:
    for k, v in given.items():
        if k not in base:
            raise ValueError(f"{source}: unknown config key {prefix + k!r} (known: {sorted(base)})")
        if isinstance(base[k], dict) and isinstance(v, dict):
            _merge(base[k], v, source, prefix + k + ".")
        else:
            base[k] = v
