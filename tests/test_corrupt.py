"""Waveform corruptions (noise, gain, reverberation, telephone, codecs, speed) and corrupted
feature extraction through the cache."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.features.corrupt import corrupt, parse
from emovox.manifest import Manifest, Utterance

from conftest import write_audio


def _speechlike(seconds: float = 1.0, sr: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 3 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / sr) / k for k in range(1, 12))
    return (0.1 * voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2) + 0.003 * rng.standard_normal(len(t))
            ).astype(np.float32)


def _snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean).astype(np.float64) ** 2))


@pytest.mark.parametrize("spec", ["noise:10", "noise:0:white", "noise:5:babble", "gain:-20", "reverb:0.5",
                                  "telephone", "codec:opus", "codec:vorbis", "codec:mp3", "speed:0.9", "mix"])
def test_every_corruption_keeps_length_and_is_deterministic(spec):
    x = _speechlike()
    y = corrupt(x, spec)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert np.array_equal(y, corrupt(x.copy(), spec))  # the same clip, the same corruption
    assert not np.array_equal(y, x)


def test_noise_is_at_the_requested_snr_and_depends_on_the_clip():
    x = _speechlike()
    for snr in (0.0, 10.0, 20.0):
        # the noise is scaled from the measured RMS levels: exact up to float32 rounding
        assert _snr(x, corrupt(x, f"noise:{snr}")) == pytest.approx(snr, abs=0.01)
    other = _speechlike(seed=1)
    n1, n2 = corrupt(x, "noise:10") - x, corrupt(other, "noise:10") - other
    assert not np.allclose(n1, n2)  # a different clip draws different noise


def test_telephone_removes_what_the_channel_cannot_carry():
    sr = 16000
    t = np.arange(sr) / sr
    low, mid, high = (np.sin(2 * np.pi * f * t).astype(np.float32) * 0.3 for f in (100.0, 1000.0, 6000.0))
    keep = lambda x: float(np.std(corrupt(x, "telephone")) / np.std(x))  # noqa: E731
    assert keep(mid) > 0.8 and keep(high) < 0.05 and keep(low) < 0.3


def test_gain_changes_level_and_reverb_keeps_it():
    x = _speechlike()
    assert np.std(corrupt(x, "gain:-20")) == pytest.approx(0.1 * np.std(x), rel=1e-5)
    y = corrupt(x, "reverb:0.6")
    assert np.std(y) == pytest.approx(np.std(x), rel=1e-3)
    assert np.corrcoef(x, y)[0, 1] < 0.9  # smeared in time


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="unknown corruption"):
        parse("underwater")
    with pytest.raises(ValueError, match="needs an argument"):
        corrupt(_speechlike(), "noise")
    with pytest.raises(ValueError, match="codec must be"):
        corrupt(_speechlike(), "codec:aac")


def test_corrupted_features_are_cached_apart_from_clean_ones(tmp_path):
    from emovox.featurize import extract_manifest

    recs = []
    for i in range(3):
        write_audio(tmp_path / f"c{i}.wav", seconds=0.6, freq=150.0 + 40 * i, seed=i)
        recs.append(Utterance(id=f"c{i}", audio=f"c{i}.wav", speaker="s"))
    m = Manifest(recs, root=str(tmp_path))
    clean = extract_manifest(m, "mfcc", cache_dir=tmp_path / "cache")
    tel = extract_manifest(m, "mfcc", cache_dir=tmp_path / "cache", corrupt="telephone")
    again = extract_manifest(m, "mfcc", cache_dir=tmp_path / "cache", corrupt="telephone")
    assert tel.stats["computed"] == 3 and again.stats["computed"] == 0  # the second read is from the cache
    for a, b, c in zip(clean.features, tel.features, again.features):
        assert a.shape == b.shape and not np.allclose(a, b) and np.array_equal(b, c)
