"""Many short segments through one CTranslate2 Whisper model, each transcribed from its own audio.

Why: faster-whisper pads every call to a 30 s window, so transcribing VAD segments one call each
pays a full 30 s encoder pass per segment; joining segments into one window and handing words
back by their timestamps is cheaper but not sound (word times drift by more than a short pause,
so words land on a neighbour and a segment can come back empty).

How (:class:`SegmentDecoder`), for a batch of segments:

1. each segment's log-mel spectrogram is computed from its audio alone (faster-whisper's
   feature extractor and normalisation), followed by at least ``pad`` s of zero frames
   (faster-whisper's padding value; up to the next multiple of :data:`BUCKET_FRAMES`), and
   encoded alone by ``model.encode``: the encoder's cost follows the segment's length instead
   of 30 s (CTranslate2 accepts shorter inputs);
2. the rest of the 1500 encoder frames (20 ms each) is filled from a cached reference: the
   encoder output of a 30 s window that holds :data:`BABBLE_SECONDS` s of synthetic vowels
   (:func:`babble`: pulses through formant filters, no words) and silence. Whisper's decoder
   reads the frames after speech as "silence that follows speech", and an encoder frame depends
   on its whole window (global attention), so silence encoded alone is not that; hence a
   reference that holds sound first. With it, each segment's words match its clip on the
   joined-clips tests (tests/test_predict_words.py: tiny.en and base, pauses 0.3-0.8 s). The
   segment's own frames always cover at least the reference's vowels plus ``pad``, so the
   decoder never sees them;
3. the language (multilingual models, none given) is detected on every segment in one batched
   call and chosen once per batch by duration-weighted probability;
4. all segments are decoded in batched ``generate`` calls (``max_batch`` at a time),
   prompt-free (no previous text; ``initial_prompt`` only if the user set one),
   ``without_timestamps``, blank and non-speech tokens suppressed as faster-whisper does,
   beam search at temperature 0 (deterministic), at most ``10 + 8 x seconds`` tokens (stops
   repetition loops), and faster-whisper's no-speech rule (no-speech probability over 0.6 and
   average log-probability under -1 gives an empty text).

So no word can cross a segment boundary: the decoder of a segment sees that segment's audio
and nothing of its neighbours. Decoding results do not depend on which segments share a batch
(CTranslate2 scores each row alone; checked bit for bit).
"""

from __future__ import annotations

import math
import threading
from typing import Sequence

import numpy as np

from ..audio import SAMPLE_RATE

BABBLE_SECONDS = 1.0
"""Length of the synthetic vowels at the start of the reference window."""
MEL_HOP = 160  # samples per mel frame (10 ms); two mel frames per encoder frame
WINDOW_FRAMES = 3000  # mel frames in Whisper's 30 s window
BUCKET_FRAMES = 50
"""A segment's encoder input (audio + ``pad`` of silence) is rounded up to a multiple of this
many mel frames (0.5 s): CTranslate2 keeps buffers per input shape, so segments of ever-new
lengths made its memory grow without bound (about 190 MB over 240 segments of 0.5-12 s), while
at most 60 shapes keep it flat at no measurable cost in time. Coarser steps add more silence
after short segments, which changed how Whisper writes spelled letters and digits (AN4 WER
0.328 unrounded, 0.347 at 0.5 s, 0.369 at 2 s; ``emovox bench shared-pass --bucket-frames``)."""
_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))


