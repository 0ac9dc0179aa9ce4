"""LibriSpeech: ``<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` (``ID TEXT`` lines)
next to ``<ID>.<ext>``. ``split`` is the subset name (train-clean-100, dev-clean, test-other, ...),
which ``--protocol official`` maps to train / validation / test. ``SPEAKERS.TXT`` gives genders.
``root`` may be the ``LibriSpeech`` folder or a single subset folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..manifest import Utterance
from .common import CorpusError, Skipped, find_with_stem, finish, read_text, relative, require_dir, speaker_id


def read_speakers(path: Path) -> dict[str, str]:
    """SPEAKERS.TXT (``ID | SEX | SUBSET | MINUTES | NAME``, ``;`` comments) -> {id: gender}."""
    out = {}
    for line in read_text(path).splitlines():
        if line.startswith(";") or "|" not in line:
            continue
        cols = [c.strip() for c in line.split("|")]
        out[cols[0]] = {"F": "female", "M": "male"}.get(cols[1].upper()) if len(cols) > 1 else None
    return out


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import LibriSpeech from ``root`` -> Manifest."""
    base = require_dir(root, "librispeech")
    speakers_txt = next((p for p in (base / "SPEAKERS.TXT", base.parent / "SPEAKERS.TXT") if p.is_file()), None)
    genders = read_speakers(speakers_txt) if speakers_txt else {}
    records, skipped = [], []
    for trans in sorted(base.rglob("*.trans.txt")):
        rel_folder = trans.parent.relative_to(base)
        # <subset>/<speaker>/<chapter>: the subset is the folder two levels above the chapter
        subset = rel_folder.parts[-3] if len(rel_folder.parts) >= 3 else base.name
        for n, line in enumerate(read_text(trans).splitlines(), start=1):
            if not line.strip():
                continue
            utt, _, text = line.strip().partition(" ")
            path = find_with_stem(trans.parent, utt)
            if path is None:
                skipped.append(Skipped(f"{rel_folder.as_posix()}/{utt}", f"file not found (listed in {trans.name})"))
                continue
            spk = utt.split("-")[0]
            records.append(Utterance(id=utt, audio=relative(path, base), speaker=speaker_id("librispeech", spk),
                                     gender=genders.get(spk), transcript=text.strip(), split=subset,
                                     extra={"chapter": utt.split("-")[1]} if "-" in utt else {}))
    if not records and not skipped:
        raise CorpusError(f"librispeech: no *.trans.txt files under {base}")
    return finish("librispeech", base, records, skipped, language="en", jobs=jobs, probe_audio=probe, strict=strict)
