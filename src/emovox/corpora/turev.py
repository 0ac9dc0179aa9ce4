"""TurEV-DB, Turkish Emotion-Voice Database (Canpolat et al. 2020):
``Sound Source/{Angry,Calm,Happy,Sad}/{SPK}_{code}_{word}.<ext>``.

Codes kz (kızgın) angry, sk (sakin) calm, mt (mutlu) happy, hl (hüzünlü) sad; the code must
agree with the folder (when the folder is one of the four). Each clip is one word, spelled
in ASCII as in the file name (``ogul`` for oğul); it is the transcript and ``extra["word"]``.
A take number glued to the word (``7895_hl_ogul1``) is dropped from the word. Speakers'
genders are not released.
"""

from __future__ import annotations

import os
import re

from ..manifest import Utterance
from .common import CorpusError, Skipped, find_audio, finish, relative, require_dir, speaker_id
from .vocab import TUREV, vocabulary

SOURCE = "Sound Source"
FOLDERS = {"angry": "kz", "calm": "sk", "happy": "mt", "sad": "hl"}
"""The release's folder names (lower-cased) and the code of the files they hold."""
_NAME = re.compile(r"^(?P<speaker>\d+)_(?P<code>[A-Za-z]{2})_(?P<word>[^\W\d_]+)(?P<take>\d*)$")


def parse_name(stem: str) -> dict[str, str]:
    """``1157_kz_acik`` -> speaker, code (lower case), word and take (ValueError if malformed)."""
    m = _NAME.match(stem)
    if not m:
        raise ValueError(f"not a TurEV-DB file name (<speaker>_<code>_<word>): {stem}")
    f = m.groupdict()
    f["code"] = f["code"].lower()
    if f["code"] not in TUREV:
        raise ValueError(f"unknown emotion code {f['code']!r} in TurEV-DB file name {stem} "
                         f"(known: {', '.join(sorted(TUREV))})")
    return f


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import TurEV-DB from ``root`` (the folder holding ``Sound Source/``, or that folder itself)
    -> Manifest."""
    base = require_dir(root, "turev")
    records, skipped = [], []
    for path in find_audio(base):
        rel = relative(path, base)
        try:
            f = parse_name(path.stem)
            folder = path.parent.name.lower()
            if folder in FOLDERS and FOLDERS[folder] != f["code"]:
                raise ValueError(f"code {f['code']!r} ({TUREV[f['code']]}) but it lies in folder {path.parent.name}")
        except ValueError as e:
            skipped.append(Skipped(rel, str(e)))
            continue
        word = f["word"].lower()
        extra = {"word": word, "emotion_code": f["code"]}
        if f["take"]:
            extra["take"] = int(f["take"])
        records.append(Utterance(
            id=path.stem, audio=rel, speaker=speaker_id("turev", f["speaker"]), transcript=word,
            emotion=TUREV[f["code"]], extra=extra))
    if not records and not skipped:
        raise CorpusError(f"turev: no files named like '{SOURCE}/Angry/1157_kz_acik.<audio>' under {base}")
    return finish("turev", base, records, skipped, language="tr", labels={"emotion": vocabulary(TUREV.values())},
                  jobs=jobs, probe_audio=probe, strict=strict)
