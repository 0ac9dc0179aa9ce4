"""Voice activity segmentation for recordings of any length, with Silero VAD.

Audio goes in as chunks of any size (16 kHz mono float32); speech segments come out as soon as
they are closed, so a recording of hours is segmented with memory bounded by the longest
segment::

    seg = Segmenter()
    for block in emovox.audio.iter_blocks("long.flac"):
        for s in seg.feed(block.audio):
            ...                      # s.start, s.end (seconds), s.audio (samples,)
    for s in seg.flush():
        ...

Speech probabilities come from Silero VAD's *sequence* ONNX model shipped inside the
``silero-vad`` wheel (no download): one ONNX call per chunk of 32 ms frames, bit-exact with
the stock frame-by-frame model, the LSTM state carried between chunks. The probabilities are
turned into segments by the usual hysteresis (start at ``threshold``, end after
``min_silence`` s below ``neg_threshold``), then:

* segments longer than ``max_segment`` s are cut at the least speech-like frame of their
  second half (Whisper reads at most 30 s; emotion is labelled per utterance);
* segments shorter than ``min_segment`` s are merged with a neighbour closer than
  ``merge_gap`` s when the result stays within ``max_segment``;
* each segment is padded by ``speech_pad`` s on both sides (never past its neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

SAMPLE_RATE = 16000
FRAME = 512
"""Samples per VAD frame at 16 kHz (32 ms)."""
CONTEXT = 64
"""Samples of the previous frame Silero prepends to each frame."""


@dataclass
class VADConfig:
    """Segmentation settings; times in seconds."""

    threshold: float = 0.5
    """Speech starts when the frame probability reaches this."""
    neg_threshold: float | None = None
    """Speech ends below this (default ``threshold - 0.15``, as Silero does)."""
    min_speech: float = 0.25
    """Speech stretches shorter than this are dropped."""
    min_silence: float = 0.5
    """Pause that ends a segment."""
    speech_pad: float = 0.1
    """Padding added each side of a segment."""
    max_segment: float = 15.0
    """Longer segments are split."""
    min_segment: float = 1.0
    """Shorter segments are merged with a close neighbour when possible."""
    merge_gap: float = 1.0
    """Largest pause between two segments that merging may bridge."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"VAD threshold must be in (0, 1), got {self.threshold}")
        if self.max_segment <= 2 * self.speech_pad + FRAME / SAMPLE_RATE:
            raise ValueError(f"max_segment {self.max_segment} s is too short")
        if self.max_segment > 30.0:
            raise ValueError(f"max_segment {self.max_segment} s is longer than Whisper's 30 s window")
        if self.min_speech < 0 or self.min_silence < 0 or self.speech_pad < 0 or self.merge_gap < 0:
            raise ValueError("VAD durations must not be negative")

    @property
    def off_threshold(self) -> float:
        return self.neg_threshold if self.neg_threshold is not None else max(self.threshold - 0.15, 0.01)


@dataclass
class Segment:
    """A stretch of speech: ``start``/``end`` in seconds from the start of the stream and its
    ``audio`` (samples,) float32 at 16 kHz (None when the segmenter was asked not to keep audio)."""

    start: float
    end: float
    audio: np.ndarray | None = field(default=None, repr=False)

    @property
    def duration(self) -> float:
        return self.end - self.start


# ----------------------------------------------------------------------------- probabilities


_MODEL_CACHE: dict[str, object] = {}


def _model_path() -> str:
    from importlib import resources

    return str(resources.files("silero_vad.data").joinpath("silero_vad_16k_sequence.onnx"))


def _session():
    """One onnxruntime session per process (single-threaded; cheap next to the ASR)."""
    if "sequence" not in _MODEL_CACHE:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        _MODEL_CACHE["sequence"] = ort.InferenceSession(_model_path(), sess_options=opts,
                                                       providers=["CPUExecutionProvider"])
    return _MODEL_CACHE["sequence"]


