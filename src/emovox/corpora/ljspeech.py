"""LJSpeech: ``metadata.csv`` (``id|raw text|normalised text``) and ``wavs/<id>.<ext>``; one
female reader. The transcript is the normalised text (numbers spelled out); the raw text goes
to ``extra["raw_text"]``. ``root`` may be the ``LJSpeech-1.1`` folder or its parent.
"""

from __future__ import annotations

import os

from ..manifest import Utterance
from .common import CorpusError, Skipped, finish, index_audio, read_text, relative, require_dir


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import LJSpeech from ``root`` -> Manifest."""
    base = require_dir(root, "ljspeech")
    if not (base / "metadata.csv").is_file() and (base / "LJSpeech-1.1" / "metadata.csv").is_file():
        base = base / "LJSpeech-1.1"
    meta = base / "metadata.csv"
    if not meta.is_file():
        raise CorpusError(f"ljspeech: metadata.csv not found in {base}")
    audio = index_audio(base, "wavs") or index_audio(base)
    records, skipped = [], []
    for n, line in enumerate(read_text(meta).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) < 2:
            raise CorpusError(f"{meta}: line {n}: expected 'id|raw text|normalised text', got {line!r}")
        utt, raw = parts[0].strip(), parts[1].strip()
        text = parts[2].strip() if len(parts) > 2 and parts[2].strip() else raw
        path = audio.get(utt)
        if path is None:
            skipped.append(Skipped(f"wavs/{utt}", "file not found (listed in metadata.csv)"))
            continue
        records.append(Utterance(id=utt, audio=relative(path, base), speaker="ljspeech-LJ", gender="female",
                                 transcript=text, extra={"raw_text": raw} if raw != text else {}))
    return finish("ljspeech", base, records, skipped, language="en", jobs=jobs, probe_audio=probe, strict=strict)
