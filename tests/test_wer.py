"""WER/CER: our edit distance against jiwer, and English normalisation."""

from __future__ import annotations

import random

import pytest

from emovox.evaluate.wer import ErrorCounts, align, cer, measure, normalize_english, wer
from emovox.text.normalize import integer_words, number_to_words, ordinal_words


def test_align_counts_simple():
    c = align("a b c d".split(), "a x c".split())
    assert (c.substitutions, c.deletions, c.insertions, c.hits, c.reference) == (1, 1, 0, 2, 4)
    c = align([], ["x", "y"])
    assert c.insertions == 2 and c.rate == float("inf")
    assert align([], []).rate == 0.0


def _random_sentence(rng: random.Random, vocab: list[str]) -> str:
    return " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 12)))


def test_matches_jiwer_on_random_pairs():
    jiwer = pytest.importorskip("jiwer")
    rng = random.Random(0)
    vocab = "the cat sat on a mat dog ran far away in".split()
    refs = [_random_sentence(rng, vocab) for _ in range(200)]
    hyps = [_random_sentence(rng, vocab) for _ in range(200)]
    ours = measure(refs, hyps, normalize=False)
    theirs = jiwer.process_words(refs, hyps)
    assert ours.errors == theirs.substitutions + theirs.deletions + theirs.insertions
    # ties between alignments may split S/D/I differently; the bookkeeping must still add up
    assert ours.hits + ours.substitutions + ours.deletions == ours.reference == sum(len(r.split()) for r in refs)
    assert wer(refs, hyps, normalize=False) == pytest.approx(theirs.wer)
    assert cer(refs, hyps, normalize=False) == pytest.approx(jiwer.cer(refs, hyps))
    # per pair as well
    for r, h in zip(refs[:50], hyps[:50]):
        assert wer(r, h, normalize=False) == pytest.approx(jiwer.wer(r, h))


def test_corpus_rate_is_pooled_not_mean():
    # 1 error in 1 word + 0 errors in 9 words = 1/10, not mean(1, 0) = 0.5
    assert wer(["a", "b c d e f g h i j"], ["x", "b c d e f g h i j"]) == pytest.approx(0.1)


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        wer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="unit"):
        measure("a", "a", unit="phone")


@pytest.mark.parametrize("raw, expected", [
    ("Hello, World!", "hello world"),
    ("I can't go; he won't either.", "i can not go he will not either"),
    ("They're here and we'll see what you've got, I'm sure.", "they are here and we will see what you have got i am sure"),
    ("It\u2019s John's dog.", "its johns dog"),
    ("Um, the uh meeting is at 3.", "the meeting is at three"),
    ("He paid $5 for 20% of it.", "he paid five dollars for twenty percent of it"),
    ("On the 21st of May 1984", "on the twenty first of may nineteen eighty four"),
    ("Zip 02139 or 1,200 people", "zip zero two one three nine or one thousand two hundred people"),
    ("pi is 3.14", "pi is three point one four"),
    ("well-known [noise] co-op", "well known co op"),
    ("", ""),
    (None, ""),
])
def test_normalize_english(raw, expected):
    assert normalize_english(raw) == expected


def test_number_words():
    assert number_to_words(0) == "zero"
    assert number_to_words(105) == "one hundred five"
    assert number_to_words(2_000_017) == "two million seventeen"
    assert ordinal_words(40) == "fortieth" and ordinal_words(12) == "twelfth" and ordinal_words(3) == "third"
    assert integer_words("1905") == "nineteen oh five"
    assert integer_words("2000") == "two thousand"
    assert integer_words("2024") == "twenty twenty four"


def test_normalisation_applies_to_both_sides():
    assert wer("I'm at 221B Baker Street.", "i am at two hundred twenty one b baker street") == 0.0
    assert wer("Kids are talking by the door", "kids are talking by the door.") == 0.0
    assert wer("Kids are talking by the door", "kids are talking by the door.", normalize=False) > 0


def test_custom_normalizer_and_counts_add():
    assert wer("ABC", "abc", normalize=str.lower) == 0.0
    total = ErrorCounts(1, 0, 0, 2, 3) + ErrorCounts(0, 1, 1, 1, 2)
    assert total.errors == 3 and total.reference == 5 and total.rate == pytest.approx(0.6)


def test_evaluate_asr_with_a_fake_transcriber(tmp_path, capsys):
    """`emovox evaluate asr`: WER over a manifest, RTF fields, unreadable files reported."""
    from conftest import write_audio
    from emovox.cli import main
    from emovox.evaluate.asr import evaluate_transcriber
    from emovox.manifest import Manifest, Utterance
    from emovox.text.transcribe import Transcriber, Transcript, register_transcriber

    class Parrot(Transcriber):
        name = "parrot-test"

        def _transcribe(self, audio, language):
            return Transcript("Hello, world!", [], language)

    register_transcriber("parrot-test", Parrot)
    recs = []
    for i, ref in enumerate(["hello world", "hello there world", "HELLO WORLD"]):
        write_audio(tmp_path / f"a{i}.wav", seconds=0.5)
        recs.append(Utterance(id=f"a{i}", audio=f"a{i}.wav", transcript=ref, split="test"))
    recs.append(Utterance(id="bad", audio="missing.wav", transcript="x", split="test"))
    Manifest(recs, corpus="toy", root=str(tmp_path)).save(tmp_path / "m.jsonl")
    r = evaluate_transcriber(Manifest.load(tmp_path / "m.jsonl"), "parrot-test")
    assert r.utterances == 3 and list(r.failed) == ["bad"]
    assert r.wer == pytest.approx(1 / 7) and r.audio_seconds == pytest.approx(1.5)
    assert r.rtf_wall >= 0 and r.rtf_cpu >= 0 and len(r.hypotheses) == 3
    assert main(["evaluate", "asr", str(tmp_path / "m.jsonl"), "--transcriber", "parrot-test", "--split", "test",
                 "--hypotheses", str(tmp_path / "h.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "| parrot-test |" in out and "14.29" in out
    assert len((tmp_path / "h.jsonl").read_text().splitlines()) == 3
