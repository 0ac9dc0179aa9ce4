"""Waveform corruptions that imitate other rooms, microphones and channels: for training-time
augmentation and for noisy / telephone copies of test corpora.

Every corruption maps a mono float32 clip at ``sample_rate`` Hz to a clip of the same length
and rate, and is deterministic: its random choices come from ``seed`` and the clip's own bytes,
so the same clip gets the same corruption on every run and in every process.

A corruption is named by a spec string, ``kind[:arg[:arg]]``:

==================  =========================================================================
``clean``           the clip unchanged
``noise:SNR[:KIND]`` additive noise at SNR dB; KIND ``white``, ``pink`` (default) or ``babble``
                    (the clip's own speech reversed and shifted, four voices: speech-shaped and
                    unintelligible)
``gain:DB``         level change by DB decibels (clipped to +-1 like a real converter)
``reverb:RT60``     a synthetic room impulse response (exponentially decaying noise with
                    reverberation time RT60 s, direct path first), level kept
``telephone``       300-3400 Hz band, 8 kHz sampling and G.711 mu-law 8-bit quantisation, back
                    at the original rate
``codec:NAME``      a round trip through a lossy codec: ``opus``, ``vorbis`` or ``mp3``
                    (libsndfile, low bit rate settings)
``speed:FACTOR``    speed perturbation (tempo and pitch), then cut or zero-padded to the length
``mix``             one of the above, drawn per clip with random parameters (the training
                    augmentation: noise 0-20 dB, gain -20..+6 dB, reverb 0.2-0.9 s, telephone,
                    codecs, speed 0.9-1.1; a third of the clips gets a second corruption)
==================  =========================================================================
"""

from __future__ import annotations

import io
import zlib
from typing import Callable

import numpy as np

KINDS = ("clean", "noise", "gain", "reverb", "telephone", "codec", "speed", "mix")


def _rng(audio: np.ndarray, spec: str, seed: int) -> np.random.Generator:
    digest = zlib.crc32(np.ascontiguousarray(audio, np.float32).tobytes())
    return np.random.default_rng([seed, digest, zlib.crc32(spec.encode())])


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(f), n)


def _babble(x: np.ndarray, rng: np.random.Generator, voices: int = 4) -> np.ndarray:
    rev = x[::-1].astype(np.float64)
    out = np.zeros(len(x))
    for _ in range(voices):
        out += rng.uniform(0.5, 1.0) * np.roll(rev, int(rng.integers(0, max(1, len(x)))))
    return out


def add_noise(x: np.ndarray, snr_db: float, kind: str = "pink", rng: np.random.Generator | None = None) -> np.ndarray:
    """``x`` plus noise scaled to ``snr_db`` dB below the clip's RMS level."""
    rng = rng or np.random.default_rng(0)
    if kind == "white":
        noise = rng.standard_normal(len(x))
    elif kind == "pink":
        noise = _pink(len(x), rng)
    elif kind == "babble":
        noise = _babble(x, rng)
    else:
        raise ValueError(f"noise kind must be white, pink or babble, got {kind!r}")
    level, n = _rms(x), _rms(noise)
    if level == 0.0 or n == 0.0:
        return x.astype(np.float32)
    return (x + noise * (level / n) * 10.0 ** (-snr_db / 20.0)).astype(np.float32)


def gain(x: np.ndarray, db: float) -> np.ndarray:
    return np.clip(x * 10.0 ** (db / 20.0), -1.0, 1.0).astype(np.float32)


