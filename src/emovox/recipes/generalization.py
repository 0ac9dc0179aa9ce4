"""Emotion models judged as users meet them: on corpora, speakers, languages and channels they
were not trained on (``emovox bench generalization``); the data is :mod:`emovox.recipes.pool`'s.

A :class:`Candidate` is a head and a training recipe; :func:`fit` trains it on rows of the pool,
with, as the candidate says, the augmented copies, a softmax restricted to each corpus's label
set (``mask``: a corpus is not taught that its clips are not of classes it never annotates)
and corpus- and class-balanced row weights. Every fit holds out whole speakers of its training
corpora for model selection and temperature calibration. :func:`leave_one_corpus_out` and
:func:`in_corpus` score a candidate the two ways the benchmark reports.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from ..corpora.vocab import MODEL_EMOTIONS
from ..evaluate.calibration import expected_calibration_error, fit_temperature, softmax
from ..evaluate.linear import select_logistic
from ..evaluate.metrics import compute_metrics
from ..evaluate.targets import IGNORE_INDEX, Targets
from ..features.normalize import Standardizer
from ..splits import holdout
from .pool import ACTED, ATTRIBUTE_NAMES, AUGMENT, CONDITIONS, DIMENSIONAL, CorpusData

log = logging.getLogger("emovox.generalization")

# ---------------------------------------------------------------------------- candidates
@dataclass(frozen=True)
class Candidate:
    """A head and its training recipe. ``head``: ``logistic`` (the plain linear model of
    :mod:`emovox.evaluate.linear`, categories only), or a :class:`~emovox.heads.probe.Probe`:
    ``linear`` (all layers side by side, no hidden layer), ``mlp`` (the same with 256 hidden
    units) or ``probe`` (SUPERB: layer-weighted sum, 256 hidden). ``train``: corpora trained on
    (None: every acted corpus but the test one, plus the dimensional ones). ``members``: Probe
    heads trained from different initial weights, their calibrated logits averaged (an
    ensemble); the last ``clean_members`` of them train on the clean clips only, the others on
    the clean and augmented ones (the augmentation buys robustness to noise and channels and
    costs some accuracy on clean speech; the mixed ensemble keeps both)."""

    name: str
    head: str = "linear"
    augment: bool = True
    mask: bool = True
    balance: bool = True
    train: tuple[str, ...] | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_epochs: int = 40
    patience: int = 6
    members: int = 1
    clean_members: int = 0

    def __post_init__(self) -> None:
        if self.members < 1 or not 0 <= self.clean_members <= self.members:
            raise ValueError(f"Candidate {self.name!r}: need members >= 1 and 0 <= clean_members <= members, "
                             f"got {self.members} and {self.clean_members}")


CANDIDATES = (
    Candidate("plain linear", head="logistic", augment=False, mask=False, balance=False),
    Candidate("probe", head="probe", augment=False, mask=False, balance=False),
    Candidate("linear", head="linear"),
    Candidate("linear, no augmentation", head="linear", augment=False),
    Candidate("linear, no label masking", head="linear", mask=False),
    Candidate("linear, RAVDESS only", head="linear", train=("ravdess",)),
    Candidate("mlp", head="mlp"),
    Candidate("mlp, no augmentation", head="mlp", augment=False),
    Candidate("mlp, no label masking", head="mlp", mask=False),
    Candidate("mlp, RAVDESS only", head="mlp", train=("ravdess",)),
    Candidate("mlp x3", head="mlp", members=3),
    Candidate("mlp, clean + augmented", head="mlp", members=2, clean_members=1),
)
"""What ``emovox bench generalization`` compares: the plain baseline first, then the SUPERB probe,
the heads with the recipe (augmentation, label masking, balance) and their ablations, and the
ensembles (the shipped one last)."""

SHIPPED = "mlp, clean + augmented"
"""The candidate the bundled model is trained with (chosen by the benchmark: docs/RESULTS.md)."""
SHIPPED_ENCODER = "whisper-base"
SHIPPED_LAYERS: int | None = 3
"""The bundled model's backbone and how many of its transformer blocks it reads (None: all)."""


def backbone(encoder: str | None, layers: int | None) -> tuple[str, int | None]:
    """``(encoder, layers)`` with the shipped ones filled in: no encoder means the shipped encoder
    and, unless given, its depth; another encoder is read whole unless ``layers`` says otherwise."""
    if encoder is None:
        return SHIPPED_ENCODER, SHIPPED_LAYERS if layers is None else layers
    return encoder, layers


@dataclass
class Fitted:
    """A trained candidate: ``outputs(x (N, L, D)) -> (logits (N, C), attributes (N, 3) or None)``
    in one pass, its calibration temperature, its Probes (one per member; none for the logistic
    head) with the temperatures their logits are divided by before averaging, and the training mean."""

    candidate: Candidate
    outputs: Any
    temperature: float
    probes: list = field(default_factory=list)
    member_temperatures: list = field(default_factory=list)
    mean: np.ndarray | None = None  # (L, D) training feature mean (for recording adaptation)


