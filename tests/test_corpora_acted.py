"""The acted-emotion importers ASED (Amharic), nEMO (Polish), TurEV-DB (Turkish) and TESS (English):
each on a tiny fixture written in its release layout (a mix of .wav and .flac), and each on the
real corpus in ../corpora (or ``$EMOVOX_CORPORA``) when it is there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import write_audio
from emovox.corpora import FORMATS, CorpusError, prepare, skipped_of
from emovox.corpora.vocab import ASED, EMOTIONS, NEMO, TESS, TUREV

CORPORA = Path(os.environ.get("EMOVOX_CORPORA", Path(__file__).resolve().parents[2] / "corpora"))


def audio(path: Path, seconds: float = 0.3) -> Path:
    return write_audio(path, seconds=seconds, sr=16000)


def causes(m) -> dict[str, str]:
    return {s.path: s.cause for s in skipped_of(m)}


def corpus(name: str) -> Path:
    p = CORPORA / name
    if not p.is_dir():
        pytest.skip(f"real corpus {name}: ../corpora/{name} absent (looked at {p}; set $EMOVOX_CORPORA "
                    f"or get it with ../shared/corpora/get.sh)")
    return p


def test_maps_onto_the_common_vocabulary():
    for table in (ASED, NEMO, TUREV, TESS):
        assert set(table.values()) <= set(EMOTIONS)
    assert TUREV["sk"] == "calm" and NEMO["surprised"] == "surprised" and ASED["f"] == "fearful"
    assert {"ased", "nemo", "turev", "tess"} <= set(FORMATS)


@pytest.mark.parametrize("name", ["ased", "nemo", "turev", "tess"])
def test_empty_folder_is_refused(tmp_path, name):
    with pytest.raises(CorpusError, match=name):
        prepare(name, tmp_path)


# ----------------------------------------------------------------------------- ASED


def test_ased_fixture(tmp_path):
    audio(tmp_path / "05Angry/a5-03-01-02-50.wav")
    audio(tmp_path / "01Neutral/n1-01-02-01-07.flac")
    audio(tmp_path / "04Sad/S4-04-02-01-07.wav")            # upper-case letter, as one release file
    audio(tmp_path / "02Fearful/f2-02-01-02-07.flac")       # speaker 07's odd gender code
    audio(tmp_path / "03Happy/h3-01-01-01-07.wav")
    audio(tmp_path / "03Happy/a5-01-01-01-07.wav")          # angry in the happy folder
    audio(tmp_path / "03Happy/h3-1-01-01-07.wav")           # malformed
    audio(tmp_path / "02Fearful/f3-01-01-01-07.wav")        # letter and folder number disagree
    m = prepare("ased", tmp_path, jobs=2)
    r = m.by_id()
    assert set(r) == {"a5-03-01-02-50", "n1-01-02-01-07", "S4-04-02-01-07", "f2-02-01-02-07", "h3-01-01-01-07"}
    a = r["a5-03-01-02-50"]
    assert (a.emotion, a.speaker, a.gender, a.language, a.transcript) == ("angry", "ased-50", "male", "am", None)
    assert a.extra == {"sentence": 3, "repetition": 1, "emotion_code": "a", "gender_code": "02"}
    assert a.audio == "05Angry/a5-03-01-02-50.wav" and a.sample_rate == 16000 and abs(a.duration - 0.3) < 1e-3
    assert r["n1-01-02-01-07"].audio.endswith(".flac") and r["n1-01-02-01-07"].emotion == "neutral"
    assert r["S4-04-02-01-07"].emotion == "sad" and r["S4-04-02-01-07"].extra["emotion_code"] == "s"
    # speaker 07: three files say female, one male -> the speaker's majority
    assert {x.gender for x in m.records if x.speaker == "ased-07"} == {"female"}
    assert r["f2-02-01-02-07"].extra["gender_code"] == "02"
    assert m.labels["emotion"] == ["neutral", "happy", "sad", "angry", "fearful"]
    c = causes(m)
    assert set(c) == {"03Happy/a5-01-01-01-07.wav", "03Happy/h3-1-01-01-07.wav", "02Fearful/f3-01-01-01-07.wav"}
    assert "folder 03Happy" in c["03Happy/a5-01-01-01-07.wav"]
    assert "not an ASED file name" in c["03Happy/h3-1-01-01-07.wav"]
    assert "folder number" in c["02Fearful/f3-01-01-01-07.wav"]
    with pytest.raises(CorpusError, match="3 bad file"):
        prepare("ased", tmp_path, strict=True)


# ----------------------------------------------------------------------------- nEMO


def _nemo_table(root: Path, rows: list[tuple]) -> None:
    head = "file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage\n"
    (root / "data.tsv").write_text(head + "".join("\t".join(map(str, r)) + "\n" for r in rows), encoding="utf-8")


def test_nemo_fixture(tmp_path):
    audio(tmp_path / "samples/EB0_anger_1.wav")
    audio(tmp_path / "samples/KS0_surprised_10.flac")
    audio(tmp_path / "samples/KS0_sadness_2.wav")
    audio(tmp_path / "samples/XX0_fear_3.wav")               # no row
    audio(tmp_path / "samples/KS0_happiness_4.wav")           # its row says another emotion
    _nemo_table(tmp_path, [
        ("EB0_anger_1.wav", "anger", "Lubię czytać przed snem.", "lubię czytać przed snem", "        EB0",
         "female", 27),
        ("KS0_surprised_10.wav", "surprised", "Kupiłem nową szafę.", "kupiłem nową szafę", " KS0", "male", 23),
        ("KS0_sadness_2.wav", "sadness", "Pada deszcz.", "pada deszcz", "KS0", "male", 23),
        ("KS0_happiness_4.wav", "neutral", "Dzień dobry.", "dzień dobry", "KS0", "male", 23),
        ("MK0_neutral_5.wav", "neutral", "Nie ma mnie.", "nie ma mnie", "MK0", "female", 23),   # no audio
    ])
    m = prepare("nemo", tmp_path, jobs=2)
    r = m.by_id()
    assert set(r) == {"EB0_anger_1", "KS0_surprised_10", "KS0_sadness_2"}
    a = r["EB0_anger_1"]
    assert (a.emotion, a.speaker, a.gender, a.language) == ("angry", "nemo-EB0", "female", "pl")
    assert a.transcript == "Lubię czytać przed snem."
    assert a.extra == {"emotion_code": "anger", "age": 27, "sentence": 1,
                       "normalized_text": "lubię czytać przed snem"}
    b = r["KS0_surprised_10"]
    assert (b.emotion, b.speaker, b.gender) == ("surprised", "nemo-KS0", "male")
    assert b.audio == "samples/KS0_surprised_10.flac"
    assert r["KS0_sadness_2"].emotion == "sad" and r["KS0_sadness_2"].duration == pytest.approx(0.3, abs=1e-3)
    assert m.labels["emotion"] == ["neutral", "happy", "sad", "angry", "fearful", "surprised"]
    c = causes(m)
    assert set(c) == {"samples/XX0_fear_3.wav", "samples/KS0_happiness_4.wav", "samples/MK0_neutral_5.wav"}
    assert "not listed in data.tsv" in c["samples/XX0_fear_3.wav"]
    assert "disagrees" in c["samples/KS0_happiness_4.wav"]
    assert "no audio file" in c["samples/MK0_neutral_5.wav"]


def test_nemo_without_table_is_refused(tmp_path):
    audio(tmp_path / "samples/EB0_anger_1.wav")
    with pytest.raises(CorpusError, match="data.tsv not found"):
        prepare("nemo", tmp_path)


# ----------------------------------------------------------------------------- TurEV-DB


def test_turev_fixture(tmp_path):
    src = tmp_path / "Sound Source"
    audio(src / "Angry/1157_kz_acik.wav")
    audio(src / "Calm/1234_sk_algi.flac")
    audio(src / "Happy/1234_mt_kedi.wav")
    audio(src / "Sad/7895_hl_ogul1.flac")                    # a take number glued to the word
    audio(src / "Sad/1234_mt_kedi2.wav")                     # happy code in the sad folder
    audio(src / "Sad/1234_xx_kedi.wav")                      # unknown code
    audio(src / "Sad/notes.wav")                             # malformed
    m = prepare("turev", tmp_path, jobs=2)
    r = m.by_id()
    assert set(r) == {"1157_kz_acik", "1234_sk_algi", "1234_mt_kedi", "7895_hl_ogul1"}
    a = r["1157_kz_acik"]
    assert (a.emotion, a.speaker, a.gender, a.language, a.transcript) == ("angry", "turev-1157", None, "tr", "acik")
    assert a.extra == {"word": "acik", "emotion_code": "kz"} and a.audio == "Sound Source/Angry/1157_kz_acik.wav"
    assert (r["1234_sk_algi"].emotion, r["1234_sk_algi"].audio[-5:]) == ("calm", ".flac")
    assert r["1234_mt_kedi"].emotion == "happy"
    o = r["7895_hl_ogul1"]
    assert (o.emotion, o.transcript, o.extra["word"], o.extra["take"]) == ("sad", "ogul", "ogul", 1)
    assert m.labels["emotion"] == ["calm", "happy", "sad", "angry"]
    c = causes(m)
    assert set(c) == {"Sound Source/Sad/1234_mt_kedi2.wav", "Sound Source/Sad/1234_xx_kedi.wav",
                      "Sound Source/Sad/notes.wav"}
    assert "folder Sad" in c["Sound Source/Sad/1234_mt_kedi2.wav"]
    assert "unknown emotion code" in c["Sound Source/Sad/1234_xx_kedi.wav"]
    assert "not a TurEV-DB file name" in c["Sound Source/Sad/notes.wav"]
    # the Sound Source folder itself is a root too
    assert len(prepare("turev", src, probe=False)) == 4


# ----------------------------------------------------------------------------- TESS


def test_tess_fixture_release_spellings(tmp_path):
    audio(tmp_path / "OAF_Fear/OAF_back_fear.wav")
    audio(tmp_path / "OAF_Pleasant_surprise/OAF_bath_ps.flac")
    audio(tmp_path / "YAF_pleasant_surprised/YAF_bite_ps.wav")
    audio(tmp_path / "OAF_Sad/OAF_bean_sad.flac")
    audio(tmp_path / "YAF_neutral/YAF_chair_neutral.wav")
    audio(tmp_path / "YAF_sad/YAF_dog_angry.wav")            # angry in the sad folder
    audio(tmp_path / "OAF_Sad/YAF_cat_sad.wav")              # the other speaker's folder
    audio(tmp_path / "OAF_Sad/OAF_cat.wav")                  # malformed
    m = prepare("tess", tmp_path, jobs=2)
    r = m.by_id()
    assert set(r) == {"OAF_back_fear", "OAF_bath_ps", "YAF_bite_ps", "OAF_bean_sad", "YAF_chair_neutral"}
    a = r["OAF_back_fear"]
    assert (a.emotion, a.speaker, a.gender, a.language, a.transcript) == (
        "fearful", "tess-OAF", "female", "en", "Say the word back")
    assert a.extra == {"word": "back", "emotion_code": "fear", "age_group": "older"}
    assert (r["OAF_bath_ps"].emotion, r["OAF_bath_ps"].audio) == ("surprised", "OAF_Pleasant_surprise/OAF_bath_ps.flac")
    assert (r["YAF_bite_ps"].emotion, r["YAF_bite_ps"].speaker) == ("surprised", "tess-YAF")
    assert r["OAF_bean_sad"].emotion == "sad" and r["YAF_chair_neutral"].extra["age_group"] == "younger"
    c = causes(m)
    assert set(c) == {"YAF_sad/YAF_dog_angry.wav", "OAF_Sad/YAF_cat_sad.wav", "OAF_Sad/OAF_cat.wav"}
    assert "folder YAF_sad" in c["YAF_sad/YAF_dog_angry.wav"] and "folder OAF_Sad" in c["OAF_Sad/YAF_cat_sad.wav"]
    assert "not a TESS file name" in c["OAF_Sad/OAF_cat.wav"]


# ----------------------------------------------------------------------------- real corpora (../corpora)


def _real(name: str, utterances: int, speakers: int, classes: dict[str, int]):
    m = prepare(name, corpus(name), probe=False)
    s = m.summary()
    assert (s["utterances"], s["speakers"]) == (utterances, speakers)
    assert s["labels"]["emotion"] == classes
    assert not skipped_of(m)
    return m


def test_ased_real():
    m = _real("ased", 2474, 65, {"neutral": 522, "happy": 486, "sad": 470, "angry": 486, "fearful": 510})
    genders = {r.speaker: r.gender for r in m.records}
    assert sorted(genders.values()).count("female") == 25 and sorted(genders.values()).count("male") == 40
    assert {r.language for r in m.records} == {"am"}


def test_nemo_real():
    m = _real("nemo", 4481, 9, {"neutral": 809, "happy": 749, "sad": 769, "angry": 749, "fearful": 736,
                                "surprised": 669})
    assert all(r.transcript and r.gender in {"female", "male"} for r in m.records)
    assert {r.language for r in m.records} == {"pl"}


def test_turev_real():
    m = _real("turev", 1735, 6, {"calm": 408, "happy": 357, "sad": 483, "angry": 487})
    assert len({r.extra["word"] for r in m.records}) == 82  # the release's 83 names count ogul1 apart
    assert {r.language for r in m.records} == {"tr"}


def test_tess_real():
    m = _real("tess", 1960, 2, {e: 280 for e in ["neutral", "happy", "sad", "angry", "fearful", "disgust",
                                                 "surprised"]})
    assert {r.language for r in m.records} == {"en"}
