"""Spectral front ends in torch: log mel filterbank energies (LFBE), MFCC, per-utterance
normalisation and frame stacking. They run batched on CPU or GPU and are padding-aware:
audio ``(batch, samples)`` with ``lengths`` (valid samples per item) goes in, features
``(batch, frames, dim)`` with ``frame_lengths`` (valid frames per item) come out, and a padded
batch gives, frame for frame, what each clip gives alone. Padded frames are zero.

Conventions (the defaults are SA2SR's, Ghriss et al. 2022):

* 16 kHz audio, 25 ms Hann window (400 samples) zero-padded to a 512-point FFT, 10 ms hop
  (160 samples), power spectrum, 40 mel filters on the Slaney mel scale with Slaney area
  normalisation (librosa's defaults), natural log with a floor of 1e-10.
* ``center=False`` (default): frame ``t`` covers samples ``[t*hop, t*hop + win_length)``; a clip
  of ``L`` samples has ``1 + (L - win_length) // hop`` frames (0 when shorter than a window).
  ``center=True``: frame ``t`` is centred on sample ``t*hop`` with zero padding outside the clip
  (librosa's ``center=True, pad_mode="constant"``); ``1 + L // hop`` frames.
* MFCC: the orthonormal DCT-II of the log mel energies in decibels (``10 log10``), i.e.
  librosa's ``mfcc(S=power_to_db(mel, top_db=None))``; 20 coefficients.

These match librosa 0.11 to float32 rounding (see tests/test_features.py for the tolerances).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from ..tensors import lengths_to_mask

LOG_FLOOR = 1e-10
"""Energies below this are clipped before the log (natural log: about -23.0)."""


@dataclass(frozen=True)
class FilterbankConfig:
    """Framing and mel filters. Times in samples at ``sample_rate`` Hz."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    n_mels: int = 40
    f_min: float = 0.0
    f_max: float | None = None  # None: sample_rate / 2
    center: bool = False
    htk: bool = False  # mel scale: False = Slaney (librosa default), True = HTK 2595 log10(1 + f/700)
    power: float = 2.0  # 2: power spectrum, 1: magnitude
    log_floor: float = LOG_FLOOR

    def __post_init__(self):
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} is longer than n_fft {self.n_fft}")
        if self.hop_length <= 0 or self.win_length <= 0 or self.n_mels <= 0:
            raise ValueError("win_length, hop_length and n_mels must be positive")
        if (self.f_max or self.sample_rate / 2) > self.sample_rate / 2:
            raise ValueError(f"f_max {self.f_max} is above the Nyquist frequency {self.sample_rate / 2}")

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_length

    def num_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid frames for clips of ``lengths`` samples (same shape, int64)."""
        lengths = torch.as_tensor(lengths).long()
        if self.center:
            return 1 + lengths // self.hop_length
        return torch.where(lengths >= self.win_length, 1 + (lengths - self.win_length) // self.hop_length,
                           torch.zeros_like(lengths))

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- mel filters


def hz_to_mel(f: np.ndarray | float, htk: bool = False) -> np.ndarray:
    """Hz -> mel. Slaney: linear below 1 kHz (3 mel per 200 Hz), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m: np.ndarray | float, htk: bool = False) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None,
                htk: bool = False) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation: (n_mels, n_fft // 2 + 1) float64."""
    f_max = sample_rate / 2 if f_max is None else f_max
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(f_min, htk), hz_to_mel(f_max, htk), n_mels + 2), htk)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix: (n_in, n_out); ``x @ D`` transforms the last axis."""
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    d = np.cos(np.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    d[:, 0] /= math.sqrt(2.0)
    return d


# ----------------------------------------------------------------------------- framing


def mask_padding(audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero every sample at or beyond each item's length. audio (B, S), lengths (B,)."""
    idx = torch.arange(audio.shape[1], device=audio.device)
    return audio * (idx[None, :] < lengths.to(audio.device)[:, None]).to(audio.dtype)


