"""Utterance records and manifests (JSONL in and out).

A manifest file is JSON Lines: the first line is a header ``{"manifest": {...metadata}}``
holding the corpus name, the audio root, the label vocabularies and the attribute scales;
every other line is one :class:`Utterance`. Audio paths are relative to the root.

:meth:`Manifest.load` checks every field's type as it reads (numbers are finite numbers, labels
are strings and never a ``NaN`` marker, ``extra`` is an object ...) and refuses audio paths that
lead outside the corpus root (absolute paths elsewhere, ``..``), unless the caller opts in with
``allow_outside_root=True`` or ``EMOVOX_ALLOW_OUTSIDE_ROOT=1``. Every problem is reported in one
:class:`ManifestError`, each naming the line, the id and the field.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .utils import atomic_open, json_dumps

SENTIMENTS = ("negative", "neutral", "positive")
"""Order of the proxy sentiment probabilities everywhere in emovox."""

ATTRIBUTES = ("valence", "arousal", "dominance")

ALLOW_OUTSIDE_ENV = "EMOVOX_ALLOW_OUTSIDE_ROOT"
"""Set to 1 to let manifests name audio outside their root (absolute paths, ``..``)."""

_NUMBERS = ("start", "end", "duration", *ATTRIBUTES)
_STRINGS = ("speaker", "gender", "session", "language", "transcript", "emotion", "sentiment", "split")
_MISSING = {"nan", "na", "n/a", "null", "none"}


class ManifestError(ValueError):
    """A manifest that fails validation; ``problems`` lists every offending row."""

    def __init__(self, problems: list[str], source: str = "manifest"):
        self.problems = problems
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{source}: {len(problems)} problem(s)\n  {shown}{more}")


@dataclass
class Utterance:
    """One labelled piece of audio. Times in seconds; ``audio`` relative to the manifest root."""

    id: str
    audio: str
    start: float | None = None
    end: float | None = None
    duration: float | None = None
    sample_rate: int | None = None
    speaker: str | None = None
    gender: str | None = None  # "female" | "male" | None
    session: str | None = None
    language: str | None = None  # ISO 639-1, e.g. "en", "de", "ar"
    transcript: str | None = None
    emotion: str | None = None  # a label of the manifest's "emotion" vocabulary
    valence: float | None = None  # raw corpus values; see Manifest.scales
    arousal: float | None = None
    dominance: float | None = None
    sentiment: str | None = None  # proxy text sentiment: one of SENTIMENTS
    sentiment_probs: list[float] | None = None  # [negative, neutral, positive]
    split: str | None = None  # "train" | "validation" | "test" | corpus-specific
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        """A field by name, falling back to ``extra`` (e.g. ``level``, ``intensity``)."""
        if name in _FIELD_NAMES:
            value = getattr(self, name)
            return default if value is None else value
        return self.extra.get(name, default)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if v is not None and not (k == "extra" and not v)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Utterance":
        known = {k: v for k, v in d.items() if k in _FIELD_NAMES}
        unknown = {k: v for k, v in d.items() if k not in _FIELD_NAMES}
        if unknown:
            known["extra"] = {**unknown, **(known.get("extra") or {})}
        return cls(**known)


_FIELD_NAMES = {f.name for f in fields(Utterance)}


@dataclass
class Manifest:
    """Records plus metadata.

    ``labels`` maps a categorical field (``emotion``, or an ``extra`` key such as ``level``) to
    its vocabulary in a fixed order; ``scales`` maps a dimensional attribute to the corpus'
    ``[low, high]`` range, used by :meth:`to_unit`.
    """

    records: list[Utterance] = field(default_factory=list)
    corpus: str = ""
    root: str = ""
    labels: dict[str, list[str]] = field(default_factory=dict)
    scales: dict[str, list[float]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    # -------------------------------------------------------------- container protocol
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self.records)

    def __getitem__(self, i: int) -> Utterance:
        return self.records[i]

    def by_id(self) -> dict[str, Utterance]:
        return {r.id: r for r in self.records}

    def replace(self, records: Iterable[Utterance]) -> "Manifest":
        """The same metadata with other records."""
        return Manifest(list(records), self.corpus, self.root, dict(self.labels), dict(self.scales), dict(self.meta))

    def filter(self, keep: Callable[[Utterance], bool]) -> "Manifest":
        return self.replace(r for r in self.records if keep(r))

    # -------------------------------------------------------------- paths and values
    def audio_path(self, utt: Utterance) -> Path:
        """Absolute path of an utterance's audio file."""
        p = Path(utt.audio)
        return p if p.is_absolute() else Path(self.root) / p

    def to_unit(self, value: float | None, attribute: str) -> float | None:
        """Map a raw attribute value from the corpus scale to [-1, 1]."""
        if value is None:
            return None
        if attribute not in self.scales:
            raise KeyError(f"no scale recorded for {attribute!r} in manifest of {self.corpus or 'unknown corpus'}")
        lo, hi = self.scales[attribute]
        return 2.0 * (float(value) - lo) / (hi - lo) - 1.0

    def speakers(self) -> list[str]:
        return sorted({r.speaker for r in self.records if r.speaker is not None})

    def summary(self) -> dict[str, Any]:
        """Counts for ``emovox corpus info``: utterances, speakers, hours, label counts, ..."""
        secs = sum(r.duration or 0.0 for r in self.records)
        labels: dict[str, dict[str, int]] = {}
        for name, vocab in self.labels.items():
            c = Counter(r.get(name) for r in self.records if r.get(name) is not None)
            labels[name] = {k: c[k] for k in vocab if c[k]} | {k: v for k, v in c.items() if k not in vocab}
        if any(r.sentiment for r in self.records) and "sentiment" not in labels:
            labels["sentiment"] = dict(Counter(r.sentiment for r in self.records if r.sentiment))
        attributes = {}
        for a in ATTRIBUTES:
            vals = [r.get(a) for r in self.records if r.get(a) is not None]
            if vals:
                attributes[a] = {"count": len(vals), "min": min(vals), "max": max(vals),
                                 "mean": sum(vals) / len(vals), "scale": self.scales.get(a)}
        return {
            "corpus": self.corpus,
            "root": self.root,
            "utterances": len(self.records),
            "speakers": len(self.speakers()),
            "hours": round(secs / 3600.0, 4),
            "transcribed": sum(1 for r in self.records if r.transcript),
            "labels": labels,
            "attributes": attributes,
            "splits": dict(Counter(r.split for r in self.records if r.split)),
            "languages": dict(Counter(r.language for r in self.records if r.language)),
            "skipped": len(self.meta.get("skipped", [])),
        }

    # -------------------------------------------------------------- validation
    def validate(self, check_files: bool = True) -> list[str]:
        """Every problem found, one string per offending row and cause (empty list = valid)."""
        problems: list[str] = []
        seen: dict[str, int] = {}
        for i, r in enumerate(self.records, start=1):
            where = f"row {i} (id {r.id!r})"
            if not r.id:
                problems.append(f"row {i}: empty id")
            elif r.id in seen:
                problems.append(f"{where}: duplicate id, first at row {seen[r.id]}")
            else:
                seen[r.id] = i
            if not r.audio:
                problems.append(f"{where}: no audio path")
            elif check_files and not self.audio_path(r).is_file():
                problems.append(f"{where}: audio file missing: {self.audio_path(r)}")
            for name, vocab in self.labels.items():
                v = r.get(name)
                if v is not None and v not in vocab:
                    problems.append(f"{where}: {name} {v!r} is not in the vocabulary {vocab}")
            for name in ("start", "end", "duration", *ATTRIBUTES):
                v = getattr(r, name)
                if v is not None and (not isinstance(v, (int, float)) or not math.isfinite(v)):
                    problems.append(f"{where}: {name} is not a finite number ({v!r})")
            if isinstance(r.duration, (int, float)) and math.isfinite(r.duration) and r.duration <= 0:
                problems.append(f"{where}: duration {r.duration} is not positive")
            if r.sample_rate is not None and (not isinstance(r.sample_rate, int) or r.sample_rate <= 0):
                problems.append(f"{where}: sample_rate {r.sample_rate!r} is not a positive integer")
            if r.start is not None and r.end is not None and r.end <= r.start:
                problems.append(f"{where}: end {r.end} is not after start {r.start}")
            if r.sentiment is not None and r.sentiment not in SENTIMENTS:
                problems.append(f"{where}: sentiment {r.sentiment!r} is not one of {list(SENTIMENTS)}")
            if r.sentiment_probs is not None:
                p = r.sentiment_probs
                if len(p) != 3 or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in p):
                    problems.append(f"{where}: sentiment_probs must be 3 finite numbers, got {p!r}")
            for a in ATTRIBUTES:
                v = getattr(r, a)
                if v is not None and a in self.scales and isinstance(v, (int, float)) and math.isfinite(v):
                    lo, hi = self.scales[a]
                    if not lo <= v <= hi:
                        problems.append(f"{where}: {a} {v} outside the scale [{lo}, {hi}]")
        return problems

    def check(self, check_files: bool = True, source: str = "manifest") -> "Manifest":
        """Raise ManifestError listing every problem; return self when valid."""
        problems = self.validate(check_files)
        if problems:
            raise ManifestError(problems, source)
        return self

    # -------------------------------------------------------------- JSONL
    def header(self) -> dict[str, Any]:
        return {"corpus": self.corpus, "root": self.root, "labels": self.labels, "scales": self.scales,
                "meta": self.meta, "format": 1}

    def save(self, path: str | os.PathLike) -> None:
        """Write JSONL atomically (header line first)."""
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write(json_dumps({"manifest": self.header()}) + "\n")
            for r in self.records:
                f.write(json_dumps(r.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike, root: str | os.PathLike | None = None,
             allow_outside_root: bool | None = None) -> "Manifest":
        """Read a manifest, checking every field (see the module docstring). Bad lines, wrong
        types and paths outside the root are collected and reported together.

        A file without a header line is accepted (root = the file's folder).
        ``allow_outside_root`` (default: ``$EMOVOX_ALLOW_OUTSIDE_ROOT``) lets audio paths lead
        outside the root.
        """
        path = Path(path)
        if not path.is_file():
            raise ManifestError([f"file not found: {path}"], str(path))
        if allow_outside_root is None:
            allow_outside_root = os.environ.get(ALLOW_OUTSIDE_ENV, "") not in ("", "0")
        header: dict[str, Any] = {}
        rows: list[tuple[int, dict]] = []
        problems: list[str] = []
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    d = json.loads(line)
                except json.JSONDecodeError as e:
                    problems.append(f"line {n}: not valid JSON ({e.msg})")
                    continue
                if not isinstance(d, dict):
                    problems.append(f"line {n}: expected a JSON object")
                elif "manifest" in d and n == 1:
                    header = d["manifest"]
                    problems += [f"line 1: {p}" for p in _header_problems(header)]
                    if not isinstance(header, dict):
                        header = {}
                else:
                    rows.append((n, d))
        base = header.get("root") or ""
        if root is not None:
            base = str(root)
        elif not isinstance(base, str) or not base:
            base = str(path.parent.resolve())
        elif not os.path.isabs(base):
            base = str((path.parent / base).resolve())
        labels = header.get("labels") if isinstance(header.get("labels"), dict) else {}
        records: list[Utterance] = []
        for n, d in rows:
            bad = _record_problems(d, labels, None if allow_outside_root else base)
            if bad:
                where = f"line {n}" + (f" (id {d['id']!r})" if isinstance(d.get("id"), str) else "")
                problems += [f"{where}: {p}" for p in bad]
                continue
            records.append(Utterance.from_dict(d))
        if problems:
            raise ManifestError(problems, str(path))
        return cls(records, header.get("corpus", "") or "", base, labels or {},
                   header.get("scales", {}) or {}, header.get("meta", {}) or {})

    # -------------------------------------------------------------- exports
    def to_emobox(self, path: str | os.PathLike, label: str = "emotion") -> None:
        """EmoBox-style JSONL: one object per utterance with key, dataset, wav, length, emo."""
        with atomic_open(path, "w", encoding="utf-8") as f:
            for r in self.records:
                d = {"key": r.id, "dataset": self.corpus, "wav": str(self.audio_path(r)), "type": "raw",
                     "sample_rate": r.sample_rate, "length": r.duration, "task": "category",
                     "emo": r.get(label), "channel": 1}
                if r.start is not None:
                    d["start"], d["end"] = r.start, r.end
                for a in ATTRIBUTES:
                    if getattr(r, a) is not None:
                        d[a] = getattr(r, a)
                f.write(json_dumps(d) + "\n")

    def lhotse_dicts(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Recordings and supervisions as lhotse serialises them (``Recording.to_dict`` and
        ``SupervisionSegment.to_dict``), built without lhotse; reads each audio header once."""
        from .audio import info

        recordings: dict[str, dict[str, Any]] = {}
        supervisions = []
        for r in self.records:
            rec_id = Path(r.audio).with_suffix("").as_posix()
            if rec_id not in recordings:
                hdr = info(self.audio_path(r))
                recordings[rec_id] = {
                    "id": rec_id,
                    "sources": [{"type": "file", "channels": list(range(hdr.channels)),
                                 "source": str(self.audio_path(r))}],
                    "sampling_rate": hdr.sample_rate, "num_samples": hdr.frames, "duration": hdr.duration,
                    "channel_ids": list(range(hdr.channels))}
            rec = recordings[rec_id]
            start = r.start or 0.0
            end = r.end if r.end is not None else rec["duration"]
            custom = {k: v for k, v in {"emotion": r.emotion, "valence": r.valence, "arousal": r.arousal,
                                         "dominance": r.dominance, "sentiment": r.sentiment,
                                         "sentiment_probs": r.sentiment_probs, "session": r.session,
                                         "split": r.split, **r.extra}.items() if v is not None}
            channels = rec["channel_ids"]
            sup = {"id": r.id, "recording_id": rec_id, "start": start, "duration": round(end - start, 6),
                   "channel": channels[0] if len(channels) == 1 else channels, "text": r.transcript,
                   "language": r.language, "speaker": r.speaker, "gender": r.gender, "custom": custom or None}
            supervisions.append({k: v for k, v in sup.items() if v is not None})
        return list(recordings.values()), supervisions

    def to_lhotse(self):
        """(RecordingSet, SupervisionSet) for lhotse users (``pip install emovox[lhotse]``)."""
        try:
            from lhotse import RecordingSet, SupervisionSet
        except ImportError as e:
            raise ImportError("lhotse export needs the lhotse package: pip install 'emovox[lhotse]' "
                              "(or write the files without it: Manifest.save_lhotse)") from e
        recordings, supervisions = self.lhotse_dicts()
        return RecordingSet.from_dicts(recordings), SupervisionSet.from_dicts(supervisions)

    def save_lhotse(self, folder: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``<corpus>_recordings.jsonl.gz`` and ``<corpus>_supervisions.jsonl.gz`` (lhotse's
        manifest format, readable by ``lhotse.load_manifest``) into ``folder``, atomically."""
        import gzip

        recordings, supervisions = self.lhotse_dicts()
        name = self.corpus or "emovox"
        paths = (Path(folder) / f"{name}_recordings.jsonl.gz", Path(folder) / f"{name}_supervisions.jsonl.gz")
        for path, items in zip(paths, (recordings, supervisions)):
            with atomic_open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
                for d in items:
                    f.write((json_dumps(d) + "\n").encode("utf-8"))
        return paths


# ----------------------------------------------------------------------------- checks on read


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _shown(v: Any) -> str:
    text = repr(v)
    return (text[:60] + "...") if len(text) > 60 else text


def _header_problems(h: Any) -> list[str]:
    if not isinstance(h, dict):
        return [f"field 'manifest' must be a JSON object (the header), got {_shown(h)}"]
    out = []
    for key in ("corpus", "root"):
        if h.get(key) is not None and not isinstance(h[key], str):
            out.append(f"field '{key}' must be a string, got {_shown(h[key])}")
    labels = h.get("labels")
    if labels is not None and not (isinstance(labels, dict) and all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in labels.items())):
        out.append(f"field 'labels' must map each label field to a list of strings, got {_shown(labels)}")
    scales = h.get("scales")
    if scales is not None and not (isinstance(scales, dict) and all(
            isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v) and v[0] < v[1]
            for v in scales.values())):
        out.append(f"field 'scales' must map each attribute to [low, high] numbers, got {_shown(scales)}")
    if h.get("meta") is not None and not isinstance(h["meta"], dict):
        out.append(f"field 'meta' must be a JSON object, got {_shown(h['meta'])}")
    return out


