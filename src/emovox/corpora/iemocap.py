"""IEMOCAP (Busso et al. 2008): ``Session1..5``. Per dialog: ``dialog/EmoEvaluation/<dialog>.txt``
(``[start - end]  <utt>  <code>  [V, A, D]``), ``dialog/transcriptions/<dialog>.txt``
(``<utt> [start-end]: text``) and ``sentences/wav/<dialog>/<utt>.<ext>``.

``classes=4`` (default) keeps neutral, happy (excited merged in), sad, angry; ``classes=6`` keeps
neutral, happy, sad, angry, excited, frustrated; ``classes=None`` keeps every utterance with all
labels (``xxx``, no majority, as None). V/A/D are on the corpus' 1..5 scale. One speaker per
session and gender (``iemocap-Ses01F``); ``session`` enables leave-one-session-out (``official``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..manifest import Utterance
from .common import CorpusError, Skipped, find_with_stem, finish, read_text, require_dir, relative, speaker_id
from .vocab import EMOTIONS, IEMOCAP, IEMOCAP_VIEWS

SCALE = [1.0, 5.0]
_EVAL = re.compile(r"^\[(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\]\s+(?P<utt>\S+)\s+(?P<code>\w+)\s+"
                   r"\[(?P<v>[\d.]+),\s*(?P<a>[\d.]+),\s*(?P<d>[\d.]+)\]")
_TRANS = re.compile(r"^(?P<utt>Ses\S+)\s+\[[^\]]*\]:\s*(?P<text>.*)$")


def read_evaluation(path: Path) -> list[dict[str, str]]:
    """The summary lines of one EmoEvaluation file (one per utterance)."""
    return [m.groupdict() for line in read_text(path).splitlines() if (m := _EVAL.match(line.strip()))]


def read_transcripts(path: Path) -> dict[str, str]:
    return {m["utt"]: m["text"].strip() for line in read_text(path).splitlines() if (m := _TRANS.match(line.strip()))}


def prepare(root: str | os.PathLike, *, classes: int | None = 4, jobs: int = 1, probe: bool = True,
            strict: bool = False):
    """Import IEMOCAP from ``root`` (the folder holding ``Session1`` .. ``Session5``) -> Manifest."""
    if classes not in (4, 6, None):
        raise ValueError(f"iemocap: classes must be 4, 6 or None, got {classes!r}")
    view = IEMOCAP_VIEWS[f"{classes}class"] if classes else None
    base = require_dir(root, "iemocap")
    sessions = sorted(p for p in base.glob("Session*") if p.is_dir())
    if not sessions:  # e.g. the folder holding IEMOCAP_full_release/
        sessions = sorted(p for p in base.glob("*/Session*") if p.is_dir())
        base = sessions[0].parent if sessions else base
    if not sessions:
        raise CorpusError(f"iemocap: no Session1..5 folders under {base}")
    records, skipped = [], []
    for session in sessions:
        for ev in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            dialog = ev.stem
            tr = session / "dialog" / "transcriptions" / f"{dialog}.txt"
            texts = read_transcripts(tr) if tr.is_file() else {}
            for row in read_evaluation(ev):
                emotion = IEMOCAP.get(row["code"])
                if view is not None:
                    if emotion not in view:
                        continue
                    emotion = view[emotion]
                path = find_with_stem(session / "sentences" / "wav" / dialog, row["utt"])
                if path is None:
                    skipped.append(Skipped(f"{session.name}/sentences/wav/{dialog}/{row['utt']}",
                                           f"file not found (listed in {ev.name})"))
                    continue
                utt = row["utt"]
                letter = utt.rsplit("_", 1)[-1][:1].upper()
                records.append(Utterance(
                    id=utt, audio=relative(path, base), speaker=speaker_id("iemocap", utt[:5] + letter),
                    gender={"F": "female", "M": "male"}.get(letter), session=session.name,
                    transcript=texts.get(utt), emotion=emotion, valence=float(row["v"]),
                    arousal=float(row["a"]), dominance=float(row["d"]),
                    extra={"emotion_code": row["code"], "dialog": dialog,
                           "improvised": "_impro" in dialog, "turn_start": float(row["start"]),
                           "turn_end": float(row["end"])}))
    vocab = [e for e in EMOTIONS if e in set(view.values())] if view else [e for e in EMOTIONS if e in IEMOCAP.values()]
    return finish("iemocap", base, records, skipped, language="en", labels={"emotion": vocab},
                  scales={a: list(SCALE) for a in ("valence", "arousal", "dominance")},
                  meta={"classes": classes}, jobs=jobs, probe_audio=probe, strict=strict)
