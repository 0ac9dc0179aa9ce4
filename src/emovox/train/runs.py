"""What every pre-training and fine-tuning recipe shares (SA2SR, CARE):

- :class:`Clip` / :func:`scan`: the usable utterances of a manifest (audio header checked, the
  others returned with the reason so a batch job goes on and reports them);
- :func:`split_clips`: training and validation clips, from a validation manifest or by holding
  out whole speakers of each training manifest;
- :func:`check_run_config`: a run folder keeps the settings it was started with;
- :func:`make_trainer`: the shared :class:`~emovox.train.Trainer` set up from a recipe config
  (an encoder's SpecAugment reseeded per step, so a resume draws the same masks).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .. import distributed as D
from ..audio import AudioError, info, load_audio
from ..manifest import Manifest, Utterance
from ..splits import holdout
from ..utils import write_json

log = logging.getLogger("emovox.train")

MIN_SECONDS = 0.1  # shorter clips give no stacked frame
BUDGET_KEYS = frozenset({"max_epochs", "max_steps", "max_minutes", "patience", "run_folds", "save_every"})


@dataclass
class Clip:
    """One usable utterance: where its audio is and how long it is (s)."""

    manifest: Manifest
    utt: Utterance
    seconds: float

    def load(self, max_seconds: float | None = None) -> torch.Tensor:
        """(S,) float32 samples at 16 kHz, the first ``max_seconds`` when given."""
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


def split_clips(manifests: Sequence[Manifest], validation: Sequence[Manifest], *, fraction: float, seed: int,
                need_text: bool, limit: int | None = None, max_seconds: float | None = None,
                what: str = "pre-training") -> tuple[list[Clip], list[Clip], list[dict[str, str]]]:
    """Training and validation clips and the records left out (with the reason). Records
    without a transcript are left out when ``need_text``; ``limit`` keeps the first N usable
    records of each training manifest; clips over ``max_seconds`` are left out. Without a
    validation manifest, each training manifest holds out whole speakers (``fraction``)."""
    train: list[Clip] = []
    val: list[Clip] = []
    failed: list[dict[str, str]] = []
    untranscribed = 0

    def usable(m: Manifest, lim: int | None) -> list[Clip]:
        nonlocal untranscribed
        recs = [u for u in m.records if not need_text or (u.transcript or "").strip()]
        untranscribed += len(m.records) - len(recs)
        clips, bad = scan(m, recs[:lim] if lim else recs)
        failed.extend(bad)
        if max_seconds is not None:
            failed.extend({"id": c.utt.id, "error": f"longer than max_seconds={max_seconds}"}
                          for c in clips if c.seconds > max_seconds)
            clips = [c for c in clips if c.seconds <= max_seconds]
        return clips

    for m in manifests:
        clips = usable(m, limit)
        if validation:
            train += clips
            continue
        by_id = {c.utt.id: c for c in clips}
        tr, va = holdout([c.utt for c in clips], fraction, seed)
        train += [by_id[i] for i in tr]
        val += [by_id[i] for i in va]
    for m in validation:
        val += usable(m, None)
    if untranscribed:
        log.warning("%d record(s) without a transcript are not used for %s", untranscribed, what)
    kind = "transcribed " if need_text else ""
    if not train:
        raise ValueError(f"{what}: no usable {kind}utterance in the given manifest(s)")
    if not val:
        raise ValueError(f"{what}: no validation utterance (give a validation manifest or more data)")
    return train, val, failed


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


def _reseeding_step(step_fn: Callable, holder: dict[str, Any], seed: int) -> Callable:
    """Wrap a step so an encoder's SpecAugment draws from (seed, step, rank): the same masks on
    a rerun and after a resume."""

    def step(model, batch):
        aug = getattr(getattr(model, "encoder", None), "spec_augment", None)
        trainer = holder.get("trainer")
        if aug is not None and trainer is not None:
            aug.reseed(seed * 1_000_003 + trainer.step * 101 + D.rank())
        return step_fn(model, batch)

    return step


def make_trainer(model, train_set, val_set, cfg, out: Path, step: Callable, evaluate: Callable,
                 lengths, monitor: str, mode: str, collate: Callable, **options: Any):
    """A Trainer with ``cfg``'s optimiser settings (``lr``, ``betas``, ``weight_decay``), budget
    (``batch_size``, ``max_epochs``, ``max_steps``, ``max_minutes``, ``patience``, ``eval_every``,
    ``save_every``, ``grad_clip``) and seed, checkpointing in ``out``. ``options``: other
    :class:`~emovox.train.TrainConfig` fields, and the Trainer's ``optimizer`` / ``callbacks``."""
    from . import TrainConfig, Trainer

    trainer_kw = {k: options.pop(k) for k in ("optimizer", "callbacks") if k in options}
    tc = TrainConfig(lr=cfg.lr, betas=cfg.betas, weight_decay=getattr(cfg, "weight_decay", 0.0),
                     batch_size=cfg.batch_size, max_epochs=cfg.max_epochs, max_steps=cfg.max_steps,
                     monitor=monitor, mode=mode, patience=cfg.patience, eval_every=getattr(cfg, "eval_every", None),
                     grad_clip=getattr(cfg, "grad_clip", None), seed=cfg.seed, checkpoint_dir=str(out),
                     save_every=getattr(cfg, "save_every", None), max_minutes=getattr(cfg, "max_minutes", None),
                     **{"progress": None, **options})
    holder: dict[str, Any] = {}
    trainer = Trainer(model, train_set, tc, collate=collate, step=_reseeding_step(step, holder, cfg.seed),
                      validation_data=val_set, evaluate=evaluate, lengths=lengths, **trainer_kw)
    holder["trainer"] = trainer
    return trainer


def finish_run(out: Path, result: dict[str, Any], plot: Callable[[list, Path], None]) -> None:
    """Rank 0 writes ``history.json``, ``result.json`` and ``curves.png`` (``plot(history,
    path)``) into the run folder; every rank waits for it."""
    if D.rank() == 0:
        write_json(out / "history.json", result["history"])
        write_json(out / "result.json", result)
        plot(result["history"], out / "curves.png")
    D.barrier()
