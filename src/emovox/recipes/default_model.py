"""The bundled default emotion model's recipe (``emovox train-default``): the candidate that
``emovox bench generalization`` chose (:data:`emovox.recipes.generalization.SHIPPED`), trained
on every corpus the model may use (:mod:`emovox.recipes.pool`: RAVDESS, TESS, ASED, nEMO,
TurEV-DB for categories and V/A/D; BAVED and va47 for arousal and valence), with whole speakers
held out for model selection and for the temperature that calibrates its probabilities.

Feature extraction goes through the on-disk cache, so an interrupted run picks up where it
stopped; the head itself trains in minutes. The corpora's licences are written into the model
(several are non-commercial or no-derivatives: the weights are for research use).
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..corpora.vocab import MODEL_EMOTIONS
from ..emotion_model import EmotionModel, EmotionModelConfig
from .pool import ATTRIBUTE_NAMES, EMOTION_VAD, INTENSITY_SCALE, LICENCES, CorpusData

log = logging.getLogger("emovox.train_default")


def ship(pool: dict[str, CorpusData], candidate, encoder: str, seed: int = 0, version: str = "",
         meta: dict[str, Any] | None = None, layers: int | None = None) -> tuple[EmotionModel, dict[str, Any]]:
    """Train ``candidate`` on every corpus of ``pool`` and wrap it as an :class:`EmotionModel`
    whose probabilities are temperature-calibrated on the held-out speakers. ``layers``: the pool
    holds the first ``layers`` blocks' states only; the model's encoder runs just those."""
    from .generalization import fit

    fitted = fit(candidate, pool, list(pool), seed=seed)
    if not fitted.probes:
        raise ValueError(f"candidate {candidate.name!r} has no Probe head to ship; pick a Probe candidate")
    corpora = {n: {"clips": len(c.ids), "speakers": len(set(c.speakers)), "licence": LICENCES.get(n, "?")}
               for n, c in pool.items()}
    config = EmotionModelConfig(
        encoder=encoder, encoder_options={} if layers is None else {"layers": int(layers)}, labels=list(MODEL_EMOTIONS), attributes=list(ATTRIBUTE_NAMES),
        temperature=fitted.temperature, member_temperatures=list(fitted.member_temperatures), version=version,
        meta={**(meta or {}), "recipe": candidate.name, "candidate": asdict(candidate), "corpora": corpora,
              "licence": "research / non-commercial use only: trained on corpora under " + "; ".join(
                  f"{n} {v['licence']}" for n, v in corpora.items()),
              "label_space": "calm counts as neutral; pleasant surprise as surprised (emovox.corpora.vocab.TO_MODEL)",
              "attribute_targets": "acted corpora: category prototype coordinates (Russell & Mehrabian-style) x "
                                   "RAVDESS intensity; BAVED level as arousal; va47 valence and arousal",
              "vad_table": {k: list(v) for k, v in EMOTION_VAD.items()}, "intensity_scale": INTENSITY_SCALE,
              "features": "per-layer means over each clip's speech (VAD-trimmed), as predict computes them"})
    model = EmotionModel(fitted.probes, config)
    report = {"candidate": candidate.name, "temperature": fitted.temperature, "corpora": corpora}
    return model, report


def train_default_model(output: str | os.PathLike, shared: str | os.PathLike | None = None,
                        corpora: str | os.PathLike | None = None, encoder: str | None = None,
                        per_corpus: int = 700, candidate: str | None = None, seed: int = 0,
                        version: str | None = None, jobs: int = 1, cache_dir: str | None = None,
                        layers: int | None = None) -> tuple[Path, dict[str, Any]]:
    """Everything from the corpora folders to a model file at ``output``. Returns the file and a
    JSON-ready training report. ``encoder`` and ``layers`` default to the shipped recipe's
    (:data:`~emovox.recipes.generalization.SHIPPED_ENCODER`, ``SHIPPED_LAYERS``); with another
    encoder, ``layers`` defaults to all."""
    from ..utils import json_safe
    from .generalization import CANDIDATES, SHIPPED, backbone
    from .pool import corpus_roots, load_pool

    encoder, layers = backbone(encoder, layers)

    name = candidate or SHIPPED
    known = {c.name: c for c in CANDIDATES}
    if name not in known:
        raise ValueError(f"unknown candidate {name!r}; known: {list(known)}")
    cand = known[name]
    pool = load_pool(encoder, per_corpus, conditions=("clean",), augment=cand.augment,
                     roots=corpus_roots(shared, corpora), cache_dir=cache_dir, seed=seed, jobs=jobs, layers=layers)
    if not pool:
        raise ValueError("no corpus found: give --shared (../shared/data) and --corpora (../corpora)")
    today = datetime.date.today().isoformat()
    slug = re.sub("[^a-z0-9]+", "-", cand.name.lower()).strip("-")
    model, report = ship(pool, cand, encoder, seed, version or f"multicorpus-{slug}-{today}",
                         {"trained": today, "per_corpus": per_corpus}, layers=layers)
    path = model.save(output)
    log.info("wrote %s (%s on %s; temperature %.2f)", path, cand.name, ", ".join(pool), model.config.temperature)
    return path, json_safe({**report, "output": str(path), "version": model.version})
