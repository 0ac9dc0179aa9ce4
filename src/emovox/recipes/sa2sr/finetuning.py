"""SA2SR emotion fine-tuning, cross-validated over speaker folds::

    pre-trained encoder (frozen or not, or randomly initialised) -> emotion regressor
    (heads/regressor.py) -> activation/valence/dominance with the CCC loss, an ordinal label
    (e.g. BAVED level) with the CCC loss, or categories with cross entropy.

Targets come from :func:`emovox.evaluate.targets.read_targets`, metrics from
:func:`emovox.evaluate.metrics.compute_metrics` (``ua``, ``wa``, ``weighted_f1``;
``ccc_<column>``, ``mse_<column>``, ``pearson_<column>``, ``ccc``), folds from
:func:`emovox.splits.make_folds`, run by :func:`emovox.evaluate.crossval.run_folds` and
summarised by :func:`emovox.evaluate.crossval.summarize`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ... import distributed as D
from ...encoders.base import Encoder
from ...evaluate.crossval import FoldResult, run_folds, summarize
from ...evaluate.metrics import compute_metrics
from ...evaluate.targets import Targets, read_targets
from ...manifest import Manifest
from ...train.data import pad_sequence
from ...utils import atomic_torch_save, write_json
from .config import FinetuneConfig
from ...train.runs import Clip, check_run_config, make_trainer, scan
from .data import EmotionSet, finetune_collate
from .model import FINETUNED_KIND, EmotionModel, load_pretrained_encoder, reinitialise

log = logging.getLogger("emovox.sa2sr")

TASKS = ("attributes", "ordinal", "categorical")

# Metric names of fold result.json files written before the shared evaluation layer
# (emovox.evaluate.metrics.compute_metrics): they are read back under the new names.
OLD_METRIC_NAMES = {"wf1": "weighted_f1", "accuracy": "wa"}


def finetune_targets(manifest: Manifest, cfg: FinetuneConfig) -> Targets:
    """The targets of ``cfg.task``: class indices of ``cfg.label`` (categorical), one ordinal
    column named after it, or the columns of ``cfg.attributes`` that some utterance has."""
    if cfg.task == "categorical":
        return read_targets(manifest, cfg.label)
    if cfg.task == "ordinal":
        return read_targets(manifest, cfg.label, ordinal=True)
    if cfg.task != "attributes":
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {cfg.task!r}")
    names = [a for a in cfg.attributes if any(u.get(a) is not None for u in manifest)]
    if not names:
        raise ValueError(f"{manifest.corpus or 'manifest'}: none of the attributes {list(cfg.attributes)} "
                         f"has a value; use --task categorical/ordinal --label NAME")
    return read_targets(manifest, attributes=names)


def _outputs(targets: Targets) -> int:
    return len(targets.labels) if targets.y is not None else len(targets.attributes)


def _describe(cfg: FinetuneConfig, targets: Targets) -> dict[str, Any]:
    """What the regressor's outputs are, as saved in ``model.pt`` and ``result.json``."""
    names = list(targets.labels) if targets.y is not None else list(targets.attributes)
    return {"task": cfg.task, "names": names, "label": "" if cfg.task == "attributes" else cfg.label}


def _predict(model: EmotionModel, b: dict[str, Any]) -> torch.Tensor:
    if "states" in b:
        return model.head(b["states"], b["states_lengths"])
    return model(b["audio"], b["audio_lengths"])


def finetune_step(model: EmotionModel, batch: dict[str, Any], weight: torch.Tensor | None):
    """Cross entropy for categories, 1 - mean CCC over the (masked) columns otherwise."""
    from ...train.losses import ccc_loss, cross_entropy

    pred = _predict(model, batch)
    if "label" in batch:
        return cross_entropy(pred, batch["label"], weight=weight), {}
    return ccc_loss(pred, batch["target"], mask=batch["target_mask"]), {}


def evaluate_model(model: EmotionModel, batches, targets: Targets) -> dict[str, float]:
    """:func:`compute_metrics` of the model's outputs on ``batches`` (a missing value is NaN)."""
    preds, golds = [], []
    for b in batches:
        preds.append(_predict(model, b).float().cpu())
        if "label" in b:
            golds.append(b["label"].cpu().numpy())
        else:
            golds.append(np.where(b["target_mask"].cpu().numpy(), b["target"].cpu().numpy(), np.nan))
    pred, gold = torch.cat(preds).numpy(), np.concatenate(golds)
    if targets.y is not None:
        return compute_metrics(gold, pred, num_classes=len(targets.labels))
    return compute_metrics(a_true=gold, a_pred=pred, attributes=targets.attributes)


def cache_states(encoder: Encoder, clips: Sequence[Clip], layer: int, max_seconds: float,
                 batch_size: int = 8) -> dict[str, torch.Tensor]:
    """A frozen encoder's hidden state ``layer`` for every clip: {id: (T, D)}. Each rank
    computes its shard; under torchrun the shards are exchanged so every rank has all."""
    from ...utils import progress

    encoder.eval()
    D.init_process_group()  # no-op without torchrun
    mine = D.shard(list(clips))
    states: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for s in progress(range(0, len(mine), batch_size), desc="encoder states", unit="batch"):
            chunk = mine[s:s + batch_size]
            x, lengths = pad_sequence([c.load(max_seconds) for c in chunk])
            out = encoder(x, lengths)
            for c, h, n in zip(chunk, out.hidden_states[layer], out.lengths.tolist()):
                states[c.utt.id] = h[: max(int(n), 1)].clone()
    if D.world_size() > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            gathered: list[Any] = [None] * D.world_size()
            dist.all_gather_object(gathered, states)
            states = {k: v for part in gathered for k, v in part.items()}
    return states


