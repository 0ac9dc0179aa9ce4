"""Audio input: any format libsndfile (or PyAV) reads, to mono float32 at one sample rate.

Every failure raises :class:`AudioError`, whose message names the file and the cause.
``load_audio`` returns a whole clip or a segment of it; ``iter_blocks`` walks a long recording
block by block so that a two-hour file is never held in memory whole at full rate, and gives
the same samples as ``load_audio`` would (resampling is done with context around each block).

Hostile files are refused before they cost anything: the container is decided from the bytes
(``emovox.containers``: playlists, concat lists and URLs are not audio, and FFmpeg only ever
reads the one file, with its demuxer forced), and the header's sample rate, channels and length
must lie within :data:`MIN_SAMPLE_RATE` .. :data:`MAX_SAMPLE_RATE`, :data:`MAX_CHANNELS` and
:data:`MAX_DURATION`. Resampling costs a bounded amount per sample whatever the rates
(``emovox.resample``), and the block reader holds at most :data:`BLOCK_SAMPLES` input samples
(16 MB of float32) at a time, so memory per file is bounded whatever its header says.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from . import containers
from .resample import half_width, is_polyphase, output_length, ratio, resample, sinc_resample

SAMPLE_RATE = 16000
"""The rate every model in emovox reads (Hz)."""

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".sph", ".nist", ".aiff", ".aif", ".aifc",
                    ".au", ".snd", ".caf", ".w64", ".rf64", ".wv", ".m4a", ".aac", ".webm", ".mka", ".wma")
"""File extensions treated as audio when a folder is searched (``corpus import``, ``predict``), in
order of preference when one stem has several files."""

SILENCE_DBFS = -60.0
"""Clips whose RMS level is below this (dB full scale) count as silent."""

MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768_000
"""Sample rates outside this range (Hz) are refused from the header."""
MAX_CHANNELS = 32
MAX_DURATION = 24 * 3600.0
"""Files declaring more channels or more seconds than this are refused from the header."""
BLOCK_SAMPLES = 1 << 22
"""Most input samples (frames x channels) decoded at once by the block reader, by
``check_audio`` and by each read of ``load_audio`` (16 MB as float32)."""
MAX_LOAD_FRAMES = 1 << 27
"""Longest range ``load_audio`` returns whole (134 M input frames: 46 min at 48 kHz, 2.3 h at
16 kHz; about 12 bytes a frame while it resamples); longer ones are read with ``iter_blocks``."""
ANTI_PHASE = -0.5
"""A channel whose correlation with the loudest channel is below this is inverted before the
channels are averaged, so that anti-phase stereo (L = -R) does not cancel to silence."""


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
    decoder: str = containers.SNDFILE
    """``sndfile`` or ``av:<demuxer>`` (PyAV with that FFmpeg demuxer forced)."""

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
    if not path.is_file():
        raise AudioError(path, "not a regular file (a device, pipe or socket), not an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")


def info(path: str | os.PathLike) -> AudioInfo:
    """Read the header: sample rate, channels, frames. Raises AudioError for unusable files,
    for files that are not audio containers (playlists, lists, URLs, text) and for headers
    outside the limits (:data:`MAX_SAMPLE_RATE`, :data:`MAX_CHANNELS`, :data:`MAX_DURATION`)."""
    import soundfile as sf

    path = Path(path)
    _check_exists(path)
    try:
        kind = containers.sniff(path)
    except OSError as e:
        raise AudioError(path, f"cannot read ({e.strerror or e})") from None
    if isinstance(kind, str):
        raise AudioError(path, kind)
    if kind.decoder == containers.AV:
        result = _av_info(path, kind.demuxer, None)
    else:
        try:
            i = sf.info(str(path))
            result = AudioInfo(str(path), int(i.samplerate), int(i.channels), int(i.frames), i.format, i.subtype)
        except (sf.LibsndfileError, RuntimeError, TypeError) as e:
            if kind.demuxer is None:
                raise AudioError(path, _sndfile_reason(e)) from None
            result = _av_info(path, kind.demuxer, e)
    if result.format == "WAV":
        _check_wav_chunks(path)
    _check_header(path, result)
    return result


def _check_header(path: Path, h: AudioInfo) -> None:
    if h.sample_rate <= 0 or h.channels <= 0:
        raise AudioError(path, f"invalid header (sample rate {h.sample_rate}, {h.channels} channels)")
    if not MIN_SAMPLE_RATE <= h.sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(path, f"sample rate {h.sample_rate} Hz is outside what emovox reads "
                               f"({MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz); refused from the header")
    if h.channels > MAX_CHANNELS:
        raise AudioError(path, f"{h.channels} channels: more than the {MAX_CHANNELS} emovox reads; "
                               "refused from the header")
    if h.frames <= 0:
        raise AudioError(path, "no audio samples (zero length)")
    if h.duration > MAX_DURATION:
        raise AudioError(path, f"the header declares {h.duration / 3600:.1f} h of audio, more than the "
                               f"{MAX_DURATION / 3600:.0f} h emovox reads; refused from the header")


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
    msg = msg.split(": ", 1)[1] if msg.startswith("Error opening ") and ": " in msg else msg  # names the path
    if "Format not recognised" in msg or "unknown format" in msg.lower():
        return "not an audio file (format not recognised)"
    if "unimplemented format" in msg.lower() or "unsupported" in msg.lower():
        return f"unsupported audio encoding ({msg})"
    return f"unreadable or corrupt audio ({msg})"


def _av_info(path: Path, demuxer: str, sf_error: Exception | None) -> AudioInfo:
    """Containers libsndfile does not read (m4a, aac, webm, wma ...): PyAV, with the demuxer
    that :func:`emovox.containers.sniff` chose forced (never FFmpeg's own guess)."""
    def reason() -> str:
        return _sndfile_reason(sf_error) if sf_error is not None else "unreadable or corrupt audio"

    try:
        import av  # noqa: F401
    except ImportError:
        raise AudioError(path, reason() if sf_error is not None else
                         "unsupported audio container (reading it needs PyAV: pip install av)") from None
    try:
        with containers.open_av(path, demuxer) as c:
            if not c.streams.audio:
                raise AudioError(path, "not an audio file (no audio stream)")
            s = c.streams.audio[0]
            frames = 0
            if s.duration is not None and s.time_base is not None:
                frames = int(round(float(s.duration * s.time_base) * s.rate))
            elif c.duration:
                frames = int(round(c.duration / 1e6 * s.rate))
            return AudioInfo(str(path), int(s.rate or 0), int(s.channels or 0), frames, c.format.name,
                             s.codec_context.name, decoder=f"{containers.AV}:{demuxer}")
    except AudioError:
        raise
    except Exception:  # PyAV raises many types, and their messages name the file
        raise AudioError(path, reason()) from None


# ----------------------------------------------------------------------------- signal helpers


def to_mono(x: np.ndarray) -> np.ndarray:
    """(frames, channels) or (frames,) -> (frames,) by averaging the channels; a channel in
    anti-phase with the loudest one (correlation below :data:`ANTI_PHASE`) is inverted first,
    so L = -R gives L rather than silence, while unrelated channels are averaged as they are."""
    if x.ndim == 1:
        return x
    if x.shape[1] == 1:
        return x[:, 0]
    x64 = np.asarray(x, dtype=np.float64)
    energy = np.einsum("ij,ij->j", x64, x64)
    ref = int(np.argmax(energy))
    if energy[ref] > 0:
        corr = (x64.T @ x64[:, ref]) / np.sqrt(np.maximum(energy * energy[ref], 1e-300))
        signs = np.where(corr < ANTI_PHASE, -1.0, 1.0)
        if (signs < 0).any():
            return (x64 @ signs / x.shape[1]).astype(np.float32)
    return x.mean(axis=1)


def _context(orig_sr: int, target_sr: int) -> int:
    """Input samples of context each side of a block so that block-wise polyphase resampling
    equals whole-signal resampling: covers resample_poly's filter half-length, rounded up to a
    multiple of the decimation factor."""
    up, down = ratio(orig_sr, target_sr)
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
    """Frames [s, e) as float32 (frames, channels), decoded at most :data:`BLOCK_SAMPLES`
    samples at a time (a header that lies about its length costs nothing up front)."""
    import soundfile as sf

    if not hdr.decoder.startswith(containers.AV):
        step = max(1, BLOCK_SAMPLES // hdr.channels)
        parts, got = [], 0
        try:
            with sf.SoundFile(str(path)) as f:
                if s:
                    f.seek(s)
                while got < e - s:
                    part = f.read(min(step, e - s - got), dtype="float32", always_2d=True)
                    if not len(part):
                        break
                    parts.append(part)
                    got += len(part)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(path, _sndfile_reason(err)) from None
        if got < e - s:
            raise AudioError(
                path, f"truncated: the header promises {hdr.frames} frames but reading stopped at {s + got}"
            )
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    return _av_read(path, hdr, s, e)


def _av_read(path: Path, hdr: AudioInfo, s: int, e: int) -> np.ndarray:
    demuxer = hdr.decoder.split(":", 1)[1]
    chunks, pos = [], 0
    try:
        with containers.open_av(path, demuxer) as c:
            for frame in c.decode(audio=0):
                raw = frame.to_ndarray()
                a = raw.reshape(-1, hdr.channels) if frame.format.is_packed else raw.T
                a = a.astype(np.float32)
                if np.issubdtype(raw.dtype, np.integer):
                    a /= float(np.iinfo(raw.dtype).max)
                n = len(a)
                lo, hi = max(s - pos, 0), min(e - pos, n)
                if hi > lo:
                    chunks.append(a[lo:hi])
                pos += n
                if pos >= e:
                    break
    except Exception:  # PyAV's messages name the file; the cause is what matters here
        raise AudioError(path, "unreadable or corrupt audio (the decoder stopped)") from None
    if not chunks:
        raise AudioError(path, "no audio samples could be decoded")
    return np.concatenate(chunks)


def _read_mono(path: Path, hdr: AudioInfo, s: int, e: int) -> np.ndarray:
    """Frames [s, e) downmixed, read and checked for NaN/Inf a bounded piece at a time."""
    step = max(1, BLOCK_SAMPLES // hdr.channels)
    parts = []
    for a in range(s, e, step):
        x = _read_frames(path, hdr, a, min(a + step, e))
        _check_finite(path, x, a / hdr.sample_rate, hdr.sample_rate)
        parts.append(to_mono(x))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


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
    if e - s > MAX_LOAD_FRAMES:
        raise AudioError(path, f"too long to load whole: {seconds:.0f} s at {hdr.sample_rate} Hz (more than "
                               f"{MAX_LOAD_FRAMES} frames); read it block by block with emovox.audio.iter_blocks")
    return resample(_read_mono(path, hdr, s, e), hdr.sample_rate, sample_rate)


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
    most = max(1, BLOCK_SAMPLES // hdr.channels)  # input frames per read, whatever the channels
    if not is_polyphase(sr_in, sample_rate):
        yield from _sinc_blocks(path, hdr, s0, e0, block_seconds, sample_rate, most)
        return
    up, down = ratio(sr_in, sample_rate)
    block_in = max(down, int(round(block_seconds * sr_in / down)) * down)
    block_in = max(down, min(block_in, most // down * down))
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


def _sinc_blocks(path: Path, hdr: AudioInfo, s0: int, e0: int, block_seconds: float, sample_rate: int,
                 most: int) -> Iterator[Block]:
    """``iter_blocks`` for rate pairs the polyphase filter cannot take: each output block is
    computed by ``sinc_resample`` from its input range plus ``half_width`` samples each side,
    so it equals the whole-signal result sample for sample."""
    sr_in, n_in = hdr.sample_rate, e0 - s0
    k = half_width(sr_in, sample_rate)
    per = max(1, min(int(block_seconds * sample_rate), (most - 2 * k - 2) * sample_rate // sr_in))
    total = output_length(n_in, sr_in, sample_rate)
    for m0 in range(0, total, per):
        m1 = min(m0 + per, total)
        lo = max(0, m0 * sr_in // sample_rate - k)
        hi = min(n_in, (m1 - 1) * sr_in // sample_rate + k + 1)
        x = to_mono(_read_frames(path, hdr, s0 + lo, s0 + hi))
        _check_finite(path, x, (s0 + lo) / sr_in, sr_in)
        y = sinc_resample(x, lo, n_in, sr_in, sample_rate, m0, m1)
        yield Block(start=s0 / sr_in + m0 / sample_rate, audio=y, sample_rate=sample_rate)


def check_audio(path: str | os.PathLike, min_duration: float = 0.0, block_seconds: float = 60.0) -> AudioInfo:
    """Decode the whole file block by block (never whole in memory) to prove it is usable.

    Returns its header; raises AudioError naming the cause otherwise.
    """
    hdr = info(path)
    if hdr.duration < min_duration:
        raise AudioError(path, f"too short: {hdr.duration * 1000:.1f} ms, at least {min_duration * 1000:.0f} ms needed")
    step = max(1, min(int(block_seconds * hdr.sample_rate), BLOCK_SAMPLES // hdr.channels))
    p = Path(path)
    for s in range(0, hdr.frames, step):
        x = _read_frames(p, hdr, s, min(s + step, hdr.frames))
        _check_finite(p, x, s / hdr.sample_rate, hdr.sample_rate)
    return hdr
