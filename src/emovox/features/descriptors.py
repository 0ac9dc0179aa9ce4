"""Frame-level acoustic descriptors: the targets of CARE's acoustic branch (Dutta & Ganapathy
2024), standing in for PASE+ features, which need weights we do not have.

PASE+ workers regress log power spectra, MFCC, filterbanks and prosody (log F0, voicing,
energy, zero-crossing rate); here those quantities are computed directly, batched in torch:

============  ====  ===========================================================================
name          dims  definition (per frame; 25 ms window, hop = 1 / frame_rate)
============  ====  ===========================================================================
logmel        40    natural log of mel filterbank energies (as :func:`.filterbank.lfbe`)
mfcc          20    DCT-II of the log mel energies in dB (as :func:`.filterbank.mfcc`)
log_f0        1     natural log of F0 in Hz from a YIN pitch tracker; unvoiced frames are
                    linearly interpolated between voiced neighbours (0 when none is voiced)
voicing       1     periodicity ``1 - d'(tau*)`` in [0, 1] (YIN's cumulative mean normalised
                    difference at the chosen lag); 0 on silent frames
energy        1     natural log of the mean squared sample value of the window
zcr           1     fraction of adjacent sample pairs whose sign differs
============  ====  ===========================================================================

Default frame rate 50 Hz (PASE+'s 100 Hz decimated to 50 Hz, as in CARE); each utterance is
normalised per dimension as ``(x - mean) / (std + 1)`` over its valid frames.

The pitch tracker is YIN (de Cheveigné & Kawahara 2002): difference function by FFT
cross-correlation, cumulative mean normalisation, absolute threshold with the first dip taken
(avoiding octave errors), local-minimum search, parabolic interpolation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..tensors import lengths_to_mask, pad_batch
from .base import Extractor
from .filterbank import Filterbank, FilterbankConfig, _as_batch, _zero_padded_frames, dct_matrix, \
    mask_padding, normalize

COMPONENTS = ("logmel", "mfcc", "log_f0", "voicing", "energy", "zcr")


@dataclass(frozen=True)
class DescriptorConfig:
    """What to compute and how. Frequencies in Hz, levels in dB full scale."""

    sample_rate: int = 16000
    frame_rate: float = 50.0
    win_length: int = 400  # 25 ms at 16 kHz
    n_fft: int = 512
    n_mels: int = 40
    n_mfcc: int = 20
    f0_min: float = 60.0
    f0_max: float = 500.0
    yin_threshold: float = 0.2
    silence_db: float = -60.0  # frames quieter than this (RMS) are silent: unvoiced, voicing 0
    center: bool = False
    components: tuple[str, ...] = COMPONENTS
    normalize: bool = True
    std_offset: float = 1.0  # (x - mean) / (std + std_offset)

    def __post_init__(self):
        unknown = [c for c in self.components if c not in COMPONENTS]
        if unknown or not self.components:
            raise ValueError(f"unknown descriptor component(s) {unknown}; choose from {list(COMPONENTS)}")
        if not 0 < self.f0_min < self.f0_max < self.sample_rate / 2:
            raise ValueError(f"need 0 < f0_min ({self.f0_min}) < f0_max ({self.f0_max}) < Nyquist")
        object.__setattr__(self, "components", tuple(self.components))

    @property
    def hop_length(self) -> int:
        hop = self.sample_rate / self.frame_rate
        if abs(hop - round(hop)) > 1e-6:
            raise ValueError(f"frame rate {self.frame_rate} Hz is not a whole number of samples at "
                             f"{self.sample_rate} Hz")
        return int(round(hop))

    def filterbank(self) -> FilterbankConfig:
        return FilterbankConfig(sample_rate=self.sample_rate, n_fft=self.n_fft, win_length=self.win_length,
                                hop_length=self.hop_length, n_mels=self.n_mels, center=self.center)

    def names(self) -> list[str]:
        """Column names of the output, in order (e.g. ``logmel_0``, ..., ``zcr``)."""
        out: list[str] = []
        for c in self.components:
            n = {"logmel": self.n_mels, "mfcc": self.n_mfcc}.get(c, 1)
            out += [f"{c}_{i}" for i in range(n)] if n > 1 else [c]
        return out

    @property
    def dim(self) -> int:
        return len(self.names())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["components"] = list(self.components)
        return d


# ----------------------------------------------------------------------------- pitch


@dataclass
class Pitch:
    """YIN output, all (B, T): ``f0`` Hz (0 where unvoiced), ``voicing`` in [0, 1],
    ``voiced`` bool, plus ``frame_lengths`` (B,)."""

    f0: torch.Tensor
    voicing: torch.Tensor
    voiced: torch.Tensor
    frame_lengths: torch.Tensor


def _frames(audio: torch.Tensor, lengths: torch.Tensor, fb: FilterbankConfig,
            span: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, span) frames whose first ``win_length`` samples are the filterbank's window of
    frame t (zero outside the clip), and the (B,) frame counts."""
    audio = mask_padding(audio, lengths)
    frames = fb.num_frames(lengths).to(audio.device)
    t_max = int(frames.max()) if len(frames) else 0
    left = fb.win_length // 2 if fb.center else 0
    need = (max(t_max, 1) - 1) * fb.hop_length + span
    right = max(0, need - left - audio.shape[1])
    padded = torch.nn.functional.pad(audio, (left, right))
    return padded.unfold(1, span, fb.hop_length)[:, :t_max], frames