def _rows(pool: dict[str, CorpusData], names: Sequence[str], augment: bool, rows: dict[str, np.ndarray] | None):
    """Stack the training rows of ``names`` (optionally a row subset per corpus) and their
    augmented copies -> x, y, a, speakers, corpus index, class mask, augmented-copy flag."""
    xs, ys, as_, spk, corpus, masks, augmented = [], [], [], [], [], [], []
    for k, n in enumerate(names):
        c = pool[n]
        idx = np.arange(len(c.ids)) if rows is None or n not in rows else rows[n]
        conds = ["clean"] + ([AUGMENT] if augment and AUGMENT in c.x else [])
        mask = np.zeros(len(MODEL_EMOTIONS), bool)
        mask[c.classes] = True
        for cond in conds:
            xs.append(c.x[cond][idx])
            ys.append(c.y[idx])
            as_.append(c.a[idx])
            spk += [f"{n}/{c.speakers[i]}" for i in idx]
            corpus += [k] * len(idx)
            masks.append(np.repeat(mask[None], len(idx), 0))
            augmented += [cond != "clean"] * len(idx)
    return (np.concatenate(xs), np.concatenate(ys), np.concatenate(as_), spk, np.asarray(corpus),
            np.concatenate(masks), np.asarray(augmented, bool))


