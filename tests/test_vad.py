"""Voice activity segmentation (emovox.vad) on speech synthesised with espeak-ng."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from conftest import speech_recording
from emovox.vad import (FRAME, SpeechProbabilities, VADConfig, segment_audio, segment_file,
                        segment_stream)

SR = 16000


@pytest.fixture(scope="module")
def utterances(speech_clips):
    return speech_clips


def layout(utterances, pause=1.5, lead=1.0):
    """Speech separated by silence; returns audio and the true (start, end) of each utterance."""
    return speech_recording(utterances, pause=pause, lead=lead)


def test_streaming_probabilities_equal_silero_whole_array(utterances):
    silero_vad = pytest.importorskip("silero_vad")
    audio, _ = layout(utterances)
    whole = silero_vad.load_silero_vad(sequence=True).audio_forward(audio)
    sp = SpeechProbabilities(max_frames=37)
    step = 7777  # not a multiple of the frame
    streamed = np.concatenate([sp.feed(audio[i:i + step]) for i in range(0, len(audio), step)] + [sp.flush()])
    assert streamed.shape == whole.shape == (int(np.ceil(len(audio) / FRAME)),)
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


def test_segments_find_each_utterance(utterances):
    audio, truth = layout(utterances)
    segs = segment_audio(audio)
    assert len(segs) == len(truth)
    for s, (a, b) in zip(segs, truth):
        assert abs(s.start - a) < 0.35 and abs(s.end - b) < 0.4, (s, a, b)
        assert s.audio is not None and len(s.audio) == round((s.end - s.start) * SR)
        i = round(s.start * SR)
        np.testing.assert_array_equal(s.audio, audio[i:i + len(s.audio)])
    assert all(x.end <= y.start for x, y in zip(segs, segs[1:]))


def test_silence_gives_no_segments():
    assert segment_audio(np.zeros(5 * SR, np.float32)) == []
    rng = np.random.default_rng(0)
    assert segment_audio((1e-4 * rng.standard_normal(3 * SR)).astype(np.float32)) == []


def test_chunk_size_does_not_change_segments(utterances):
    audio, _ = layout(utterances)
    a = [(s.start, s.end) for s in segment_audio(audio, chunk_seconds=0.1)]
    b = [(s.start, s.end) for s in segment_audio(audio, chunk_seconds=60)]
    assert a == b and len(a) == 3


def test_long_speech_is_split_at_max_segment(utterances):
    audio = np.concatenate(utterances * 3)  # ~25 s without pauses
    cfg = VADConfig(max_segment=6.0)
    segs = segment_audio(audio, cfg)
    assert len(segs) >= 4
    assert max(s.duration for s in segs) <= cfg.max_segment + 1e-6
    covered = sum(s.duration for s in segs)
    assert covered > 0.8 * len(audio) / SR


def test_short_segments_are_merged(utterances):
    audio, truth = layout(utterances, pause=0.8)
    assert len(segment_audio(audio, VADConfig(min_segment=0.5))) == 3
    merged = segment_audio(audio, VADConfig(min_segment=4.0, merge_gap=1.0, max_segment=30.0))
    assert len(merged) < 3
    assert merged[0].start < truth[0][0] and merged[-1].end > truth[-1][1] - 0.1


def test_segment_file_streams_blocks(utterances, tmp_path):
    audio, truth = layout(utterances)
    path = tmp_path / "speech.flac"
    sf.write(path, audio, SR)
    from_file = [(round(s.start, 3), round(s.end, 3)) for s in segment_file(path, block_seconds=2.0)]
    in_memory = [(round(s.start, 3), round(s.end, 3)) for s in segment_audio(audio)]
    assert from_file == in_memory
    times_only = list(segment_stream([audio], keep_audio=False))
    assert [(round(s.start, 3), round(s.end, 3)) for s in times_only] == in_memory
    assert all(s.audio is None for s in times_only)


@pytest.mark.parametrize("kwargs", [{"threshold": 1.5}, {"max_segment": 0.1}, {"max_segment": 31}, {"min_silence": -1}])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        VADConfig(**kwargs)