def babble(seconds: float = BABBLE_SECONDS, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Deterministic vowel-like sound (no words): a pulse train at 110-140 Hz through three
    formant resonators, a new vowel every 0.25 s. float32 (samples,), peak 0.3."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(0)
    n, syl = int(seconds * sr), int(0.25 * sr)
    out = np.zeros(n, np.float64)
    for k, s in enumerate(range(0, n, syl)):
        m = min(syl, n - s)
        src = np.zeros(m)
        src[np.arange(0, m, sr / (110 + 30 * rng.random())).astype(int)] = 1.0
        y = src
        for f, bw in zip(_VOWELS[k % len(_VOWELS)], (80, 100, 120)):
            r, th = math.exp(-math.pi * bw / sr), 2 * math.pi * f / sr
            y = lfilter([1 - r], [1, -2 * r * math.cos(th), r * r], y)
        out[s:s + m] = y * np.sin(np.pi * np.arange(m) / m) ** 0.5
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


class SegmentDecoder:
    """Transcribes lists of 16 kHz segments (each at most 30 s) with a ``faster_whisper.WhisperModel``.

    ``beam_size``, ``initial_prompt``, ``temperature`` and ``seed`` come from the transcriber's
    config. Callers serialise calls (the transcriber's lock)."""

    def __init__(self, model, beam_size: int = 5, initial_prompt: str | None = None, temperature: float = 0.0,
                 seed: int = 0, pad: float = 1.0, max_batch: int = 4):
        self.model = model  # faster_whisper.WhisperModel
        self.beam_size = beam_size
        self.initial_prompt = initial_prompt
        self.temperature = temperature
        self.seed = seed
        self.pad_frames = int(pad * 100)
        self.max_batch = max(1, max_batch)
        self._fill: np.ndarray | None = None
        self._fill_from = 0  # mel frames a segment's own encoding must cover at least
        self._lock = threading.Lock()

    # -- encoder

    def _mel(self, audio: np.ndarray) -> np.ndarray:
        """(n_mels, frames) as faster-whisper computes it for this audio alone (its last frame,
        which covers the padding, dropped as faster-whisper does)."""
        mel = self.model.feature_extractor(np.asarray(audio, np.float32))
        return mel[:, : max(0, mel.shape[1] - 1)][:, :WINDOW_FRAMES]

    def _encode(self, mel: np.ndarray, frames: int) -> np.ndarray:
        """Encoder output (T, d) of ``mel`` followed by zero frames up to ``frames`` rounded up
        to :data:`BUCKET_FRAMES`."""
        frames = min(WINDOW_FRAMES, -(-frames // BUCKET_FRAMES) * BUCKET_FRAMES)
        x = np.zeros((mel.shape[0], frames), np.float32)
        x[:, : mel.shape[1]] = mel[:, :frames]
        return np.asarray(self.model.encode(x))[0]

    def fill(self) -> np.ndarray:
        """The reference encoder output (1500, d), computed once per model."""
        with self._lock:
            if self._fill is None:
                mel = self._mel(babble())
                self._fill = self._encode(mel, WINDOW_FRAMES)
                self._fill_from = mel.shape[1] + self.pad_frames
        return self._fill

    def encode_segment(self, audio: np.ndarray) -> np.ndarray:
        """(1500, d): the segment's own encoder output, then the reference's frames."""
        self.fill()
        mel = self._mel(audio)
        return self.window(self._encode(mel, max(mel.shape[1] + self.pad_frames, self._fill_from)))

    def window(self, own: np.ndarray) -> np.ndarray:
        """(1500, d): encoder frames ``own`` (T, d) of a segment, then the reference's frames."""
        out = self.fill().copy()
        n = min(len(own), len(out))
        out[:n] = own[:n]
        return out

    # -- decoder

    def transcribe(self, audios: Sequence[np.ndarray], language: str | None = None,
                   encoded: Sequence[np.ndarray] | None = None) -> list[tuple[str, str | None]]:
        """(text, language) per segment, in order. ``language`` None: English for English-only
        models, else detected once for the batch. ``encoded``: each segment's own encoder frames
        (T, d), computed elsewhere (e.g. by the PyTorch encoder; ``emovox bench shared-pass``
        measures that choice), instead of CTranslate2's encoder."""
        import ctranslate2

        durations = [len(a) / SAMPLE_RATE for a in audios]
        out: list[tuple[str, str | None]] = [("", language)] * len(audios)
        idx = [i for i, a in enumerate(audios) if len(a) >= MEL_HOP]
        if not idx:
            return out
        wm, m = self.model, self.model.model
        feats = np.stack([self.encode_segment(audios[i]) if encoded is None else self.window(encoded[i])
                          for i in idx])
        if not m.is_multilingual:
            language = "en"
        elif language is None:
            language = self._detect(feats, [durations[i] for i in idx])
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        tok = Tokenizer(wm.hf_tokenizer, m.is_multilingual, task="transcribe", language=language)
        prompt = self._prompt(tok)
        suppress = list(get_suppressed_tokens(tok, [-1]))
        kw = dict(beam_size=self.beam_size)
        if self.temperature > 0:
            ctranslate2.set_random_seed(self.seed)
            kw = dict(beam_size=1, sampling_topk=0, sampling_temperature=self.temperature)
        for b in range(0, len(idx), self.max_batch):
            rows = idx[b:b + self.max_batch]
            limits = [int(10 + 8 * durations[i]) for i in rows]
            results = m.generate(
                ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[b:b + len(rows)])),
                [prompt] * len(rows), max_length=min(wm.max_length, len(prompt) + max(limits)),
                suppress_blank=True, suppress_tokens=suppress, return_scores=True, return_no_speech_prob=True, **kw)
            for i, limit, r in zip(rows, limits, results):
                ids = [t for t in r.sequences_ids[0] if t < tok.eot][:limit]
                avg_logprob = r.scores[0] * len(r.sequences_ids[0]) / (len(r.sequences_ids[0]) + 1)
                silent = r.no_speech_prob > 0.6 and avg_logprob < -1.0  # faster-whisper's rule
                out[i] = ("" if silent else tok.decode(ids).strip(), language)
        return out

    def _prompt(self, tok) -> list[int]:
        prompt = []
        if self.initial_prompt:
            prompt = [tok.sot_prev] + tok.encode(" " + self.initial_prompt.strip())[-(self.model.max_length // 2 - 1):]
        return prompt + list(tok.sot_sequence) + [tok.no_timestamps]

    def _detect(self, feats: np.ndarray, durations: list[float]) -> str:
        """One language for the batch: each segment's probabilities weighted by its duration."""
        import ctranslate2

        votes: dict[str, float] = {}
        results = self.model.model.detect_language(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats)))
        for probs, d in zip(results, durations):
            for token, p in probs:
                votes[token] = votes.get(token, 0.0) + p * d
        return max(votes, key=votes.get)[2:-2]  # "<|de|>" -> "de"
