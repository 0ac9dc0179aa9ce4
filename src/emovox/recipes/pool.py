"""The multi-corpus data of the bundled model and of ``emovox bench generalization``.

The acted corpora :data:`ACTED` (RAVDESS from ``../shared/data``; TESS, ASED, nEMO, TurEV-DB from
``../corpora``), each cut to a speaker- and class-balanced subset
(:func:`emovox.splits.balanced_subset`), plus BAVED (level as arousal) and va47 (valence,
arousal) for the valence/arousal/dominance head. Categories are mapped onto the model's
(:data:`emovox.corpora.vocab.MODEL_EMOTIONS`; calm counts as neutral). Features are the pooled
per-layer means of the encoder over each clip's speech (first to last VAD segment, as the
predictor segments recordings), computed by :mod:`emovox.featurize` exactly as
:class:`emovox.scoring.TorchScorer` computes them for ``predict``, clean and under corruptions
(:mod:`emovox.features.corrupt`): a ``mix`` copy of every clip (training augmentation) and
``noise:10`` / ``telephone`` copies of the acted corpora (test conditions).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..corpora.vocab import MODEL_EMOTIONS, model_label
from ..evaluate.targets import IGNORE_INDEX, ordinal_value
from ..manifest import Manifest
from ..splits import balanced_subset

log = logging.getLogger("emovox.pool")

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


ACTED = ("ravdess", "tess", "ased", "nemo", "turev")
"""Corpora with emotion categories: the leave-one-corpus-out folds."""
DIMENSIONAL = ("baved", "va47")
"""Corpora with dimensional labels only (training rows of the attribute head)."""
CONDITIONS = ("clean", "noise:10", "telephone")
"""Test conditions: the clean clips, pink noise at 10 dB SNR, a telephone channel."""
AUGMENT = "mix"
"""The corruption of the augmented training copies (:mod:`emovox.features.corrupt`)."""
LICENCES = {"ravdess": "CC BY-NC-SA 4.0", "tess": "CC BY-NC-ND 4.0", "ased": "none stated (cite Retta et al. 2022)",
            "nemo": "CC BY-NC-SA 4.0", "turev": "CC BY-NC-ND 4.0 (README; its LICENSE file says GPL-3.0)",
            "baved": "free for research (its authors)", "va47": "Apache-2.0 (pyAudioAnalysis repository)"}


def corpus_roots(shared: str | os.PathLike | None = None, corpora: str | os.PathLike | None = None) -> dict[str, Path]:
    """Where each corpus lives: ``shared`` (default ``../shared/data`` of the working directory's
    repository, or ``$EMOVOX_SHARED``) and ``corpora`` (``$EMOVOX_CORPORA`` or ``../corpora``)."""
    sh = Path(shared or os.environ.get("EMOVOX_SHARED") or "../shared/data")
    co = Path(corpora or os.environ.get("EMOVOX_CORPORA") or "../corpora")
    return {"ravdess": sh / "ravdess", "baved": sh / "baved", "va47": sh / "va47",
            **{c: co / c for c in ("tess", "ased", "nemo", "turev")}}


@dataclass
class CorpusData:
    """One corpus in the pool: features per condition (N, L, D) aligned with ``ids``; ``y`` model
    class indices (IGNORE_INDEX: none); ``a`` (N, 3) valence/arousal/dominance targets (NaN:
    none); ``classes``: the model classes the corpus annotates."""

    name: str
    ids: list[str]
    speakers: list[str]
    y: np.ndarray
    a: np.ndarray
    x: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def classes(self) -> list[int]:
        return sorted({int(c) for c in self.y if c >= 0})


def corpus_targets(name: str, manifest: Manifest) -> tuple[np.ndarray, np.ndarray]:
    """(model class per utterance, (N, 3) V/A/D targets) of a corpus: category-derived
    coordinates (:func:`category_vad`) for acted corpora, BAVED's level as arousal (low -1,
    neutral 0, high 1), va47's own valence and arousal."""
    from_category = category_vad(manifest)
    y, a = [], []
    for u in manifest:
        lab = model_label(u.emotion)
        y.append(MODEL_EMOTIONS.index(lab) if lab else IGNORE_INDEX)
        vad = from_category.get(u.id, [math.nan] * 3)
        if name == "baved":
            vad = [math.nan, ordinal_value(u.get("level"), manifest.labels.get("level", [])) or 0.0, math.nan]
        elif u.id not in from_category and (u.valence is not None or u.arousal is not None):
            vad = [math.nan if v is None else float(manifest.to_unit(v, k) if k in manifest.scales else v)
                   for k, v in (("valence", u.valence), ("arousal", u.arousal))] + [math.nan]
        a.append(vad)
    return np.asarray(y, np.int64), np.asarray(a, np.float32)


def load_corpus(name: str, root: Path, encoder: str, per_corpus: int, conditions: Sequence[str],
                cache_dir: str | None, seed: int = 0, jobs: int = 1) -> CorpusData:
    """Import, subset, label and featurise one corpus under every condition."""
    from ..corpora import prepare
    from ..featurize import extract_manifest

    m = prepare(name, root, jobs=jobs)
    label = "level" if name == "baved" else "emotion"
    m = balanced_subset(m, per_corpus, seed=seed, label=label) if per_corpus else m
    m = speech_trimmed(m, suffix="")  # cut to the speech, as predict's VAD segments are
    feats = {}
    for cond in conditions:
        table = extract_manifest(m, encoder, jobs=jobs, cache_dir=cache_dir,
                                 **({} if cond == "clean" else {"corrupt": cond}))
        feats[cond] = table.as_dict()
    ok = [u for u in m if all(u.id in f for f in feats.values())]
    if len(ok) < len(m):
        log.warning("%s: %d of %d clips have no features and are left out", name, len(m) - len(ok), len(m))
    m = m.replace(ok)
    y, a = corpus_targets(name, m)
    return CorpusData(name, [u.id for u in m], [u.speaker or u.id for u in m], y, a,
                      {c: np.stack([f[u.id] for u in m]).astype(np.float32) for c, f in feats.items()})


def load_pool(encoder: str = "whisper-tiny.en", per_corpus: int = 700, conditions: Sequence[str] = CONDITIONS,
              augment: bool = True, roots: dict[str, Path] | None = None, cache_dir: str | None = None,
              corpora: Sequence[str] = ACTED + DIMENSIONAL, seed: int = 0, jobs: int = 1,
              layers: int | None = None) -> dict[str, CorpusData]:
    """Every available corpus of ``corpora`` (absent ones are skipped with a warning).
    ``layers``: keep the hidden states of the first ``layers`` transformer blocks only (``layers +
    1`` states: what the encoder loaded with ``layers=`` computes; the cache keeps the full
    encoder's features, so every depth shares one extraction)."""
    roots = roots or corpus_roots()
    pool = {}
    for name in corpora:
        if not Path(roots[name]).is_dir():
            log.warning("%s: %s not found; left out", name, roots[name])
            continue
        conds = list(conditions if name in ACTED else ["clean"]) + ([AUGMENT] if augment else [])
        pool[name] = load_corpus(name, Path(roots[name]), encoder, per_corpus, conds, cache_dir, seed, jobs)
        if layers is not None:
            pool[name].x = {c: v[:, :int(layers) + 1] for c, v in pool[name].x.items()}
        log.info("%s: %d clips, %d speakers", name, len(pool[name].ids), len(set(pool[name].speakers)))
    return pool