def yin(audio, lengths=None, config: DescriptorConfig = DescriptorConfig()) -> Pitch:
    """Batched YIN pitch tracking. audio (B, S) at ``config.sample_rate``, lengths (B,) samples."""
    audio, lengths = _as_batch(audio, lengths)
    audio = audio.float()
    fb, w, sr = config.filterbank(), config.win_length, config.sample_rate
    min_lag = max(2, int(math.floor(sr / config.f0_max)))
    max_lag = int(math.ceil(sr / config.f0_min))
    frames, n_frames = _frames(audio, lengths, fb, w + max_lag + 1)  # (B, T, W + L + 1)
    ref = frames[..., :w]
    # circular correlation is exact for lags <= max_lag + 1 once nfft >= frame span (no wrap-around)
    nfft = 1 << math.ceil(math.log2(frames.shape[-1]))
    r = torch.fft.irfft(torch.conj(torch.fft.rfft(ref, nfft)) * torch.fft.rfft(frames, nfft), nfft)
    r = r[..., : max_lag + 2]  # r[tau] = sum_j ref[j] * x[j + tau]
    sq = torch.nn.functional.pad(torch.cumsum(frames.double() ** 2, -1), (1, 0))
    taus = torch.arange(max_lag + 2, device=audio.device)
    e_shift = (sq[..., taus + w] - sq[..., taus]).to(r.dtype)  # energy of x[tau: tau + W]
    e_ref = e_shift[..., :1]
    d = (e_ref + e_shift - 2.0 * r).clamp_min(0.0)  # difference function, d[0] = 0
    cum = torch.cumsum(d[..., 1:], -1)
    cmndf = torch.ones_like(d)
    cmndf[..., 1:] = torch.where(cum > 1e-12 * w, d[..., 1:] * taus[1:] / cum.clamp_min(1e-30), torch.ones_like(cum))

    search = cmndf[..., min_lag: max_lag + 1]  # lags min_lag .. max_lag
    below = search < config.yin_threshold
    first = torch.where(below.any(-1), below.float().argmax(-1), torch.full_like(below[..., 0], -1, dtype=torch.long))
    # from the first dip below threshold, walk down to its local minimum
    nxt = torch.cat([search[..., 1:], search[..., -1:] + 1.0], -1)
    rising = nxt >= search
    idx = torch.arange(search.shape[-1], device=audio.device)
    local = (rising & (idx >= first.clamp_min(0).unsqueeze(-1))).float().argmax(-1)
    best = torch.where(first >= 0, local, search.argmin(-1))
    lag = best + min_lag
    b = cmndf.gather(-1, lag.unsqueeze(-1)).squeeze(-1)
    a = cmndf.gather(-1, (lag - 1).unsqueeze(-1)).squeeze(-1)
    c = cmndf.gather(-1, (lag + 1).unsqueeze(-1)).squeeze(-1)
    denom = a - 2.0 * b + c
    shift = torch.where(denom.abs() > 1e-9, 0.5 * (a - c) / denom, torch.zeros_like(denom)).clamp(-1.0, 1.0)
    period = lag.to(shift.dtype) + shift

    rms_db = 10.0 * torch.log10((e_ref.squeeze(-1) / w).clamp_min(1e-20))
    audible = rms_db > config.silence_db
    valid = lengths_to_mask(n_frames, frames.shape[1])
    voiced = (b < config.yin_threshold) & audible & valid
    voicing = ((1.0 - b).clamp(0.0, 1.0) * audible * valid).float()
    f0 = torch.where(voiced, sr / period, torch.zeros_like(period)).float()
    return Pitch(f0, voicing, voiced, n_frames)


