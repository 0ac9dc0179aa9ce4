"""What pre-training and fine-tuning share: a run folder that keeps its settings
(:func:`check_run_config`) and the shared :class:`emovox.train.Trainer` set up for SA2SR
(:func:`make_trainer`, SpecAugment reseeded per step so that a resume draws the same masks)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from ... import distributed as D
from ...utils import write_json

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


def _reseeding_step(step_fn: Callable, holder: dict[str, Any], seed: int) -> Callable:
    """Wrap a step so the encoder's SpecAugment draws from (seed, step, rank): the same masks on
    a rerun and after a resume."""

    def step(model, batch):
        aug = getattr(getattr(model, "encoder", None), "spec_augment", None)
        trainer = holder.get("trainer")
        if aug is not None and trainer is not None:
            aug.reseed(seed * 1_000_003 + trainer.step * 101 + D.rank())
        return step_fn(model, batch)

    return step


def make_trainer(model, train_set, val_set, cfg, out: Path, step: Callable, evaluate: Callable,
                 lengths, monitor: str, mode: str, collate: Callable):
    """A Trainer with ``cfg``'s optimiser settings, budget and patience, checkpointing in ``out``."""
    from ...train import TrainConfig, Trainer

    tc = TrainConfig(lr=cfg.lr, betas=cfg.betas, batch_size=cfg.batch_size, max_epochs=cfg.max_epochs,
                     max_steps=cfg.max_steps, monitor=monitor, mode=mode, patience=cfg.patience,
                     grad_clip=getattr(cfg, "grad_clip", None), seed=cfg.seed, checkpoint_dir=str(out),
                     save_every=getattr(cfg, "save_every", None), progress=None)
    holder: dict[str, Any] = {}
    trainer = Trainer(model, train_set, tc, collate=collate, step=_reseeding_step(step, holder, cfg.seed),
                      validation_data=val_set, evaluate=evaluate, lengths=lengths)
    holder["trainer"] = trainer
    return trainer
