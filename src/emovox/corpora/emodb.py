"""Berlin EmoDB (Burkhardt et al. 2005): ``wav/SSTTTEV.<ext>``: speaker SS, text TTT, emotion
letter E (German initial), version V. Ten speakers; the ten sentences are listed in :data:`TEXTS`.
"""

from __future__ import annotations

import os
import re

from ..manifest import Utterance
from .common import CorpusError, Skipped, find_audio, finish, relative, require_dir, speaker_id
from .vocab import EMODB, vocabulary

SPEAKERS = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male", "12": "male",
            "13": "female", "14": "female", "15": "male", "16": "female"}
TEXTS = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
_NAME = re.compile(r"^(?P<speaker>\d\d)(?P<text>[ab]\d\d)(?P<emotion>[A-Z])(?P<version>[a-z])$")


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import EmoDB from ``root`` (the folder holding ``wav/``, or ``wav/`` itself) -> Manifest."""
    base = require_dir(root, "emodb")
    records, skipped = [], []
    for path in find_audio(base):
        m = _NAME.match(path.stem)
        rel = relative(path, base)
        if not m or m["emotion"] not in EMODB:
            skipped.append(Skipped(rel, "not an EmoDB file name (SSTTTEV: speaker, text, emotion letter, version)"))
            continue
        records.append(Utterance(
            id=path.stem, audio=rel, speaker=speaker_id("emodb", m["speaker"]), gender=SPEAKERS.get(m["speaker"]),
            transcript=TEXTS.get(m["text"]), emotion=EMODB[m["emotion"]],
            extra={"text_id": m["text"], "version": m["version"], "emotion_code": m["emotion"]}))
    if not records and not skipped:
        raise CorpusError(f"emodb: no files named like 03a01Fa.<audio> under {base}")
    return finish("emodb", base, records, skipped, language="de",
                  labels={"emotion": vocabulary(EMODB.values())}, jobs=jobs, probe_audio=probe, strict=strict)
