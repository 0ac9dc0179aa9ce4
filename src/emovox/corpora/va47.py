"""va47: 47 clips ``NN.<ext>`` with continuous ``arousal.csv`` and ``valence.csv`` (``file,value``
lines without a header, values in about -1..1; pyAudioAnalysis examples; 47 rows each). Speakers unknown, so
use the ``loo`` split protocol. A clip missing from one table keeps that attribute None.
The clips are German: Whisper base transcribes them as EmoDB's sentences ("In sieben Stunden
wird es soweit sein."), so ``language`` is "de".
"""

from __future__ import annotations

import os
from pathlib import Path

from ..manifest import Utterance
from .common import CorpusError, Skipped, find_with_stem, finish, read_text, relative, require_dir

SCALE = [-1.0, 1.0]


def read_values(path: Path) -> dict[str, float]:
    """``file,value`` lines -> {file stem: value}; a header line or a malformed line raises."""
    values = {}
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        name, _, value = line.partition(",")
        try:
            values[Path(name.strip()).stem] = float(value)
        except ValueError:
            if n == 1:  # tolerate a header
                continue
            raise CorpusError(f"{path}: line {n}: expected 'file,value', got {line!r}") from None
    return values


def prepare(root: str | os.PathLike, *, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import va47 from ``root`` (the folder holding the clips and the two csv files) -> Manifest."""
    base = require_dir(root, "va47")
    tables = {a: read_values(base / f"{a}.csv") for a in ("arousal", "valence") if (base / f"{a}.csv").is_file()}
    if not tables:
        raise CorpusError(f"va47: neither arousal.csv nor valence.csv found in {base}")
    records, skipped = [], []
    for stem in sorted(set().union(*tables.values())):
        path = find_with_stem(base, stem)
        if path is None:
            skipped.append(Skipped(stem, "file not found (listed in the csv files)"))
            continue
        records.append(Utterance(id=stem, audio=relative(path, base), arousal=tables.get("arousal", {}).get(stem),
                                 valence=tables.get("valence", {}).get(stem)))
    return finish("va47", base, records, skipped, language="de",
                  scales={a: list(SCALE) for a in tables}, jobs=jobs, probe_audio=probe, strict=strict)
