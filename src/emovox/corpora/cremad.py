"""CREMA-D (Cao et al. 2014): ``AudioWAV/<actor>_<sentence>_<emotion>_<level>.<ext>``; 91 actors,
12 sentences, six emotions, intensity LO/MD/HI/XX (unspecified). ``VideoDemographics.csv``
(ActorID, Sex, Age, ...) gives gender when present; ``tabulatedVotes.csv`` (fileName, emoVote,
agreement) adds the crowd's perceived emotion as ``extra["perceived"]`` (None on ties) and
``extra["agreement"]``; ``label="perceived"`` makes it the emotion label instead of the acted one.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..manifest import Utterance
from .common import CorpusError, Skipped, find_audio, finish, parse_float, read_csv, relative, require_dir, speaker_id
from .vocab import CREMAD, vocabulary

SENTENCES = {"IEO": "It's eleven o'clock", "TIE": "That is exactly what happened",
             "IOM": "I'm on my way to the meeting", "IWW": "I wonder what this is about",
             "TAI": "The airplane is almost full", "MTI": "Maybe tomorrow it will be cold",
             "IWL": "I would like a new alarm clock", "ITH": "I think I have a doctor's appointment",
             "DFA": "Don't forget a jacket", "ITS": "I think I've seen this before",
             "TSI": "The surface is slick", "WSI": "We'll stop in a couple of minutes"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
_VOTES = {code[0]: label for code, label in CREMAD.items()}  # N H S A F D


def _find(base: Path, name: str) -> Path | None:
    for p in (base / name, base / "processedResults" / name):
        if p.is_file():
            return p
    return None


def prepare(root: str | os.PathLike, *, label: str = "acted", jobs: int = 1, probe: bool = True,
            strict: bool = False):
    """Import CREMA-D from ``root`` (the repository folder holding ``AudioWAV/``) -> Manifest."""
    if label not in {"acted", "perceived"}:
        raise ValueError(f"cremad: label must be 'acted' or 'perceived', got {label!r}")
    base = require_dir(root, "cremad")
    demo = _find(base, "VideoDemographics.csv")
    sexes = {r.get("ActorID"): r.get("Sex", "").lower() or None for r in read_csv(demo)} if demo else {}
    votes_file = _find(base, "tabulatedVotes.csv")
    votes = {Path(r.get("fileName", "")).stem: r for r in read_csv(votes_file)} if votes_file else {}
    records, skipped = [], []
    for path in find_audio(base):
        rel = relative(path, base)
        parts = path.stem.split("_")
        if len(parts) != 4 or parts[2] not in CREMAD or parts[3] not in LEVELS:
            skipped.append(Skipped(rel, "not a CREMA-D file name (actor_sentence_emotion_level)"))
            continue
        actor, sentence, emo, level = parts
        extra = {"sentence": sentence, "level": LEVELS[level], "emotion_code": emo}
        acted = CREMAD[emo]
        if path.stem in votes:
            v = votes[path.stem]
            vote = v.get("emoVote", "")
            extra["perceived"] = _VOTES.get(vote) if ":" not in vote else None
            extra["agreement"] = parse_float(v.get("agreement"))
        emotion = acted if label == "acted" else extra.get("perceived")
        records.append(Utterance(
            id=path.stem, audio=rel, speaker=speaker_id("cremad", actor), gender=sexes.get(actor),
            transcript=SENTENCES.get(sentence), emotion=emotion, extra=extra))
    if not records and not skipped:
        raise CorpusError(f"cremad: no files named like 1001_DFA_ANG_XX.<audio> under {base}")
    labels = {"emotion": vocabulary(CREMAD.values()), "level": list(LEVELS.values())}
    if votes:
        labels["perceived"] = vocabulary(CREMAD.values())
    return finish("cremad", base, records, skipped, language="en", labels=labels, jobs=jobs,
                  probe_audio=probe, strict=strict)
