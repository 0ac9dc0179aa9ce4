"""Audio input: any format libsndfile (or PyAV) reads, to mono float32 at one sample rate.

Every failure raises :class:`AudioError`, whose message names the file and the cause.
``load_audio`` returns a whole clip or a segment of it; ``iter_blocks`` walks a long recording
block by block so that a two-hour file is never held in memory whole at full rate, and gives
the same samples as ``load_audio`` would (resampling is done with context around each block).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

SAMPLE_RATE = 16000
"""The rate every model in emovox reads (Hz)."""

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".sph", ".nist", ".aiff", ".aif", ".aifc",
                    ".au", ".snd", ".caf", ".w64", ".rf64", ".wv", ".m4a", ".aac", ".webm", ".mka", ".wma")
"""File extensions treated as audio when a folder is searched (``corpus import``, ``predict``), in
order of preference when one stem has several files."""

SILENCE_DBFS = -60.0
"""Clips whose RMS level is below this (dB full scale) count as silent."""


class AudioError(Exception):
    """An audio file that cannot be used, with the file and the cause in the message."""

    def __init__(self, path: str | os.PathLike, cause: str):
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says. ``duration`` in seconds."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@dataclass(frozen=True)
class Block:
    """A piece of a recording: ``audio`` (float32, mono, at ``sample_rate``) starting at ``start`` s."""

    start: float
    audio: np.ndarray
    sample_rate: int

    @property
    def end(self) -> float:
        return self.start + len(self.audio) / self.sample_rate


# ----------------------------------------------------------------------------- header


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")


def info(path: str | os.PathLike) -> AudioInfo:
    """Read the header: sample rate, channels, frames. Raises AudioError for unusable files."""
    import soundfile as sf

    path = Path(path)
    _check_exists(path)
    try:
        i = sf.info(str(path))
        result = AudioInfo(str(path), int(i.samplerate), int(i.channels), int(i.frames), i.format, i.subtype)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        result = _av_info(path, e)
    if result.format == "WAV":
        _check_wav_chunks(path)
    if result.frames <= 0:
        raise AudioError(path, "no audio samples (zero length)")
    if result.sample_rate <= 0 or result.channels <= 0:
        raise AudioError(path, f"invalid header (sample rate {result.sample_rate}, {result.channels} channels)")
    return result


def _check_wav_chunks(path: Path) -> None:
    """libsndfile quietly shortens a truncated WAV; compare the data chunk's declared size
    with the bytes actually present and call it truncated when they fall short."""
    import struct

    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            cid, n = struct.unpack("<4sI", f.read(8))
            if cid == b"data":
                if n != 0xFFFFFFFF and pos + 8 + n > size:
                    raise AudioError(path, f"truncated: the data chunk declares {n} bytes but only "
                                           f"{size - pos - 8} are present")
                return
            pos += 8 + n + (n & 1)


def _sndfile_reason(err: Exception) -> str:
    msg = str(err).strip()
    if "Format not recognised" in msg or "unknown format" in msg.lower():
        return "not an audio file (format not recognised)"
    if "unimplemented format" in msg.lower() or "unsupported" in msg.lower():
        return f"unsupported audio encoding ({msg})"
    return f"unreadable or corrupt audio ({msg})"


def _av_info(path: Path, sf_error: Exception) -> AudioInfo:
    """Formats libsndfile does not read (m4a, aac, some mp3): ask PyAV when it is installed."""
    try:
        import av
    except ImportError:
        raise AudioError(path, _sndfile_reason(sf_error)) from None
    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise AudioError(path, "not an audio file (no audio stream)")
            s = c.streams.audio[0]
            frames = 0
            if s.duration is not None and s.time_base is not None:
                frames = int(round(float(s.duration * s.time_base) * s.rate))
            elif c.duration:
                frames = int(round(c.duration / 1e6 * s.rate))
            return AudioInfo(str(path), int(s.rate), int(s.channels), frames, c.format.name, s.codec_context.name)
    except AudioError:
        raise
    except Exception:  # PyAV raises many types; libsndfile's reason is the clearer one
        raise AudioError(path, _sndfile_reason(sf_error)) from None


# ----------------------------------------------------------------------------- signal helpers


def to_mono(x: np.ndarray) -> np.ndarray:
    """(frames, channels) or (frames,) -> (frames,) by averaging the channels."""
    if x.ndim == 1:
        return x
    return x.mean(axis=1)


def _ratio(orig_sr: int, target_sr: int) -> tuple[int, int]:
    f = Fraction(int(target_sr), int(orig_sr))
    return f.numerator, f.denominator


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Anti-aliased polyphase resampling (scipy's ``resample_poly``, Kaiser-windowed FIR).

    Output length is ``ceil(len(x) * target_sr / orig_sr)``; float32 out.
    """
    if orig_sr == target_sr:
        return np.asarray(x, dtype=np.float32)
    from scipy.signal import resample_poly

    up, down = _ratio(orig_sr, target_sr)
    return resample_poly(np.asarray(x, dtype=np.float64), up, down).astype(np.float32)


