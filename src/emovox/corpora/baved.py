"""BAVED, Basic Arabic Vocal Emotions: ``<word>/<speaker>-<sex>-<age>-<word>-<level>-<record>.<ext>``.

``level`` 0/1/2 = low/neutral/high (arousal-like, ordinal) goes to ``extra["level"]``; the word
id comes from the file name (one file sits in another word's folder).
"""

from __future__ import annotations

import os

from ..manifest import Utterance
from .common import CorpusError, Skipped, find_audio, finish, relative, require_dir, speaker_id
from .vocab import LEVELS

WORDS = {"0": "اعجبني", "1": "لم يعجبني", "2": "هذا", "3": "الفيلم", "4": "رائع", "5": "مقول", "6": "سيئ"}
"""The seven words (0 "I liked", 1 "I did not like", 2 "this", 3 "the film", 4 "wonderful",
5 "said", 6 "bad")."""


def parse_name(stem: str) -> dict[str, str]:
    parts = stem.split("-")
    if len(parts) != 6 or not all(p.isdigit() for i, p in enumerate(parts) if i != 1):
        raise ValueError(f"not a BAVED file name (speaker-sex-age-word-level-record): {stem}")
    keys = ("speaker", "sex", "age", "word", "level", "record")
    f = dict(zip(keys, parts))
    if f["sex"].lower() not in {"m", "f"} or f["word"] not in WORDS or f["level"] not in {"0", "1", "2"}:
        raise ValueError(f"unknown sex, word or level code in BAVED file name {stem}")
    return f


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import BAVED from ``root`` (the folder holding the word folders 0..6) -> Manifest."""
    base = require_dir(root, "baved")
    records, skipped = [], []
    for path in find_audio(base):
        rel = relative(path, base)
        try:
            f = parse_name(path.stem)
        except ValueError as e:
            skipped.append(Skipped(rel, str(e)))
            continue
        records.append(Utterance(
            id=path.stem, audio=rel, speaker=speaker_id("baved", f["speaker"]),
            gender="male" if f["sex"].lower() == "m" else "female", transcript=WORDS[f["word"]],
            extra={"level": LEVELS[int(f["level"])], "word": int(f["word"]), "age": int(f["age"]),
                   "record": int(f["record"])}))
    if not records and not skipped:
        raise CorpusError(f"baved: no files named like <speaker>-<sex>-<age>-<word>-<level>-<record>.<audio> under {base}")
    return finish("baved", base, records, skipped, language="ar", labels={"level": list(LEVELS)},
                  jobs=jobs, probe_audio=probe, strict=strict)
