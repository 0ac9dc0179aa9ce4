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