def _context(orig_sr: int, target_sr: int) -> int:
    """Input samples of context each side of a block so that block-wise resampling equals
    whole-signal resampling: covers resample_poly's filter half-length, rounded up to a
    multiple of the decimation factor."""
    up, down = _ratio(orig_sr, target_sr)
    half = 10 * max(up, down) / up + 2
    return down * math.ceil(half / down)


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level in dB relative to full scale (-inf for digital silence)."""
    if len(x) == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0 else float("-inf")


def is_silent(x: np.ndarray, threshold_dbfs: float = SILENCE_DBFS) -> bool:
    """True when the clip's RMS level is below ``threshold_dbfs``."""
    return rms_dbfs(x) < threshold_dbfs


def _check_finite(path: Path, x: np.ndarray, offset_s: float = 0.0, sr: int = 1) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argmax(bad.reshape(len(x), -1).any(axis=1)))
        raise AudioError(
            path,
            f"contains NaN or Inf samples ({int(bad.sum())} of {bad.size}, first at "
            f"{offset_s + first / sr:.3f} s)",
        )


# ----------------------------------------------------------------------------- reading


def _frame_range(path: Path, hdr: AudioInfo, start: float | None, end: float | None) -> tuple[int, int]:
    sr = hdr.sample_rate
    s = 0 if start is None else int(round(start * sr))
    e = hdr.frames if end is None else int(round(end * sr))
    if start is not None and start < 0:
        raise AudioError(path, f"segment start {start} s is negative")
    if end is not None and end <= (start or 0.0):
        raise AudioError(path, f"segment end {end} s is not after its start {start or 0.0} s")
    if s >= hdr.frames:
        raise AudioError(path, f"segment start {start:.3f} s is past the end of the audio ({hdr.duration:.3f} s)")
    tolerance = int(0.05 * sr)  # manifests round times; allow 50 ms past the end
    if e > hdr.frames + tolerance:
        raise AudioError(path, f"segment end {end:.3f} s is past the end of the audio ({hdr.duration:.3f} s)")
    return s, min(e, hdr.frames)


