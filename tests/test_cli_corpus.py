"""``emovox corpus import/info/split/export`` end to end through the CLI entry point."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import soundfile as sf

from conftest import shared_path, write_audio
from emovox.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def ravdess(tmp_path):
    root = tmp_path / "ravdess"
    for actor in ("01", "02", "03", "04"):
        for emo in ("01", "03", "05"):
            write_audio(root / f"Actor_{actor}/03-01-{emo}-01-01-01-{actor}.wav", seconds=0.1)
    return root


def test_import_info_split_export(tmp_path, capsys, ravdess):
    m = tmp_path / "r.jsonl"
    code, out, err = run(capsys, "corpus", "import", "ravdess", str(ravdess), "-o", str(m), "--jobs", "2")
    assert code == 0 and m.is_file() and out == "" and "12 utterances" in err

    code, out, _ = run(capsys, "corpus", "info", str(m), "--json")
    s = json.loads(out)
    assert (s["utterances"], s["speakers"]) == (12, 4) and s["hours"] == round(1.2 / 3600, 4)
    assert s["labels"]["emotion"] == {"neutral": 4, "happy": 4, "angry": 4}
    code, out, _ = run(capsys, "corpus", "info", str(m))
    assert code == 0 and "utterances  12" in out

    code, out, err = run(capsys, "corpus", "split", str(m), "--protocol", "kfold", "--folds", "2", "--seed", "3",
                         "-o", str(tmp_path / "folds"), "--json")
    assert code == 0
    folds = json.loads((tmp_path / "folds/folds.json").read_text())
    assert folds["protocol"] == "kfold" and folds["seed"] == 3 and len(folds["folds"]) == 2
    assert sorted(i for f in folds["folds"] for i in f["test"]) == sorted(json.loads(x)["id"] for x in
                                                                         m.read_text().splitlines()[1:])
    assert len(json.loads(out)) == 6 and "| fold1 | train |" in (tmp_path / "folds/summary.md").read_text()
    run(capsys, "corpus", "split", str(m), "--protocol", "kfold", "--folds", "2", "--seed", "3", "-o",
        str(tmp_path / "again"))
    assert (tmp_path / "again/folds.json").read_text() == (tmp_path / "folds/folds.json").read_text().replace(
        str(tmp_path / "folds"), str(tmp_path / "again"))

    code, _, err = run(capsys, "corpus", "split", str(m), "--protocol", "loo", "-o", str(tmp_path / "x"))
    assert code == 1 and "loo" in err and not (tmp_path / "x/folds.json").exists()

    code, _, _ = run(capsys, "corpus", "export", str(m), "--format", "emobox", "-o", str(tmp_path / "e.jsonl"))
    assert code == 0 and len((tmp_path / "e.jsonl").read_text().splitlines()) == 12
    code, _, _ = run(capsys, "corpus", "export", str(m), "--format", "lhotse", "-o", str(tmp_path / "lh"))
    sups = gzip.open(tmp_path / "lh/ravdess_supervisions.jsonl.gz", "rt").read().splitlines()
    assert code == 0 and len(sups) == 12 and json.loads(sups[0])["custom"]["emotion"] == "neutral"


def test_bad_files_are_reported_and_strict_fails(tmp_path, capsys):
    root = tmp_path / "mixed"
    write_audio(root / "a/good.wav", seconds=0.2)
    write_audio(root / "a/stereo44k.wav", seconds=0.2, sr=44100, channels=2)
    (root / "a/empty.wav").write_bytes(b"")
    (root / "a/text.wav").write_text("hello\n" * 40)
    sf.write(root / "a/nan.wav", np.full(800, np.nan, np.float32), 16000, subtype="FLOAT")
    data = (root / "a/good.wav").read_bytes()
    (root / "a/corrupt.wav").write_bytes(data[: len(data) // 3])
    out_path = tmp_path / "m.jsonl"
    code, out, err = run(capsys, "corpus", "import", "folder", str(root), "-o", str(out_path), "--json")
    assert code == 0 and json.loads(out)["utterances"] == 2
    for name, cause in (("empty", "empty"), ("text", "not an audio file"), ("nan", "NaN"), ("corrupt", "truncated")):
        assert any(f"a/{name}.wav" in line and cause in line for line in err.splitlines()), (name, err)
    assert "good.wav" not in err and "stereo44k" not in err
    code, _, err = run(capsys, "corpus", "import", "folder", str(root), "-o", str(tmp_path / "s.jsonl"), "--strict")
    assert code == 1 and "4 bad file(s)" in err and not (tmp_path / "s.jsonl").exists()


def test_csv_import_through_cli(tmp_path, capsys):
    write_audio(tmp_path / "c/x.wav", seconds=0.1)
    (tmp_path / "c/t.csv").write_text("wavfile,mood,who\nx.wav,sadness,p1\n")
    code, _, err = run(capsys, "corpus", "import", "csv", str(tmp_path / "c"), "--csv", "t.csv", "--map",
                       "audio=wavfile", "--map", "emotion=mood", "--map", "speaker=who", "-O", "corpus=mine",
                       "-o", str(tmp_path / "c.jsonl"))
    assert code == 0, err
    row = json.loads((tmp_path / "c.jsonl").read_text().splitlines()[1])
    assert (row["emotion"], row["speaker"]) == ("sad", "mine-p1")
    code, _, err = run(capsys, "corpus", "import", "csv", str(tmp_path / "c"), "--map", "broken", "-o", "x.jsonl")
    assert code == 1 and "KEY=VALUE" in err
    code, _, err = run(capsys, "corpus", "import", "va47", str(tmp_path / "c"), "-O", "colour=red", "-o", "x.jsonl")
    assert code == 1 and "does not take ['colour']" in err


def test_info_check_lists_problems(tmp_path, capsys):
    (tmp_path / "m.jsonl").write_text('{"id": "a", "audio": "gone.wav"}\n{"id": "a", "audio": "gone2.wav"}\n')
    code, out, err = run(capsys, "corpus", "info", str(tmp_path / "m.jsonl"), "--check", "--json")
    assert code == 1 and len(json.loads(out)["problems"]) == 3
    assert "duplicate id" in err and err.count("audio file missing") == 2


def test_help_has_examples(capsys):
    for action in ("import", "info", "split", "export"):
        with pytest.raises(SystemExit):
            main(["corpus", action, "--help"])
        assert "example:" in capsys.readouterr().out


@pytest.mark.shared
def test_ravdess_shared_cli(tmp_path, capsys):
    root = shared_path("ravdess")
    code, _, _ = run(capsys, "corpus", "import", "ravdess", str(root), "-o", str(tmp_path / "r.jsonl"), "--jobs", "2")
    code, out, _ = run(capsys, "corpus", "info", str(tmp_path / "r.jsonl"), "--json")
    s = json.loads(out)
    assert (code, s["utterances"], s["speakers"]) == (0, 1440, 24)
    assert s["labels"]["emotion"]["neutral"] == 96 and set(list(s["labels"]["emotion"].values())[1:]) == {192}
    assert 1.0 < s["hours"] < 2.0
