"""Speaker-independent evaluation splits.

Protocols (``make_folds(manifest, protocol, ...)``):

- ``loso``: leave one speaker out; one fold per speaker.
- ``kfold``: speaker-grouped k-fold, balanced by utterance count (largest speaker first into the
  fold with fewest utterances; ties broken by a seeded shuffle), deterministic for a seed.
  Utterances without a speaker each form their own group.
- ``official``: the corpus' own partitions: ``Utterance.split`` when set (MSP-Podcast
  ``Split_Set``, AN4 train/test, LibriSpeech subsets, MELD; one fold per test set), otherwise
  ``Utterance.session`` (IEMOCAP: leave one session out).
- ``loo``: leave one utterance out, for corpora without speaker ids (va47).

Inside every fold a validation set is drawn from the training speakers (``validation`` is the
fraction of training utterances to aim for; 0 leaves it empty) unless the corpus names one.
Any fold in which a speaker appears in two partitions is refused with :class:`SplitError`.
:func:`holdout` makes a train/validation pair the same way for training without a test set.

File format (``save_folds``): one JSON object::

    {"format": 1, "protocol": "loso", "seed": 0, "corpus": "ravdess", "manifest": "r.jsonl",
     "folds": [{"name": "ravdess-01", "train": [ids...], "validation": [ids...], "test": [ids...]}, ...]}
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from .manifest import Manifest, Utterance
from .utils import write_json

log = logging.getLogger("emovox.splits")

PROTOCOLS = ("loso", "kfold", "official", "loo")
TRAIN_SPLITS = {"train", "training"}
VALIDATION_SPLITS = {"validation", "valid", "val", "dev", "development"}


class SplitError(ValueError):
    """A split that cannot be made, or one that would leak speakers between partitions."""


@dataclass
class Fold:
    """One train/validation/test partition, as lists of utterance ids."""

    name: str
    train: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)

    def partitions(self) -> dict[str, list[str]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def select(self, manifest: Manifest, partition: str) -> Manifest:
        """The manifest's records of one partition, in the fold's order."""
        by_id = manifest.by_id()
        return manifest.replace(by_id[i] for i in self.partitions()[partition])


# ----------------------------------------------------------------------------- helpers


def _group(r: Utterance) -> str:
    return r.speaker if r.speaker is not None else f"utterance:{r.id}"


def _groups(records: Iterable[Utterance]) -> dict[str, list[str]]:
    g: dict[str, list[str]] = defaultdict(list)
    for r in records:
        g[_group(r)].append(r.id)
    return dict(g)


def balanced_bins(groups: dict[str, list[str]], k: int, seed: int) -> list[list[str]]:
    """Assign whole groups to ``k`` bins, biggest first into the emptiest bin (seeded ties)."""
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda g: -len(groups[g]))  # stable: the shuffle breaks ties
    bins: list[list[str]] = [[] for _ in range(k)]
    sizes = [0] * k
    for g in order:
        i = min(range(k), key=lambda j: (sizes[j], j))
        bins[i].append(g)
        sizes[i] += len(groups[g])
    return bins


def _split_validation(train_ids: list[str], records: dict[str, Utterance], fraction: float,
                      seed: int) -> tuple[list[str], list[str]]:
    """Move whole training speakers into validation until about ``fraction`` of the training
    utterances is reached: speakers are visited in a seeded order and one that would overshoot
    the target by half is passed over. At least one speaker moves when the fraction is positive
    and 2+ speakers exist; at least one always stays in training."""
    if fraction <= 0:
        return train_ids, []
    groups = _groups(records[i] for i in train_ids)
    if len(groups) < 2:
        return train_ids, []
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    target = fraction * len(train_ids)
    chosen: set[str] = set()
    n = 0
    for g in order:
        if n >= target or len(chosen) == len(groups) - 1:
            break
        if n + len(groups[g]) > 1.5 * target:
            continue
        chosen.add(g)
        n += len(groups[g])
    if not chosen:
        chosen.add(min(order, key=lambda g: len(groups[g])))
    val = [i for i in train_ids if _group(records[i]) in chosen]
    return [i for i in train_ids if _group(records[i]) not in chosen], val


def _fold(name: str, manifest: Manifest, test: set[str], validation: float, seed: int,
          fixed_validation: set[str] | None = None) -> Fold:
    records = manifest.by_id()
    order = [r.id for r in manifest.records]
    if fixed_validation is not None:
        train = [i for i in order if i not in test and i not in fixed_validation]
        val = [i for i in order if i in fixed_validation]
    else:
        train, val = _split_validation([i for i in order if i not in test], records, validation, seed)
    return Fold(name, train, val, [i for i in order if i in test])


# ----------------------------------------------------------------------------- protocols


def _loso(manifest: Manifest, validation: float, seed: int) -> list[Fold]:
    missing = [r.id for r in manifest.records if r.speaker is None]
    if missing:
        raise SplitError(f"loso needs a speaker for every utterance; {len(missing)} have none "
                         f"(e.g. {missing[:3]}); use --protocol loo or kfold")
    speakers = manifest.speakers()
    if len(speakers) < 2:
        raise SplitError(f"loso needs at least 2 speakers, found {len(speakers)}")
    return [_fold(s, manifest, {r.id for r in manifest.records if r.speaker == s}, validation, seed + i)
            for i, s in enumerate(speakers)]


def _kfold(manifest: Manifest, k: int, validation: float, seed: int) -> list[Fold]:
    groups = _groups(manifest.records)
    if k < 2:
        raise SplitError(f"kfold needs k >= 2, got {k}")
    if len(groups) < k:
        raise SplitError(f"kfold with k={k} needs at least {k} speakers, found {len(groups)}")
    bins = balanced_bins(groups, k, seed)
    return [_fold(f"fold{i + 1}", manifest, {u for g in b for u in groups[g]}, validation, seed + i)
            for i, b in enumerate(bins)]


def _official(manifest: Manifest, validation: float, seed: int) -> list[Fold]:
    splits = Counter(r.split for r in manifest.records if r.split is not None)
    if splits:
        kind = {s: ("train" if s.lower() in TRAIN_SPLITS or s.lower().startswith("train")
                    else "validation" if s.lower() in VALIDATION_SPLITS or s.lower().startswith("dev")
                    else "test") for s in splits}
        tests = sorted(s for s, k in kind.items() if k == "test")
        if not tests or not any(k == "train" for k in kind.values()):
            raise SplitError(f"official split needs train and test partitions; found {dict(splits)}")
        usable = manifest.filter(lambda r: r.split is not None)
        named_val = {r.id for r in usable if kind[r.split] == "validation"}
        folds = []
        for t in tests:
            part = usable.filter(lambda r: kind[r.split] != "test" or r.split == t)
            test = {r.id for r in part if r.split == t}
            folds.append(_fold(t if len(tests) > 1 else "official", part, test, validation, seed,
                               fixed_validation=named_val or None))
        return folds
    sessions = sorted({r.session for r in manifest.records if r.session is not None})
    if len(sessions) >= 2:
        usable = manifest.filter(lambda r: r.session is not None)
        return [_fold(s, usable, {r.id for r in usable if r.session == s}, validation, seed + i)
                for i, s in enumerate(sessions)]
    raise SplitError(f"{manifest.corpus or 'this corpus'} has no official partitions (no split or session "
                     "fields); use --protocol loso, kfold or loo")


def _loo(manifest: Manifest, validation: float, seed: int) -> list[Fold]:
    if len(manifest) < 2:
        raise SplitError("loo needs at least 2 utterances")
    shared = [s for s, n in Counter(r.speaker for r in manifest.records if r.speaker is not None).items() if n > 1]
    if shared:
        raise SplitError(f"loo would put other utterances of the test speaker in training ({len(shared)} "
                         f"speakers have several utterances, e.g. {sorted(shared)[:3]}); loo is for corpora "
                         "without speaker ids: use --protocol loso or kfold")
    return [_fold(r.id, manifest, {r.id}, validation, seed + i) for i, r in enumerate(manifest.records)]


def make_folds(manifest: Manifest, protocol: str = "kfold", k: int = 5, seed: int = 0,
               validation: float = 0.1) -> list[Fold]:
    """Folds for ``protocol`` (see module docstring); refused with SplitError if any speaker
    would appear in two partitions of a fold. Same manifest + seed -> the same folds."""
    if protocol not in PROTOCOLS:
        raise SplitError(f"unknown split protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if not 0 <= validation < 1:
        raise SplitError(f"validation fraction must be in [0, 1), got {validation}")
    if protocol == "loso":
        folds = _loso(manifest, validation, seed)
    elif protocol == "kfold":
        folds = _kfold(manifest, k, validation, seed)
    elif protocol == "official":
        folds = _official(manifest, validation, seed)
    else:
        folds = _loo(manifest, validation, seed)
    check_folds(manifest, folds)
    return folds


def holdout(records: Manifest | Iterable[Utterance], fraction: float = 0.1,
            seed: int = 0) -> tuple[list[str], list[str]]:
    """(train ids, validation ids) for training without a test partition (e.g. pre-training).

    When some records carry a validation split (``Utterance.split`` one of
    :data:`VALIDATION_SPLITS`, or starting with ``dev``), those are the validation set and every
    other record is training. Otherwise whole speakers move into validation until about
    ``fraction`` of the utterances is reached (seeded, as inside :func:`make_folds`; records
    without a speaker each count as their own group). Two special cases, both logged as a
    warning because the split is not speaker independent: with no speaker ids at all the split is
    by utterance; with a single speaker a seeded ``fraction`` of the utterances (at least one when
    there are two or more) is held out at random. ``fraction`` <= 0 gives no validation set.
    Ids keep the order of ``records``.
    """
    recs = list(records.records if isinstance(records, Manifest) else records)
    ids = [r.id for r in recs]
    named = [r.id for r in recs if r.split is not None and _is_validation_split(r.split)]
    if named:
        held = set(named)
        return [i for i in ids if i not in held], named
    if fraction <= 0 or not recs:
        return ids, []
    speakers = {r.speaker for r in recs if r.speaker is not None}
    if len(speakers) == 1 and all(r.speaker is not None for r in recs):
        import numpy as np

        log.warning("one speaker (%s): the validation set is a random %.0f%% of the utterances, not "
                    "speaker independent", next(iter(speakers)), 100 * fraction)
        order = np.random.default_rng(seed).permutation(len(ids))
        n = max(1, round(fraction * len(ids))) if len(ids) > 1 else 0
        held = {ids[k] for k in order[:n].tolist()}
        return [i for i in ids if i not in held], [i for i in ids if i in held]
    if not speakers:
        log.warning("no speaker ids: the validation set is drawn by utterance, not speaker independent")
    return _split_validation(ids, {r.id: r for r in recs}, fraction, seed)


def balanced_subset(manifest: Manifest, n: int, seed: int = 0, label: str = "emotion") -> Manifest:
    """At most ``n`` utterances of ``manifest`` spread evenly over (speaker, ``label``) groups:
    groups are visited in a seeded order, one utterance at a time, each group's utterances in a
    seeded order, until ``n`` are taken. Deterministic for a seed; the manifest order is kept."""
    if n >= len(manifest):
        return manifest
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in manifest.records:
        groups[(str(r.speaker or r.id), str(r.get(label)))].append(r.id)
    queues = [groups[k][:] for k in sorted(groups)]
    for q in queues:
        rng.shuffle(q)
    rng.shuffle(queues)
    chosen: set[str] = set()
    while len(chosen) < n:
        for q in queues:
            if q and len(chosen) < n:
                chosen.add(q.pop())
    return manifest.filter(lambda r: r.id in chosen)


def _is_validation_split(split: str) -> bool:
    s = split.lower()
    return s in VALIDATION_SPLITS or s.startswith("dev")


# ----------------------------------------------------------------------------- checks and files


def check_folds(manifest: Manifest, folds: list[Fold]) -> None:
    """Raise SplitError listing every speaker found in two partitions of a fold, every id in two
    partitions and every id the manifest does not hold."""
    records = manifest.by_id()
    problems = []
    for f in folds:
        where: dict[str, str] = {}
        spk: dict[str, set[str]] = defaultdict(set)
        for part, ids in f.partitions().items():
            for i in ids:
                if i not in records:
                    problems.append(f"fold {f.name}: id {i!r} ({part}) is not in the manifest")
                    continue
                if i in where:
                    problems.append(f"fold {f.name}: id {i!r} is in both {where[i]} and {part}")
                where[i] = part
                if records[i].speaker is not None:
                    spk[records[i].speaker].add(part)
        problems += [f"fold {f.name}: speaker {s!r} appears in {' and '.join(sorted(p))}"
                     for s, p in sorted(spk.items()) if len(p) > 1]
    if problems:
        shown = "\n  ".join(problems[:30])
        more = f"\n  ... and {len(problems) - 30} more" if len(problems) > 30 else ""
        raise SplitError(f"refusing a split that leaks speakers or ids ({len(problems)} problem(s)):\n  "
                         f"{shown}{more}")


def fold_summary(manifest: Manifest, folds: list[Fold]) -> list[dict[str, Any]]:
    """Per fold and partition: utterances, speakers, hours and the first label's counts."""
    records = manifest.by_id()
    label = next(iter(manifest.labels), None)
    rows = []
    for f in folds:
        for part, ids in f.partitions().items():
            rs = [records[i] for i in ids]
            row = {"fold": f.name, "partition": part, "utterances": len(rs),
                   "speakers": len({r.speaker for r in rs if r.speaker is not None}),
                   "hours": round(sum(r.duration or 0.0 for r in rs) / 3600, 4)}
            if label:
                row[label] = dict(Counter(r.get(label) for r in rs if r.get(label) is not None))
            rows.append(row)
    return rows


def save_folds(path: str | os.PathLike, folds: list[Fold], *, protocol: str, seed: int | None = None,
               corpus: str = "", manifest: str = "", **meta: Any) -> None:
    """Write the folds as one JSON file (format in the module docstring), atomically."""
    write_json(path, {"format": 1, "protocol": protocol, "seed": seed, "corpus": corpus, "manifest": manifest,
                      **meta, "folds": [asdict(f) for f in folds]})


def load_folds(path: str | os.PathLike) -> list[Fold]:
    """Read folds written by :func:`save_folds`."""
    with open(path, encoding="utf-8") as fh:
        d = json.load(fh)
    try:
        return [Fold(f["name"], list(f["train"]), list(f["validation"]), list(f["test"])) for f in d["folds"]]
    except (KeyError, TypeError) as e:
        raise SplitError(f"{path}: not a folds file (missing {e})") from None
