"""MSP-Podcast (Lotfian & Busso 2019): ``Labels/labels_consensus.csv`` (FileName, EmoClass, EmoAct,
EmoVal, EmoDom, SpkrID, Gender, Split_Set), ``Audios/<name>.<ext>`` and, when present,
``Transcripts/<name>.txt``. A/V/D on 1..7. ``Split_Set`` becomes ``split``: Train -> train,
Development -> validation, Test1/Test2/Test3 -> test1/test2/test3 (``--protocol official``).
Unknown speakers stay None.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..manifest import Utterance
from .common import (CorpusError, Skipped, finish, index_audio, parse_float, read_csv, read_text, relative,
                     require_dir, speaker_id)
from .vocab import MSP, vocabulary

SCALE = [1.0, 7.0]
GENDERS = {"female": "female", "f": "female", "male": "male", "m": "male"}
SPLITS = {"train": "train", "development": "validation", "dev": "validation", "validation": "validation"}


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import MSP-Podcast from ``root`` (the release folder holding ``Labels/`` and ``Audios/``) -> Manifest."""
    base = require_dir(root, "msppodcast")
    table = next((p for p in (base / "Labels" / "labels_consensus.csv", base / "Labels" / "labels_concensus.csv",
                              base / "labels_consensus.csv") if p.is_file()), None)
    if table is None:
        raise CorpusError(f"msppodcast: Labels/labels_consensus.csv not found under {base}")
    audio = index_audio(base, "Audios") or index_audio(base, "Audio") or index_audio(base)
    transcripts = base / "Transcripts"
    records, skipped = [], []
    for n, row in enumerate(read_csv(table), start=2):
        name = Path(row.get("FileName", "")).stem
        path = audio.get(name)
        if path is None:
            skipped.append(Skipped(f"Audios/{row.get('FileName', '?')}", f"file not found ({table.name} row {n})"))
            continue
        code = row.get("EmoClass") or None
        if code is not None and code not in MSP and code != "X":
            skipped.append(Skipped(relative(path, base), f"unknown EmoClass {code!r} ({table.name} row {n})"))
            continue
        split = (row.get("Split_Set") or "").strip()
        tfile = transcripts / f"{name}.txt"
        records.append(Utterance(
            id=name, audio=relative(path, base), speaker=speaker_id("msppodcast", row.get("SpkrID")),
            gender=GENDERS.get((row.get("Gender") or "").lower()), emotion=MSP.get(code) if code else None,
            arousal=parse_float(row.get("EmoAct")), valence=parse_float(row.get("EmoVal")),
            dominance=parse_float(row.get("EmoDom")),
            split=SPLITS.get(split.lower(), split.lower()) or None,
            transcript=read_text(tfile).strip() if tfile.is_file() else None,
            extra={"emotion_code": code} if code else {}))
    return finish("msppodcast", base, records, skipped, language="en",
                  labels={"emotion": vocabulary(MSP.values())},
                  scales={a: list(SCALE) for a in ("valence", "arousal", "dominance")},
                  jobs=jobs, probe_audio=probe, strict=strict)
