"""The manifest-level extraction engine: features and encoders alike, through the on-disk cache.

It sits above both the feature layer (:mod:`emovox.features`) and the encoders
(:mod:`emovox.encoders`), which know nothing of each other or of manifests.

One registry serves every feature by name::

    "lfbe"          log mel filterbank energies, (frames, 40) at 100 Hz
    "mfcc"          MFCC, (frames, 20) at 100 Hz
    "descriptors"   frame-level acoustic descriptors (CARE's PASE+ stand-in), (frames, D) at 50 Hz
    "egemaps"       openSMILE eGeMAPSv02 functionals, (88,)  [research / non-commercial licence]
    "egemaps-lld"   openSMILE eGeMAPSv02 low-level descriptors, (frames, 25) at 100 Hz
    any encoder     anything :func:`emovox.encoders.load_encoder` accepts ("whisper-tiny.en",
                    "whisper-base", a Hugging Face id or path, ...): the encoder's per-layer mean
                    over time, (layers, dim) float32

``extract_manifest(manifest, name)`` returns a :class:`FeatureTable` (ids, features, failed).
Bad files are reported with the file and the cause and the batch goes on (``strict=True`` raises
instead). With ``jobs > 1`` items are extracted in worker processes; under ``torchrun`` each rank
extracts its own shard, then every rank reads the whole table from the shared cache.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from . import distributed
from .audio import SAMPLE_RATE, AudioError, load_audio
from .manifest import Manifest, Utterance
from .tensors import pad_batch
from .utils import progress
from .features.base import Extractor, FrontEndExtractor
from .features.cache import FeatureCache

log = logging.getLogger(__name__)


class EncoderExtractor(Extractor):
    """Per-layer mean over time of a pretrained encoder's hidden states: (layers, dim) per clip.

    The encoder is loaded lazily through :func:`emovox.encoders.load_encoder`; its ``config()``
    (which includes options such as Whisper's pad-to-30 s) is part of the cache key.
    """

    def __init__(self, name: str, device: str = "cpu", batch_seconds: float = 60.0, max_batch: int = 16,
                 **options):
        self.name, self.device, self.options = name, device, options
        self.batch_seconds, self.max_batch = batch_seconds, max_batch
        if options.get("pad_to_30s"):  # every clip costs a full 30 s window: keep attention maps small
            self.max_batch = min(max_batch, 4)
        self._encoder = None

    @property
    def encoder(self):
        if self._encoder is None:
            from .encoders import load_encoder

            enc = load_encoder(self.name, device=self.device, **self.options)
            enc.eval()
            self._encoder = enc
            self.sample_rate = int(getattr(enc, "sample_rate", SAMPLE_RATE))
        return self._encoder

    def config(self) -> dict[str, Any]:
        return {"name": "encoder", "encoder": self.encoder.config(), "pooling": "mean", "version": 1}

    @torch.inference_mode()
    def extract_batch(self, audios):
        enc = self.encoder
        out: list[np.ndarray] = []
        for lo in range(0, len(audios), self.max_batch):
            x, lengths = pad_batch(audios[lo: lo + self.max_batch], self.device)
            pooled = enc(x, lengths).pooled().float().cpu().numpy()  # (B, layers, dim)
            out.extend(pooled[i].copy() for i in range(len(pooled)))
        return out


_REGISTRY: dict[str, Callable[..., Extractor]] = {}


def register_extractor(name: str, factory: Callable[..., Extractor]) -> None:
    """Make ``get_extractor(name, **options)`` call ``factory(**options)``."""
    _REGISTRY[name] = factory


def _descriptors(**kw) -> Extractor:
    from .features.descriptors import DescriptorExtractor

    return DescriptorExtractor(**kw)


def _egemaps(level: str) -> Callable[..., Extractor]:
    def make(**kw) -> Extractor:
        from .features.egemaps import EgemapsExtractor

        kw.pop("device", None)
        return EgemapsExtractor(level=level, **kw)

    return make


register_extractor("lfbe", lambda **kw: FrontEndExtractor("lfbe", **kw))
register_extractor("mfcc", lambda **kw: FrontEndExtractor("mfcc", **kw))
register_extractor("descriptors", _descriptors)
register_extractor("egemaps", _egemaps("functionals"))
register_extractor("egemaps-lld", _egemaps("lld"))

FEATURES = ("lfbe", "mfcc", "descriptors", "egemaps", "egemaps-lld")
"""Built-in feature names; any encoder name is accepted as well."""


class CorruptedExtractor(Extractor):
    """Another extractor run on corrupted copies of the clips (:mod:`emovox.features.corrupt`:
    noise, reverberation, telephone band, codecs ...). The corruption spec and seed are part of
    the cache key, and each clip's corruption is a function of its own samples, so a rerun reads
    the same features back."""

    def __init__(self, inner: Extractor, spec: str, seed: int = 0):
        from .features.corrupt import parse

        parse(spec)  # a bad spec fails here, not in a worker
        self.inner, self.spec, self.seed = inner, spec, int(seed)
        self.name = f"{inner.name}+{spec}"
        self.batch_seconds, self.min_seconds = inner.batch_seconds, inner.min_seconds

    @property
    def sample_rate(self) -> int:  # an encoder's rate is known once it is loaded
        return self.inner.sample_rate

    def config(self) -> dict[str, Any]:
        return {**self.inner.config(), "corrupt": self.spec, "corrupt_seed": self.seed}

    def extract_batch(self, audios):
        from .features.corrupt import corrupt

        return self.inner.extract_batch([corrupt(a, self.spec, self.sample_rate, self.seed) for a in audios])


def get_extractor(name: str, corrupt: str | None = None, corrupt_seed: int = 0, **options) -> Extractor:
    """The extractor for a feature name or, failing that, for an encoder name; with ``corrupt``
    (a spec of :mod:`emovox.features.corrupt`, e.g. ``"noise:10"``, ``"telephone"``) it reads
    corrupted copies of the clips."""
    inner = _REGISTRY[name](**options) if name in _REGISTRY else EncoderExtractor(name, **options)
    return CorruptedExtractor(inner, corrupt, corrupt_seed) if corrupt and corrupt != "clean" else inner


# ----------------------------------------------------------------------------- results


@dataclass
class Failure:
    """An utterance that could not be extracted."""

    id: str
    path: str
    cause: str

    def __str__(self) -> str:
        return f"{self.id} ({self.path}): {self.cause}"


class ExtractionError(RuntimeError):
    """Raised with ``strict=True`` when any item failed; lists every failure."""

    def __init__(self, failures: list[Failure]):
        self.failures = failures
        shown = "\n  ".join(map(str, failures[:20]))
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        super().__init__(f"{len(failures)} item(s) could not be extracted:\n  {shown}{more}")


@dataclass
class FeatureTable:
    """Features of the utterances that succeeded, in manifest order.

    ``features`` is one ``(N, ...)`` float32 array when every item has the same shape (pooled
    encoder features, functionals), else a list of N arrays (frame-level features).
    """

    ids: list[str]
    features: np.ndarray | list[np.ndarray]
    failed: list[Failure] = field(default_factory=list)
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {i: self.features[k] for k, i in enumerate(self.ids)}

    def summary(self) -> dict[str, Any]:
        shape = list(self.features.shape) if isinstance(self.features, np.ndarray) else \
            ["N", "frames", *(self.features[0].shape[1:] if self.features else [])]
        return {"feature": self.name, "items": len(self.ids), "shape": shape, **self.stats,
                "failed": [vars(f) for f in self.failed]}


# ----------------------------------------------------------------------------- extraction


@dataclass
class _Item:
    index: int
    id: str
    path: str
    start: float | None
    end: float | None
    key: str = ""
    seconds: float = 0.0


def _expected_seconds(utt: Utterance) -> float:
    if utt.start is not None and utt.end is not None:
        return utt.end - utt.start
    return utt.duration or 0.0


def _batches(audios: list[np.ndarray], sample_rate: int, batch_seconds: float) -> list[list[int]]:
    """Indices grouped by length (longest first) so each batch's padded size stays under
    ``batch_seconds`` of audio."""
    order = sorted(range(len(audios)), key=lambda i: -len(audios[i]))
    limit = max(1, int(batch_seconds * sample_rate))
    out: list[list[int]] = []
    for i in order:
        if out and len(audios[out[-1][0]]) * (len(out[-1]) + 1) <= limit:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _process_group(extractor: Extractor, cache: FeatureCache, items: list[_Item]) -> tuple[int, float, list[Failure]]:
    """Load, extract and store a group of items. Returns (items stored, audio seconds, failures)."""
    failures: list[Failure] = []
    loaded: list[tuple[_Item, np.ndarray]] = []
    for it in items:
        try:
            audio = load_audio(it.path, extractor.sample_rate, it.start, it.end, min_duration=extractor.min_seconds)
            loaded.append((it, audio))
        except AudioError as e:
            failures.append(Failure(it.id, it.path, e.cause))
    audios = [a for _, a in loaded]
    stored, seconds = 0, 0.0
    for batch in _batches(audios, extractor.sample_rate, extractor.batch_seconds):
        try:
            feats = extractor.extract_batch([audios[i] for i in batch])
            pairs = list(zip(batch, feats))
        except Exception as e:  # isolate the offending clip(s)
            if len(batch) == 1:
                it = loaded[batch[0]][0]
                failures.append(Failure(it.id, it.path, f"extraction failed: {type(e).__name__}: {e}"))
                continue
            pairs = []
            for i in batch:
                try:
                    pairs.append((i, extractor.extract_batch([audios[i]])[0]))
                except Exception as e1:
                    it = loaded[i][0]
                    failures.append(Failure(it.id, it.path, f"extraction failed: {type(e1).__name__}: {e1}"))
        for i, f in pairs:
            f = np.asarray(f, dtype=np.float32)
            it = loaded[i][0]
            if not np.isfinite(f).all():
                failures.append(Failure(it.id, it.path, "extraction produced NaN or Inf values"))
                continue
            cache.put(it.key, f)
            stored += 1
            seconds += len(audios[i]) / extractor.sample_rate
    keys = {it.id: it.key for it in items}
    for f in failures:
        cache.put_failure(keys[f.id], f.cause)
    return stored, seconds, failures


# worker-process state for jobs > 1 (spawned processes build their own extractor once)
_WORKER: dict[str, Any] = {}


def _worker_init(name: str, options: dict[str, Any], root: str, threads: int) -> None:
    torch.set_num_threads(max(1, threads))
    _WORKER["extractor"] = get_extractor(name, **options)
    _WORKER["cache"] = FeatureCache(root)


def _worker_run(items: list[_Item]) -> tuple[int, float, list[Failure]]:
    return _process_group(_WORKER["extractor"], _WORKER["cache"], items)


def _chunks(items: list[_Item], size: int) -> list[list[_Item]]:
    return [items[i: i + size] for i in range(0, len(items), size)]


def extract_manifest(manifest: Manifest, name: str, jobs: int = 1, cache_dir: str | os.PathLike | None = None,
                     *, strict: bool = False, show_progress: bool = True, pack: bool = True,
                     group_size: int = 32, threads: int | None = None, **options) -> FeatureTable:
    """Features ``name`` for every utterance of ``manifest``, computed once and then read from
    the cache at ``cache_dir`` (default: the user cache).

    ``options`` go to :func:`get_extractor` (e.g. ``device="cuda"``, ``n_mels=80``, encoder
    options). ``jobs`` worker processes extract in parallel (``threads`` torch threads each;
    default: CPU cores / jobs). Under ``torchrun`` each rank extracts its shard of the missing
    items, waits for the others, and returns the whole table. Failed items are listed in
    ``FeatureTable.failed`` (and raise :class:`ExtractionError` with ``strict=True``).
    """
    t0 = time.perf_counter()
    if distributed.world_size() > 1 and options.get("device") == "cuda":  # one GPU per torchrun rank
        options["device"] = f"cuda:{distributed.local_rank()}"
    extractor = get_extractor(name, **options)
    cache = FeatureCache(cache_dir)
    config = extractor.config()
    ck = cache.remember_config(config)

    items: list[_Item] = []
    failed: dict[str, Failure] = {}
    for i, utt in enumerate(manifest.records):
        it = _Item(i, utt.id, str(manifest.audio_path(utt)), utt.start, utt.end, seconds=_expected_seconds(utt))
        try:
            it.key = cache.item_key(ck, cache.digest(it.path), utt.start, utt.end)
        except OSError as e:
            cause = "file not found" if isinstance(e, FileNotFoundError) else f"cannot read ({e.strerror or e})"
            failed[it.id] = Failure(it.id, it.path, cause)
            continue
        items.append(it)
    cache.save_digests()
    if strict and failed:
        raise ExtractionError(list(failed.values()))

    keys = [it.key for it in items]
    packed = cache.load_pack(keys) if pack and not failed and items else None
    computed, seconds = 0, 0.0
    if packed is None:
        world = distributed.world_size()
        mine = distributed.shard(items) if world > 1 else items  # shard all items: ranks agree on it
        todo = sorted((it for it in mine if it.key not in cache), key=lambda it: -it.seconds)
        if todo:
            computed, seconds, new_failures = _run(extractor, cache, todo, name, options, jobs, threads,
                                                   group_size, show_progress, strict)
            failed.update((f.id, f) for f in new_failures)
        if world > 1:
            distributed.init_process_group()
            distributed.barrier()

    arrays: list[np.ndarray] = []
    ids: list[str] = []
    if packed is not None:
        arrays, ids = packed, [it.id for it in items]
    else:
        for it in items:
            if it.id in failed:
                continue
            a = cache.get(it.key)
            if a is None:
                cause = cache.get_failure(it.key) or "not in the cache after extraction"
                failed[it.id] = Failure(it.id, it.path, cause)
                continue
            arrays.append(a)
            ids.append(it.id)
        if pack and not failed and items and distributed.is_main():
            try:
                cache.save_pack(keys, arrays)
            except (OSError, ValueError) as e:  # features of varying width cannot be packed
                log.debug("feature cache: no pack (%s)", e)

    failures = [failed[u.id] for u in manifest.records if u.id in failed]
    if failures:
        log.warning("%s: %d of %d item(s) failed; first: %s", name, len(failures), len(manifest), failures[0])
        if strict:
            raise ExtractionError(failures)
    features: np.ndarray | list[np.ndarray] = arrays
    if arrays and len({a.shape for a in arrays}) == 1:
        features = np.stack(arrays).astype(np.float32, copy=False)
    elif not arrays:
        features = np.zeros((0,), np.float32)
    stats = {"computed": computed, "cached": len(ids) - computed if packed is None else len(ids),
             "audio_seconds_computed": round(seconds, 3), "wall_seconds": round(time.perf_counter() - t0, 3),
             "from_pack": packed is not None, "cache_dir": str(cache.root)}
    return FeatureTable(ids, features, failures, name, config, stats)


def _run(extractor: Extractor, cache: FeatureCache, todo: list[_Item], name: str, options: dict[str, Any],
         jobs: int, threads: int | None, group_size: int, show_progress: bool,
         strict: bool) -> tuple[int, float, list[Failure]]:
    """Extract ``todo`` in this process (jobs <= 1) or in ``jobs`` spawned workers."""
    groups = _chunks(todo, group_size)
    bar = progress(total=len(todo), desc=f"features {name}", unit="utt", disable=None if show_progress else True)
    stored, seconds, failures = 0, 0.0, []

    def account(result: tuple[int, float, list[Failure]], n: int) -> None:
        nonlocal stored, seconds
        stored += result[0]
        seconds += result[1]
        failures.extend(result[2])
        bar.update(n)
        if strict and result[2]:
            raise ExtractionError(result[2])

    try:
        if jobs <= 1:
            if threads:
                torch.set_num_threads(threads)
            for g in groups:
                account(_process_group(extractor, cache, g), len(g))
        else:
            import concurrent.futures as cf
            import multiprocessing as mp

            per = threads or max(1, (os.cpu_count() or 1) // jobs)
            with cf.ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                        initargs=(name, options, str(cache.root), per)) as pool:
                futures = {pool.submit(_worker_run, g): len(g) for g in groups}
                try:
                    for fut in cf.as_completed(futures):
                        account(fut.result(), futures[fut])
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
    finally:
        bar.close()
    return stored, seconds, failures