def interpolate_log_f0(f0: torch.Tensor, voiced: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
    """log F0 (B, T) with unvoiced frames linearly interpolated between voiced ones (held
    constant beyond the first/last voiced frame); 0 for items with no voiced frame and on
    padded frames. Runs on the tensors' device (no host round trip)."""
    b, t = f0.shape
    valid = lengths_to_mask(frame_lengths.to(f0.device), t)
    voiced = voiced & valid & (f0 > 0)
    idx = torch.arange(t, device=f0.device).expand(b, t)
    log_f0 = torch.where(voiced, torch.log(f0.clamp_min(1e-6)), torch.zeros_like(f0))
    prev = torch.where(voiced, idx, torch.full_like(idx, -1)).cummax(1).values  # last voiced <= i
    nxt = torch.where(voiced, idx, torch.full_like(idx, t)).flip(1).cummin(1).values.flip(1)  # first >= i
    has_prev, has_next = prev >= 0, nxt < t
    lo = log_f0.gather(1, prev.clamp(0, t - 1))
    hi = log_f0.gather(1, nxt.clamp(0, t - 1))
    span = (nxt - prev).clamp_min(1).to(f0.dtype)
    w = ((idx - prev).to(f0.dtype) / span).clamp(0.0, 1.0)
    out = torch.where(has_prev & has_next, lo + w * (hi - lo), torch.where(has_prev, lo, hi))
    out = torch.where(has_prev | has_next, out, torch.zeros_like(out))
    return out * valid


# ----------------------------------------------------------------------------- descriptors


class Descriptors(nn.Module):
    """``forward(audio (B,S), lengths (B,)) -> (feats (B, T, config.dim), frame_lengths (B,))``."""

    def __init__(self, config: DescriptorConfig = DescriptorConfig()):
        super().__init__()
        self.config = config
        self.fb = Filterbank(config.filterbank())
        self.register_buffer("dct", torch.from_numpy(dct_matrix(config.n_mels, config.n_mfcc).astype(np.float32)),
                             persistent=False)

    def forward(self, audio, lengths=None) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        audio, lengths = _as_batch(audio, lengths)
        audio = audio.to(self.dct.device).float()
        parts: dict[str, torch.Tensor] = {}
        if {"logmel", "mfcc"} & set(c.components):
            mel, frames = self.fb(audio, lengths)
            mel = mel.clamp_min(self.fb.config.log_floor)
            parts["logmel"] = torch.log(mel)
            parts["mfcc"] = (10.0 * torch.log10(mel)) @ self.dct
        if {"log_f0", "voicing"} & set(c.components):
            p = yin(audio, lengths, c)
            frames = p.frame_lengths
            parts["log_f0"] = interpolate_log_f0(p.f0, p.voiced, frames).unsqueeze(-1)
            parts["voicing"] = p.voicing.unsqueeze(-1)
        if {"energy", "zcr"} & set(c.components):
            win, frames = _frames(audio, lengths, c.filterbank(), c.win_length)
            parts["energy"] = torch.log((win ** 2).mean(-1, keepdim=True) + 1e-10)
            sign = win >= 0
            parts["zcr"] = (sign[..., 1:] != sign[..., :-1]).float().mean(-1, keepdim=True)
        feats = torch.cat([parts[k] for k in c.components], -1)
        frames = frames.to(feats.device)
        if c.normalize:
            return normalize(feats, frames, std_offset=c.std_offset), frames
        return _zero_padded_frames(feats, frames), frames


_MODULES: dict[tuple[DescriptorConfig, str], Descriptors] = {}


def frame_descriptors(audio, lengths=None, config: DescriptorConfig | None = None,
                      **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame-level descriptors: audio (B, S) (or (S,)), lengths (B,) samples ->
    (feats (B, T, D) float32, frame_lengths (B,)); ``options`` are :class:`DescriptorConfig`
    fields (e.g. ``frame_rate=100``, ``components=("log_f0", "voicing")``)."""
    config = config or DescriptorConfig(**options)
    audio, lengths = _as_batch(audio, lengths)
    key = (config, str(audio.device))
    if key not in _MODULES:
        _MODULES[key] = Descriptors(config).to(audio.device)
    return _MODULES[key](audio, lengths)


class DescriptorExtractor(Extractor):
    """``"descriptors"`` in the feature registry: (frames, D) float32 per clip."""

    name = "descriptors"

    def __init__(self, device: str = "cpu", batch_seconds: float = 60.0, **options):
        if "components" in options and isinstance(options["components"], str):
            options["components"] = tuple(s for s in options["components"].split(",") if s)
        self.cfg = DescriptorConfig(**options)
        self.device, self.batch_seconds = device, batch_seconds
        self.sample_rate = self.cfg.sample_rate
        self.min_seconds = self.cfg.win_length / self.cfg.sample_rate
        self.module = Descriptors(self.cfg).to(device)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "descriptors": self.cfg.to_dict(), "version": 1}

    @torch.inference_mode()
    def extract_batch(self, audios):
        x, lengths = pad_batch(audios, self.device)
        feats, frames = self.module(x, lengths)
        feats = feats.float().cpu().numpy()
        return [feats[i, : int(n)] for i, n in enumerate(frames.cpu())]