def balance_weights(y: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """Row weights giving every corpus the same total weight and, inside it, every class the same
    (rows without a class share their corpus's weight evenly); mean 1."""
    w = np.ones(len(y))
    for c in np.unique(corpus):
        sel = corpus == c
        labelled = sel & (y >= 0)
        classes = np.unique(y[labelled])
        for k in classes:
            rows = labelled & (y == k)
            w[rows] = 1.0 / (len(classes) * rows.sum())
        if (sel & (y < 0)).any():
            w[sel & (y < 0)] = 1.0 / (sel & (y < 0)).sum()
    return w * len(w) / w.sum()


def fit(candidate: Candidate, pool: dict[str, CorpusData], names: Sequence[str],
        rows: dict[str, np.ndarray] | None = None, seed: int = 0) -> Fitted:
    """Train ``candidate`` on the corpora ``names`` (rows: optional row subsets per corpus).
    Whole speakers (10 %) are held out for model selection and temperature calibration."""
    x, y, a, spk, corpus, masks, augmented = _rows(pool, names, candidate.augment, rows)
    records = [_Rec(i, s) for i, s in enumerate(spk)]
    tr, va = holdout(records, 0.1, seed)
    tr, va = np.asarray([int(i) for i in tr]), np.asarray([int(i) for i in va])
    if candidate.head == "logistic":
        return _fit_logistic(candidate, x, y, tr, va, seed)
    # each member's training rows (the clean members' without the augmented copies) and weights
    member_rows = [tr if i < candidate.members - candidate.clean_members else tr[~augmented[tr]]
                   for i in range(candidate.members)]
    weights = [balance_weights(y[r], corpus[r]) if candidate.balance else None for r in member_rows]
    return _fit_probe(candidate, x, y, a, masks, member_rows, va, weights, seed)


class _Rec:
    """The little of an Utterance that :func:`emovox.splits.holdout` reads."""

    def __init__(self, i: int, speaker: str):
        self.id, self.speaker, self.split = str(i), speaker, None


def _fit_logistic(candidate: Candidate, x, y, tr, va, seed) -> Fitted:
    flat = x.reshape(len(x), -1)
    std = Standardizer.fit(flat[tr], 5.0)
    keep_tr, keep_va = tr[y[tr] >= 0], va[y[va] >= 0]
    model = select_logistic(std(flat[keep_tr]), y[keep_tr], len(MODEL_EMOTIONS), std(flat[keep_va]), y[keep_va], seed)
    outputs = lambda z: (model(std(z.reshape(len(z), -1))), None)  # noqa: E731
    t = fit_temperature(outputs(x[keep_va])[0], y[keep_va])
    return Fitted(candidate, outputs, t, mean=x[tr].mean(0))


def _fit_probe(candidate: Candidate, x, y, a, masks, member_rows, va, weights, seed) -> Fitted:
    from .probe import ProbeData, ProbeRecipeConfig, predict, train_probe

    hidden = 0 if candidate.head == "linear" else 256
    combine = "weighted" if candidate.head == "probe" else "concat"
    cfg = ProbeRecipeConfig(target="emotion", attributes=list(ATTRIBUTE_NAMES), hidden=hidden, combine=combine,
                            lr=candidate.lr, weight_decay=candidate.weight_decay, batch_size=64,
                            max_epochs=candidate.max_epochs, patience=candidate.patience, seed=seed,
                            speaker_norm="off", linear=False, threads=2)

    def data(idx, w=None):
        t = Targets([str(i) for i in idx], ["-"] * len(idx), list(MODEL_EMOTIONS), list(ATTRIBUTE_NAMES),
                    y[idx], a[idx])
        return ProbeData(x[idx], t, [], masks[idx] if candidate.mask else None, w)

    import torch

    from ..emotion_model import combine_members

    keep_va = va[y[va] >= 0]
    # member 0 keeps the seed: a single head is what it always was
    probes = [train_probe(data(tr, w), data(va), replace(cfg, seed=seed + 1000 * i))[0]
              for i, (tr, w) in enumerate(zip(member_rows, weights))]
    temps = [fit_temperature(predict(p, x[keep_va])[0], y[keep_va]) for p in probes] if len(probes) > 1 else []

    def outputs(z):
        outs = [predict(p, z) for p in probes]
        if len(outs) == 1:
            return outs[0]
        both = combine_members([tuple(None if v is None else torch.from_numpy(v) for v in o) for o in outs], temps)
        return tuple(None if v is None else v.numpy() for v in both)

    t = fit_temperature(outputs(x[keep_va])[0], y[keep_va])
    return Fitted(candidate, outputs, t, probes=probes, member_temperatures=temps, mean=x[member_rows[0]].mean(0))


# ---------------------------------------------------------------------------- scoring
def closed_set(logits: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Logits with every class outside ``classes`` ruled out (the test corpus's label set)."""
    out = np.full_like(logits, -np.inf, dtype=np.float64)
    out[:, list(classes)] = logits[:, list(classes)]
    return out


ADAPT = ("speaker", "recording", "one-emotion")
"""Groups of test clips that stand for one recording when scoring with adaptation: all of a
speaker's clips; random groups of :data:`RECORDING_CLIPS` clips of one speaker (mixed emotions);
all of a speaker's clips of one emotion (a speaker who shows one emotion only)."""
RECORDING_CLIPS = 10


def adaptation_groups(c: CorpusData, idx: np.ndarray, how: str, seed: int = 0) -> list[np.ndarray]:
    """Positions (into ``idx``) of the clips of each pseudo-recording (:data:`ADAPT`)."""
    spk = np.asarray(c.speakers)[idx]
    groups = []
    for s in np.unique(spk):
        mine = np.flatnonzero(spk == s)
        if how == "speaker":
            groups.append(mine)
        elif how == "recording":
            mine = np.random.default_rng(seed).permutation(mine)
            groups += [mine[i:i + RECORDING_CLIPS] for i in range(0, len(mine), RECORDING_CLIPS)]
        elif how == "one-emotion":
            y = c.y[idx][mine]
            groups += [mine[y == k] for k in np.unique(y)]
        else:
            raise ValueError(f"adaptation must be one of {ADAPT}, got {how!r}")
    return groups


def score(fitted: Fitted, c: CorpusData, condition: str = "clean", classes: Sequence[int] | None = None,
          rows: np.ndarray | None = None, adapt: str | None = None) -> dict[str, float]:
    """``ua``, ``wa``, ``weighted_f1`` over ``classes`` (default: the corpus's), ``ece`` before and
    after temperature scaling, and CCC of the attribute head where the corpus has targets.
    ``adapt`` (one of :data:`ADAPT`): the clips of each pseudo-recording are shifted so that
    their mean is the training mean, as ``predict``'s per-recording adaptation does."""
    from ..emotion_model import adapt_to_recording

    idx = np.arange(len(c.ids)) if rows is None else rows
    x = c.x[condition][idx]
    if adapt:
        x = x.copy()
        for g in adaptation_groups(c, idx, adapt):
            x[g] = adapt_to_recording(x[g], fitted.mean)
    y = c.y[idx]
    classes = list(c.classes if classes is None else classes)
    logits, attributes = fitted.outputs(x)
    z = closed_set(np.asarray(logits, np.float64), classes)
    keep = np.isin(y, classes)
    out = compute_metrics(np.where(keep, y, IGNORE_INDEX), z, len(MODEL_EMOTIONS))
    probs_raw, probs_cal = softmax(z), softmax(z, fitted.temperature)
    out["ece"] = expected_calibration_error(probs_raw, np.where(keep, y, -1))
    out["ece_calibrated"] = expected_calibration_error(probs_cal, np.where(keep, y, -1))
    out.update(_ccc(attributes, c.a[idx]))
    return out


def _ccc(attributes: np.ndarray | None, targets: np.ndarray) -> dict[str, float]:
    """``ccc_<attribute>`` (and their mean ``ccc``) of the attribute head's outputs (clipped to the
    targets' [-1, 1]) where ``targets`` has values; empty for a head without attributes."""
    if attributes is None:
        return {}
    metrics = compute_metrics(a_true=targets, a_pred=np.clip(attributes, -1, 1), attributes=ATTRIBUTE_NAMES)
    return {k: v for k, v in metrics.items() if k.startswith("ccc")}


def trained_on(candidate: Candidate, pool: dict[str, CorpusData], test: str | None) -> list[str]:
    """The corpora a candidate trains on when ``test`` is held out."""
    base = candidate.train or tuple(n for n in pool if n in ACTED or n in DIMENSIONAL)
    return [n for n in base if n != test and n in pool]


def _test_corpora(pool: dict[str, CorpusData], names: Sequence[str], only: Sequence[str] | None) -> list[str]:
    """The corpora of ``names`` that are in the pool (and in ``only`` when given), in that order."""
    return [n for n in names if n in pool and (only is None or n in only)]


def _held_out_fits(candidate: Candidate, pool: dict[str, CorpusData], tests: Sequence[str],
                   only: Sequence[str] | None, seed: int):
    """For each corpus of ``tests`` in the pool (and in ``only`` when given) that leaves an acted
    corpus to train on: ``(test, training corpora, the candidate fitted on them)``."""
    for test in _test_corpora(pool, tests, only):
        names = trained_on(candidate, pool, test)
        if any(n in ACTED for n in names):
            yield test, names, fit(candidate, pool, names, seed=seed)


def leave_one_corpus_out(candidate: Candidate, pool: dict[str, CorpusData], conditions: Sequence[str] = CONDITIONS,
                         seed: int = 0, only: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """For every acted corpus in the pool (or in ``only``): train on the others, score it under
    every condition (single clips), and adapted (clean; :data:`ADAPT`). Keys ``<corpus>`` ->
    metrics with ``<condition>/`` prefixes (``clean/ua``, ``noise:10/ua``, ``adapted-recording/ua`` ...)."""
    out = {}
    for test, names, fitted in _held_out_fits(candidate, pool, ACTED, only, seed):
        have = sorted({k for n in names if n in ACTED for k in pool[n].classes})
        classes = [k for k in pool[test].classes if k in have]
        res = {}
        for cond in [cc for cc in conditions if cc in pool[test].x]:
            res.update({f"{cond}/{k}": v for k, v in score(fitted, pool[test], cond, classes).items()})
        for how in ADAPT:
            res.update({f"adapted-{how}/{k}": v for k, v in score(fitted, pool[test], "clean", classes,
                                                                   adapt=how).items() if k in ("ua", "wa")})
        res["temperature"] = fitted.temperature
        out[test] = res
        log.info("%s, test %s: clean UA %.3f", candidate.name, test, res.get("clean/ua", math.nan))
    return out


def leave_one_corpus_out_attributes(candidate: Candidate, pool: dict[str, CorpusData],
                                    seed: int = 0) -> dict[str, dict[str, float]]:
    """The V/A/D head on ratings it was not trained on: for every dimensional corpus in the pool
    (BAVED's level as arousal, va47's valence and arousal), train without it and score the CCC
    of its clean clips. Empty for a candidate without an attribute head (``logistic``)."""
    if candidate.head == "logistic":
        return {}
    out = {}
    for test, _, fitted in _held_out_fits(candidate, pool, DIMENSIONAL, None, seed):
        out[test] = _ccc(fitted.outputs(pool[test].x["clean"])[1], pool[test].a)
        log.info("%s, test %s: CCC %.3f", candidate.name, test, out[test].get("ccc", math.nan))
    return out


def in_corpus(candidate: Candidate, pool: dict[str, CorpusData], folds: int = 3, seed: int = 0,
              only: Sequence[str] | None = None) -> dict[str, float]:
    """Speaker-independent UA inside each acted corpus (or those in ``only``): its speakers in
    ``folds`` groups (two for a two-speaker corpus), trained on the other corpora plus the other
    groups, mean UA over groups."""
    from ..splits import balanced_bins

    out = {}
    for test in _test_corpora(pool, ACTED, only):
        c = pool[test]
        groups: dict[str, list[str]] = {}
        for i, s in enumerate(c.speakers):
            groups.setdefault(s, []).append(str(i))
        uas = []
        for part in balanced_bins(groups, min(folds, len(groups)), seed):
            held = np.asarray(sorted(int(i) for s in part for i in groups[s]))
            rest = np.setdiff1d(np.arange(len(c.ids)), held)
            names = [test] + trained_on(candidate, pool, test)
            fitted = fit(candidate, pool, names, rows={test: rest}, seed=seed)
            uas.append(score(fitted, c, "clean", rows=held)["ua"])
        out[test] = float(np.mean(uas))
    return out

