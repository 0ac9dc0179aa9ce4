"""Text to speech with espeak-ng, for generated test clips and the demo recording
(:func:`demo_recording`).

The ``espeakng-loader`` package (``pip install 'emovox[tts]'``) ships the espeak-ng shared
library and its data; this module drives the library's C API through ctypes in synchronous
mode and collects the 16-bit samples it hands to a callback. espeak-ng speaks at 22 050 Hz;
:func:`synthesize_array` resamples to 16 kHz mono float32 and :func:`synthesize` writes that to
a WAV or FLAC file (atomically).

espeak-ng keeps one global state per process, so calls are serialised with a lock.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, resample
from ..utils import atomic_open

DEFAULT_RATE = 140
"""Speaking rate in words per minute (espeak-ng's own default is 175; slower is clearer to ASR)."""

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH = 1, 2, 3
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_lock = threading.Lock()
_engine: "_Espeak | None" = None


class SynthesisError(RuntimeError):
    """espeak-ng is missing or refused the request."""


class _Espeak:
    """The loaded library, initialised once; ``speak`` returns int16 samples at ``sample_rate``."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:
            raise SynthesisError("speech synthesis needs espeak-ng: pip install 'emovox[tts]' "
                                 "(the espeakng-loader package)") from e
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synchronize.restype = ctypes.c_int
        data = espeakng_loader.get_data_path()
        sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), 0)
        if sr <= 0:
            raise SynthesisError(f"espeak-ng failed to initialise with data at {data}")
        self.lib = lib
        self.sample_rate = int(sr)
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference: ctypes does not
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def speak(self, text: str, voice: str, rate: int, pitch: int | None) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SynthesisError(f"espeak-ng has no voice {voice!r} (try 'en-us', 'en', 'de', 'ar')")
        self.lib.espeak_SetParameter(_RATE, int(rate), 0)
        if pitch is not None:
            self.lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise SynthesisError(f"espeak-ng could not synthesise {text[:40]!r} (error {err})")
        self.lib.espeak_Synchronize()
        out = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        self._chunks = []
        return out


def synthesize_array(text: str, voice: str = "en-us", rate: int = DEFAULT_RATE, pitch: int | None = None,
                     sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Speak ``text``; returns mono float32 samples in [-1, 1] at ``sample_rate`` (samples,).

    ``rate`` is words per minute (80..450), ``pitch`` 0..100 (espeak-ng default 50).
    """
    global _engine
    if not text or not text.strip():
        raise ValueError("synthesize: empty text")
    with _lock:
        if _engine is None:
            _engine = _Espeak()
        pcm = _engine.speak(text, voice, rate, pitch)
        native = _engine.sample_rate
    if len(pcm) == 0:
        raise SynthesisError(f"espeak-ng produced no audio for {text[:40]!r}")
    return resample(pcm.astype(np.float32) / 32768.0, native, sample_rate)


def synthesize(text: str, path: str | os.PathLike, voice: str = "en-us", rate: int = DEFAULT_RATE,
               pitch: int | None = None, sample_rate: int = SAMPLE_RATE) -> Path:
    """Speak ``text`` into an audio file (16 kHz mono 16-bit; format from the suffix, WAV when
    unknown), written atomically. Returns the path."""
    import soundfile as sf

    path = Path(path)
    audio = synthesize_array(text, voice=voice, rate=rate, pitch=pitch, sample_rate=sample_rate)
    fmt = {".flac": "FLAC", ".ogg": "OGG"}.get(path.suffix.lower(), "WAV")
    with atomic_open(path, "wb") as f:
        sf.write(f, audio, sample_rate, format=fmt, subtype="PCM_16" if fmt != "OGG" else "VORBIS")
    return path


DEMO_SENTENCES = (
    "Hello everyone, thank you for coming today.",
    "I am absolutely delighted with the results, this is wonderful news and I love it.",
    "Unfortunately the second project was a terrible failure and we lost a lot of money.",
    "I am angry and disappointed, this is awful and nobody cares.",
    "The meeting will continue after a short break at three o'clock.",
    "But I am hopeful, the team is great and next year will be fantastic.",
)
"""What the demo recording says (``emovox demo``): sentences of differing sentiment."""


def demo_recording(path: str | os.PathLike, pause: float = 0.8) -> Path:
    """Write an example recording (about 25 s, 16 kHz WAV/FLAC by suffix): :data:`DEMO_SENTENCES`
    spoken by espeak-ng at alternating pitches, separated by ``pause`` s of silence."""
    import soundfile as sf

    gap = np.zeros(int(pause * SAMPLE_RATE), np.float32)
    parts = [gap[: len(gap) // 2]]
    for i, text in enumerate(DEMO_SENTENCES):
        parts += [synthesize_array(text, pitch=40 + 8 * (i % 3)), gap]
    audio = np.concatenate(parts)
    path = Path(path)
    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    with atomic_open(path, "wb") as f:
        sf.write(f, audio, SAMPLE_RATE, format=fmt, subtype="PCM_16")
    return path
