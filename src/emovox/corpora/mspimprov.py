"""MSP-IMPROV (Busso et al. 2017): ``Evalution.txt`` (sic) with one summary line per clip,
``UTD-IMPROV-S01A-F01-R-FM01.avi; A; A:2.6; V:2.2; D:3.0; N:3.2``, and the audio
``Audio/session1/S01A/R/MSP-IMPROV-S01A-F01-R-FM01.<ext>``. The name holds the sentence and
its target emotion (S01A), the speaker (F01: the female actor of session 1) and the scenario
(R read, S improvised target sentence, T other improvised turns, P natural interaction).
A/V/D are on 1..5; the consensus class letter (A, H, S, N; O other, X no agreement -> None).
"""

from __future__ import annotations

import os
import re

from ..manifest import Utterance
from .common import CorpusError, Skipped, finish, index_audio, read_text, relative, require_dir, speaker_id
from .vocab import MSP, vocabulary

SCALE = [1.0, 5.0]
SCENARIOS = {"R": "read", "S": "target", "T": "other", "P": "natural"}
_LINE = re.compile(r"^(?:UTD|MSP)-IMPROV-(?P<name>S(?P<sentence>\d+)(?P<target>[A-Z])-(?P<spk>[FM])(?P<session>\d+)-"
                   r"(?P<scenario>[A-Z])-[A-Z]+\d+)\.\w+;\s*(?P<code>[A-Z]);\s*A:\s*(?P<a>[\d.]+);\s*"
                   r"V:\s*(?P<v>[\d.]+);\s*D:\s*(?P<d>[\d.]+)")


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import MSP-IMPROV from ``root`` (the folder holding ``Evalution.txt`` and ``Audio/``) -> Manifest."""
    base = require_dir(root, "mspimprov")
    evals = next((p for p in (base / "Evalution.txt", base / "Evaluation.txt") if p.is_file()), None)
    if evals is None:
        raise CorpusError(f"mspimprov: Evalution.txt not found in {base}")
    audio = index_audio(base)
    records, skipped = [], []
    for line in read_text(evals).splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        stem = f"MSP-IMPROV-{m['name']}"
        path = audio.get(stem)
        if path is None:
            skipped.append(Skipped(f"Audio/.../{stem}", f"file not found (listed in {evals.name})"))
            continue
        session = f"session{int(m['session'])}"
        records.append(Utterance(
            id=stem, audio=relative(path, base), speaker=speaker_id("mspimprov", f"{m['spk']}{m['session']}"),
            gender="female" if m["spk"] == "F" else "male", session=session,
            emotion=MSP.get(m["code"]), arousal=float(m["a"]), valence=float(m["v"]), dominance=float(m["d"]),
            extra={"emotion_code": m["code"], "sentence": m["sentence"], "target_emotion": MSP.get(m["target"]),
                   "scenario": SCENARIOS.get(m["scenario"], m["scenario"])}))
    if not records and not skipped:
        raise CorpusError(f"mspimprov: no clip lines found in {evals}")
    return finish("mspimprov", base, records, skipped, language="en",
                  labels={"emotion": vocabulary(MSP[c] for c in "NHSAO")},
                  scales={a: list(SCALE) for a in ("valence", "arousal", "dominance")},
                  jobs=jobs, probe_audio=probe, strict=strict)
