"""Training-time augmentation for SA2SR (Ghriss et al. 2022), all in torch and deterministic
for a seed.

- :func:`speed_perturb`: play the audio ``factor`` times faster (tempo and pitch change together,
  like ``sox speed``): a clip of ``S`` samples becomes ``ceil(S / factor)`` samples. The paper uses
  factors 0.9 and 1.1 next to the original (1.0), which triples the training set
  (see :func:`speed_variants`).
- :class:`SpecAugment`: time and frequency masks on (batch, frames, bins) features, each kind
  applied with probability ``p`` (paper: 0.5), never touching padded frames.

Frame stacking (3 adjacent frames, keep every third: 120 dims at 33 Hz) is
``emovox.features.filterbank.stack_frames``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..tensors import lengths_to_mask

SPEED_FACTORS = (0.9, 1.0, 1.1)
"""The paper's speed perturbation: the original plus 0.9 and 1.1."""


@dataclass
class AugmentConfig:
    """SpecAugment settings. The probabilities are the paper's; counts and widths are not given
    there and follow SpecAugment's LibriSpeech policy scaled to 40 mel bins. (Speeds are a
    setting of the recipe, stacking one of the encoder.)"""

    time_mask_p: float = 0.5  # probability that a batch item gets time masks
    freq_mask_p: float = 0.5  # probability that a batch item gets frequency masks
    time_masks: int = 2  # masks per item when applied
    time_mask_width: int = 40  # at most this many 10 ms frames per mask
    time_mask_max_ratio: float = 0.2  # and at most this fraction of the item's frames
    freq_masks: int = 2
    freq_mask_width: int = 8  # at most this many of the 40 mel bins per mask


# ----------------------------------------------------------------------------- speed


@lru_cache(maxsize=16)
def _sinc_kernel(orig: int, new: int, zeros: int = 6, rolloff: float = 0.99) -> tuple[torch.Tensor, int]:
    """Polyphase windowed-sinc kernel (``new`` phases, Hann window over ``zeros`` zero crossings)
    for resampling by ``new / orig``; returns (kernel (new, 1, K) float32, left padding)."""
    base = min(orig, new) * rolloff  # low-pass cutoff, in units of the lower rate
    width = math.ceil(zeros * orig / base)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None, :] / orig  # (1, K)
    t = (torch.arange(0, -new, -1, dtype=torch.float64)[:, None] / new + idx) * base  # (new, K)
    t = t.clamp(-zeros, zeros)
    window = torch.cos(t * math.pi / zeros / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    kernel = (sinc * window * (base / orig)).to(torch.float32)
    return kernel[:, None, :], width


def resample_ratio(audio: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Resample (..., S) by the rational factor ``new / orig`` -> (..., ceil(S * new / orig))."""
    if orig == new:
        return audio
    kernel, width = _sinc_kernel(orig, new)
    shape = audio.shape
    x = audio.reshape(-1, 1, shape[-1])
    x = F.pad(x, (width, width + orig))
    y = F.conv1d(x, kernel.to(x.dtype), stride=orig)  # (N, new, blocks)
    y = y.transpose(1, 2).reshape(x.shape[0], -1)
    target = math.ceil(new * shape[-1] / orig)
    return y[:, :target].reshape(*shape[:-1], target)


def speed_perturb(audio: torch.Tensor, factor: float) -> torch.Tensor:
    """(..., S) float audio -> (..., ceil(S / factor)): ``factor`` > 1 is faster and shorter.

    Exact for factors that are ratios of small integers (0.9 = 9/10, 1.1 = 11/10)."""
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if factor == 1.0:
        return audio
    frac = Fraction(factor).limit_denominator(100)
    return resample_ratio(audio, frac.numerator, frac.denominator)


def speed_variants(n: int, speeds: tuple[float, ...] = SPEED_FACTORS) -> list[tuple[int, float]]:
    """The expanded training set: (item index, speed) for every item and every speed, item-major.

    ``len(speed_variants(n)) == n * len(speeds)``; the expansion is fixed, so the epoch's shuffle
    alone decides the order (deterministic for a seed)."""
    return [(i, s) for i in range(n) for s in speeds]


# ----------------------------------------------------------------------------- SpecAugment


class SpecAugment(torch.nn.Module):
    """Time and frequency masking (Park et al. 2019) on (batch, frames, bins) features.

    Active only in training mode. Each item independently gets ``time_masks`` time masks with
    probability ``time_mask_p`` and ``freq_masks`` frequency masks with probability
    ``freq_mask_p``; masked values are set to 0 (the mean of per-utterance normalised features).
    Randomness comes from the module's own generator: call :meth:`reseed` (e.g. with a hash of
    seed, epoch and step) for results that do not depend on anything else.
    """

    def __init__(self, config: AugmentConfig | None = None, seed: int = 0):
        super().__init__()
        self.config = config or AugmentConfig()
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed) % (2**63 - 1))

    def masks(self, lengths: torch.Tensor, frames: int, bins: int) -> torch.Tensor:
        """(batch, frames, bins) bool, True where a value is masked (never on padding)."""
        c, g = self.config, self.generator
        batch = lengths.shape[0]
        lens = lengths.cpu()
        t_idx = torch.arange(frames)[None, :]
        f_idx = torch.arange(bins)[None, :]
        time = torch.zeros(batch, frames, dtype=torch.bool)
        freq = torch.zeros(batch, bins, dtype=torch.bool)
        apply_t = torch.rand(batch, generator=g) < c.time_mask_p
        apply_f = torch.rand(batch, generator=g) < c.freq_mask_p
        for _ in range(c.time_masks):
            max_w = torch.minimum(torch.full_like(lens, c.time_mask_width),
                                  (lens.float() * c.time_mask_max_ratio).long())
            w = (torch.rand(batch, generator=g) * (max_w + 1).float()).long()
            t0 = (torch.rand(batch, generator=g) * (lens - w + 1).clamp_min(1).float()).long()
            m = (t_idx >= t0[:, None]) & (t_idx < (t0 + w)[:, None])
            time |= m & apply_t[:, None]
        for _ in range(c.freq_masks):
            w = (torch.rand(batch, generator=g) * (min(c.freq_mask_width, bins) + 1)).long()
            f0 = (torch.rand(batch, generator=g) * (bins - w + 1).float()).long()
            m = (f_idx >= f0[:, None]) & (f_idx < (f0 + w)[:, None])
            freq |= m & apply_f[:, None]
        valid = lengths_to_mask(lens, frames)
        out = (time[:, :, None] | freq[:, None, :]) & valid[:, :, None]
        return out.to(lengths.device)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """feats (B, T, F), lengths (B,) frames -> masked copy (B, T, F); identity in eval mode."""
        if not self.training:
            return feats
        m = self.masks(lengths, feats.shape[1], feats.shape[2])
        return feats.masked_fill(m, 0.0)
