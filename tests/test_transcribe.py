"""Transcribers on generated speech (espeak-ng) and on real clips from ../shared/data/asr."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_path
from emovox.audio import AudioError
from emovox.evaluate.wer import normalize_english, wer
from emovox.text.transcribe import Transcript, as_audio, get_transcriber

PHRASE = "please call me tomorrow morning about the weather"
PHRASE_WORDS = {"please", "call", "tomorrow", "morning", "weather"}
LJ_CLIP = ("ljspeech", "LJSpeech-1.1", "wavs", "LJ001-0002.flac")
LJ_TEXT = "in being comparatively modern."


@pytest.fixture(scope="module")
def synth():
    pytest.importorskip("espeakng_loader")
    from emovox.text.synth import synthesize_array

    return synthesize_array


@pytest.fixture(scope="module")
def tiny():
    return get_transcriber("whisper-tiny.en")


@pytest.fixture(scope="module")
def sphinx():
    pytest.importorskip("pocketsphinx")
    return get_transcriber("pocketsphinx")


def _words(t: Transcript) -> set[str]:
    return set(normalize_english(t.text).split())


def test_synthesize_writes_16k_mono(tmp_path, synth):
    import soundfile as sf

    from emovox.text.synth import synthesize

    p = synthesize("hello world", tmp_path / "hello.flac")
    x, sr = sf.read(p)
    assert sr == 16000 and x.ndim == 1 and 0.3 < len(x) / sr < 3.0 and np.abs(x).max() > 0.05
    with pytest.raises(ValueError, match="empty"):
        synth("   ")
    from emovox.text.synth import SynthesisError

    with pytest.raises(SynthesisError, match="no voice"):
        synth("hello", voice="xx-nonexistent")


def test_tiny_en_on_generated_speech(tiny, synth, tmp_path):
    audio = synth(PHRASE)
    t = tiny.transcribe(audio)
    assert PHRASE_WORDS <= _words(t), t.text
    assert t.language == "en" and t.duration == pytest.approx(len(audio) / 16000)
    assert t.segments and all(0 <= s.start <= s.end <= t.duration + 0.5 for s in t.segments)
    # a path gives the same as the array
    import soundfile as sf

    path = tmp_path / "fox.wav"
    sf.write(path, audio, 16000, subtype="FLOAT")
    assert tiny.transcribe(path).text == t.text


def test_pocketsphinx_on_generated_speech(sphinx, synth):
    t = sphinx.transcribe(synth("one two three four five"))
    assert len({"two", "three", "four", "five", "one"} & _words(t)) >= 3, t.text
    assert t.segments and t.segments[0].words and t.segments[0].words[0].start >= 0


def test_tiny_en_on_real_clip(tiny):
    t = tiny.transcribe(shared_path("asr", *LJ_CLIP))
    assert wer(LJ_TEXT, t.text) <= 0.25, t.text


def test_pocketsphinx_on_real_clip(sphinx):
    t = sphinx.transcribe(shared_path("asr", *LJ_CLIP))
    assert "comparatively" in _words(t), t.text


@pytest.mark.slow
def test_whisper_base_real_and_generated(synth):
    try:
        base = get_transcriber("whisper-base")
    except ImportError as e:
        pytest.skip(str(e))
    assert len(PHRASE_WORDS & _words(base.transcribe(synth(PHRASE)))) >= 4
    t = base.transcribe(shared_path("asr", *LJ_CLIP), language="en")
    assert wer(LJ_TEXT, t.text) <= 0.25, t.text


def test_word_timestamps_option(synth):
    t = get_transcriber("whisper-tiny.en", word_timestamps=True).transcribe(synth("hello world"))
    words = [w for s in t.segments for w in (s.words or [])]
    assert words and all(w.end >= w.start for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_bad_inputs(tiny, tmp_path):
    with pytest.raises(AudioError, match="file not found"):
        tiny.transcribe(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="mono"):
        as_audio(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="float"):
        as_audio(np.zeros(100, np.int16))
    assert tiny.transcribe(np.zeros(0, np.float32)).text == ""
    with pytest.raises(ValueError, match="unknown transcriber"):
        get_transcriber("no-such-asr")
    with pytest.raises(ValueError, match="English-only"):
        get_transcriber("whisper-tiny.en", language="de")
    with pytest.raises(ValueError, match="neither"):
        get_transcriber(str(tmp_path))


def test_transcriber_is_cached(tiny):
    assert get_transcriber("whisper-tiny.en") is tiny
    alias = get_transcriber("tiny.en")  # the short name loads the same bundled model, once
    assert alias.name == tiny.name and get_transcriber("tiny.en") is alias


def test_hf_whisper_route_and_chunks(monkeypatch):
    """The transformers path (for users with hub access) parses the pipeline's timestamped chunks."""
    from emovox.text import transcribe

    calls = {}

    class FakeModel:
        config = type("C", (), {"is_multilingual": True})()
        generation_config = type("G", (), {"lang_to_id": {"<|de|>": 1}})()

    class FakePipe:
        model = FakeModel()

        def __call__(self, inputs, generate_kwargs=None, **kw):
            calls.update(generate_kwargs=generate_kwargs, sr=inputs["sampling_rate"], **kw)
            return {"text": " Hallo Welt. Wie geht's?",
                    "chunks": [{"timestamp": (0.0, 1.2), "text": " Hallo Welt."},
                               {"timestamp": (1.2, None), "text": " Wie geht's?"}]}

    def fake_pipeline(model, config):
        calls.update(model=model, threads=config.threads)
        return FakePipe()

    monkeypatch.setattr(transcribe, "_hf_asr_pipeline", fake_pipeline)
    t = get_transcriber("hf:someone/whisper-x", language="de", cache=False)
    out = t.transcribe(np.zeros(32000, np.float32))
    assert calls["model"] == "someone/whisper-x" and calls["threads"] == 2
    assert calls["generate_kwargs"]["language"] == "de" and calls["return_timestamps"] and calls["sr"] == 16000
    assert out.text == "Hallo Welt. Wie geht's?" and out.language == "de" and t.name == "hf:someone/whisper-x"
    assert [(s.start, s.end, s.text) for s in out.segments] == [(0.0, 1.2, "Hallo Welt."), (1.2, 2.0, "Wie geht's?")]