def _new_model(cfg: FinetuneConfig, outputs: int) -> EmotionModel:
    enc = load_pretrained_encoder(cfg.encoder)
    if cfg.no_pretraining:
        enc = reinitialise(enc, cfg.seed)
    torch.manual_seed(cfg.seed)
    return EmotionModel(enc, replace(cfg.regressor, outputs=outputs), cfg.layer, cfg.freeze_encoder)


def _test_metrics(trainer, test_set: EmotionSet, evaluate) -> dict[str, float]:
    saved = trainer.validation_data, trainer.evaluate_fn
    trainer.validation_data, trainer.evaluate_fn = test_set, evaluate
    try:
        return trainer.evaluate()
    finally:
        trainer.validation_data, trainer.evaluate_fn = saved


def _renamed(metrics: dict[str, Any]) -> dict[str, float]:
    """Old metric names mapped to the new ones; null (an undefined metric) read as NaN."""
    return {OLD_METRIC_NAMES.get(k, k): math.nan if v is None else v for k, v in metrics.items()}


def read_fold_result(path: Path) -> dict[str, Any]:
    """A finished fold's ``result.json``, its metrics under today's names."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable fold result ({e}); delete it to run the fold again") from e
    if not isinstance(record, dict) or not isinstance(record.get("test"), dict):
        raise ValueError(f"{path}: not a fold result (no test metrics); delete it to run the fold again")
    record["test"] = _renamed(record["test"])
    record["validation_best"] = _renamed(record.get("validation_best") or {})
    return record


def finetune(manifest: Manifest, out_dir: str | os.PathLike, config: FinetuneConfig | None = None,
             resume: bool = True) -> dict[str, Any]:
    """Cross-validated emotion fine-tuning over speaker folds. Writes ``fold-NN/`` (trainer
    checkpoints, ``result.json``, ``model.pt``) and ``result.json`` (per-fold test metrics and
    their :func:`~emovox.evaluate.crossval.summarize` over folds) under ``out_dir``; with
    ``resume`` a fold whose ``result.json`` exists is not run again, and an unfinished one
    continues from its ``last.pt``.

    Only utterances with a target and readable audio take part. Folds run one after the other
    (``run_folds(..., distribute=False)``); under torchrun every rank trains every fold
    together, the Trainer's data parallelism inside the fold, and rank 0 writes the files. This
    keeps each fold's numbers what they were before, works with fewer folds than processes
    (``run_folds=1``) and leaves no rank waiting at a collective while another trains a fold.
    """
    from ...splits import make_folds
    from ...train.losses import class_weights

    cfg = config or FinetuneConfig()
    out = Path(out_dir)
    check_run_config(out, cfg, resume)
    targets = finetune_targets(manifest, cfg)
    has_target = set(targets.ids)
    clips, failed = scan(manifest, [u for u in manifest.records if u.id in has_target])
    by_id = {c.utt.id: c for c in clips}
    folds = make_folds(manifest.filter(lambda u: u.id in by_id), cfg.protocol, k=cfg.folds, seed=cfg.seed,
                       validation=cfg.validation_fraction)
    if cfg.run_folds:
        folds = folds[: cfg.run_folds]
    position = {f.name: i for i, f in enumerate(folds)}
    outputs, described = _outputs(targets), _describe(cfg, targets)
    evaluate = partial(evaluate_model, targets=targets)
    states = None
    if cfg.freeze_encoder and cfg.cache_frozen:
        states = cache_states(_new_model(cfg, outputs).encoder, clips, cfg.layer, cfg.max_seconds)

    def run_fold(fold) -> FoldResult:
        i = position[fold.name]
        fdir = out / f"fold-{i:02d}"
        done = fdir / "result.json"
        if resume and done.is_file():
            record = read_fold_result(done)
            log.info("fold %s already done", fold.name)
            return FoldResult(fold.name, record["test"], extra=record)
        sets = {part: EmotionSet([by_id[j] for j in ids if j in by_id], targets, cfg.max_seconds, states)
                for part, ids in fold.partitions().items()}
        model = _new_model(cfg, outputs)
        if states is not None:
            model.encoder.requires_grad_(False)
        weight = None
        if targets.y is not None and cfg.class_weighted:
            weight = class_weights(sets["train"].labels(), outputs)
        val = sets["validation"] if len(sets["validation"]) else sets["test"]
        trainer = make_trainer(model, sets["train"], val, cfg, fdir, partial(finetune_step, weight=weight),
                               evaluate, sets["train"].lengths(), cfg.monitor, "max", finetune_collate)
        res = trainer.fit(resume=resume)
        test = _test_metrics(trainer, sets["test"], evaluate)
        record = {"fold": fold.name, "index": i, "train": len(sets["train"]),
                  "validation": len(sets["validation"]), "test_size": len(sets["test"]),
                  "best_step": res.best_step, "epochs": res.epoch,
                  "validation_best": _renamed(res.best_metrics), "test": test}
        if D.rank() == 0:
            atomic_torch_save({"kind": FINETUNED_KIND, "config": asdict(cfg), "targets": described,
                               "model": model.state_dict()}, fdir / "model.pt")
            write_json(done, record)
        return FoldResult(fold.name, test, extra=record)

    t0 = time.time()
    per_fold = [f.extra for f in run_folds(folds, run_fold, distribute=False).folds]
    result = {"config": asdict(cfg), "targets": described, "folds": per_fold,
              "summary": summarize([f["test"] for f in per_fold]), "failed": failed,
              "seconds": time.time() - t0}
    if D.rank() == 0:
        write_json(out / "result.json", result)
    D.barrier()
    return result
