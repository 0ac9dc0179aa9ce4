"""RAVDESS, speech part (Livingstone & Russo 2018): ``Actor_XX/03-01-EE-II-SS-RR-AA.<ext>``.

Fields: modality, vocal channel, emotion EE, intensity II (01 normal, 02 strong), statement SS,
repetition RR, actor AA (odd = male). Song files (vocal channel 02) are kept only with
``include_song=True``; non-audio-only modalities are left out.
"""

from __future__ import annotations

import os

from ..manifest import Utterance
from .common import CorpusError, Skipped, find_audio, finish, relative, require_dir, speaker_id
from .vocab import RAVDESS, vocabulary

STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
INTENSITIES = {"01": "normal", "02": "strong"}


def parse_name(stem: str) -> dict[str, str]:
    """``03-01-05-02-01-01-12`` -> its seven named fields (ValueError if malformed)."""
    parts = stem.split("-")
    if len(parts) != 7 or not all(len(p) == 2 and p.isdigit() for p in parts):
        raise ValueError(f"not a RAVDESS file name (expected 7 two-digit fields): {stem}")
    keys = ("modality", "channel", "emotion", "intensity", "statement", "repetition", "actor")
    return dict(zip(keys, parts))


def prepare(root: str | os.PathLike, *, include_song: bool = False, jobs: int = 1, probe: bool = True,
            strict: bool = False):
    """Import RAVDESS from ``root`` (the folder holding ``Actor_XX``) -> Manifest."""
    base = require_dir(root, "ravdess")
    records, skipped = [], []
    for path in find_audio(base):
        rel = relative(path, base)
        try:
            f = parse_name(path.stem)
            if f["emotion"] not in RAVDESS or f["intensity"] not in INTENSITIES or f["statement"] not in STATEMENTS:
                raise ValueError(f"unknown code in RAVDESS file name {path.stem}")
        except ValueError as e:
            skipped.append(Skipped(rel, str(e)))
            continue
        if f["modality"] != "03" or (f["channel"] == "02" and not include_song):
            continue
        actor = int(f["actor"])
        records.append(Utterance(
            id=path.stem, audio=rel, speaker=speaker_id("ravdess", f["actor"]),
            gender="male" if actor % 2 else "female", transcript=STATEMENTS[f["statement"]],
            emotion=RAVDESS[f["emotion"]],
            extra={"intensity": INTENSITIES[f["intensity"]], "statement": f["statement"],
                   "repetition": int(f["repetition"]), "vocal_channel": "speech" if f["channel"] == "01" else "song",
                   "emotion_code": f["emotion"]}))
    if not records and not skipped:
        raise CorpusError(f"ravdess: no files named like 03-01-EE-II-SS-RR-AA.<audio> under {base}")
    return finish("ravdess", base, records, skipped, language="en",
                  labels={"emotion": vocabulary(RAVDESS.values()), "intensity": list(INTENSITIES.values())},
                  jobs=jobs, probe_audio=probe, strict=strict)
