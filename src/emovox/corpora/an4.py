"""CMU AN4 (census / alphanumeric): ``wav/an4_clstk/<spk>/<id>.<ext>`` (train) and
``wav/an4test_clstk/<spk>/<id>.<ext>`` (test), transcripts in ``etc/an4_{train,test}.transcription``
(``<s> TEXT </s> (utt-id)`` or ``TEXT (utt-id)``). Speaker names start with their gender (f/m).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..manifest import Utterance
from .common import CorpusError, Skipped, finish, index_audio, read_text, relative, require_dir, speaker_id

_LINE = re.compile(r"^\s*(?:<s>)?\s*(?P<text>.*?)\s*(?:</s>)?\s*\((?P<id>[^()\s]+)\)\s*$")
SPLITS = {"train": "an4_clstk", "test": "an4test_clstk"}


def read_transcription(path: Path) -> dict[str, str]:
    """{utterance id: upper-case text}; CorpusError naming the line for malformed ones."""
    out = {}
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            raise CorpusError(f"{path}: line {n}: expected 'TEXT (utt-id)', got {line!r}")
        out[m["id"]] = " ".join(m["text"].split())
    return out


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import AN4 from ``root`` (the folder holding ``etc/`` and ``wav/``) -> Manifest."""
    base = require_dir(root, "an4")
    records, skipped = [], []
    for split, folder in SPLITS.items():
        trans = base / "etc" / f"an4_{split}.transcription"
        if not trans.is_file():
            continue
        audio = index_audio(base, Path("wav") / folder)
        for utt, text in read_transcription(trans).items():
            path = audio.get(utt)
            if path is None:
                skipped.append(Skipped(f"wav/{folder}/*/{utt}", f"file not found (listed in {trans.name})"))
                continue
            spk = path.parent.name
            records.append(Utterance(
                id=utt, audio=relative(path, base), speaker=speaker_id("an4", spk),
                gender={"f": "female", "m": "male"}.get(spk[:1].lower()), transcript=text, split=split))
    if not records and not skipped:
        raise CorpusError(f"an4: no etc/an4_train.transcription or etc/an4_test.transcription under {base}")
    return finish("an4", base, records, skipped, language="en", jobs=jobs, probe_audio=probe, strict=strict)
