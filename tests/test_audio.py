"""Audio input: formats, segments, downmix, resampling (anti-aliasing), the block reader, and one
error type whose message names the file and the cause for every kind of bad file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from emovox.audio import AudioError, check_audio, info, is_silent, iter_blocks, load_audio, resample, rms_dbfs


def tone(freq: float, sr: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ----------------------------------------------------------------------------- formats and shapes


@pytest.mark.parametrize("name,subtype", [("a.wav", "PCM_16"), ("a.flac", "PCM_24"), ("a.ogg", "VORBIS"),
                                          ("a.wav", "FLOAT"), ("a.mp3", "MPEG_LAYER_III")])
def test_formats_load_as_mono_float32_16k(make_audio, name, subtype):
    if subtype == "MPEG_LAYER_III" and "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no mp3 support")
    p = make_audio(name, seconds=0.5, sr=22050, channels=2, subtype=subtype)
    x = load_audio(p)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - 8000) <= 1200 if subtype == "MPEG_LAYER_III" else len(x) == 8000
    assert 0.05 < np.abs(x).max() < 1.0


def test_downmix_averages_channels(tmp_path):
    left, right = tone(300, 16000, 0.25), np.zeros(4000, np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), left / 2, atol=1e-7)
    assert info(tmp_path / "s.wav").channels == 2


def test_segment_reads_only_the_range(tmp_path):
    x = np.arange(16000, dtype=np.float32) / 16000
    sf.write(tmp_path / "ramp.wav", x, 16000, subtype="FLOAT")
    seg = load_audio(tmp_path / "ramp.wav", start=0.25, end=0.5)
    np.testing.assert_allclose(seg, x[4000:8000])
    with pytest.raises(AudioError, match="past the end"):
        load_audio(tmp_path / "ramp.wav", start=2.0)
    with pytest.raises(AudioError, match="not after its start"):
        load_audio(tmp_path / "ramp.wav", start=0.5, end=0.2)
    with pytest.raises(AudioError, match="not after its start"):
        load_audio(tmp_path / "ramp.wav", end=0.0)


# ----------------------------------------------------------------------------- resampling


def test_resampling_attenuates_tones_above_the_new_nyquist():
    sr_in, sr_out = 48000, 16000
    alias = resample(tone(11000, sr_in), sr_in, sr_out)  # above 8 kHz: must not fold back to 5 kHz
    passed = resample(tone(1000, sr_in), sr_in, sr_out)
    core = slice(1000, -1000)
    assert rms_dbfs(passed[core]) > rms_dbfs(tone(1000, sr_in)) - 0.5  # passband kept (about -9 dBFS)
    assert rms_dbfs(alias[core]) < rms_dbfs(passed[core]) - 50  # stopband: more than 50 dB down
    assert len(passed) == 16000 and passed.dtype == np.float32


def test_resampling_keeps_length_for_odd_ratios():
    x = np.random.default_rng(0).standard_normal(44100 * 2 + 7).astype(np.float32)
    assert len(resample(x, 44100, 16000)) == int(np.ceil(len(x) * 16000 / 44100))
    assert resample(x, 16000, 16000) is not None and np.array_equal(resample(x, 16000, 16000), x)


# ----------------------------------------------------------------------------- block reader


@pytest.mark.parametrize("sr", [16000, 44100, 8000])
def test_block_reader_equals_whole_load(tmp_path, sr):
    x = np.random.default_rng(1).standard_normal((sr * 5 + 321, 2)).astype(np.float32) * 0.1
    sf.write(tmp_path / "long.flac", x, sr, subtype="PCM_24")
    whole = load_audio(tmp_path / "long.flac")
    blocks = list(iter_blocks(tmp_path / "long.flac", block_seconds=1.3))
    assert len(blocks) == 4
    np.testing.assert_allclose(np.concatenate([b.audio for b in blocks]), whole, atol=1e-6)
    assert blocks[1].start == pytest.approx(blocks[0].end, abs=1e-4)
    seg = load_audio(tmp_path / "long.flac", start=1.1, end=3.9)
    part = np.concatenate([b.audio for b in iter_blocks(tmp_path / "long.flac", 0.6, start=1.1, end=3.9)])
    np.testing.assert_allclose(part, seg, atol=1e-6)


# ----------------------------------------------------------------------------- errors


def _cause(path, **kw) -> str:
    with pytest.raises(AudioError) as e:
        load_audio(path, **kw)
    assert str(path) in str(e.value), "the message names the file"
    assert e.value.path == str(path)
    return e.value.cause


def test_missing_file(tmp_path):
    assert "not found" in _cause(tmp_path / "nope.wav")


def test_directory_is_not_audio(tmp_path):
    assert "directory" in _cause(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "e.wav").write_bytes(b"")
    assert "empty" in _cause(tmp_path / "e.wav")


def test_text_named_wav_is_not_audio(tmp_path):
    (tmp_path / "t.wav").write_text("this is not audio\n" * 50)
    assert "not an audio file" in _cause(tmp_path / "t.wav")


def test_truncated_wav(make_audio):
    p = make_audio("cut.wav", seconds=1.0)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    assert "truncated" in _cause(p)
    with pytest.raises(AudioError, match="truncated"):
        check_audio(p)


def test_corrupt_flac(make_audio):
    p = make_audio("bad.flac", seconds=1.0)
    data = bytearray(p.read_bytes())
    data[100:] = np.random.default_rng(0).integers(0, 256, len(data) - 100, dtype=np.uint8).tobytes()
    p.write_bytes(bytes(data))
    with pytest.raises(AudioError, match="corrupt|unreadable|truncated|not an audio"):
        check_audio(p)


def test_zero_length(tmp_path):
    sf.write(tmp_path / "z.wav", np.zeros(0, np.float32), 16000)
    assert "zero length" in _cause(tmp_path / "z.wav")


def test_shorter_than_minimum(make_audio):
    p = make_audio("short.wav", seconds=0.05)
    assert "too short" in _cause(p, min_duration=0.5)
    assert len(load_audio(p, min_duration=0.01)) == 800
    with pytest.raises(AudioError, match="too short"):
        check_audio(p, min_duration=0.5)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_samples(tmp_path, bad):
    x = tone(200, 16000, 0.5)
    x[3000] = bad
    sf.write(tmp_path / "n.wav", x, 16000, subtype="FLOAT")
    cause = _cause(tmp_path / "n.wav")
    assert "NaN or Inf" in cause and "0.188 s" in cause
    with pytest.raises(AudioError, match="NaN or Inf"):
        check_audio(tmp_path / "n.wav")
    with pytest.raises(AudioError, match="NaN or Inf"):
        list(iter_blocks(tmp_path / "n.wav", block_seconds=0.1))


def test_silence_loads_but_is_detectable(tmp_path, make_audio):
    sf.write(tmp_path / "quiet.wav", np.zeros(8000, np.float32), 16000)
    x = load_audio(tmp_path / "quiet.wav")
    assert len(x) == 8000 and is_silent(x)
    assert not is_silent(load_audio(make_audio("voice.wav", seconds=0.5)))
    assert is_silent(np.full(100, 1e-5, np.float32)) and not is_silent(np.full(100, 1e-2, np.float32))


def test_check_audio_returns_header(make_audio):
    hdr = check_audio(make_audio("ok.flac", seconds=0.5, sr=44100, channels=2))
    assert (hdr.sample_rate, hdr.channels, hdr.frames) == (44100, 2, 22050) and hdr.duration == 0.5


# ----------------------------------------------------------------------------- bounded-cost resampling (issue 15)


def test_sinc_resampler_agrees_with_polyphase_and_rejects_aliases():
    """The coprime-rate path (``emovox.resample.sinc_resample``) is the same low-pass as the
    polyphase one: on a ratio both can do, they agree to about -90 dB of the signal."""
    from emovox.resample import is_polyphase, sinc_resample
    from scipy.signal import resample_poly

    x = tone(1000, 44100, 1.0) + tone(5000, 44100, 1.0, amp=0.2)
    poly = resample_poly(x.astype(np.float64), 160, 441)
    sinc = sinc_resample(x, 0, len(x), 44100, 16000, 0, len(poly))
    assert np.abs(poly - sinc)[100:-100].max() < 1e-4 * np.abs(poly).max()  # relative to the signal's peak
    rate = 767_999
    assert not is_polyphase(rate, 16000)
    passed, alias = resample(tone(1000, rate, 0.5), rate, 16000), resample(tone(11000, rate, 0.5), rate, 16000)
    assert abs(rms_dbfs(passed[200:-200]) - rms_dbfs(tone(1000, rate, 0.5))) < 0.1
    assert rms_dbfs(alias[200:-200]) < rms_dbfs(passed[200:-200]) - 50


def test_block_reader_equals_whole_load_at_a_coprime_rate(tmp_path):
    x = np.random.default_rng(2).standard_normal((44101 * 3 + 17, 2)).astype(np.float32) * 0.1
    sf.write(tmp_path / "odd.flac", x, 44101, subtype="PCM_24")
    whole = load_audio(tmp_path / "odd.flac")
    blocks = list(iter_blocks(tmp_path / "odd.flac", block_seconds=0.7))
    assert len(whole) == int(np.ceil(len(x) * 16000 / 44101)) and len(blocks) == 5
    np.testing.assert_array_equal(np.concatenate([b.audio for b in blocks]), whole)
    assert blocks[1].start == pytest.approx(blocks[0].end, abs=1e-4)


def test_anti_phase_channels_do_not_cancel_but_unrelated_ones_average(tmp_path):
    from emovox.audio import to_mono

    left = tone(300, 16000, 0.25)
    np.testing.assert_allclose(to_mono(np.stack([left, -left], 1)), left, atol=1e-7)
    noise = np.random.default_rng(3).standard_normal((4000, 2)).astype(np.float32)
    np.testing.assert_allclose(to_mono(noise), noise.mean(axis=1), atol=1e-7)


def test_formats_decided_from_bytes_not_names(tmp_path):
    x = tone(440, 16000, 0.5)
    sf.write(tmp_path / "really_flac.mp3", x, 16000, format="FLAC")  # a misleading name loads by content
    assert len(load_audio(tmp_path / "really_flac.mp3")) == 8000
    (tmp_path / "url.wav").write_text("https://example.org/audio.flac\n")
    assert "a URL" in _cause(tmp_path / "url.wav")
