"""A generic table importer: one row per utterance, columns mapped onto Utterance fields.

``prepare(root, csv="labels.csv", columns={"audio": "path", "emotion": "label"})``. Without a
mapping a column named like a field is taken as that field; ``audio`` also tries ``path``,
``file``, ``filename``, ``wav``. Columns that are not fields go to ``extra``. Emotion labels are
normalised onto the common vocabulary (``anger`` -> ``angry``); unknown ones are kept. Cells
that spreadsheet and pandas exports use for "no value" (``NaN``, ``NA``, ``N/A``, ``null``,
``None``) are missing values, never labels. Rows with a missing file, a bad number or an audio
path outside ``root`` (absolute elsewhere, or ``..``; allowed with ``allow_outside_root=True``)
are skipped and reported with their row number; such files are never opened.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..manifest import ATTRIBUTES, Utterance
from .common import CorpusError, Skipped, finish, read_csv, relative, require_dir, speaker_id
from .vocab import normalize_emotion, vocabulary

_FLOATS = {"start", "end", "duration", *ATTRIBUTES}
_STRINGS = {"id", "speaker", "gender", "session", "language", "transcript", "emotion", "sentiment", "split"}
_AUDIO_NAMES = ("audio", "path", "file", "filename", "file_name", "wav", "wav_path")
_GENDERS = {"f": "female", "female": "female", "w": "female", "m": "male", "male": "male"}
_MISSING = {"nan", "na", "n/a", "null", "none"}


def _value(v: str | None) -> str:
    """A cell, with the usual "no value" markers read as empty."""
    v = (v or "").strip()
    return "" if v.lower() in _MISSING else v


def _outside(path: Path, base: Path) -> bool:
    root = os.path.normpath(os.path.abspath(base))
    target = os.path.normpath(os.path.abspath(path))
    return os.path.commonpath([root, target]) != root


def _resolve_columns(header: list[str], columns: dict[str, str] | None, table: Path) -> dict[str, str]:
    mapping = dict(columns or {})
    missing = [c for c in mapping.values() if c not in header]
    if missing:
        raise CorpusError(f"{table}: column(s) {missing} not found; the table has {header}")
    taken = set(mapping.values())
    for h in header:
        if h in _FLOATS | _STRINGS and h not in mapping and h not in taken:
            mapping[h] = h
    if "audio" not in mapping:
        found = next((h for h in header for n in _AUDIO_NAMES if h.lower() == n), None)
        if found is None:
            raise CorpusError(f"{table}: no audio column (map one with audio=COLUMN); columns are {header}")
        mapping["audio"] = found
    return mapping


def prepare(root: str | os.PathLike, *, csv: str | os.PathLike = "labels.csv", columns: dict[str, str] | None = None,
            delimiter: str | None = None, corpus: str = "csv", language: str | None = None,
            scales: dict[str, list[float]] | None = None, jobs: int = 1, probe: bool = True, strict: bool = False,
            allow_outside_root: bool = False):
    """Import the table ``csv`` (relative to ``root`` or absolute) -> Manifest named ``corpus``."""
    base = require_dir(root, corpus)
    table = Path(csv) if Path(csv).is_absolute() else base / csv
    if not table.is_file():
        raise CorpusError(f"{corpus}: table {table} not found (give it with --csv)")
    rows = read_csv(table, delimiter)
    if not rows:
        raise CorpusError(f"{table}: no rows")
    mapping = _resolve_columns(list(rows[0]), columns, table)
    used = set(mapping.values())
    records, skipped = [], []
    for n, row in enumerate(rows, start=2):
        where = f"{table.name} row {n}"
        cell = _value(row[mapping["audio"]])
        audio = Path(cell)
        path = audio if audio.is_absolute() else base / audio
        if cell and not allow_outside_root and _outside(path, base):
            skipped.append(Skipped(cell, f"outside the corpus root {base} ({where}; refused, not opened; "
                                         "allow it with -O allow_outside_root=true)"))
            continue
        if not cell or not path.is_file():
            skipped.append(Skipped(cell or where, f"file not found ({where})"))
            continue
        values: dict = {}
        bad = None
        for field_name, col in mapping.items():
            v = row.get(col, "") or ""
            if field_name in _FLOATS:  # a NaN here is a bad number (the row is skipped), not a gap
                try:
                    values[field_name] = float(v) if v != "" else None
                except ValueError:
                    bad = f"{field_name} {v!r} is not a number ({where})"
                if values.get(field_name) is not None and not math.isfinite(values[field_name]):
                    bad = f"{field_name} {v!r} is not finite ({where})"
            elif field_name in _STRINGS:
                values[field_name] = _value(v) or None
            elif field_name != "audio":
                values.setdefault("extra", {})[field_name] = v
        if bad:
            skipped.append(Skipped(cell, bad))
            continue
        extra = {**{k: v for k, v in row.items() if k not in used and _value(v) != ""}, **values.pop("extra", {})}
        rel = relative(path, base)
        values["id"] = values.get("id") or rel.rsplit(".", 1)[0]
        values["speaker"] = speaker_id(corpus, values.get("speaker"))
        values["emotion"] = normalize_emotion(values.get("emotion"))
        if values.get("gender"):
            values["gender"] = _GENDERS.get(values["gender"].lower(), values["gender"].lower())
        records.append(Utterance(audio=rel, extra=extra, **values))
    labels = {"emotion": vocabulary(r.emotion for r in records)} if any(r.emotion for r in records) else {}
    return finish(corpus, base, records, skipped, language=language, labels=labels, scales=scales,
                  jobs=jobs, probe_audio=probe, strict=strict)