class SpeechProbabilities:
    """Streaming Silero VAD: ``feed(chunk)`` -> probabilities of the whole 32 ms frames
    completed so far (float32 array, one per frame). The remainder waits for the next chunk;
    ``flush()`` zero-pads the last partial frame."""

    def __init__(self, max_frames: int = 512):
        self.max_frames = max_frames
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)

    def feed(self, chunk: np.ndarray) -> np.ndarray:
        x = np.concatenate([self._pending, np.asarray(chunk, np.float32).reshape(-1)])
        n = (len(x) // FRAME) * FRAME
        self._pending = x[n:].copy()
        return self._run(x[:n])

    def flush(self) -> np.ndarray:
        if not len(self._pending):
            return np.zeros(0, np.float32)
        x = np.zeros(FRAME, np.float32)
        x[: len(self._pending)] = self._pending
        self._pending = np.zeros(0, np.float32)
        return self._run(x)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if not len(x):
            return np.zeros(0, np.float32)
        frames = x.reshape(-1, FRAME)
        out = []
        sess = _session()
        for i in range(0, len(frames), self.max_frames):
            f = frames[i:i + self.max_frames]
            ctx = np.empty((len(f), CONTEXT), np.float32)
            ctx[0] = self._context
            ctx[1:] = f[:-1, -CONTEXT:]
            self._context = f[-1, -CONTEXT:].copy()
            p, self._h, self._c = sess.run(["speech_probs", "hn", "cn"],
                                           {"input": np.concatenate([ctx, f], axis=1), "h": self._h, "c": self._c})
            out.append(np.asarray(p, np.float32).reshape(-1))
        return np.concatenate(out)


# ----------------------------------------------------------------------------- segmentation


class Segmenter:
    """Chunks of 16 kHz audio in, closed :class:`Segment` s out (see the module docstring).

    ``keep_audio=False`` returns times only and keeps no audio buffer at all.
    """

    def __init__(self, config: VADConfig | None = None, keep_audio: bool = True):
        self.config = config or VADConfig()
        self.keep_audio = keep_audio
        self._probs = SpeechProbabilities()
        c = self.config
        fps = SAMPLE_RATE / FRAME
        self._min_silence = max(1, int(round(c.min_silence * fps)))
        self._min_speech = max(1, int(round(c.min_speech * fps)))
        self._max_frames = int(c.max_segment * fps) - 2 * int(np.ceil(c.speech_pad * fps))
        self._frame = 0  # frames seen
        self._start: int | None = None  # frame where the open speech stretch started
        self._silence: int | None = None  # frame where the current pause inside it started
        self._seg_probs: list[float] = []  # probabilities of the open stretch
        self._held: list[int] | None = None  # [start, end) samples, unpadded, waiting for a merge
        self._prev_end = 0  # padded end (samples) of the last emitted segment
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # sample index of _buf[0]
        self._samples = 0  # samples fed

    # -- public

    def feed(self, chunk: np.ndarray) -> list[Segment]:
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self._samples += len(chunk)
        if self.keep_audio:
            self._buf = np.concatenate([self._buf, chunk])
        out: list[Segment] = []
        for p in self._probs.feed(chunk):
            out += self._step(float(p))
        self._trim()
        return out

    def flush(self) -> list[Segment]:
        """End of stream: close what is open and return the last segments."""
        out: list[Segment] = []
        for p in self._probs.flush():
            out += self._step(float(p))
        end_frame = min(self._frame, int(np.ceil(self._samples / FRAME)))
        if self._start is not None:
            stop = self._silence if self._silence is not None else end_frame
            out += self._close(self._start, stop)
            self._start = self._silence = None
        if self._held is not None:
            out.append(self._emit(*self._held, final=True))
            self._held = None
        return out

    # -- hysteresis on frame probabilities

    def _step(self, p: float) -> list[Segment]:
        c, i = self.config, self._frame
        self._frame += 1
        out: list[Segment] = []
        if self._start is None:
            if p >= c.threshold:
                self._start, self._silence, self._seg_probs = i, None, [p]
            elif self._held is not None and (i - self._held[1] // FRAME) * FRAME / SAMPLE_RATE > c.merge_gap:
                out.append(self._emit(*self._held))
                self._held = None
            return out
        self._seg_probs.append(p)
        if p >= c.threshold:
            self._silence = None
        elif p < c.off_threshold and self._silence is None:
            self._silence = i
        if self._silence is not None and i + 1 - self._silence >= self._min_silence:
            out += self._close(self._start, self._silence)
            self._start = self._silence = None
        elif i + 1 - self._start >= self._max_frames:
            # too long: cut at the least speech-like frame of the second half
            half = len(self._seg_probs) // 2
            cut = self._start + half + int(np.argmin(self._seg_probs[half:]))
            cut = max(cut, self._start + 1)
            out += self._close(self._start, cut)
            self._seg_probs = self._seg_probs[cut - self._start:]
            self._start, self._silence = cut, None
        return out

    def _close(self, start: int, stop: int) -> list[Segment]:
        """A speech stretch of frames [start, stop) ended: merge, hold or emit."""
        if stop - start < self._min_speech:
            return []
        c = self.config
        s, e = start * FRAME, min(stop * FRAME, self._samples)
        if self._held is None:
            self._held = [s, e]
            return []
        hs, he = self._held
        short = (he - hs) < c.min_segment * SAMPLE_RATE or (e - s) < c.min_segment * SAMPLE_RATE
        fits = (e - hs) + 2 * c.speech_pad * SAMPLE_RATE <= c.max_segment * SAMPLE_RATE
        if short and fits and (s - he) <= c.merge_gap * SAMPLE_RATE:
            self._held = [hs, e]
            return []
        out = [self._emit(hs, he, next_start=s)]
        self._held = [s, e]
        return out

    def _emit(self, s: int, e: int, next_start: int | None = None, final: bool = False) -> Segment:
        pad = int(self.config.speech_pad * SAMPLE_RATE)
        ps = max(s - pad, self._prev_end, 0)
        pe = min(e + pad, self._samples)
        if next_start is not None:
            pe = min(pe, max(e, (e + next_start) // 2))
        self._prev_end = pe
        audio = None
        if self.keep_audio:
            audio = self._buf[ps - self._buf_start: pe - self._buf_start].copy()
        return Segment(start=ps / SAMPLE_RATE, end=pe / SAMPLE_RATE, audio=audio)

    def _trim(self) -> None:
        """Drop buffered audio no future segment can reach."""
        if not self.keep_audio:
            return
        pad = int(self.config.speech_pad * SAMPLE_RATE)
        keep_from = self._samples - pad - FRAME * (self._min_silence + 2)
        if self._held is not None:
            keep_from = min(keep_from, self._held[0] - pad)
        if self._start is not None:
            keep_from = min(keep_from, self._start * FRAME - pad)
        keep_from = max(keep_from, self._prev_end - pad, self._buf_start)
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start = keep_from


def segment_audio(audio: np.ndarray, config: VADConfig | None = None, chunk_seconds: float = 30.0,
                  keep_audio: bool = True) -> list[Segment]:
    """All speech segments of a whole 16 kHz clip (fed through the streaming segmenter)."""
    seg = Segmenter(config, keep_audio=keep_audio)
    step = max(FRAME, int(chunk_seconds * SAMPLE_RATE))
    out: list[Segment] = []
    for i in range(0, len(audio), step):
        out += seg.feed(audio[i:i + step])
    return out + seg.flush()


def segment_stream(chunks: Iterable[np.ndarray], config: VADConfig | None = None,
                   keep_audio: bool = True) -> Iterator[Segment]:
    """Segments of a stream of 16 kHz chunks, yielded as soon as each closes."""
    seg = Segmenter(config, keep_audio=keep_audio)
    for chunk in chunks:
        yield from seg.feed(chunk)
    yield from seg.flush()


def segment_file(path, config: VADConfig | None = None, block_seconds: float = 30.0,
                 keep_audio: bool = True) -> Iterator[Segment]:
    """Segments of an audio file read block by block (``emovox.audio.iter_blocks``): memory
    stays flat however long the recording. Raises ``AudioError`` for unusable files."""
    from .audio import iter_blocks

    yield from segment_stream((b.audio for b in iter_blocks(path, block_seconds=block_seconds)),
                              config, keep_audio=keep_audio)