def reverb(x: np.ndarray, rt60: float, sample_rate: int = 16000, rng: np.random.Generator | None = None) -> np.ndarray:
    """Convolution with a synthetic impulse response of reverberation time ``rt60`` seconds (the
    level falls by 60 dB in ``rt60``); the output keeps the input's RMS level."""
    from scipy.signal import fftconvolve

    rng = rng or np.random.default_rng(0)
    n = max(1, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    ir = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # ln(1000): -60 dB at rt60
    ir[0] = 1.0 + abs(ir[0])  # the direct path
    y = fftconvolve(x.astype(np.float64), ir)[: len(x)]
    level, out = _rms(x), _rms(y)
    return (y * (level / out) if out > 0 else y).astype(np.float32)


def telephone(x: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """A narrow-band telephone channel: band-pass 300-3400 Hz, 8 kHz, mu-law 8 bit, back."""
    from scipy.signal import butter, resample_poly, sosfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=sample_rate, output="sos")
    y = resample_poly(sosfilt(sos, x.astype(np.float64)), 8000, sample_rate)
    peak = max(float(np.max(np.abs(y))) if len(y) else 0.0, 1e-9)
    scale = min(1.0, 0.9 / peak)  # a line level that does not clip
    mu = 255.0
    z = np.sign(y * scale) * np.log1p(mu * np.abs(y * scale)) / np.log1p(mu)
    z = np.round((z + 1.0) * 127.5) / 127.5 - 1.0  # 8-bit codes
    y = np.sign(z) * np.expm1(np.abs(z) * np.log1p(mu)) / mu / scale
    out = resample_poly(y, sample_rate, 8000)
    return np.pad(out, (0, max(0, len(x) - len(out))))[: len(x)].astype(np.float32)


_CODECS = {"opus": ("OGG", "OPUS"), "vorbis": ("OGG", "VORBIS"), "mp3": ("MP3", "MPEG_LAYER_III")}


def codec(x: np.ndarray, name: str = "opus", sample_rate: int = 16000) -> np.ndarray:
    """Encode and decode with a lossy codec through libsndfile (in memory)."""
    import soundfile as sf

    if name not in _CODECS:
        raise ValueError(f"codec must be one of {', '.join(_CODECS)}, got {name!r}")
    fmt, subtype = _CODECS[name]
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), sample_rate, format=fmt, subtype=subtype, compression_level=0.9)
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    y = y.reshape(len(y), -1).mean(1) if y.ndim > 1 else y
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)].astype(np.float32)


def speed(x: np.ndarray, factor: float) -> np.ndarray:
    import torch

    from .augment import speed_perturb

    y = speed_perturb(torch.from_numpy(np.ascontiguousarray(x, np.float32)), factor).numpy()
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)].astype(np.float32)


def _random_one(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    choice = rng.choice(["noise", "babble", "gain", "reverb", "telephone", "codec", "speed"],
                        p=[0.25, 0.1, 0.15, 0.2, 0.1, 0.1, 0.1])
    if choice == "noise":
        return add_noise(x, rng.uniform(0, 20), str(rng.choice(["white", "pink"])), rng)
    if choice == "babble":
        return add_noise(x, rng.uniform(0, 15), "babble", rng)
    if choice == "gain":
        return gain(x, rng.uniform(-20, 6))
    if choice == "reverb":
        return reverb(x, rng.uniform(0.2, 0.9), sr, rng)
    if choice == "telephone":
        return telephone(x, sr)
    if choice == "codec":
        return codec(x, str(rng.choice(list(_CODECS))), sr)
    return speed(x, rng.uniform(0.9, 1.1))


def parse(spec: str) -> tuple[str, list[str]]:
    """``"noise:10:pink"`` -> ``("noise", ["10", "pink"])``; ValueError for an unknown kind."""
    kind, *args = str(spec).strip().lower().split(":")
    if kind not in KINDS:
        raise ValueError(f"unknown corruption {spec!r}; kinds: {', '.join(KINDS)}")
    return kind, args


def corrupt(audio: np.ndarray, spec: str, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Apply the corruption named by ``spec`` (module docstring) to one clip."""
    kind, args = parse(spec)
    x = np.asarray(audio, dtype=np.float32)
    rng = _rng(x, spec, seed)
    try:
        ops: dict[str, Callable[[], np.ndarray]] = {
            "clean": lambda: x,
            "noise": lambda: add_noise(x, float(args[0]), args[1] if len(args) > 1 else "pink", rng),
            "gain": lambda: gain(x, float(args[0])),
            "reverb": lambda: reverb(x, float(args[0]), sample_rate, rng),
            "telephone": lambda: telephone(x, sample_rate),
            "codec": lambda: codec(x, args[0] if args else "opus", sample_rate),
            "speed": lambda: speed(x, float(args[0])),
            "mix": lambda: _mix(x, sample_rate, rng),
        }
        return ops[kind]()
    except IndexError:
        raise ValueError(f"corruption {spec!r} needs an argument (see emovox.features.corrupt)") from None


def _mix(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    y = _random_one(x, sr, rng)
    return _random_one(y, sr, rng) if rng.random() < 1 / 3 else y
