"""MELD (Poria et al. 2019): ``train_sent_emo.csv``, ``dev_sent_emo.csv``, ``test_sent_emo.csv``
(Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID, ...) and the audio extracted
from the clips as ``dia<D>_utt<U>.<ext>`` in per-split folders whose names contain ``train``,
``dev`` and ``test`` (as released: train_splits, dev_splits_complete, output_repeated_splits_test).

Ids are ``<split>/dia<D>_utt<U>``. The Friends characters appear in every split, so the
character goes to ``extra["character"]`` and ``speaker`` stays None: the official split is then
not refused, and speaker-grouped protocols do not apply. MELD's own sentiment annotation goes to
``extra["annotated_sentiment"]``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..manifest import SENTIMENTS, Utterance
from .common import CorpusError, Skipped, find_audio, finish, read_csv, relative, require_dir
from .vocab import MELD, vocabulary

SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def _split_of(rel: Path) -> str | None:
    for part in rel.parts[:-1]:
        for key in SPLITS:
            if key in part.lower():
                return key
    return None


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import MELD from ``root`` (the folder holding the csv files and the split folders) -> Manifest."""
    base = require_dir(root, "meld")
    index: dict[tuple[str, str], Path] = {}
    for p in find_audio(base):
        split = _split_of(p.relative_to(base))
        if split:
            index.setdefault((split, p.stem), p)
    records, skipped = [], []
    found = False
    for key, split in SPLITS.items():
        table = next((p for p in (base / f"{key}_sent_emo.csv", base / "data" / f"{key}_sent_emo.csv") if p.is_file()),
                     None)
        if table is None:
            continue
        found = True
        for n, row in enumerate(read_csv(table, ","), start=2):
            stem = f"dia{row.get('Dialogue_ID')}_utt{row.get('Utterance_ID')}"
            path = index.get((key, stem))
            if path is None:
                skipped.append(Skipped(f"{key}/{stem}", f"file not found ({table.name} row {n})"))
                continue
            emo = (row.get("Emotion") or "").lower()
            if emo not in MELD:
                skipped.append(Skipped(relative(path, base), f"unknown emotion {emo!r} ({table.name} row {n})"))
                continue
            sentiment = (row.get("Sentiment") or "").lower()
            records.append(Utterance(
                id=f"{key}/{stem}", audio=relative(path, base), transcript=row.get("Utterance") or None,
                emotion=MELD[emo], split=split, session=f"{key}/dia{row.get('Dialogue_ID')}",
                extra={"character": row.get("Speaker"), "emotion_code": emo,
                       **({"annotated_sentiment": sentiment} if sentiment in SENTIMENTS else {})}))
    if not found:
        raise CorpusError(f"meld: none of train_sent_emo.csv, dev_sent_emo.csv, test_sent_emo.csv in {base}")
    return finish("meld", base, records, skipped, language="en",
                  labels={"emotion": vocabulary(MELD.values()), "annotated_sentiment": list(SENTIMENTS)},
                  jobs=jobs, probe_audio=probe, strict=strict)
