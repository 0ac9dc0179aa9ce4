"""ASED v1, Amharic Speech Emotion Dataset (Retta et al. 2022): ``NNEmotion/xn-yy-aa-gg-bb.<ext>``
in the folders ``01Neutral 02Fearful 03Happy 04Sad 05Angry``.

``x`` is the emotion letter (n f h s a) and ``n`` its folder's number, ``yy`` the sentence,
``aa`` the repetition, ``gg`` the gender (01 female, 02 male), ``bb`` the speaker (01..65).
The emotion comes from the file name and must agree with the folder (when the folder is named
``NNEmotion``); a file that contradicts its folder is skipped. Gender is a speaker's: where a
few of a speaker's files carry the other gender code, the speaker's majority wins (the file's
own code stays in ``extra["gender_code"]``). No transcripts are released.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter, defaultdict

from ..manifest import Utterance
from .common import CorpusError, Skipped, find_audio, finish, relative, require_dir, speaker_id
from .vocab import ASED, normalize_emotion, vocabulary

log = logging.getLogger("emovox.corpora")

FOLDERS = {"n": "01", "f": "02", "h": "03", "s": "04", "a": "05"}
"""Each emotion letter's folder number (also the digit after the letter in a file name)."""
GENDERS = {"01": "female", "02": "male"}
_NAME = re.compile(r"^(?P<emotion>[A-Za-z])(?P<folder>\d)-(?P<sentence>\d\d)-(?P<repetition>\d\d)"
                   r"-(?P<gender>\d\d)-(?P<speaker>\d\d)$")
_FOLDER = re.compile(r"^(?P<number>\d\d)(?P<word>[A-Za-z]+)$")


def parse_name(stem: str) -> dict[str, str]:
    """``a5-03-01-02-50`` -> emotion letter (lower case), folder digit, sentence, repetition,
    gender and speaker codes (ValueError if malformed or a code is unknown)."""
    m = _NAME.match(stem)
    if not m:
        raise ValueError(f"not an ASED file name (xn-yy-aa-gg-bb: emotion letter and folder number, "
                         f"sentence, repetition, gender, speaker): {stem}")
    f = m.groupdict()
    f["emotion"] = f["emotion"].lower()
    if f["emotion"] not in ASED:
        raise ValueError(f"unknown emotion letter {f['emotion']!r} in ASED file name {stem} (known: n f h s a)")
    if FOLDERS[f["emotion"]][1] != f["folder"]:
        raise ValueError(f"ASED file name {stem}: emotion letter {f['emotion']!r} goes with folder number "
                         f"{FOLDERS[f['emotion']][1]}, not {f['folder']}")
    if f["gender"] not in GENDERS:
        raise ValueError(f"unknown gender code {f['gender']!r} in ASED file name {stem} (01 female, 02 male)")
    return f


def check_folder(folder: str, letter: str) -> None:
    """ValueError when a folder named like ``NNEmotion`` is not the one of the emotion ``letter``."""
    m = _FOLDER.match(folder)
    if not m:
        return  # files outside the released folders: the file name alone decides
    if m["number"] != FOLDERS[letter] or normalize_emotion(m["word"]) != ASED[letter]:
        raise ValueError(f"file name says {ASED[letter]} ({letter}) but it lies in folder {folder}")


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import ASED from ``root`` (the folder holding ``01Neutral`` .. ``05Angry``) -> Manifest."""
    base = require_dir(root, "ased")
    parsed, skipped = [], []
    for path in find_audio(base):
        rel = relative(path, base)
        try:
            f = parse_name(path.stem)
            check_folder(path.parent.name, f["emotion"])
        except ValueError as e:
            skipped.append(Skipped(rel, str(e)))
            continue
        parsed.append((path, rel, f))
    if not parsed and not skipped:
        raise CorpusError(f"ased: no files named like 01Neutral/n1-01-01-01-01.<audio> under {base}")

    codes: dict[str, Counter] = defaultdict(Counter)
    for _, _, f in parsed:
        codes[f["speaker"]][f["gender"]] += 1
    gender = {}
    for spk, c in codes.items():
        (top, n), *rest = c.most_common()
        if rest and rest[0][1] == n:
            continue  # a tie: each file keeps its own code
        gender[spk] = GENDERS[top]
        if rest:
            log.warning("ased: speaker %s has %d file(s) with gender code %s and %d with %s; taking %s",
                        spk, n, top, sum(k for _, k in rest), "/".join(g for g, _ in rest), GENDERS[top])

    records = [Utterance(
        id=path.stem, audio=rel, speaker=speaker_id("ased", f["speaker"]),
        gender=gender.get(f["speaker"], GENDERS[f["gender"]]), emotion=ASED[f["emotion"]],
        extra={"sentence": int(f["sentence"]), "repetition": int(f["repetition"]),
               "emotion_code": f["emotion"], "gender_code": f["gender"]})
        for path, rel, f in parsed]
    return finish("ased", base, records, skipped, language="am", labels={"emotion": vocabulary(ASED.values())},
                  jobs=jobs, probe_audio=probe, strict=strict)
