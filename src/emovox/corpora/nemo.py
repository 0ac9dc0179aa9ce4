"""nEMO, emotional speech in Polish (Christop 2024): ``samples/{SPK}_{emotion}_{n}.<ext>`` and
``data.tsv`` (``file_id emotion raw_text normalized_text speaker_id gender age``, tab-separated).

The table decides each clip's emotion, speaker, gender and transcript (the orthographic
``raw_text``; ``normalized_text`` goes to ``extra``). Rows are matched to audio by the file
id's stem, so any audio extension is accepted. Audio not listed in the table, rows without
audio, and files whose name contradicts their row (emotion or speaker) are skipped with the cause.
"""

from __future__ import annotations

import os
from pathlib import PurePath

from ..manifest import Utterance
from .common import CorpusError, Skipped, find_audio, finish, read_csv, relative, require_dir, speaker_id
from .vocab import NEMO, vocabulary

TABLE = "data.tsv"
COLUMNS = ("file_id", "emotion", "raw_text", "normalized_text", "speaker_id", "gender", "age")
GENDERS = {"female": "female", "male": "male", "f": "female", "m": "male"}


def _age(value: str) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import nEMO from ``root`` (the folder holding ``samples/`` and ``data.tsv``) -> Manifest."""
    base = require_dir(root, "nemo")
    table = base / TABLE
    if not table.is_file():
        raise CorpusError(f"nemo: {TABLE} not found under {base} (expected samples/ and {TABLE})")
    rows = read_csv(table, delimiter="\t")
    missing = [c for c in COLUMNS if rows and c not in rows[0]]
    if missing:
        raise CorpusError(f"nemo: {table} lacks the column(s) {missing} (has {list(rows[0])})")

    records, skipped = [], []
    by_stem: dict[str, dict[str, str]] = {}
    for n, row in enumerate(rows, start=2):
        stem = PurePath(row["file_id"]).stem if row["file_id"] else ""
        if not stem:
            skipped.append(Skipped(f"{TABLE}:{n}", "row without a file_id"))
        elif stem in by_stem:
            skipped.append(Skipped(f"{TABLE}:{n}", f"file_id {row['file_id']!r} listed twice (first row kept)"))
        else:
            by_stem[stem] = row

    used: set[str] = set()
    for path in find_audio(base, "samples"):
        rel = relative(path, base)
        row = by_stem.get(path.stem)
        if row is None:
            skipped.append(Skipped(rel, f"not listed in {TABLE}"))
            continue
        used.add(path.stem)
        parts = path.stem.split("_")
        spk = row["speaker_id"].strip() or parts[0]
        label = row["emotion"].strip().lower()
        if label not in NEMO:
            skipped.append(Skipped(rel, f"unknown emotion {row['emotion']!r} in {TABLE} (known: {sorted(NEMO)})"))
            continue
        if len(parts) == 3 and (parts[1].lower() != label or parts[0] != spk):
            skipped.append(Skipped(rel, f"file name disagrees with its {TABLE} row (emotion {label!r}, "
                                        f"speaker {spk!r})"))
            continue
        extra = {"emotion_code": label, "age": _age(row["age"])}
        if len(parts) == 3 and parts[2].isdigit():
            extra["sentence"] = int(parts[2])
        if row["normalized_text"]:
            extra["normalized_text"] = row["normalized_text"]
        records.append(Utterance(
            id=path.stem, audio=rel, speaker=speaker_id("nemo", spk), gender=GENDERS.get(row["gender"].lower()),
            transcript=row["raw_text"] or row["normalized_text"] or None, emotion=NEMO[label],
            extra={k: v for k, v in extra.items() if v is not None}))
    for stem, row in by_stem.items():
        if stem not in used:
            skipped.append(Skipped(f"samples/{row['file_id']}", f"listed in {TABLE} but no audio file found"))
    if not records and not skipped:
        raise CorpusError(f"nemo: no rows in {table} and no audio under {base / 'samples'}")
    return finish("nemo", base, records, skipped, language="pl", labels={"emotion": vocabulary(NEMO.values())},
                  jobs=jobs, probe_audio=probe, strict=strict)
