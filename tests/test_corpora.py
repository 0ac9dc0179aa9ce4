"""Corpus importers: each on a tiny fixture written in the official layout (with a mix of audio
extensions), and RAVDESS, BAVED, AN4, LJSpeech and va47 on ../shared/data when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import shared_path, write_audio
from emovox.corpora import FORMATS, CorpusError, prepare, skipped_of
from emovox.corpora.vocab import EMOTIONS, normalize_emotion, vocabulary


def audio(path: Path, seconds: float = 0.2, **kw) -> Path:
    if Path(path).suffix == ".ogg":
        kw.setdefault("subtype", "VORBIS")
    return write_audio(path, seconds=seconds, **kw)


def by_id(m):
    return m.by_id()


# ----------------------------------------------------------------------------- vocabulary


def test_vocabulary_order_and_synonyms():
    assert vocabulary(["sad", "neutral", "zzz", "angry", None]) == ["neutral", "sad", "angry", "zzz"]
    assert normalize_emotion("Anger") == "angry" and normalize_emotion("joy") == "happy"
    assert normalize_emotion("  ") is None and normalize_emotion("weird") == "weird"
    assert len(set(EMOTIONS)) == len(EMOTIONS)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus format"):
        prepare("nope", tmp_path)
    with pytest.raises(CorpusError, match="not a folder"):
        prepare("ravdess", tmp_path / "missing")


# ----------------------------------------------------------------------------- RAVDESS


def test_ravdess_fixture(tmp_path):
    audio(tmp_path / "Actor_01/03-01-05-02-01-01-01.wav")
    audio(tmp_path / "Actor_02/03-01-01-01-02-02-02.flac")
    audio(tmp_path / "Actor_02/03-02-01-01-02-02-02.flac")  # song: left out
    audio(tmp_path / "Actor_02/01-01-01-01-02-02-02.flac")  # audio-video modality: left out
    audio(tmp_path / "Actor_02/not-a-ravdess-name.wav")
    audio(tmp_path / "Actor_02/03-01-01-01-02-02-02.wav")  # the same recording in two formats
    m = prepare("ravdess", tmp_path)
    assert len(m) == 2
    a, b = m.by_id()["03-01-05-02-01-01-01"], m.by_id()["03-01-01-01-02-02-02"]
    assert (a.emotion, a.get("intensity"), a.speaker, a.gender) == ("angry", "strong", "ravdess-01", "male")
    assert a.transcript == "Kids are talking by the door" and a.language == "en"
    assert (b.emotion, b.gender, b.transcript, b.audio) == ("neutral", "female", "Dogs are sitting by the door",
                                                            "Actor_02/03-01-01-01-02-02-02.flac")
    assert abs(a.duration - 0.2) < 1e-3 and a.sample_rate == 16000
    assert m.labels["emotion"][:2] == ["neutral", "calm"] and m.labels["intensity"] == ["normal", "strong"]
    causes = {s.path: s.cause for s in skipped_of(m)}
    assert set(causes) == {"Actor_02/not-a-ravdess-name.wav", "Actor_02/03-01-01-01-02-02-02.wav"}
    assert "duplicate id" in causes["Actor_02/03-01-01-01-02-02-02.wav"]


# ----------------------------------------------------------------------------- BAVED


def test_baved_fixture_reads_word_from_name(tmp_path):
    audio(tmp_path / "0/3-m-21-6-2-17.wav")  # sits in folder 0 but names word 6
    audio(tmp_path / "1/4-f-30-1-0-18.flac")
    m = prepare("baved", tmp_path)
    a, b = m.by_id()["3-m-21-6-2-17"], m.by_id()["4-f-30-1-0-18"]
    assert (a.get("level"), a.get("word"), a.transcript, a.speaker, a.gender) == ("high", 6, "سيئ", "baved-3", "male")
    assert (b.get("level"), b.gender, b.language) == ("low", "female", "ar")
    assert m.labels == {"level": ["low", "neutral", "high"]}


# ----------------------------------------------------------------------------- EmoDB


def test_emodb_fixture(tmp_path):
    audio(tmp_path / "wav/03a01Fa.wav")
    audio(tmp_path / "wav/16b10Lb.ogg")
    m = prepare("emodb", tmp_path)
    a, b = m.by_id()["03a01Fa"], m.by_id()["16b10Lb"]
    assert (a.emotion, a.speaker, a.gender, a.transcript) == ("happy", "emodb-03", "male",
                                                              "Der Lappen liegt auf dem Eisschrank.")
    assert (b.emotion, b.gender, b.language, b.get("text_id")) == ("bored", "female", "de", "b10")
    assert m.labels["emotion"] == ["neutral", "happy", "sad", "angry", "fearful", "disgust", "bored"]


# ----------------------------------------------------------------------------- CREMA-D


def test_cremad_fixture_with_votes(tmp_path):
    audio(tmp_path / "AudioWAV/1001_DFA_ANG_XX.wav")
    audio(tmp_path / "AudioWAV/1002_IEO_HAP_HI.flac")
    (tmp_path / "VideoDemographics.csv").write_text("ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
                                                    "1002,21,Female,Caucasian,Not Hispanic\n")
    (tmp_path / "processedResults").mkdir()
    (tmp_path / "processedResults/tabulatedVotes.csv").write_text(
        ",A,D,F,H,N,S,fileName,numResponses,agreement,emoVote\n"
        "0,5,0,0,0,3,0,1001_DFA_ANG_XX,8,0.625,A\n1,0,0,0,4,4,0,1002_IEO_HAP_HI,8,0.5,H:N\n")
    m = prepare("cremad", tmp_path)
    a, b = m.by_id()["1001_DFA_ANG_XX"], m.by_id()["1002_IEO_HAP_HI"]
    assert (a.emotion, a.gender, a.speaker, a.transcript) == ("angry", "male", "cremad-1001", "Don't forget a jacket")
    assert (a.get("perceived"), a.get("agreement"), a.get("level")) == ("angry", 0.625, "unspecified")
    assert (b.emotion, b.get("perceived"), b.get("level"), b.gender) == ("happy", None, "high", "female")
    perceived = prepare("cremad", tmp_path, label="perceived")
    assert perceived.by_id()["1002_IEO_HAP_HI"].emotion is None


# ----------------------------------------------------------------------------- TESS


def test_tess_fixture(tmp_path):
    audio(tmp_path / "OAF_angry/OAF_back_angry.wav")
    audio(tmp_path / "YAF_pleasant_surprised/YAF_bite_ps.wav")
    m = prepare("tess", tmp_path)
    a, b = m.by_id()["OAF_back_angry"], m.by_id()["YAF_bite_ps"]
    assert (a.emotion, a.speaker, a.transcript) == ("angry", "tess-OAF", "Say the word back")
    assert (b.emotion, b.speaker, b.gender) == ("surprised", "tess-YAF", "female")


# ----------------------------------------------------------------------------- IEMOCAP


def _iemocap(root: Path) -> None:
    for s, spk in ((1, "F"), (2, "M")):
        ses = root / f"Session{s}"
        dialog = f"Ses0{s}{spk}_impro01"
        rows = [("F000", "neu", "2.5000, 2.5000, 2.5000"), ("M000", "exc", "4.0000, 3.5000, 3.0000"),
                ("F001", "fru", "2.0000, 3.5000, 3.5000"), ("M001", "xxx", "3.0000, 3.0000, 3.0000")]
        lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        trans = []
        for i, (turn, code, vad) in enumerate(rows):
            utt = f"{dialog}_{turn}"
            lines += [f"[{i}.0000 - {i}.9000]\t{utt}\t{code}\t[{vad}]", "C-E1:\tNeutral;\t()", ""]
            trans.append(f"{utt} [00{i}.0000-00{i}.9000]: Sentence number {i}.")
            audio(ses / "sentences/wav" / dialog / f"{utt}.wav", seconds=0.1)
        (ses / "dialog/EmoEvaluation").mkdir(parents=True)
        (ses / "dialog/EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(lines))
        (ses / "dialog/transcriptions").mkdir(parents=True)
        (ses / "dialog/transcriptions" / f"{dialog}.txt").write_text("\n".join(trans))


def test_iemocap_fixture_views(tmp_path):
    _iemocap(tmp_path / "IEMOCAP_full_release")
    assert len(prepare("iemocap", tmp_path, probe=False)) == 4  # the release's parent folder works too
    tmp_path = tmp_path / "IEMOCAP_full_release"
    four = prepare("iemocap", tmp_path)
    assert len(four) == 4 and four.labels["emotion"] == ["neutral", "happy", "sad", "angry"]
    r = four.by_id()["Ses01F_impro01_M000"]
    assert (r.emotion, r.get("emotion_code"), r.speaker, r.gender, r.session) == (
        "happy", "exc", "iemocap-Ses01M", "male", "Session1")
    assert (r.valence, r.arousal, r.dominance) == (4.0, 3.5, 3.0) and four.scales["valence"] == [1.0, 5.0]
    assert r.transcript == "Sentence number 1."
    six = prepare("iemocap", tmp_path, classes=6)
    assert len(six) == 6 and six.by_id()["Ses02M_impro01_M000"].emotion == "excited"
    assert "frustrated" in six.labels["emotion"]
    everything = prepare("iemocap", tmp_path, classes=None)
    assert len(everything) == 8 and everything.by_id()["Ses01F_impro01_M001"].emotion is None


# ----------------------------------------------------------------------------- MSP-Podcast


def test_msppodcast_fixture(tmp_path):
    (tmp_path / "Labels").mkdir()
    (tmp_path / "Labels/labels_consensus.csv").write_text(
        "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set\n"
        "MSP-PODCAST_0001_0008.wav,N,4.2,4.0,4.4,127,Female,Train\n"
        "MSP-PODCAST_0001_0009.wav,X,3.0,5.5,4.0,Unknown,Unknown,Development\n"
        "MSP-PODCAST_0002_0001.wav,A,6.0,2.0,5.8,9,Male,Test1\n"
        "MSP-PODCAST_0003_0001.wav,H,5.0,6.0,4.0,10,Male,Test2\n"
        "MSP-PODCAST_9999_0001.wav,H,5.0,6.0,4.0,11,Male,Test2\n")
    for n in ("0001_0008", "0001_0009", "0002_0001", "0003_0001"):
        audio(tmp_path / f"Audios/MSP-PODCAST_{n}.flac", seconds=0.1)
    (tmp_path / "Transcripts").mkdir()
    (tmp_path / "Transcripts/MSP-PODCAST_0001_0008.txt").write_text("hello there\n")
    m = prepare("msppodcast", tmp_path)
    assert len(m) == 4 and [s.path for s in skipped_of(m)] == ["Audios/MSP-PODCAST_9999_0001.wav"]
    a = m.by_id()["MSP-PODCAST_0001_0008"]
    assert (a.emotion, a.arousal, a.valence, a.dominance, a.speaker, a.gender, a.split, a.transcript) == (
        "neutral", 4.2, 4.0, 4.4, "msppodcast-127", "female", "train", "hello there")
    b = m.by_id()["MSP-PODCAST_0001_0009"]
    assert (b.emotion, b.speaker, b.gender, b.split) == (None, None, None, "validation")
    assert m.by_id()["MSP-PODCAST_0002_0001"].split == "test1" and m.scales["arousal"] == [1.0, 7.0]


# ----------------------------------------------------------------------------- MSP-IMPROV


def test_mspimprov_fixture(tmp_path):
    (tmp_path / "Evalution.txt").write_text(
        "UTD-IMPROV-S01A-F01-R-FM01.avi; A; A:4.200000; V:1.800000; D:3.800000; N:2.000000\n"
        "Evaluator01; Angry; Frustrated; A:4.0; V:2.0; D:4.0; N:2.0\n\n"
        "UTD-IMPROV-S02H-M03-S-MF02.avi; X; A:3.000000; V:3.400000; D:3.000000; N:3.000000\n"
        "Evaluator02; Happy; A:3.0; V:3.0; D:3.0; N:3.0\n")
    audio(tmp_path / "Audio/session1/S01A/R/MSP-IMPROV-S01A-F01-R-FM01.wav", seconds=0.1)
    audio(tmp_path / "Audio/session3/S02H/S/MSP-IMPROV-S02H-M03-S-MF02.flac", seconds=0.1)
    m = prepare("mspimprov", tmp_path)
    a, b = m.by_id()["MSP-IMPROV-S01A-F01-R-FM01"], m.by_id()["MSP-IMPROV-S02H-M03-S-MF02"]
    assert (a.emotion, a.arousal, a.valence, a.speaker, a.session, a.get("scenario")) == (
        "angry", 4.2, 1.8, "mspimprov-F01", "session1", "read")
    assert (b.emotion, b.gender, b.session, b.get("target_emotion")) == (None, "male", "session3", "happy")


# ----------------------------------------------------------------------------- MELD


def test_meld_fixture(tmp_path):
    head = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
    (tmp_path / "train_sent_emo.csv").write_text(head + '1,"Oh my God, hi!",Monica,joy,positive,0,0,1,1,a,b\n'
                                                 "2,No.,Ross,anger,negative,0,1,1,1,a,b\n")
    (tmp_path / "test_sent_emo.csv").write_text(head + "1,Hey.,Joey,neutral,neutral,0,0,1,1,a,b\n")
    audio(tmp_path / "train_splits/wav/dia0_utt0.wav", seconds=0.1)
    audio(tmp_path / "train_splits/wav/dia0_utt1.flac", seconds=0.1)
    audio(tmp_path / "output_repeated_splits_test/dia0_utt0.wav", seconds=0.1)  # same stem, other split
    m = prepare("meld", tmp_path)
    assert sorted(m.by_id()) == ["test/dia0_utt0", "train/dia0_utt0", "train/dia0_utt1"]
    a = m.by_id()["train/dia0_utt0"]
    assert (a.emotion, a.transcript, a.split, a.speaker, a.get("character"), a.get("annotated_sentiment")) == (
        "happy", "Oh my God, hi!", "train", None, "Monica", "positive")
    assert m.by_id()["test/dia0_utt0"].audio == "output_repeated_splits_test/dia0_utt0.wav"


# ----------------------------------------------------------------------------- LibriSpeech


def test_librispeech_fixture(tmp_path):
    root = tmp_path / "LibriSpeech"
    for subset, spk, chap in (("train-clean-100", "19", "198"), ("dev-clean", "84", "121123")):
        folder = root / subset / spk / chap
        ids = [f"{spk}-{chap}-{i:04d}" for i in range(2)]
        for i in ids:
            audio(folder / f"{i}.flac", seconds=0.1)
        (folder / f"{spk}-{chap}.trans.txt").write_text("\n".join(f"{i} HELLO WORLD {n}" for n, i in enumerate(ids)))
    (root / "SPEAKERS.TXT").write_text("; ID | SEX | SUBSET | MINUTES | NAME\n19 | F | train-clean-100 | 25 | A\n"
                                       "84 | M | dev-clean | 8 | B\n")
    m = prepare("librispeech", root)
    assert len(m) == 4
    r = m.by_id()["84-121123-0001"]
    assert (r.transcript, r.split, r.speaker, r.gender) == ("HELLO WORLD 1", "dev-clean", "librispeech-84", "male")
    assert m.by_id()["19-198-0000"].split == "train-clean-100"
    one = prepare("librispeech", root / "dev-clean")
    assert len(one) == 2 and one[0].split == "dev-clean"


# ----------------------------------------------------------------------------- AN4


def test_an4_fixture(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/an4_train.transcription").write_text("<s> YES </s> (an251-fash-b)\n<s> GO </s> (an253-fash-b)\n")
    (tmp_path / "etc/an4_test.transcription").write_text("RUBOUT G M E F THREE NINE (an406-mcaw-b)\n")
    audio(tmp_path / "wav/an4_clstk/fash/an251-fash-b.wav", seconds=0.1)
    audio(tmp_path / "wav/an4_clstk/fash/an253-fash-b.flac", seconds=0.1)
    audio(tmp_path / "wav/an4test_clstk/mcaw/an406-mcaw-b.flac", seconds=0.1)
    m = prepare("an4", tmp_path)
    assert [r.transcript for r in m] == ["YES", "GO", "RUBOUT G M E F THREE NINE"]
    assert [r.split for r in m] == ["train", "train", "test"]
    assert (m[2].speaker, m[2].gender, m[0].gender) == ("an4-mcaw", "male", "female")


def test_an4_malformed_line_names_file_and_line(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/an4_train.transcription").write_text("<s> YES </s> (an251-fash-b)\nno id here\n")
    with pytest.raises(CorpusError, match=r"an4_train.transcription: line 2"):
        prepare("an4", tmp_path)


# ----------------------------------------------------------------------------- LJSpeech


def test_ljspeech_fixture_reports_missing_files(tmp_path):
    root = tmp_path / "LJSpeech-1.1"
    root.mkdir()
    (root / "metadata.csv").write_text("LJ001-0001|Printing, in 1 sense|Printing, in one sense\n"
                                       "LJ001-0002|in being modern.|in being modern.\nLJ001-0003|gone|gone\n")
    audio(root / "wavs/LJ001-0001.wav", seconds=0.1)
    audio(root / "wavs/LJ001-0002.flac", seconds=0.1)
    m = prepare("ljspeech", tmp_path)  # the parent folder is accepted
    assert [r.id for r in m] == ["LJ001-0001", "LJ001-0002"]
    assert m[0].transcript == "Printing, in one sense" and m[0].get("raw_text") == "Printing, in 1 sense"
    assert [s.path for s in skipped_of(m)] == ["wavs/LJ001-0003"]
    with pytest.raises(CorpusError, match="1 bad file"):
        prepare("ljspeech", root, strict=True)


# ----------------------------------------------------------------------------- va47


def test_va47_fixture(tmp_path):
    for i in range(3):
        audio(tmp_path / f"{i:02d}.flac", seconds=0.1)
    (tmp_path / "arousal.csv").write_text("00.flac,0.7\n01.flac,-0.2\n")
    (tmp_path / "valence.csv").write_text("00.flac,-0.7\n01.flac,0.1\n02.flac,0.5\n")
    m = prepare("va47", tmp_path)
    assert [(r.id, r.arousal, r.valence, r.speaker) for r in m] == [
        ("00", 0.7, -0.7, None), ("01", -0.2, 0.1, None), ("02", None, 0.5, None)]
    assert m.scales == {"arousal": [-1.0, 1.0], "valence": [-1.0, 1.0]} and m[0].language == "de"
    assert m.to_unit(0.5, "valence") == 0.5


# ----------------------------------------------------------------------------- csv and folder


def test_csv_importer_maps_columns_and_skips_bad_rows(tmp_path):
    audio(tmp_path / "a/x.wav", seconds=0.1)
    audio(tmp_path / "a/y.flac", seconds=0.1)
    audio(tmp_path / "a/z.wav", seconds=0.1)
    (tmp_path / "table.tsv").write_text("path\tlabel\tspk\tval\tmood\n"
                                        "a/x.wav\tAnger\ts1\t0.5\tgood\n"
                                        "a/y.flac\tjoy\ts2\t-0.25\tbad\n"
                                        "a/z.wav\tsad\ts2\tnan\tbad\n"
                                        "a/missing.wav\tsad\ts2\t0\tbad\n")
    m = prepare("csv", tmp_path, csv="table.tsv",
                columns={"audio": "path", "emotion": "label", "speaker": "spk", "valence": "val"}, corpus="mine")
    assert [(r.id, r.emotion, r.speaker, r.valence, r.get("mood")) for r in m] == [
        ("a/x", "angry", "mine-s1", 0.5, "good"), ("a/y", "happy", "mine-s2", -0.25, "bad")]
    causes = {s.path: s.cause for s in skipped_of(m)}
    assert "not finite" in causes["a/z.wav"] and "row 4" in causes["a/z.wav"]
    assert "file not found" in causes["a/missing.wav"]
    assert m.labels["emotion"] == ["happy", "angry"] and m.corpus == "mine"
    with pytest.raises(CorpusError, match="not found"):
        prepare("csv", tmp_path, csv="table.tsv", columns={"audio": "nope"})


def test_folder_importer_skips_bad_files_with_causes(tmp_path):
    import numpy as np
    import soundfile as sf

    audio(tmp_path / "alice/good.wav", seconds=0.3)
    audio(tmp_path / "alice/stereo.flac", seconds=0.3, sr=44100, channels=2)
    audio(tmp_path / "loose.ogg", seconds=0.3)
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob/empty.wav").write_bytes(b"")
    (tmp_path / "bob/text.wav").write_text("not audio at all\n" * 20)
    sf.write(tmp_path / "bob/nan.wav", np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT")
    good = (tmp_path / "alice/good.wav").read_bytes()
    (tmp_path / "bob/cut.wav").write_bytes(good[: len(good) // 2])
    (tmp_path / "notes.txt").write_text("ignored: not an audio extension")
    (tmp_path / "alice/loop").symlink_to(tmp_path / "alice")  # a symlink loop is walked once
    m = prepare("folder", tmp_path, jobs=2)
    assert sorted((r.id, r.speaker) for r in m) == [("alice/good", "folder-alice"), ("alice/stereo", "folder-alice"),
                                                    ("loose", None)]
    assert m.by_id()["alice/stereo"].sample_rate == 44100
    causes = {s.path: s.cause for s in skipped_of(m)}
    assert set(causes) == {"bob/empty.wav", "bob/text.wav", "bob/nan.wav", "bob/cut.wav"}
    assert "empty" in causes["bob/empty.wav"] and "not an audio file" in causes["bob/text.wav"]
    assert "NaN" in causes["bob/nan.wav"] and "truncated" in causes["bob/cut.wav"]
    with pytest.raises(CorpusError, match="4 bad file"):
        prepare("folder", tmp_path, strict=True)


def test_every_format_has_a_module():
    import importlib

    for name in FORMATS:
        assert callable(importlib.import_module(f"emovox.corpora.{name}").prepare)


# ----------------------------------------------------------------------------- shared corpora


@pytest.mark.shared
def test_ravdess_shared():
    m = prepare("ravdess", shared_path("ravdess"), probe=False)  # the CLI test probes it
    s = m.summary()
    assert (s["utterances"], s["speakers"]) == (1440, 24) and not skipped_of(m)
    assert s["labels"]["emotion"] == {"neutral": 96, **{e: 192 for e in m.labels["emotion"][1:]}}
    assert len(m.labels["emotion"]) == 8


@pytest.mark.shared
def test_baved_shared():
    m = prepare("baved", shared_path("baved"), probe=False)
    s = m.summary()
    assert (s["utterances"], s["speakers"]) == (1935, 60)
    assert s["labels"]["level"] == {"low": 585, "neutral": 672, "high": 678}


@pytest.mark.shared
def test_an4_shared():
    m = prepare("an4", shared_path("asr", "an4"), probe=False)
    assert len(m) == 1078 and all(r.transcript for r in m)
    assert m.summary()["splits"] == {"train": 948, "test": 130}


@pytest.mark.shared
def test_ljspeech_shared():
    m = prepare("ljspeech", shared_path("asr", "ljspeech"), probe=False)
    assert len(m) == 385 and all(r.transcript for r in m) and not skipped_of(m)


@pytest.mark.shared
def test_va47_shared():
    m = prepare("va47", shared_path("va47"))
    # arousal.csv holds 46 newlines but 47 rows (the last line has no newline)
    assert len(m) == 47 and all(r.arousal is not None and r.valence is not None for r in m)
    assert not m.speakers() and -1.0 <= min(r.valence for r in m) < 0 < max(r.valence for r in m) <= 1.0
