"""Whisper's log-mel front end and its audio constants (16 kHz, 25 ms windows, 10 ms hop,
30 s windows of 3000 frames; the encoder halves the frame rate to 50 Hz)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms hop: 100 mel frames per second
CHUNK_SECONDS = 30
N_SAMPLES = CHUNK_SECONDS * SAMPLE_RATE  # 480000 samples in a 30 s window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames in a 30 s window
FRAME_RATE = SAMPLE_RATE / HOP_LENGTH / 2  # 50 encoder frames per second


@lru_cache(maxsize=8)
def _mel_filters_np(n_mels: int, n_fft: int = N_FFT, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Slaney-style mel filter bank, ``(n_mels, n_fft // 2 + 1)``: librosa.filters.mel(sr=16000,
    n_fft=400, n_mels=n_mels, htk=False, norm="slaney"), the matrix Whisper ships in mel_filters.npz."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f: float) -> float:
        return f / f_sp if f < min_log_hz else min_log_mel + math.log(f / min_log_hz) / logstep

    mels = np.linspace(0.0, hz_to_mel(sr / 2), n_mels + 2)
    freqs = f_sp * mels
    log_t = mels >= min_log_mel
    freqs[log_t] = min_log_hz * np.exp(logstep * (mels[log_t] - min_log_mel))
    fdiff = np.diff(freqs)
    ramps = freqs[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (freqs[2:n_mels + 2] - freqs[:n_mels]))[:, None]
    return weights.astype(np.float32)


def mel_filters(n_mels: int = 80, device: torch.device | str | None = None) -> torch.Tensor:
    """Whisper's mel filter bank as a ``(n_mels, 201)`` float32 tensor."""
    return torch.from_numpy(_mel_filters_np(int(n_mels))).to(device)


def log_mel_spectrogram(audio: torch.Tensor, n_mels: int = 80, padding: int = 0,
                        filters: torch.Tensor | None = None) -> torch.Tensor:
    """Whisper's log-mel spectrogram of one clip.

    audio: ``(samples,)`` float at 16 kHz. ``padding``: zero samples appended first (Whisper's
    transcribe appends 30 s). Returns ``(n_mels, (samples + padding) // 160)``: power STFT with a
    400-point periodic Hann window, hop 160, reflect-padded centre frames (last frame dropped),
    Slaney mel filters, ``log10(max(x, 1e-10))`` floored at the clip's maximum minus 8, then
    ``(x + 4) / 4``.
    """
    audio = audio.float()
    if padding:
        audio = F.pad(audio, (0, padding))
    if audio.shape[-1] < HOP_LENGTH:
        raise ValueError(f"audio too short for Whisper: {audio.shape[-1]} samples (< {HOP_LENGTH}, 10 ms)")
    window = torch.hann_window(N_FFT, device=audio.device)
    mode = "reflect" if audio.shape[-1] > N_FFT // 2 else "constant"
    x = F.pad(audio[None, None], (N_FFT // 2, N_FFT // 2), mode=mode)[0, 0]
    stft = torch.stft(x, N_FFT, HOP_LENGTH, window=window, center=False, return_complex=True)
    power = stft[..., :-1].abs() ** 2  # (201, frames)
    fb = (filters if filters is not None else mel_filters(n_mels, audio.device)).float()
    log_spec = torch.clamp(fb @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0
