"""Shared test fixtures. Real corpora live in ../shared/data; tests needing them skip when absent.

Everything else uses audio the tests generate (see ``write_audio``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EMOVOX_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with a message when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared corpus data not found at {p} (tests on real corpora need ../shared/data)")
    return p


@pytest.fixture
def shared_data() -> Path:
    return shared_path()


def write_audio(path: str | os.PathLike, seconds: float = 1.0, sr: int = 16000, channels: int = 1,
                freq: float = 220.0, amplitude: float = 0.3, subtype: str = "PCM_16", noise: float = 0.01,
                seed: int = 0) -> Path:
    """Write a tone plus a little noise (a harmonic "voice"-like signal) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    x = sum(amplitude / k * np.sin(2 * np.pi * freq * k * t) for k in (1, 2, 3))
    x = x + noise * rng.standard_normal(len(t))
    x = np.stack([x * (0.8 + 0.2 * c) for c in range(channels)], axis=1) if channels > 1 else x
    sf.write(str(path), x.astype(np.float32), sr, subtype=subtype)
    return path


@pytest.fixture
def make_audio(tmp_path):
    """``make_audio("a.wav", seconds=2, sr=44100, channels=2)`` -> a generated file under tmp_path."""

    def make(name: str, **kwargs) -> Path:
        return write_audio(tmp_path / name, **kwargs)

    return make


# ----------------------------------------------------------------------------- predictor fakes (H8)


class FakeScorer:
    """Deterministic stand-in for the emotion encoder + heads: valence follows the segment's
    loudness, arousal its zero-crossing rate; four categories."""

    version = "fake-emotion-1"
    labels = ["angry", "happy", "neutral", "sad"]

    def score(self, audios):
        from emovox.scoring import EmotionScores

        dims, probs = [], []
        for a in audios:
            a = np.asarray(a, np.float32)
            rms = float(np.sqrt(np.mean(a ** 2)) + 1e-9)
            zcr = float(np.mean(np.abs(np.diff(np.sign(a)))) / 2) if len(a) > 1 else 0.0
            v, ar = float(np.tanh(20 * rms - 1)), float(np.tanh(10 * zcr - 1))
            dims.append([v, ar, (v + ar) / 2])
            logits = np.array([ar - v, v + ar, -abs(v), -ar - v])
            e = np.exp(logits - logits.max())
            probs.append(e / e.sum())
        return EmotionScores(dims=np.array(dims, np.float32), probs=np.array(probs, np.float32),
                             labels=list(self.labels))


class FakeTranscriber:
    """Says how long the segment is, in words the sentiment labeler can read."""

    def transcribe(self, audio, language=None):
        from types import SimpleNamespace

        n = len(audio) / 16000
        return SimpleNamespace(text=f"a great {n:.1f} second segment" if n > 2 else "a bad short one",
                               language=language or "en")


def fake_labeler(texts):
    from types import SimpleNamespace

    return [SimpleNamespace(label="positive", probs=[0.1, 0.2, 0.7]) if "great" in t
            else SimpleNamespace(label="negative", probs=[0.8, 0.15, 0.05]) for t in texts]


def make_fake_predictor(**config):
    """A Predictor with the fakes above (Silero VAD is real)."""
    from emovox.predict import PredictConfig, Predictor

    return Predictor(FakeScorer(), FakeTranscriber(), fake_labeler, PredictConfig(**config))


@pytest.fixture
def fake_predictor():
    return make_fake_predictor()


@pytest.fixture(scope="session")
def speech_clips():
    """Three synthesised English sentences (16 kHz float32 arrays); skips without espeak-ng."""
    synth = pytest.importorskip("emovox.text.synth")
    try:
        return [synth.synthesize_array(s) for s in (
            "The quick brown fox jumps over the lazy dog.",
            "I really love this wonderful sunny morning.",
            "Please close the door when you leave the room.")]
    except synth.SynthesisError as e:  # pragma: no cover - espeak-ng missing
        pytest.skip(str(e))


def speech_recording(clips, pause: float = 1.5, lead: float = 1.0, sr: int = 16000):
    """Clips separated by silence: (audio, [(start, end) of each clip])."""
    parts, truth, t = [np.zeros(int(lead * sr), np.float32)], [], lead
    for c in clips:
        parts.append(np.asarray(c, np.float32))
        truth.append((t, t + len(c) / sr))
        t += len(c) / sr + pause
        parts.append(np.zeros(int(pause * sr), np.float32))
    return np.concatenate(parts), truth
