"""Any audio files under a folder, for unlabelled audio: one utterance per file, its id the path
relative to the root without the extension, its speaker the parent folder's name (none for files
directly in the root). Bad files are skipped and reported like every importer's.
"""

from __future__ import annotations

import os

from ..manifest import Utterance
from .common import CorpusError, finish, find_audio, relative, require_dir, speaker_id


def prepare(root: str | os.PathLike, *, corpus: str = "folder", speaker_from_folder: bool = True,
            language: str | None = None, jobs: int = 1, probe: bool = True, strict: bool = False):
    """Import every audio file under ``root`` -> Manifest named ``corpus``."""
    base = require_dir(root, corpus)
    records = []
    for path in find_audio(base):
        rel = relative(path, base)
        spk = path.parent.name if speaker_from_folder and path.parent != base else None
        records.append(Utterance(id=rel.rsplit(".", 1)[0], audio=rel, speaker=speaker_id(corpus, spk)))
    if not records:
        raise CorpusError(f"{corpus}: no audio files under {base}")
    return finish(corpus, base, records, language=language, jobs=jobs, probe_audio=probe, strict=strict)
