"""What every importer shares: finding audio of any extension, probing it in parallel, and
turning records into a checked :class:`~emovox.manifest.Manifest`.

Importers never stop at a bad file. Each unusable file becomes a :class:`Skipped` entry
(path and cause), listed in ``manifest.meta["skipped"]`` and reported by ``emovox corpus import``;
``strict=True`` turns any of them into a :class:`CorpusError`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..audio import AUDIO_EXTENSIONS, AudioError, AudioInfo, check_audio
from ..manifest import Manifest, Utterance
from ..utils import progress

log = logging.getLogger("emovox.corpora")


class CorpusError(ValueError):
    """A corpus folder that cannot be imported (layout not found, or bad files under strict)."""


@dataclass(frozen=True)
class Skipped:
    """A file left out of a manifest: ``path`` (relative to the root where possible) and why."""

    path: str
    cause: str

    def __str__(self) -> str:
        return f"{self.path}: {self.cause}"


# ----------------------------------------------------------------------------- finding files


def is_audio(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def require_dir(root: str | os.PathLike, corpus: str, hint: str = "") -> Path:
    """``root`` as a Path; CorpusError naming the corpus when it is not a folder."""
    p = Path(root)
    if not p.is_dir():
        raise CorpusError(f"{corpus}: corpus root {p} is not a folder{'; ' + hint if hint else ''}")
    return p


def find_audio(root: Path, under: str | os.PathLike | None = None) -> list[Path]:
    """Every audio file below ``root / under`` (any extension of :data:`AUDIO_EXTENSIONS`),
    sorted, hidden files skipped."""
    base = root / under if under else root
    if not base.is_dir():
        return []
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath, f) for f in filenames if not f.startswith(".") and is_audio(f))
    return sorted(found)


def index_audio(root: Path, under: str | os.PathLike | None = None) -> dict[str, Path]:
    """Map each audio file's stem to its path (below ``root / under``). Where one stem has files
    of several extensions, the first in :data:`AUDIO_EXTENSIONS` order wins."""
    rank = {e: i for i, e in enumerate(AUDIO_EXTENSIONS)}
    index: dict[str, Path] = {}
    for p in find_audio(root, under):
        old = index.get(p.stem)
        if old is None or rank[p.suffix.lower()] < rank[old.suffix.lower()]:
            index[p.stem] = p
    return index


def find_with_stem(folder: Path, stem: str) -> Path | None:
    """``folder/stem.<any audio extension>`` (preferred extension first), or None."""
    for ext in AUDIO_EXTENSIONS:
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string (absolute when outside the root)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def speaker_id(corpus: str, raw: object) -> str | None:
    """A corpus-prefixed speaker id (``ravdess-01``) so that ids never collide across corpora."""
    if raw is None or str(raw).strip() == "" or str(raw).lower() in {"unknown", "nan", "none"}:
        return None
    return f"{corpus}-{str(raw).strip()}"


def read_text(path: Path) -> str:
    """A text file as UTF-8 (falling back to Latin-1, as some older corpora ship)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_csv(path: Path, delimiter: str | None = None) -> list[dict[str, str]]:
    """Rows of a CSV/TSV file with a header line; the delimiter is sniffed when not given."""
    text = read_text(path)
    if delimiter is None:
        first = text.splitlines()[0] if text else ""
        delimiter = max([",", "\t", ";", "|"], key=first.count)
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items()}
            for row in csv.DictReader(io.StringIO(text), delimiter=delimiter)]


def parse_float(value: str | None) -> float | None:
    """A number from a table cell; None for blanks and non-numbers."""
    if value is None or str(value).strip() == "":
        return None
    try:
        return float(value)
    except ValueError:
        return None


# ----------------------------------------------------------------------------- probing