def _as_batch(audio, lengths) -> tuple[torch.Tensor, torch.Tensor]:
    """Accept (S,) or (B, S) arrays/tensors; lengths default to the full width."""
    audio = torch.as_tensor(audio)
    if not audio.is_floating_point():
        audio = audio.float()
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2:
        raise ValueError(f"audio must be (batch, samples) or (samples,), got shape {tuple(audio.shape)}")
    if lengths is None:
        lengths = torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long)
    lengths = torch.as_tensor(lengths, device=audio.device).long().reshape(-1)
    if lengths.shape[0] != audio.shape[0]:
        raise ValueError(f"{lengths.shape[0]} lengths for a batch of {audio.shape[0]}")
    if audio.shape[0] and int(lengths.max()) > audio.shape[1]:
        raise ValueError(f"a length ({int(lengths.max())}) exceeds the padded width {audio.shape[1]}")
    return audio, lengths


def _zero_padded_frames(feats: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
    return feats * lengths_to_mask(frame_lengths, feats.shape[1]).unsqueeze(-1).to(feats.dtype)


# ----------------------------------------------------------------------------- modules


class Filterbank(nn.Module):
    """Power (or magnitude) mel spectrogram; the window and filters are buffers, so
    ``.to(device)`` moves them. ``forward(audio (B,S), lengths (B,)) -> (mel (B,T,n_mels), frames (B,))``
    where ``mel`` is linear energy (not yet logged)."""

    def __init__(self, config: FilterbankConfig = FilterbankConfig()):
        super().__init__()
        self.config = c = config
        self.register_buffer("window", torch.hann_window(c.win_length, periodic=True, dtype=torch.float32),
                             persistent=False)
        fb = mel_filters(c.sample_rate, c.n_fft, c.n_mels, c.f_min, c.f_max, c.htk)
        self.register_buffer("filters", torch.from_numpy(fb.T.astype(np.float32)), persistent=False)  # (F, M)

    def spectrum(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, n_fft//2+1) power spectrum and (B,) frame counts."""
        c = self.config
        audio, lengths = _as_batch(audio, lengths)
        audio = mask_padding(audio.to(self.window.dtype), lengths)
        frames = c.num_frames(lengths)
        t_max = int(frames.max()) if len(frames) else 0
        # pad so that frame t of the padded signal starts at t*hop with a full n_fft span:
        # the window (win_length) sits in the middle of the n_fft span, as in librosa/torch.stft
        left = c.n_fft // 2 if c.center else (c.n_fft - c.win_length) // 2
        need = (max(t_max, 1) - 1) * c.hop_length + c.n_fft
        right = max(0, need - left - audio.shape[1])
        padded = torch.nn.functional.pad(audio, (left, right))
        spec = torch.stft(padded, c.n_fft, c.hop_length, c.win_length, self.window, center=False,
                          return_complex=True)  # (B, F, frames)
        spec = spec[:, :, :t_max].transpose(1, 2)
        power = spec.abs() ** c.power if c.power != 2.0 else spec.real ** 2 + spec.imag ** 2
        return power, frames.to(audio.device)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        power, frames = self.spectrum(audio, lengths)
        return power @ self.filters, frames


class LogMel(Filterbank):
    """LFBE: ``log(max(mel, floor))`` with padded frames zeroed: (B, T, n_mels)."""

    def forward(self, audio, lengths=None):
        mel, frames = super().forward(audio, lengths)
        return _zero_padded_frames(torch.log(mel.clamp_min(self.config.log_floor)), frames), frames


class MFCC(Filterbank):
    """MFCC: orthonormal DCT-II of the log mel energies in dB, first ``n_mfcc`` coefficients:
    (B, T, n_mfcc)."""

    def __init__(self, config: FilterbankConfig = FilterbankConfig(), n_mfcc: int = 20):
        super().__init__(config)
        if not 0 < n_mfcc <= config.n_mels:
            raise ValueError(f"n_mfcc {n_mfcc} must be in 1..n_mels ({config.n_mels})")
        self.n_mfcc = n_mfcc
        self.register_buffer("dct", torch.from_numpy(dct_matrix(config.n_mels, n_mfcc).astype(np.float32)),
                             persistent=False)

    def forward(self, audio, lengths=None):
        mel, frames = super().forward(audio, lengths)
        db = 10.0 * torch.log10(mel.clamp_min(self.config.log_floor))
        return _zero_padded_frames(db @ self.dct, frames), frames


@lru_cache(maxsize=32)
def _module(kind: str, config: FilterbankConfig, n_mfcc: int, device: str) -> Filterbank:
    m = LogMel(config) if kind == "lfbe" else MFCC(config, n_mfcc)
    return m.to(device)


def lfbe(audio, lengths=None, n_mels: int = 40, config: FilterbankConfig | None = None,
         **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Log mel filterbank energies.

    audio (B, S) float at ``config.sample_rate`` (or (S,)), lengths (B,) samples ->
    (feats (B, T, n_mels) float32, frame_lengths (B,) int64). ``options`` are
    :class:`FilterbankConfig` fields (e.g. ``center=True``).
    """
    config = config or FilterbankConfig(n_mels=n_mels, **options)
    audio, lengths = _as_batch(audio, lengths)
    return _module("lfbe", config, 0, str(audio.device))(audio, lengths)


def mfcc(audio, lengths=None, n_mfcc: int = 20, n_mels: int = 40, config: FilterbankConfig | None = None,
         **options) -> tuple[torch.Tensor, torch.Tensor]:
    """MFCCs: (feats (B, T, n_mfcc) float32, frame_lengths (B,)); see :func:`lfbe` for the inputs."""
    config = config or FilterbankConfig(n_mels=n_mels, **options)
    audio, lengths = _as_batch(audio, lengths)
    return _module("mfcc", config, n_mfcc, str(audio.device))(audio, lengths)


# ----------------------------------------------------------------------------- post-processing


def normalize(feats: torch.Tensor, lengths: torch.Tensor | None = None, *, variance: bool = True,
              std_offset: float | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Per-utterance normalisation over the valid frames of each item.

    feats (B, T, D), lengths (B,) frames -> (B, T, D); padded frames stay zero.
    ``variance=False``: mean only. ``std_offset=None``: ``(x - mean) / sqrt(var + eps)``;
    a number ``a``: ``(x - mean) / (std + a)`` (CARE's acoustic targets use ``a = 1``).
    Statistics are population (biased) ones; an item with no valid frame stays zero.
    """
    if feats.ndim != 3:
        raise ValueError(f"feats must be (batch, frames, dim), got shape {tuple(feats.shape)}")
    if lengths is None:
        lengths = torch.full((feats.shape[0],), feats.shape[1], dtype=torch.long, device=feats.device)
    m = lengths_to_mask(lengths.to(feats.device), feats.shape[1]).unsqueeze(-1).to(feats.dtype)
    n = m.sum(1, keepdim=True).clamp_min(1.0)
    mean = (feats * m).sum(1, keepdim=True) / n
    centred = (feats - mean) * m
    if not variance:
        return centred
    var = (centred ** 2).sum(1, keepdim=True) / n
    scale = torch.sqrt(var + eps) if std_offset is None else torch.sqrt(var) + std_offset
    return centred / scale


def stack_frames(feats: torch.Tensor, lengths: torch.Tensor | None = None, n: int = 3,
                 stride: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``n`` adjacent frames and keep every ``stride``-th stack (SA2SR: n = stride = 3,
    40-d at 100 Hz -> 120-d at 33.3 Hz).

    feats (B, T, D), lengths (B,) -> (stacked (B, T', n*D), lengths' (B,)) with output frame
    ``j = concat(feats[j*stride], ..., feats[j*stride + n - 1])`` and
    ``lengths' = (lengths - n) // stride + 1`` (0 when fewer than ``n`` frames): only stacks made
    wholly of valid frames are kept, so padding never leaks in.
    """
    if n < 1 or stride < 1:
        raise ValueError(f"n ({n}) and stride ({stride}) must be at least 1")
    b, t, d = feats.shape
    if lengths is None:
        lengths = torch.full((b,), t, dtype=torch.long, device=feats.device)
    lengths = lengths.to(feats.device).long()
    out_len = torch.where(lengths >= n, (lengths - n) // stride + 1, torch.zeros_like(lengths))
    if t < n:
        return feats.new_zeros(b, 0, n * d), out_len
    stacked = feats.unfold(1, n, stride)  # (B, T', D, n)
    stacked = stacked.transpose(2, 3).reshape(b, stacked.shape[1], n * d)
    return _zero_padded_frames(stacked, out_len), out_len