def _read_frames(path: Path, hdr: AudioInfo, s: int, e: int) -> np.ndarray:
    """Frames [s, e) as float32 (frames, channels)."""
    import soundfile as sf

    if hdr.format and hdr.subtype and _is_sndfile(hdr):
        try:
            with sf.SoundFile(str(path)) as f:
                if s:
                    f.seek(s)
                x = f.read(e - s, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(path, _sndfile_reason(err)) from None
        if len(x) < e - s:
            raise AudioError(
                path, f"truncated: the header promises {hdr.frames} frames but reading stopped at {s + len(x)}"
            )
        return x
    return _av_read(path, hdr, s, e)


_SF_FORMATS: set[str] | None = None


def _is_sndfile(hdr: AudioInfo) -> bool:
    global _SF_FORMATS
    if _SF_FORMATS is None:
        import soundfile as sf

        _SF_FORMATS = set(sf.available_formats())
    return hdr.format in _SF_FORMATS


def _av_read(path: Path, hdr: AudioInfo, s: int, e: int) -> np.ndarray:
    import av

    chunks, pos = [], 0
    try:
        with av.open(str(path)) as c:
            for frame in c.decode(audio=0):
                a = frame.to_ndarray()
                a = a.reshape(-1, hdr.channels) if frame.format.is_packed else a.T
                a = a.astype(np.float32)
                if np.issubdtype(frame.to_ndarray().dtype, np.integer):
                    a /= float(np.iinfo(frame.to_ndarray().dtype).max)
                n = len(a)
                lo, hi = max(s - pos, 0), min(e - pos, n)
                if hi > lo:
                    chunks.append(a[lo:hi])
                pos += n
                if pos >= e:
                    break
    except Exception as err:
        raise AudioError(path, f"unreadable or corrupt audio ({err})") from None
    if not chunks:
        raise AudioError(path, "no audio samples could be decoded")
    return np.concatenate(chunks)


def load_audio(
    path: str | os.PathLike,
    sample_rate: int = SAMPLE_RATE,
    start: float | None = None,
    end: float | None = None,
    min_duration: float = 0.0,
    max_duration: float | None = None,
) -> np.ndarray:
    """Load a clip (or the segment ``start``..``end`` seconds) as mono float32 at ``sample_rate``.

    Raises AudioError when the file is missing, unreadable, truncated, not audio, empty,
    shorter than ``min_duration`` s, longer than ``max_duration`` s, or holds NaN/Inf samples.
    Silence loads; test it with :func:`is_silent`.
    Returns an array of shape (samples,).
    """
    path = Path(path)
    hdr = info(path)
    s, e = _frame_range(path, hdr, start, end)
    seconds = (e - s) / hdr.sample_rate
    if seconds < min_duration:
        raise AudioError(path, f"too short: {seconds * 1000:.1f} ms, at least {min_duration * 1000:.0f} ms needed")
    if max_duration is not None and seconds > max_duration:
        raise AudioError(path, f"too long: {seconds:.1f} s, at most {max_duration:.1f} s allowed here")
    x = _read_frames(path, hdr, s, e)
    _check_finite(path, x, s / hdr.sample_rate, hdr.sample_rate)
    return resample(to_mono(x), hdr.sample_rate, sample_rate)


def iter_blocks(
    path: str | os.PathLike,
    block_seconds: float = 30.0,
    sample_rate: int = SAMPLE_RATE,
    start: float | None = None,
    end: float | None = None,
) -> Iterator[Block]:
    """Yield consecutive blocks of about ``block_seconds`` (mono float32 at ``sample_rate``).

    Only one block (plus a few samples of context) is in memory at a time. Concatenating the
    blocks gives what ``load_audio`` returns for the same range, to float rounding.
    """
    path = Path(path)
    hdr = info(path)
    s0, e0 = _frame_range(path, hdr, start, end)
    sr_in = hdr.sample_rate
    up, down = _ratio(sr_in, sample_rate)
    block_in = max(down, int(round(block_seconds * sr_in / down)) * down)
    ctx = _context(sr_in, sample_rate) if sr_in != sample_rate else 0
    n_in = e0 - s0
    total_out = math.ceil(n_in * up / down)
    for k in range(0, n_in, block_in):
        a, b = s0 + k, min(s0 + k + block_in, e0)
        lo, hi = max(s0, a - ctx), min(e0, b + ctx)
        x = to_mono(_read_frames(path, hdr, lo, hi))
        _check_finite(path, x, lo / sr_in, sr_in)
        if ctx:
            x = np.concatenate([np.zeros(ctx - (a - lo), np.float32), x, np.zeros(ctx - (hi - b), np.float32)])
        y = resample(x, sr_in, sample_rate)
        out_lo = k * up // down
        n_out = min(block_in * up // down, total_out - out_lo)
        off = ctx * up // down
        yield Block(start=(s0 / sr_in) + out_lo / sample_rate, audio=y[off:off + n_out], sample_rate=sample_rate)


def check_audio(path: str | os.PathLike, min_duration: float = 0.0, block_seconds: float = 60.0) -> AudioInfo:
    """Decode the whole file block by block (never whole in memory) to prove it is usable.

    Returns its header; raises AudioError naming the cause otherwise.
    """
    hdr = info(path)
    if hdr.duration < min_duration:
        raise AudioError(path, f"too short: {hdr.duration * 1000:.1f} ms, at least {min_duration * 1000:.0f} ms needed")
    step = max(1, int(block_seconds * hdr.sample_rate))
    p = Path(path)
    for s in range(0, hdr.frames, step):
        x = _read_frames(p, hdr, s, min(s + step, hdr.frames))
        _check_finite(p, x, s / hdr.sample_rate, hdr.sample_rate)
    return hdr