def probe(root: Path, records: Sequence[Utterance], jobs: int = 1,
          min_duration: float = 0.0) -> tuple[list[Utterance], list[Skipped]]:
    """Decode every record's audio (block by block, ``jobs`` threads) to prove it usable and
    fill ``duration`` (s) and ``sample_rate``. Returns the usable records, in order, and the
    skipped files with their causes. Each file is probed once however many records share it."""
    paths = list(dict.fromkeys(r.audio for r in records))

    def one(rel: str) -> AudioInfo | Skipped:
        try:
            return check_audio(root / rel, min_duration=min_duration)
        except AudioError as e:
            return Skipped(rel, e.cause)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = dict(zip(paths, progress(pool.map(one, paths), total=len(paths), desc="probing audio",
                                           unit="file")))
    kept, skipped = [], [r for r in results.values() if isinstance(r, Skipped)]
    for r in records:
        hdr = results[r.audio]
        if isinstance(hdr, Skipped):
            continue
        r.sample_rate = hdr.sample_rate
        if r.start is not None or r.end is not None:
            end = hdr.duration if r.end is None else min(r.end, hdr.duration)
            r.duration = round(end - (r.start or 0.0), 4)
            if r.duration <= 0:
                skipped.append(Skipped(r.audio, f"segment {r.start}..{r.end} s of {r.id} lies past the end "
                                                f"of the audio ({hdr.duration:.3f} s)"))
                continue
        else:
            r.duration = round(hdr.duration, 4)
        kept.append(r)
    return kept, skipped


def _unique(records: list[Utterance]) -> tuple[list[Utterance], list[Skipped]]:
    """Keep the first record of each id (e.g. ``x.wav`` and ``x.flac`` side by side)."""
    first: dict[str, Utterance] = {}
    dupes = []
    for r in records:
        if r.id in first:
            dupes.append(Skipped(r.audio, f"duplicate id {r.id!r} (already imported from {first[r.id].audio})"))
        else:
            first[r.id] = r
    return list(first.values()), dupes


def finish(corpus: str, root: Path, records: Iterable[Utterance], skipped: Iterable[Skipped] = (), *,
           language: str | None = None, labels: dict[str, list[str]] | None = None,
           scales: dict[str, list[float]] | None = None, meta: dict | None = None,
           jobs: int = 1, probe_audio: bool = True, strict: bool = False,
           min_duration: float = 0.0) -> Manifest:
    """Probe the audio, set the language, check the result and build the manifest.

    Raises CorpusError when no usable record is left, or, with ``strict``, when any file was
    skipped; otherwise skipped files go to ``meta["skipped"]`` and a warning."""
    records = list(records)
    skipped = list(skipped)
    if not records and not skipped:
        raise CorpusError(f"{corpus}: no utterances found under {root}")
    records, dupes = _unique(records)
    skipped.extend(dupes)
    if probe_audio:
        records, bad = probe(root, records, jobs=jobs, min_duration=min_duration)
        skipped.extend(bad)
    for r in records:
        if r.language is None:
            r.language = language
    if skipped:
        if strict:
            raise CorpusError(f"{corpus}: {len(skipped)} bad file(s) under {root} (strict mode):\n  "
                              + "\n  ".join(map(str, skipped)))
        log.warning("%s: %d file(s) skipped (listed in manifest.meta['skipped']), first: %s",
                    corpus, len(skipped), skipped[0])
    if not records:
        raise CorpusError(f"{corpus}: no usable utterances under {root} ({len(skipped)} skipped)")
    m = Manifest(records, corpus=corpus, root=str(Path(root).resolve()), labels=labels or {},
                 scales=scales or {}, meta={**(meta or {}),
                                            "skipped": [{"path": s.path, "cause": s.cause} for s in skipped]})
    return m.check(check_files=False, source=f"{corpus} import")


def skipped_of(manifest: Manifest) -> list[Skipped]:
    """The files an importer left out, from ``manifest.meta``."""
    return [Skipped(d["path"], d["cause"]) for d in manifest.meta.get("skipped", [])]
