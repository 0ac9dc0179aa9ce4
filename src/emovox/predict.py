"""The product: any recording in, per-segment emotion, sentiment and transcript out.

::

    import emovox
    model = emovox.load()                       # the bundled default model
    for r in model.predict("meeting.flac"):    # list[SegmentRecord]
        print(r.start, r.end, r.emotion.label, r.valence, r.transcript)

Pipeline for one recording (``Predictor``):

1. the file is read in blocks (``emovox.audio.iter_blocks``) and fed to the streaming Silero
   VAD segmenter (``emovox.vad``), so memory stays flat however long the recording;
2. each closed segment (at most ``VADConfig.max_segment`` s) is scored by an
   ``emovox.scoring.EmotionScorer``: the Whisper encoder on PyTorch (``TorchScorer``) or ONNX
   Runtime (``OnnxScorer``, ``backend="onnx"``), whose per-layer means over time feed the
   emotion heads (valence, arousal, dominance and category probabilities);
3. each segment is transcribed from its own audio, so no word can cross a segment boundary
   and no segment loses its words to a neighbour: consecutive segments (up to
   ``transcribe_window`` s of them) go to ``transcriber.transcribe_segments``, which with
   faster-whisper (tiny.en by default) encodes each segment alone without the 30 s padding of
   a plain call and decodes them in batches (``emovox.text.whisper_segments``); other
   transcribers take one call per segment. The text goes to the sentiment labeler (VADER by
   default). Two encoder passes (PyTorch for the heads, CTranslate2 int8 for the decoder): the
   bundled model reads Whisper base's first 3 blocks, which the transcriber does not share, and
   even for a model on the transcriber's own encoder, feeding the emotion pass's last layer to
   the decoder was 12-14% faster but raised the WER of short utterances (AN4: 0.33 -> 0.44
   unpadded, 0.37 when the emotion pass also reads the decoder's 1 s of silence, which changes
   the heads' features), measured by ``emovox bench shared-pass`` (docs/RESULTS.md);
4. one :class:`~emovox.records.SegmentRecord` per segment.

Batches of files run in ``jobs`` worker processes (each loads the model once; ``emovox.jobs``);
a bad file, any exception but an interrupt, or a worker killed mid-file (the OOM killer) gives
that file a :class:`~emovox.records.FileResult` with ``error`` set, and the batch goes on. The writers for
results are in ``emovox.formats``. ``backend="onnx"`` without ``onnx_dir`` exports the model
once into the cache (``emovox.export.ensure_onnx``, imported only then).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .version import __version__
from .audio import AUDIO_EXTENSIONS, SAMPLE_RATE, AudioError, info
from .records import FileResult, Scores, SegmentRecord
from .scoring import BACKENDS, EmotionScorer, make_scorer
from .utils import release_memory
from .vad import Segment, Segmenter, VADConfig

log = logging.getLogger("emovox.predict")

SENTIMENT_LABELS = ("negative", "neutral", "positive")


# ----------------------------------------------------------------------------- config


@dataclass
class PredictConfig:
    """How a recording is processed. ``threads`` is per process (2 cores here)."""

    transcriber: str = "whisper-tiny.en"
    """faster-whisper model for transcripts (``none`` to skip transcription and sentiment)."""
    language: str | None = None
    """Language code for transcription (None: English for ``.en`` models, else detected)."""
    sentiment: str = "vader"
    """Text sentiment labeler (``emovox.text.sentiment.get_labeler``)."""
    backend: str = "torch"
    """``torch``, ``onnx`` (ONNX Runtime for the encoder and heads, see ``emovox export``) or
    ``onnx-int8`` (the same with the encoder's weights quantised to int8)."""
    threads: int = 2
    block_seconds: float = 30.0
    """Audio read per block from a long file (seconds)."""
    batch_segments: int = 1
    """Segments encoded together by the emotion encoder (1: no padding; batching gains nothing on CPU)."""
    transcribe_window: float = 28.0
    """Consecutive segments, up to this many seconds of them, are transcribed in one
    ``transcribe_segments`` call (batched decoding; a multilingual model detects the language
    once for them). Each segment's text still comes from its own audio alone. 0: each segment
    as soon as it closes (lowest latency when streaming)."""
    min_segment_seconds: float = 0.1
    """Segments shorter than this (after padding) are skipped."""
    adapt: bool = False
    """Per-recording adaptation: shift each recording's segment features so that their mean is
    the training mean (``emotion_model.adapt_to_recording``), when it has at least
    ``adapt_min_segments`` segments. Records then come out when the recording ends. Off by
    default: docs/API.md says when it helps and when it hurts (docs/RESULTS.md measures it)."""
    adapt_min_segments: int = 10
    vad: VADConfig = field(default_factory=VADConfig)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.threads < 1:
            raise ValueError("threads must be at least 1")
        if isinstance(self.vad, dict):
            self.vad = VADConfig(**self.vad)


# ----------------------------------------------------------------------------- predictor


class Predictor:
    """Recording -> per-segment :class:`SegmentRecord` s. Build it with :func:`load`.

    ``scorer`` maps segment audio to emotion head outputs; ``transcriber`` has
    ``transcribe(audio) -> Transcript(text, segments, language)`` (or is None: no transcripts);
    ``labeler`` maps a list of texts to ``Sentiment(label, probs)`` (or None).
    Between calls it keeps no state, so one instance serves requests one after another (the
    service holds a lock around each call because the models share threads); during a call with
    ``adapt`` it holds that recording's features.
    """

    def __init__(self, scorer: EmotionScorer, transcriber=None, labeler=None,
                 config: PredictConfig | None = None, spec: dict | None = None):
        self.scorer = scorer
        self.transcriber = transcriber
        self.labeler = labeler
        self.config = config or PredictConfig()
        self.spec = spec  # how to rebuild this predictor in a worker process (None: cannot)
        self._features: list[np.ndarray] = []  # per-recording features while adapting
        self.timings: dict[str, float] = dict.fromkeys(("read+vad", "emotion", "transcribe", "sentiment"), 0.0)
        """Seconds spent per stage since construction (for ``emovox bench predict``)."""

    @property
    def version(self) -> str:
        return self.scorer.version or f"emovox-{__version__}"

    # -- single recordings

    def predict(self, audio: str | os.PathLike | np.ndarray, sample_rate: int = SAMPLE_RATE,
                name: str | None = None, on_progress: Callable[[float], None] | None = None,
                vad: VADConfig | None = None, language: str | None = None) -> list[SegmentRecord]:
        """All segments of a file path or a (samples,) array. Raises ``AudioError`` for a
        file that cannot be used; a silent recording gives an empty list. ``vad`` and
        ``language`` override the predictor's settings for this call only."""
        if isinstance(audio, (str, os.PathLike)):
            from .audio import iter_blocks

            path = str(audio)
            blocks = iter_blocks(path, block_seconds=self.config.block_seconds)
            chunks = _progress_chunks((b.audio for b in blocks), on_progress)
            return list(self.stream(chunks, name=name or path, vad=vad, language=language))
        x = _as_16k(audio, sample_rate)
        step = int(self.config.block_seconds * SAMPLE_RATE)
        chunks = _progress_chunks((x[i:i + step] for i in range(0, len(x), step)), on_progress)
        return list(self.stream(chunks, name=name or "<array>", vad=vad, language=language))

    def stream(self, chunks: Iterable[np.ndarray], name: str = "<stream>", sample_rate: int = SAMPLE_RATE,
               vad: VADConfig | None = None, language: str | None = None) -> Iterator[SegmentRecord]:
        """Streaming: chunks of audio in (any size, mono float32 at ``sample_rate``), records out
        once about ``0.75 * transcribe_window`` s of speech has closed (the segments transcribed
        together; ``transcribe_window=0``: as soon as each segment closes). Memory is bounded by
        the transcription window, never by the length of the stream."""
        records = self._stream(chunks, name, sample_rate, vad, language)
        yield from self._adapted(records) if self.config.adapt else records

    def _stream(self, chunks: Iterable[np.ndarray], name: str, sample_rate: int, vad: VADConfig | None,
                language: str | None) -> Iterator[SegmentRecord]:
        seg = Segmenter(vad or self.config.vad)
        batch: list[Segment] = []
        window = self.config.transcribe_window
        t0 = time.perf_counter()
        for chunk in chunks:
            batch += seg.feed(_as_16k(chunk, sample_rate))
            self.timings["read+vad"] += time.perf_counter() - t0
            if batch and sum(s.duration for s in batch) >= 0.75 * window:
                yield from self.analyze(batch, name, language=language)
                batch = []
            t0 = time.perf_counter()
        batch += seg.flush()
        if batch:
            yield from self.analyze(batch, name, language=language)

    def _adapted(self, records: Iterable[SegmentRecord]) -> Iterator[SegmentRecord]:
        """The records of a whole recording again, their emotion outputs recomputed from
        features adapted to the recording (unchanged below ``adapt_min_segments`` segments)."""
        from dataclasses import replace

        from .emotion_model import adapt_to_recording

        records = list(records)
        mean = self.scorer.training_mean()
        if len(records) < self.config.adapt_min_segments or mean is None or not self._features:
            self._features = []
            yield from records
            return
        pooled = adapt_to_recording(np.concatenate(self._features), mean)
        self._features = []
        emo = self.scorer.score_features(pooled)
        for i, r in enumerate(records):
            yield replace(r, emotion=Scores.from_probs(emo.labels, emo.probs[i]) if emo.labels else r.emotion,
                          **{k: round(float(v), 4) for k, v in zip(emo.attributes, emo.dims[i])})

    def analyze(self, segments: Sequence[Segment], name: str = "<array>",
                language: str | None = None) -> list[SegmentRecord]:
        """Records for segments whose audio is known (16 kHz): emotion heads, transcript, sentiment."""
        segments = [s for s in segments if s.audio is not None and
                    len(s.audio) >= self.config.min_segment_seconds * SAMPLE_RATE]
        if not segments:
            return []
        t0 = time.perf_counter()
        if self.config.adapt:  # keep the features: the recording's records are redone at its end
            feats = self.scorer.features([s.audio for s in segments])
            self._features.append(feats)
            emo = self.scorer.score_features(feats)
        else:
            emo = self.scorer.score([s.audio for s in segments])
        t1 = time.perf_counter()
        texts, langs = self._transcribe(segments, language or self.config.language)
        t2 = time.perf_counter()
        sents = self._sentiment(texts)
        self.timings["emotion"] += t1 - t0
        self.timings["transcribe"] += t2 - t1
        self.timings["sentiment"] += time.perf_counter() - t2
        release_memory()  # segments of ever-new lengths fragment the heap: keeps memory flat
        out = []
        for i, s in enumerate(segments):
            dims = {k: round(float(v), 4) for k, v in zip(emo.attributes, emo.dims[i])}
            emotion = Scores.from_probs(emo.labels, emo.probs[i]) if emo.labels else Scores("", {})
            out.append(SegmentRecord(
                file=name, start=round(s.start, 3), end=round(s.end, 3), transcript=texts[i],
                sentiment=sents[i], valence=dims.get("valence"), arousal=dims.get("arousal"),
                dominance=dims.get("dominance"), emotion=emotion, language=langs[i], model=self.version))
        return out

    def _transcribe(self, segments: Sequence[Segment], language: str | None) -> tuple[list[str], list[str | None]]:
        """Text and language per segment, each from that segment's audio alone."""
        if self.transcriber is None:
            return [""] * len(segments), [language] * len(segments)
        texts: list[str] = [""] * len(segments)
        langs: list[str | None] = [language] * len(segments)
        batched = getattr(self.transcriber, "transcribe_segments", None)
        for group in _groups(segments, self.config.transcribe_window):
            audios = [segments[i].audio for i in group]
            if batched is not None:
                results = batched(audios, language)
            else:  # a transcriber with only transcribe(): one call per segment
                results = [self.transcriber.transcribe(a, language) if language else self.transcriber.transcribe(a)
                           for a in audios]
            for i, t in zip(group, results):
                texts[i] = (t.text or "").strip()
                langs[i] = getattr(t, "language", None) or language
        return texts, langs

    def _sentiment(self, texts: Sequence[str]) -> list[Scores | None]:
        idx = [i for i, t in enumerate(texts) if t]
        out: list[Scores | None] = [None] * len(texts)  # no text, nothing to judge: null, not "neutral"
        if self.labeler is None or not idx:
            return out
        for i, s in zip(idx, self.labeler([texts[i] for i in idx])):
            out[i] = Scores.from_probs(SENTIMENT_LABELS, s.probs)
        return out

    # -- files and batches

    def predict_file(self, path: str | os.PathLike, on_progress: Callable[[float], None] | None = None
                     ) -> FileResult:
        """Like :meth:`predict` but never raises for a bad file: the error is in the result."""
        path = str(path)
        try:
            duration = info(path).duration
            segments = self.predict(path, on_progress=on_progress)
        except AudioError as e:
            return FileResult(file=path, error=e.cause)
        except Exception as e:  # noqa: BLE001 - any failure but an interrupt is this file's alone
            log.debug("prediction failed on %s", path, exc_info=True)
            return FileResult(file=path, error=f"{type(e).__name__}: {e}")
        note = None if segments else "no speech detected"
        return FileResult(file=path, segments=segments, duration=round(duration, 3), note=note)

    def predict_batch(self, paths: Sequence[str | os.PathLike], jobs: int = 1,
                      show_progress: bool | None = None) -> Iterator[FileResult]:
        """Results for many files, in input order. ``jobs`` > 1 runs worker processes (each
        loads the model once, with ``threads // jobs`` threads) when the predictor was built by
        :func:`load`. Progress on stderr: files, or audio seconds for a single file."""
        from .utils import progress

        paths = [str(p) for p in paths]
        jobs = max(1, min(int(jobs), len(paths)))
        disable = None if show_progress is None else not show_progress
        if len(paths) == 1:
            try:
                total = round(info(paths[0]).duration, 1)
            except Exception:  # noqa: BLE001 - predict_file reports it
                total = None
            bar = progress(total=total, desc="predict", unit="s", disable=disable)
            try:
                yield self.predict_file(paths[0], on_progress=lambda s: bar.update(round(s, 1)))
            finally:
                bar.close()
            return
        bar = progress(total=len(paths), desc="predict", unit="file", disable=disable)
        try:
            if jobs == 1 or self.spec is None:
                for p in paths:
                    r = self.predict_file(p)
                    bar.update(1)
                    yield r
                return
            from .jobs import ItemFailed, WorkerDied, run_pool

            spec = dict(self.spec, threads=max(1, self.config.threads // jobs))
            for i, r in run_pool(paths, _worker_predict, jobs, init=_worker_init, init_args=(spec,)):
                if isinstance(r, WorkerDied):  # e.g. the OOM killer: this file failed, the batch goes on
                    r = FileResult(file=paths[i], error=f"{r.cause} while predicting this file")
                elif isinstance(r, ItemFailed):
                    r = FileResult(file=paths[i], error=r.cause)
                bar.update(1)
                yield r
        finally:
            bar.close()


def _groups(segments: Sequence[Segment], window: float) -> list[list[int]]:
    """Indices of consecutive segments whose durations add up to at most ``window`` s
    (``window`` <= 0: one segment a group)."""
    groups: list[list[int]] = []
    size = 0.0
    for i, s in enumerate(segments):
        d = s.duration
        if not groups or window <= 0 or size + d > window:
            groups.append([i])
            size = d
        else:
            groups[-1].append(i)
            size += d
    return groups


def _progress_chunks(chunks: Iterable[np.ndarray], on_progress) -> Iterator[np.ndarray]:
    for c in chunks:
        yield c
        if on_progress is not None:
            on_progress(len(c) / SAMPLE_RATE)


def _as_16k(x: np.ndarray, sample_rate: int) -> np.ndarray:
    from .audio import resample, to_mono

    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = to_mono(x)
    if x.ndim != 1:
        raise ValueError(f"audio must be (samples,) or (samples, channels), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("audio contains NaN or Inf samples")
    return resample(x, sample_rate, SAMPLE_RATE) if sample_rate != SAMPLE_RATE else x


_WORKER: Predictor | None = None


def _worker_init(spec: dict) -> None:
    """Build the worker's predictor from ``spec``: ``load(**spec)``, or, when the spec names a
    ``factory`` (``"module:function"``), that function called with the other keys."""
    global _WORKER
    spec = dict(spec)
    factory = spec.pop("factory", None)
    if factory:
        import importlib

        module, _, name = factory.partition(":")
        _WORKER = getattr(importlib.import_module(module), name)(**spec)
        return
    import torch

    torch.set_num_threads(spec.get("threads", 1))
    _WORKER = load(**spec)


def _worker_predict(path: str) -> FileResult:
    assert _WORKER is not None
    return _WORKER.predict_file(path)


# ----------------------------------------------------------------------------- loading


def load(path: str | os.PathLike | None = None, *, backend: str = "torch", transcriber: str | None = "whisper-tiny.en",
         language: str | None = None, sentiment: str = "vader", threads: int = 2, device: str = "cpu",
         vad: VADConfig | dict | None = None, onnx_dir: str | os.PathLike | None = None,
         **config) -> Predictor:
    """Build a :class:`Predictor`: the bundled default emotion model (``path=None``) or a saved
    model file, its Whisper encoder, the transcriber (``None``/``"none"``: no transcripts) and
    the sentiment labeler. ``backend="onnx"`` (or ``"onnx-int8"``) runs the encoder and heads
    with ONNX Runtime from ``onnx_dir`` (exported by ``emovox export onnx``; default: exported on
    first use into the cache directory)."""
    import torch

    from .emotion_model import EmotionModel, default_model_path

    torch.set_num_threads(threads)
    cfg = PredictConfig(transcriber=transcriber or "none", language=language, sentiment=sentiment,
                        backend=backend, threads=threads, vad=vad if isinstance(vad, VADConfig) else VADConfig(**(vad or {})),
                        **config)
    model_path = Path(path) if path is not None else default_model_path()
    if not model_path.exists():
        raise FileNotFoundError(f"emotion model not found: {model_path}")
    heads = EmotionModel.load(model_path)
    version = model_version(heads, model_path)
    scorer = make_scorer(model_path, heads, backend, onnx_dir=onnx_dir, device=device, threads=threads,
                         batch_size=cfg.batch_segments, version=version)
    tr = None
    if cfg.transcriber and cfg.transcriber != "none":
        from .text.transcribe import get_transcriber

        tr = get_transcriber(cfg.transcriber, language=language, threads=threads)
    labeler = None
    if tr is not None and sentiment and sentiment != "none":
        from .text.sentiment import get_labeler

        labeler = get_labeler(sentiment)
    spec = dict(path=str(model_path), backend=backend, transcriber=cfg.transcriber, language=language,
                sentiment=sentiment, threads=threads, device=device, vad=asdict(cfg.vad),
                onnx_dir=str(onnx_dir) if onnx_dir else None, **config)
    return Predictor(scorer, tr, labeler, cfg, spec=spec)


def model_version(heads, path: Path) -> str:
    """``emovox-<package version>/<model version or file stem>``."""
    return f"emovox-{__version__}/{heads.version or path.stem}"


# ----------------------------------------------------------------------------- inputs


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """Files as given, and the audio files (by suffix; hidden ones skipped) under each folder,
    sorted. What a file holds is decided from its bytes when it is read, not from its name."""
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS
                          and not any(part.startswith(".") for part in f.relative_to(p).parts))
        else:
            out.append(str(p))
    return out
