"""The bundled default emotion model's recipe (``emovox train-default``): the probe on pooled
Whisper tiny.en features with an emotion head and a valence/arousal/dominance head, on RAVDESS.

* :func:`category_vad`: valence/arousal/dominance targets from the emotion category (prototype
  coordinates, :data:`EMOTION_VAD`) times the portrayal's intensity (:data:`INTENSITY_SCALE`);
* :func:`speech_trimmed`: copies of the clips cut to their speech by the VAD, as the predictor
  segments recordings;
* :func:`train_emotion_model`: speaker-grouped cross-validation, then the final probe on every
  speaker, as an :class:`~emovox.emotion_model.EmotionModel`;
* :func:`train_default_model`: all of it from a RAVDESS folder or manifest to a model file.

RAVDESS is CC BY-NC-SA 4.0: weights trained on it are for non-commercial use.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..emotion_model import EmotionModel, EmotionModelConfig

log = logging.getLogger("emovox.train_default")

ATTRIBUTE_NAMES = ("valence", "arousal", "dominance")

EMOTION_VAD: dict[str, tuple[float, float, float]] = {
    # (valence, arousal, dominance) in [-1, 1]: Russell & Mehrabian (1977)-style pleasure-arousal-
    # dominance coordinates of emotion terms as commonly tabulated in affective computing
    # (calm = "relaxed"; neutral = the origin). Approximate prototype values, not ratings.
    "neutral": (0.0, 0.0, 0.0),
    "calm": (0.68, -0.46, 0.06),
    "happy": (0.81, 0.51, 0.46),
    "sad": (-0.63, -0.27, -0.33),
    "angry": (-0.51, 0.59, 0.25),
    "fearful": (-0.64, 0.60, -0.43),
    "disgust": (-0.60, 0.35, 0.11),
    "surprised": (0.40, 0.67, -0.13),
}
INTENSITY_SCALE = {"normal": 0.75, "strong": 1.0}
"""RAVDESS intensity -> factor on the category's coordinates (a strong portrayal is further
from neutral than a normal one)."""

LICENCE = "CC BY-NC-SA 4.0 (RAVDESS): non-commercial use"


def category_vad(manifest, table: dict[str, tuple[float, float, float]] = EMOTION_VAD,
                 intensity: dict[str, float] = INTENSITY_SCALE) -> dict[str, list[float]]:
    """Category-derived valence/arousal/dominance targets (id -> [v, a, d] in [-1, 1]): the
    emotion's prototype coordinates times the intensity factor (1 when there is no intensity).
    Utterances whose emotion is not in ``table`` get no targets."""
    out = {}
    for utt in manifest:
        if utt.emotion in table:
            f = intensity.get(utt.get("intensity"), 1.0)
            out[utt.id] = [f * v for v in table[utt.emotion]]
    return out


def train_emotion_model(manifest, features, attribute_values: dict[str, list[float]] | None = None,
                        cfg=None, cv_folds: int = 6, epochs: int | None = None, version: str = "",
                        meta: dict[str, Any] | None = None) -> tuple[EmotionModel, dict[str, Any]]:
    """The default model's recipe: the probe with an emotion head and a valence/arousal/dominance
    head on pooled encoder ``features`` (id -> (L, D)).

    1. ``cv_folds``-fold speaker-grouped cross-validation (no speaker normalisation: a deployed
       model never sees the speaker's other utterances) measures accuracy and the epoch at which
       validation peaked; 2. the final probe is trained on every speaker for the median of those
       epochs (or ``epochs``). Returns the model and a JSON-ready report.
    """
    from ..splits import make_folds
    from .probe import ProbeRecipeConfig, build_data, run_variant, train_probe

    cfg = cfg or ProbeRecipeConfig(attributes=list(ATTRIBUTE_NAMES), speaker_norm="off")
    data = build_data(manifest, features, cfg.target, cfg.attributes, attribute_values)
    report: dict[str, Any] = {"utterances": len(data.ids), "speakers": len(set(data.speakers)),
                              "feature_shape": list(data.x.shape[1:]), "config": asdict(cfg)}
    if cv_folds and cv_folds > 1:
        kept = set(data.ids)
        folds = make_folds(manifest.filter(lambda u: u.id in kept), "kfold", k=cv_folds, seed=cfg.seed,
                           validation=cfg.validation)
        cv = run_variant(data, folds, cfg, "default")
        report["cross_validation"] = cv
        steps = [f["best_step"] for f in cv["folds"] if f.get("best_step")]
        per_epoch = [max(1, -(-f["train"] // cfg.batch_size)) for f in cv["folds"] if f.get("best_step")]
        if epochs is None and steps:
            epochs = int(np.ceil(np.median([s / p for s, p in zip(steps, per_epoch)])))
    epochs = int(epochs or cfg.max_epochs)
    report["final_epochs"] = epochs
    probe, _ = train_probe(data, None, cfg, max_epochs=epochs)
    config = EmotionModelConfig(encoder=cfg.features, encoder_options=dict(cfg.feature_options),
                                labels=list(data.labels), attributes=list(data.attributes),
                                version=version, meta={**(meta or {}), "epochs": epochs,
                                                       "utterances": len(data.ids)})
    if "cross_validation" in report:
        config.meta["cross_validation"] = {k: v for k, v in report["cross_validation"]["probe"].items()}
    return EmotionModel(probe, config), report


def speech_trimmed(manifest, suffix: str = "#speech", vad_config=None):
    """Copies of the utterances cut to their speech (first to last VAD segment, as the predictor
    segments recordings), with ids ``<id><suffix>``; clips where no speech is found are left out.
    Training on whole clips *and* these copies keeps the time-averaged features consistent with
    what the predictor feeds the model (the mean over time is sensitive to leading silence)."""
    from ..audio import AudioError
    from ..utils import progress
    from ..vad import segment_file

    out = []
    for utt in progress(manifest.records, desc="speech trimming", unit="file"):
        try:
            segs = list(segment_file(manifest.audio_path(utt), vad_config, keep_audio=False))
        except AudioError as e:
            log.warning("%s", e)
            continue
        if not segs:
            continue
        base = utt.start or 0.0
        start, end = base + segs[0].start, base + segs[-1].end
        if utt.end is not None:
            end = min(end, utt.end)
        out.append(replace(utt, id=f"{utt.id}{suffix}", start=round(start, 3), end=round(end, 3),
                           duration=round(end - start, 3)))
    return manifest.replace(out)


def train_default_model(output: str | os.PathLike, root: str | os.PathLike | None = None,
                        manifest_path: str | os.PathLike | None = None, encoder: str = "whisper-tiny.en",
                        cv_folds: int = 6, epochs: int | None = None, speech_copies: bool = True,
                        seed: int = 0, version: str | None = None, jobs: int = 1,
                        cache_dir: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Train the default model from a RAVDESS folder (``root``) or manifest (``manifest_path``)
    and write it to ``output``. Whole clips plus their speech-trimmed copies (unless
    ``speech_copies`` is False); ``version`` defaults to ``ravdess-probe-<date>``. Returns the
    model file and a JSON-ready training report."""
    from ..corpora import prepare
    from ..manifest import Manifest
    from ..utils import json_safe
    from .probe import ProbeRecipeConfig, load_features

    if (root is None) == (manifest_path is None):
        raise ValueError("give a RAVDESS folder (root) or a manifest (manifest_path), not both or neither")
    manifest = Manifest.load(manifest_path) if manifest_path else prepare("ravdess", root)
    if "emotion" not in manifest.labels:
        raise ValueError(f"{manifest_path or root}: the manifest has no emotion labels")
    cfg = ProbeRecipeConfig(features=encoder, target="emotion", attributes=list(ATTRIBUTE_NAMES),
                            speaker_norm="off", seed=seed, jobs=jobs, cache_dir=cache_dir, linear=False)
    if speech_copies:
        copies = speech_trimmed(manifest)
        log.info("%d of %d clips have a speech-trimmed copy", len(copies), len(manifest))
        manifest = manifest.replace(manifest.records + copies.records)
    features, failed = load_features(manifest, cfg)
    targets = category_vad(manifest)
    today = datetime.date.today().isoformat()
    meta = {"trained": today, "corpus": manifest.corpus, "licence": LICENCE,
            "attribute_targets": "category prototype coordinates (Russell & Mehrabian-style table) x intensity",
            "vad_table": {k: list(v) for k, v in EMOTION_VAD.items()}, "intensity_scale": INTENSITY_SCALE,
            "speech_copies": speech_copies, "failed": failed}
    model, report = train_emotion_model(manifest, features, targets, cfg, cv_folds=cv_folds, epochs=epochs,
                                        version=version or f"ravdess-probe-{today}", meta=meta)
    path = model.save(output)
    report = json_safe({**report, "output": str(path), "version": model.version, "failed": failed})
    return path, report
