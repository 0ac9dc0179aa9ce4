"""Fill a manifest with transcripts and proxy sentiment labels, resumably (``emovox label``).

For every utterance: transcribe its audio (or keep the manifest's transcript), run the sentiment
labeler on the text, and store ``transcript``, ``sentiment``, ``sentiment_probs`` and, in
``extra``, ``transcriber`` and ``sentiment_labeler`` (plus ``sentiment_empty`` when the text was
empty, ``label_error`` when the file failed).

Crash safety: each finished utterance is appended to a journal beside the output
(``<output>.journal.jsonl``, or ``.journal.rank<R>.jsonl`` under torchrun) and fsynced; a
rerun with the same input and settings skips every id the journal holds, and the final manifest
is written atomically from the journal, after which the journal is removed. So an interrupted
run resumes without redoing or losing rows, and gives the same output as an uninterrupted one.
Failed files are reported on stderr, recorded in the output and retried by the next run.

Under torchrun each rank labels its own shard (:func:`emovox.distributed.shard`) into its own
journal; rank 0 waits for all ranks and writes the merged output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .. import distributed
from ..audio import AudioError, load_audio
from ..manifest import SENTIMENTS, Manifest, Utterance
from ..utils import json_dumps, progress

log = logging.getLogger("emovox.label")

KEEP = "manifest"
"""``extra["transcriber"]`` of a transcript kept from the input manifest."""


@dataclass
class LabelConfig:
    """Settings of one labelling run (saved in the output header; a journal from other settings
    is refused)."""

    transcriber: str = "whisper-tiny.en"
    labeler: str = "vader"
    language: str | None = None  # force a language for the transcriber; else each record's own
    keep_transcripts: bool = False  # keep non-empty transcripts already in the manifest
    threads: int = 2  # CPU threads per model
    jobs: int = 1  # parallel transcription workers (each with its own model)
    beam_size: int = 5
    batch_size: int = 16  # utterances handed to the transcription workers at a time (each is journaled when done)
    strict: bool = False  # stop at the first failed file

    def fingerprint(self, manifest_path: str | os.PathLike) -> str:
        keys = {k: v for k, v in asdict(self).items() if k not in ("jobs", "threads", "strict", "batch_size")}
        keys["input"] = str(Path(manifest_path).resolve())
        return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class LabelResult:
    manifest: Manifest
    labelled: int = 0  # labelled by this run
    resumed: int = 0  # taken from an earlier run's journal
    failed: dict[str, str] = field(default_factory=dict)  # id -> cause
    seconds: float = 0.0

    def summary(self) -> dict:
        return {"utterances": len(self.manifest), "labelled": self.labelled, "resumed": self.resumed,
                "failed": len(self.failed), "errors": self.failed, "seconds": round(self.seconds, 2),
                "sentiment": {s: sum(1 for r in self.manifest if r.sentiment == s) for s in SENTIMENTS}}


class LabelError(RuntimeError):
    """A file failed under ``strict``; the journal keeps what was done."""


# ----------------------------------------------------------------------------- journal


def journal_path(output: str | os.PathLike, rank: int | None = None, world: int | None = None) -> Path:
    output = Path(output)
    world = distributed.world_size() if world is None else world
    rank = distributed.rank() if rank is None else rank
    suffix = f".journal.rank{rank}.jsonl" if world > 1 else ".journal.jsonl"
    return output.with_name(output.name + suffix)


class Journal:
    """Append-only JSONL of finished records: a header line with the run fingerprint, then
    ``{"id": ..., "record": {...}}`` or ``{"id": ..., "error": "..."}`` lines, each fsynced."""

    def __init__(self, path: Path, fingerprint: str):
        self.path = path
        self.fingerprint = fingerprint
        self.done: dict[str, dict] = {}
        self.errors: dict[str, str] = {}
        self._read()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "a", encoding="utf-8")
        if self._f.tell() == 0:
            self._write({"journal": {"fingerprint": fingerprint}})
        self._lock = threading.Lock()

    def _read(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        complete = data[:data.rfind(b"\n") + 1]  # a crash can only tear the last line
        if len(complete) < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(len(complete))
        for n, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f"{self.path}: corrupt journal line {n}; pass --restart to discard it") from None
            if "journal" in d:
                if d["journal"].get("fingerprint") != self.fingerprint:
                    raise ValueError(f"{self.path}: journal of a run with another input or other settings; "
                                     "rerun with the same options, or pass --restart to discard it")
            elif "record" in d:
                self.done[d["id"]] = d["record"]
                self.errors.pop(d["id"], None)
            elif "error" in d:
                self.errors[d["id"]] = d["error"]

    def _write(self, obj: dict) -> None:
        self._f.write(json_dumps(obj) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def add(self, utt: Utterance) -> None:
        with self._lock:
            self._write({"id": utt.id, "record": utt.to_dict()})
            self.done[utt.id] = utt.to_dict()

    def fail(self, utt_id: str, cause: str) -> None:
        with self._lock:
            self._write({"id": utt_id, "error": cause})
            self.errors[utt_id] = cause

    def close(self) -> None:
        self._f.close()


def read_journal(path: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """(records by id, errors by id) of a finished journal, for merging."""
    done: dict[str, dict] = {}
    errors: dict[str, str] = {}
    if not path.exists():
        return done, errors
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "record" in d:
                done[d["id"]] = d["record"]
                errors.pop(d["id"], None)
            elif "error" in d and d["id"] not in done:
                errors[d["id"]] = d["error"]
    return done, errors


# ----------------------------------------------------------------------------- labelling


class _Workers:
    """One transcriber per worker thread (CTranslate2 releases the GIL while decoding)."""

    def __init__(self, config: LabelConfig):
        self.config = config
        self._local = threading.local()
        self._name: str | None = None

    def get(self):
        t = getattr(self._local, "t", None)
        if t is None:
            from .transcribe import get_transcriber

            c = self.config
            threads = max(1, c.threads // max(1, c.jobs)) if c.jobs > 1 else c.threads
            t = get_transcriber(c.transcriber, language=c.language, threads=threads, beam_size=c.beam_size,
                                cache=c.jobs <= 1)
            self._local.t = t
            self._name = t.name
        return t

    @property
    def name(self) -> str:
        return self._name or self.config.transcriber


def _transcribe_one(utt: Utterance, manifest: Manifest, workers: _Workers, config: LabelConfig) -> Utterance:
    if config.keep_transcripts and utt.transcript and utt.transcript.strip():
        utt.extra["transcriber"] = KEEP
        return utt
    audio = load_audio(manifest.audio_path(utt), start=utt.start, end=utt.end)
    t = workers.get()
    lang = config.language or utt.language
    english_only = t.english_only
    if english_only and lang not in (None, "en"):
        raise AudioError(manifest.audio_path(utt), f"{t.name} transcribes English only, but the utterance "
                                                   f"language is {lang!r} (use --transcriber whisper-base, or "
                                                   "--keep-transcripts)")
    tr = t.transcribe(audio, None if english_only else lang)
    utt.transcript = tr.text
    if utt.language is None and tr.language:
        utt.language = tr.language
    utt.extra["transcriber"] = t.name
    return utt


def label_manifest(manifest: Manifest, output: str | os.PathLike, config: LabelConfig | None = None,
                   manifest_path: str | os.PathLike | None = None, restart: bool = False,
                   on_item: Callable[[Utterance], None] | None = None) -> LabelResult:
    """Label ``manifest`` into ``output`` (JSONL), resuming from a journal when one exists.

    ``on_item`` is called after each utterance is journaled (progress hooks, tests).
    Returns the labelled manifest (on every rank; rank 0 wrote it).
    """
    from .sentiment import get_labeler

    config = config or LabelConfig()
    t0 = time.perf_counter()
    output = Path(output)
    fingerprint = config.fingerprint(manifest_path or output)
    rank, world = distributed.rank(), distributed.world_size()
    jpath = journal_path(output, rank, world)
    if restart and jpath.exists():
        jpath.unlink()
    journal = Journal(jpath, fingerprint)
    mine = distributed.shard(manifest.records, rank, world)
    todo = [u for u in mine if u.id not in journal.done]
    resumed = len(mine) - len(todo)
    if resumed:
        log.info("resuming: %d of %d utterances already labelled in %s", resumed, len(mine), jpath)
    labeler = get_labeler(config.labeler, threads=config.threads)
    workers = _Workers(config)
    failed: dict[str, str] = {}
    labelled = 0
    bar = progress(total=len(todo), desc="label", unit="utt")
    pool = ThreadPoolExecutor(max(1, config.jobs)) if config.jobs > 1 else None
    try:
        for i in range(0, len(todo), config.batch_size):
            batch = [Utterance.from_dict(u.to_dict()) for u in todo[i:i + config.batch_size]]

            def work(u: Utterance):
                try:
                    return _transcribe_one(u, manifest, workers, config), None
                except Exception as e:  # noqa: BLE001 - any failure but an interrupt is this file's
                    return u, str(e) if isinstance(e, (AudioError, ValueError, OSError)) else f"{type(e).__name__}: {e}"

            # results in order, each journaled the moment it (and its sentiment) is done
            results = pool.map(work, batch) if pool else (work(u) for u in batch)
            for u, err in results:
                if err is not None:
                    failed[u.id] = err
                    log.error("%s: %s", u.id, err)
                    journal.fail(u.id, err)
                    if config.strict:
                        raise LabelError(f"{u.id}: {err} (--strict; rerun to resume from {jpath})")
                    bar.update(1)
                    continue
                s = labeler([u.transcript or ""])[0]
                u.sentiment, u.sentiment_probs = s.label, s.probs
                u.extra["sentiment_labeler"] = labeler.name
                if s.empty:
                    u.extra["sentiment_empty"] = True
                else:
                    u.extra.pop("sentiment_empty", None)
                u.extra.pop("label_error", None)
                journal.add(u)
                labelled += 1
                bar.update(1)
                if on_item is not None:
                    on_item(u)
    finally:
        bar.close()
        journal.close()
        if pool:
            pool.shutdown(wait=True)
    meta = {"transcriber": config.transcriber, "labeler": labeler.name}
    result = _finish(manifest, output, config, meta, world)
    result.labelled, result.resumed = labelled, resumed
    result.failed.update(failed)
    result.seconds = time.perf_counter() - t0
    return result


def _finish(manifest: Manifest, output: Path, config: LabelConfig, meta: dict, world: int) -> LabelResult:
    """Wait for every rank; rank 0 merges the journals into the output, then removes them."""
    if world > 1:
        distributed.init_process_group()
        distributed.barrier()
    done: dict[str, dict] = {}
    errors: dict[str, str] = {}
    paths = [journal_path(output, r, world) for r in range(world)]
    for p in paths:
        d, e = read_journal(p)
        done.update(d)
        errors.update(e)
    records = []
    failed = {}
    for u in manifest.records:
        if u.id in done:
            records.append(Utterance.from_dict(done[u.id]))
        else:
            r = Utterance.from_dict(u.to_dict())
            if u.id in errors:
                r.extra["label_error"] = errors[u.id]
                failed[u.id] = errors[u.id]
            records.append(r)
    out = manifest.replace(records)
    out.labels = {**out.labels, "sentiment": list(SENTIMENTS)}
    out.meta = {**out.meta, "labeling": {**meta, "language": config.language,
                                         "keep_transcripts": config.keep_transcripts}}
    if distributed.is_main():
        missing = [u.id for u in manifest.records if u.id not in done and u.id not in errors]
        if missing:
            raise LabelError(f"{len(missing)} utterances have no result in the journals (first: {missing[0]}); "
                             "rerun to resume")
        out.save(output)
        for p in paths:
            p.unlink(missing_ok=True)
    if world > 1:
        distributed.barrier()
    return LabelResult(out, failed=failed)
