"""Sample-rate conversion whose cost is bounded per input sample, whatever the two rates.

Rates whose ratio reduces to small integers (every rate in use: 8, 11.025, 22.05, 44.1, 48,
96 kHz ...) go through scipy's polyphase ``resample_poly`` (Kaiser-windowed FIR, beta 5, ten
periods of the lower rate each side). A coprime pair such as 767,999 -> 16,000 Hz would need a
polyphase filter of 20 x 768,000 taps (gigabytes for 3 MHz); those go through
:func:`sinc_resample` instead: the same windowed-sinc low-pass evaluated at each output
sample's exact (rational) position, from a table, so memory is a few MB and the work is about
20 multiply-adds per input sample (downsampling) or per output sample (upsampling).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

POLY_MAX = 1000
"""Largest up/down factor resampled by polyphase filtering (its filter has 20 x that many taps)."""

HALF_PERIODS = 10
"""Half-length of the low-pass in periods of the lower rate (as ``resample_poly``'s default)."""

_TABLE_STEPS = 512  # table points per period of the lower rate
_CHUNK = 1 << 19  # output samples x taps computed at once (a few MB of float64)


def ratio(orig_sr: int, target_sr: int) -> tuple[int, int]:
    """(up, down): ``target_sr / orig_sr`` in lowest terms."""
    f = Fraction(int(target_sr), int(orig_sr))
    return f.numerator, f.denominator


def is_polyphase(orig_sr: int, target_sr: int) -> bool:
    """True when ``resample`` uses scipy's polyphase filter for this pair of rates."""
    return max(ratio(orig_sr, target_sr)) <= POLY_MAX


def output_length(n: int, orig_sr: int, target_sr: int) -> int:
    """``ceil(n * target_sr / orig_sr)``, in integers."""
    return -(-int(n) * int(target_sr) // int(orig_sr))


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Anti-aliased resampling of a 1-D signal; output length ``ceil(len(x) * target_sr / orig_sr)``,
    float32."""
    if orig_sr == target_sr:
        return np.asarray(x, dtype=np.float32)
    if is_polyphase(orig_sr, target_sr):
        from scipy.signal import resample_poly

        up, down = ratio(orig_sr, target_sr)
        return resample_poly(np.asarray(x, dtype=np.float64), up, down).astype(np.float32)
    return sinc_resample(x, 0, len(x), orig_sr, target_sr, 0, output_length(len(x), orig_sr, target_sr))


def half_width(orig_sr: int, target_sr: int) -> int:
    """Input samples each side of an output sample that :func:`sinc_resample` reads."""
    scale = min(1.0, target_sr / orig_sr)
    return math.ceil(HALF_PERIODS / scale) + 1


_TABLES: dict[int, np.ndarray] = {}


def _table() -> np.ndarray:
    """The windowed sinc g(u) = sinc(u) * kaiser(u / HALF_PERIODS, 5) at u = -10 .. 10 in
    steps of 1/_TABLE_STEPS (u in periods of the lower rate)."""
    if _TABLE_STEPS not in _TABLES:
        u = np.arange(-HALF_PERIODS * _TABLE_STEPS, HALF_PERIODS * _TABLE_STEPS + 2) / _TABLE_STEPS
        w = np.i0(5.0 * np.sqrt(np.clip(1.0 - (u / HALF_PERIODS) ** 2, 0.0, None))) / np.i0(5.0)
        _TABLES[_TABLE_STEPS] = np.sinc(u) * w
    return _TABLES[_TABLE_STEPS]


def sinc_resample(x: np.ndarray, x_start: int, n_total: int, orig_sr: int, target_sr: int,
                  first: int, stop: int) -> np.ndarray:
    """Output samples ``first .. stop - 1`` of a signal of ``n_total`` input samples resampled
    from ``orig_sr`` to ``target_sr``; ``x`` holds input samples ``x_start ..`` of it and must
    cover ``half_width`` samples each side of the outputs' positions (samples outside
    ``0 .. n_total - 1`` are zero). Output sample m sits at input position m * orig_sr / target_sr
    and is the windowed-sinc low-pass there (cut-off at the lower rate's Nyquist frequency),
    normalised to unit gain at DC. The same output index always gives the same value, whatever
    block it is computed in. Returns float32 of length ``stop - first``."""
    x = np.asarray(x, dtype=np.float64)
    scale = min(1.0, target_sr / orig_sr)
    k = half_width(orig_sr, target_sr)
    taps = np.arange(-k + 1, k + 1)
    table = _table()
    top = len(table) - 2
    # input samples outside the signal are zeros; pad so that every tap index is valid
    xp = np.concatenate([np.zeros(k + 1), x, np.zeros(k + 1)])
    out = np.empty(max(0, stop - first), np.float32)
    per = max(1, _CHUNK // len(taps))
    for c0 in range(first, stop, per):
        m = np.arange(c0, min(c0 + per, stop), dtype=np.int64)
        num = m * int(orig_sr)
        base = num // int(target_sr)  # the input sample at or before the output's position
        frac = (num - base * int(target_sr)) / float(target_sr)
        idx = base[:, None] + taps[None, :]  # absolute input indices
        u = (taps[None, :] - frac[:, None]) * scale  # distance in periods of the lower rate
        pos = (u + HALF_PERIODS) * _TABLE_STEPS
        j = np.clip(pos.astype(np.int64), 0, top)
        a = pos - j
        w = table[j] * (1.0 - a) + table[j + 1] * a
        w[np.abs(u) > HALF_PERIODS] = 0.0
        inside = (idx >= 0) & (idx < n_total)
        vals = xp[np.clip(idx - x_start + k + 1, 0, len(xp) - 1)] * inside
        out[c0 - first:c0 - first + len(m)] = (w * vals).sum(axis=1) / w.sum(axis=1)
    return out
