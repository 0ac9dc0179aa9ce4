"""SA2SR augmentation: speed perturbation and SpecAugment (shapes, masks, determinism)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovox.features.augment import (AugmentConfig, SpecAugment, resample_ratio, speed_perturb,
                                     speed_variants)


def _tone(freq=440.0, seconds=1.0, sr=16000):
    t = torch.arange(int(seconds * sr)) / sr
    return torch.sin(2 * np.pi * freq * t)


def _peak_hz(x: torch.Tensor, sr=16000) -> float:
    spec = np.abs(np.fft.rfft(x.numpy()))
    return float(np.argmax(spec) * sr / len(x))


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturb_changes_length_and_pitch(factor):
    x = _tone()
    y = speed_perturb(x, factor)
    assert y.shape[0] == int(np.ceil(16000 / factor))
    assert _peak_hz(y) == pytest.approx(440.0 * factor, abs=2.0)


def test_speed_perturb_matches_polyphase_reference():
    from scipy.signal import resample_poly

    x = _tone(300.0) + 0.5 * _tone(1234.0)
    y = speed_perturb(x, 0.9).numpy()
    ref = resample_poly(x.numpy().astype(np.float64), 10, 9)
    n = min(len(y), len(ref))
    assert np.abs(y[200:n - 200] - ref[200:n - 200]).max() < 5e-3


def test_speed_perturb_batches_and_identity():
    x = torch.randn(2, 3, 1000)
    assert speed_perturb(x, 1.0) is x
    y = speed_perturb(x, 1.1)
    assert y.shape == (2, 3, int(np.ceil(1000 / 1.1)))
    assert torch.allclose(y[1, 2], speed_perturb(x[1, 2], 1.1), atol=1e-6)
    assert resample_ratio(x, 2, 1).shape[-1] == 500
    with pytest.raises(ValueError):
        speed_perturb(x, 0.0)


def test_speed_variants_triples_the_set():
    v = speed_variants(4)
    assert len(v) == 12
    assert v[:3] == [(0, 0.9), (0, 1.0), (0, 1.1)]
    assert {i for i, _ in v} == {0, 1, 2, 3}


def _masked(seed: int, cfg: AugmentConfig | None = None):
    aug = SpecAugment(cfg, seed=seed).train()
    feats = torch.randn(4, 200, 40, generator=torch.Generator().manual_seed(0)) + 5.0  # no zeros yet
    lengths = torch.tensor([200, 150, 80, 10])
    return aug(feats, lengths), feats, lengths


def test_specaugment_is_deterministic_for_a_seed():
    a, _, _ = _masked(7)
    b, _, _ = _masked(7)
    c, _, _ = _masked(8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_specaugment_reseed_reproduces():
    aug = SpecAugment(seed=0).train()
    lengths = torch.tensor([100, 60])
    aug.reseed(123)
    m1 = aug.masks(lengths, 100, 40)
    aug.masks(lengths, 100, 40)
    aug.reseed(123)
    assert torch.equal(aug.masks(lengths, 100, 40), m1)


def test_specaugment_never_masks_padding_and_respects_widths():
    cfg = AugmentConfig(time_mask_p=1.0, freq_mask_p=1.0, time_masks=1, freq_masks=1,
                        time_mask_width=30, freq_mask_width=8)
    aug = SpecAugment(cfg, seed=3).train()
    lengths = torch.tensor([200, 120, 40])
    for seed in range(20):
        aug.reseed(seed)
        m = aug.masks(lengths, 200, 40)
        for i, n in enumerate(lengths.tolist()):
            assert not m[i, n:].any()
            # a time mask spans all bins of its frames; a frequency mask all valid frames
            full_t = m[i, :n].all(dim=1)
            full_f = m[i, :n].all(dim=0)
            assert int(full_t.sum()) <= min(30, int(0.2 * n))
            assert int(full_f.sum()) <= 8


def test_specaugment_probability_zero_and_eval_mode_are_identity():
    out, feats, _ = _masked(1, AugmentConfig(time_mask_p=0.0, freq_mask_p=0.0))
    assert torch.equal(out, feats)
    aug = SpecAugment(AugmentConfig(time_mask_p=1.0, freq_mask_p=1.0), seed=1).eval()
    x = torch.randn(2, 50, 40)
    assert torch.equal(aug(x, torch.tensor([50, 20])), x)


def test_specaugment_probability_half_masks_about_half_the_items():
    cfg = AugmentConfig(time_mask_p=0.0, freq_mask_p=0.5, freq_masks=1, freq_mask_width=8)
    aug = SpecAugment(cfg, seed=0).train()
    m = aug.masks(torch.full((2000,), 100), 100, 40)
    hit = m.flatten(1).any(1).float().mean().item()
    # items that draw p but a zero width stay unmasked: expect 0.5 * 8/9
    assert 0.38 < hit < 0.5