def _outside(audio: str, base: str) -> bool:
    root = os.path.normpath(os.path.abspath(base))
    target = os.path.normpath(audio if os.path.isabs(audio) else os.path.join(root, audio))
    return os.path.commonpath([root, target]) != root


def _record_problems(d: dict, labels: dict, base: str | None) -> list[str]:
    """Why one utterance line cannot be used (empty: it can); ``base`` None allows any path."""
    out = []
    for key in ("id", "audio"):
        if not isinstance(d.get(key), str) or not d.get(key):
            out.append(f"field '{key}' must be a non-empty string, got {_shown(d.get(key))}")
    if isinstance(d.get("audio"), str) and d["audio"] and base is not None and _outside(d["audio"], base):
        out.append(f"field 'audio' {d['audio']!r} is outside the corpus root {base} (refused; allow it with "
                   f"allow_outside_root=True or {ALLOW_OUTSIDE_ENV}=1)")
    for key in _NUMBERS:
        if d.get(key) is not None and not _is_number(d[key]):
            out.append(f"field '{key}' must be a finite number or null, got {_shown(d[key])}")
    sr = d.get("sample_rate")
    if sr is not None and (not isinstance(sr, int) or isinstance(sr, bool) or sr <= 0):
        out.append(f"field 'sample_rate' must be a positive integer or null, got {_shown(sr)}")
    for key in _STRINGS:
        if d.get(key) is not None and not isinstance(d[key], str):
            out.append(f"field '{key}' must be a string or null, got {_shown(d[key])}")
    extra = d.get("extra")
    if extra is not None and not isinstance(extra, dict):
        out.append(f"field 'extra' must be a JSON object, got {_shown(extra)}")
    for key in {"emotion", "sentiment", *labels}:
        v = d.get(key, extra.get(key) if isinstance(extra, dict) else None)
        if isinstance(v, float) and not math.isfinite(v) or isinstance(v, str) and v.strip().lower() in _MISSING:
            out.append(f"field '{key}' is {_shown(v)}, a missing-value marker, not a label (write null)")
    p = d.get("sentiment_probs")
    if p is not None and not (isinstance(p, list) and len(p) == 3 and all(_is_number(x) for x in p)):
        out.append(f"field 'sentiment_probs' must be 3 finite numbers or null, got {_shown(p)}")
    return out
