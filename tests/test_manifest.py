"""Manifests: JSONL round trip, validation that lists every offending row, summaries, exports."""

from __future__ import annotations

import gzip
import json
import math

import pytest

from conftest import write_audio
from emovox.manifest import Manifest, ManifestError, Utterance


@pytest.fixture
def manifest(tmp_path) -> Manifest:
    write_audio(tmp_path / "a.wav", seconds=0.5)
    write_audio(tmp_path / "spk/b.flac", seconds=0.25, sr=8000, channels=2)
    recs = [Utterance(id="a", audio="a.wav", duration=0.5, speaker="x-1", emotion="happy", valence=3.0,
                      transcript="hi there", language="en", extra={"level": "high"}),
            Utterance(id="b", audio="spk/b.flac", duration=0.25, speaker="x-2", emotion="sad", start=0.0, end=0.2,
                      sentiment="negative", sentiment_probs=[0.7, 0.2, 0.1])]
    return Manifest(recs, corpus="toy", root=str(tmp_path), labels={"emotion": ["happy", "sad"],
                    "level": ["low", "high"]}, scales={"valence": [1.0, 5.0]})


def test_jsonl_round_trip(tmp_path, manifest):
    manifest.save(tmp_path / "m.jsonl")
    back = Manifest.load(tmp_path / "m.jsonl")
    assert back == manifest
    first = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[0])
    assert first["manifest"]["corpus"] == "toy"
    assert back[0].get("level") == "high" and back[0].get("emotion") == "happy" and back[1].get("level") is None


def test_relative_root_is_resolved_against_the_file(tmp_path, manifest):
    manifest.root = "."
    (tmp_path / "sub").mkdir()
    manifest.save(tmp_path / "m.jsonl")
    assert Manifest.load(tmp_path / "m.jsonl").audio_path(manifest[0]) == tmp_path.resolve() / "a.wav"


def test_unknown_keys_go_to_extra():
    u = Utterance.from_dict({"id": "x", "audio": "x.wav", "intensity": "strong"})
    assert u.extra == {"intensity": "strong"} and u.get("intensity") == "strong"
    assert u.to_dict() == {"id": "x", "audio": "x.wav", "extra": {"intensity": "strong"}}


def test_load_collects_every_bad_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "audio": "a.wav"}\nnot json\n[1, 2]\n{"id": "b", "audio": "b"}\n{oops\n')
    with pytest.raises(ManifestError) as e:
        Manifest.load(tmp_path / "bad.jsonl")
    assert [p.split(":")[0] for p in e.value.problems] == ["line 2", "line 3", "line 5"]
    with pytest.raises(ManifestError, match="file not found"):
        Manifest.load(tmp_path / "absent.jsonl")


def test_validation_lists_every_problem(manifest):
    assert manifest.validate() == []
    bad = manifest.replace([
        *manifest.records,
        Utterance(id="a", audio="a.wav"),  # duplicate id
        Utterance(id="c", audio="gone.wav"),  # missing file
        Utterance(id="d", audio="a.wav", emotion="joy"),  # outside vocabulary
        Utterance(id="e", audio="a.wav", valence=math.nan),  # non-finite
        Utterance(id="f", audio="a.wav", arousal=math.inf, start=1.0, end=0.5),  # two problems in one row
        Utterance(id="g", audio="a.wav", valence=9.0, extra={"level": "medium"}),  # off scale, bad extra label
        Utterance(id="", audio=""),
        Utterance(id="h", audio="a.wav", duration=0.0, sample_rate=-1),
    ])
    problems = bad.validate()
    text = "\n".join(problems)
    assert "row 3 (id 'a'): duplicate id, first at row 1" in text
    assert "row 4 (id 'c'): audio file missing" in text
    assert "row 5 (id 'd'): emotion 'joy' is not in the vocabulary" in text
    assert "row 6 (id 'e'): valence is not a finite number" in text
    assert "row 7 (id 'f'): arousal is not a finite number" in text and "row 7 (id 'f'): end 0.5" in text
    assert "row 8 (id 'g'): valence 9.0 outside the scale" in text and "row 8 (id 'g'): level 'medium'" in text
    assert "row 9: empty id" in text and "no audio path" in text
    assert "row 10 (id 'h'): duration 0.0 is not positive" in text and "row 10 (id 'h'): sample_rate -1" in text
    assert len(problems) == 12
    with pytest.raises(ManifestError) as e:
        bad.check()
    assert e.value.problems == problems and "12 problem(s)" in str(e.value)
    assert not any("missing" in p for p in bad.validate(check_files=False))


def test_summary_counts(manifest):
    s = manifest.summary()
    assert (s["utterances"], s["speakers"], s["transcribed"]) == (2, 2, 1)
    assert s["hours"] == round(0.75 / 3600, 4)
    assert s["labels"] == {"emotion": {"happy": 1, "sad": 1}, "level": {"high": 1}, "sentiment": {"negative": 1}}
    assert s["attributes"]["valence"]["count"] == 1


def test_to_unit(manifest):
    assert manifest.to_unit(1.0, "valence") == -1.0 and manifest.to_unit(5.0, "valence") == 1.0
    assert manifest.to_unit(None, "valence") is None
    with pytest.raises(KeyError, match="arousal"):
        manifest.to_unit(2.0, "arousal")


def test_emobox_export(tmp_path, manifest):
    manifest.to_emobox(tmp_path / "e.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [r["key"] for r in rows] == ["a", "b"] and rows[0]["emo"] == "happy"
    assert rows[0]["wav"] == str(tmp_path / "a.wav") and rows[0]["length"] == 0.5 and rows[1]["end"] == 0.2
    manifest.to_emobox(tmp_path / "l.jsonl", label="level")
    assert json.loads((tmp_path / "l.jsonl").read_text().splitlines()[0])["emo"] == "high"


def test_lhotse_files_without_lhotse(tmp_path, manifest):
    rec_path, sup_path = manifest.save_lhotse(tmp_path / "lh")
    recs = [json.loads(x) for x in gzip.open(rec_path, "rt")]
    sups = [json.loads(x) for x in gzip.open(sup_path, "rt")]
    assert rec_path.name == "toy_recordings.jsonl.gz"
    assert [r["id"] for r in recs] == ["a", "spk/b"]
    assert (recs[1]["sampling_rate"], recs[1]["num_samples"], recs[1]["sources"][0]["channels"]) == (8000, 2000, [0, 1])
    assert sups[0]["duration"] == 0.5 and sups[0]["text"] == "hi there" and sups[0]["custom"]["level"] == "high"
    assert sups[1]["duration"] == 0.2 and sups[1]["channel"] == [0, 1] and sups[1]["speaker"] == "x-2"


def test_lhotse_objects(manifest):
    pytest.importorskip("lhotse")
    recordings, supervisions = manifest.to_lhotse()
    assert len(recordings) == 2 and len(supervisions) == 2
    assert recordings["spk/b"].num_channels == 2 and recordings["spk/b"].sampling_rate == 8000
    assert supervisions["b"].duration == 0.2 and supervisions["a"].custom["level"] == "high"
    assert recordings["a"].load_audio().shape == (1, 8000)
