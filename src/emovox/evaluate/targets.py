"""The one reader that turns a manifest into training and evaluation targets, for every recipe.

Three kinds of target, the same everywhere:

- **categorical**: a label with a vocabulary (``emotion``, BAVED ``level``) as class indices
  ``y`` (N,) int64, :data:`IGNORE_INDEX` where an utterance has no label;
- **ordinal**: a label whose vocabulary is ordered (``low`` < ``neutral`` < ``high``) as one
  regression column coded by :func:`ordinal_value` (evenly spaced in [-1, 1]);
- **attributes**: numeric values (valence, arousal, dominance, or a numeric ``extra`` field) as
  ``a`` (N, K) float32, mapped to [-1, 1] with the manifest's scale where it records one
  (``unit_scale``), NaN where missing.

A :class:`Targets` can hold a categorical label and regression columns at once (the probe's
emotion head and its V/A/D head). Utterances with no target at all are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..manifest import Manifest

IGNORE_INDEX = -100
"""Class index of an utterance without a label (PyTorch's cross-entropy default)."""


def ordinal_value(value: object, vocabulary: Sequence[str]) -> float | None:
    """The position of ``value`` in an ordered vocabulary, evenly spaced in [-1, 1]
    (``low, neutral, high`` -> -1, 0, 1); None when the value is not in it."""
    vocab = list(vocabulary)
    if value not in vocab or len(vocab) < 2:
        return None
    return 2.0 * vocab.index(value) / (len(vocab) - 1) - 1.0


@dataclass
class Targets:
    """Targets of the utterances ``ids`` (in manifest order).

    ``y`` (N,) int64 class index into ``labels`` (IGNORE_INDEX = none) or None when there is no
    categorical target; ``a`` (N, K) float32, one column per name in ``attributes`` (NaN =
    missing), or None when there are no regression columns.
    """

    ids: list[str]
    speakers: list[str]
    labels: list[str]
    attributes: list[str]
    y: np.ndarray | None
    a: np.ndarray | None

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: Sequence[int]) -> "Targets":
        rows = np.asarray(rows, dtype=np.int64)
        return Targets([self.ids[i] for i in rows], [self.speakers[i] for i in rows], self.labels,
                       self.attributes, None if self.y is None else self.y[rows],
                       None if self.a is None else self.a[rows])

    def rows_of(self, ids: Sequence[str]) -> list[int]:
        """Row numbers of ``ids`` (those that have targets), in the order given."""
        index = {u: i for i, u in enumerate(self.ids)}
        return [index[u] for u in ids if u in index]

    def class_names(self, codes: Sequence[int]) -> list[str | None]:
        """Class indices -> label strings (None for IGNORE_INDEX)."""
        return [self.labels[int(c)] if int(c) >= 0 else None for c in codes]


def read_targets(manifest: Manifest, label: str | None = None, attributes: Sequence[str] = (), *,
                 ordinal: bool = False, labels: Sequence[str] | None = None,
                 attribute_values: Mapping[str, Sequence[float]] | None = None,
                 unit_scale: bool = True) -> Targets:
    """Read the targets of every utterance of ``manifest``.

    ``label``: a categorical target (class indices), or with ``ordinal=True`` one regression
    column named after it (placed after ``attributes``). ``labels`` fixes the class list
    (default: the manifest's vocabulary for ``label``, restricted to the values that occur, or
    the sorted values when the manifest has no vocabulary). ``attribute_values`` (id -> K values)
    replaces what the manifest holds for ``attributes`` (e.g. category-derived targets).
    Raises ValueError naming the corpus when nothing is left to learn from, or naming the
    utterance when a label lies outside the class list.
    """
    corpus = manifest.corpus or "manifest"
    vocab: list[str] = []
    if label:
        present = {u.get(label) for u in manifest if u.get(label) is not None}
        known = manifest.labels.get(label)
        if ordinal:
            if not known or len(known) < 2:
                raise ValueError(f"{corpus}: an ordinal target needs an ordered vocabulary for {label!r} in the "
                                 f"manifest (it has {sorted(manifest.labels) or 'none'})")
            vocab = list(known)
        elif labels is not None:
            vocab = list(labels)
        elif known:
            vocab = [c for c in known if c in present]
        else:
            vocab = sorted(str(v) for v in present)
        if not present:
            raise ValueError(f"{corpus}: no utterance has a {label!r} label")
    columns = list(attributes) + ([label] if label and ordinal else [])
    ids, speakers, ys, avs = [], [], [], []
    for utt in manifest:
        y = IGNORE_INDEX
        if label and not ordinal and utt.get(label) is not None:
            value = utt.get(label)
            if value not in vocab:
                raise ValueError(f"{corpus}: utterance {utt.id}: {label} {value!r} is not one of {vocab}")
            y = vocab.index(value)
        row = _attribute_row(manifest, utt, attributes, attribute_values, unit_scale)
        if label and ordinal:
            v = ordinal_value(utt.get(label), vocab)
            row.append(math.nan if v is None else v)
        if y == IGNORE_INDEX and all(math.isnan(v) for v in row):
            continue  # nothing to learn from
        ids.append(utt.id)
        speakers.append(utt.speaker or utt.id)
        ys.append(y)
        avs.append(row)
    if not ids:
        wanted = ", ".join(filter(None, [label, *attributes])) or "nothing"
        raise ValueError(f"{corpus}: no utterance has a target ({wanted})")
    return Targets(ids, speakers, vocab if label and not ordinal else [], columns,
                   np.asarray(ys, np.int64) if label and not ordinal else None,
                   np.asarray(avs, np.float32).reshape(len(ids), len(columns)) if columns else None)


def _attribute_row(manifest: Manifest, utt, attributes: Sequence[str],
                   given: Mapping[str, Sequence[float]] | None, unit_scale: bool) -> list[float]:
    if not attributes:
        return []
    if given is not None:
        return [float(v) for v in given.get(utt.id, [math.nan] * len(attributes))]
    row = []
    for name in attributes:
        v = utt.get(name)
        if v is None or isinstance(v, bool):
            row.append(math.nan)
            continue
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{manifest.corpus or 'manifest'}: utterance {utt.id}: {name} {v!r} is not a "
                             f"number") from None
        row.append(manifest.to_unit(v, name) if unit_scale and name in manifest.scales else v)
    return row
