"""TESS, Toronto emotional speech set: ``<OAF|YAF>_<emotion>/<OAF|YAF>_<word>_<emotion>.<ext>``.
Two female speakers (older, younger) say "Say the word <word>" in seven emotions.

Folder spellings vary in the releases (``OAF_Fear``, ``OAF_Pleasant_surprise``,
``YAF_pleasant_surprised``); file names carry the emotion in lower case (``ps`` for pleasant
surprise). The file name decides; a file whose speaker or emotion contradicts a folder named
``<OAF|YAF>_<emotion>`` is skipped.
"""

from __future__ import annotations

import os

from ..manifest import Utterance
from .common import CorpusError, Skipped, find_audio, finish, relative, require_dir, speaker_id
from .vocab import TESS, vocabulary


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import TESS from ``root`` -> Manifest."""
    base = require_dir(root, "tess")
    records, skipped = [], []
    for path in find_audio(base):
        rel = relative(path, base)
        parts = path.stem.split("_")
        spk = parts[0].upper()
        emo = "_".join(parts[2:]).lower()
        if len(parts) < 3 or spk not in {"OAF", "YAF"} or emo not in TESS:
            skipped.append(Skipped(rel, "not a TESS file name (OAF|YAF_<word>_<emotion>)"))
            continue
        folder = path.parent.name.split("_", 1)
        if (len(folder) == 2 and folder[0].upper() in {"OAF", "YAF"} and folder[1].lower() in TESS
                and (folder[0].upper() != spk or TESS[folder[1].lower()] != TESS[emo])):
            skipped.append(Skipped(rel, f"file name says {spk} {TESS[emo]} but it lies in folder {path.parent.name}"))
            continue
        word = parts[1].lower()
        records.append(Utterance(
            id=path.stem, audio=rel, speaker=speaker_id("tess", spk), gender="female",
            transcript=f"Say the word {word}", emotion=TESS[emo],
            extra={"word": word, "emotion_code": emo, "age_group": "older" if spk == "OAF" else "younger"}))
    if not records and not skipped:
        raise CorpusError(f"tess: no files named like OAF_back_angry.<audio> under {base}")
    return finish("tess", base, records, skipped, language="en", labels={"emotion": vocabulary(TESS.values())},
                  jobs=jobs, probe_audio=probe, strict=strict)
