"""CharVocab: the 29-symbol English CTC vocabulary, normalisation, round trips, other languages."""

from __future__ import annotations

import pytest

from emovox.text.vocab import BLANK, CharVocab, normalize_for_ctc


def test_english_layout():
    v = CharVocab()
    assert len(v) == 29 and v.blank == 0
    assert v.symbols[:3] == (BLANK, " ", "'") and v.symbols[3] == "a" and v.symbols[-1] == "z"
    assert v == CharVocab.english()


def test_round_trip_of_normalised_text():
    v = CharVocab()
    text = "don't stop me now i'm having such a good time"
    ids = v.encode(text)
    assert 0 not in ids and len(ids) == len(text)
    assert v.decode(ids) == text


@pytest.mark.parametrize("raw,expected", [
    ("Hello, World!", "hello world"),
    ("It\u2019s 5 o'clock", "it's five o'clock"),
    ("the 3rd of May, 1984", "the third of may nineteen eighty four"),
    ("Caf\u00e9 cr\u00e8me & x-ray", "cafe creme and x ray"),
    ("'quoted' words", "quoted words"),
    ("  many   spaces\n", "many spaces"),
    ("", ""),
])
def test_english_normalisation(raw, expected):
    assert normalize_for_ctc(raw) == expected
    assert CharVocab().decode(CharVocab().encode(raw)) == expected


def test_unknown_characters_are_dropped_and_bad_ids_raise():
    v = CharVocab()
    assert v.decode(v.encode("abc\u4e2d", normalize=False)) == "abc"
    with pytest.raises(IndexError):
        v.decode([29])


def test_ctc_collapse():
    v = CharVocab()
    a, b = v.encode("a")[0], v.encode("b")[0]
    assert v.ctc_collapse([0, a, a, 0, a, b, b, 0]) == [a, a, b]
    assert v.decode(v.ctc_collapse([a, 0, 0, b])) == "ab"


def test_from_transcripts_other_language():
    texts = ["\u0645\u0631\u062d\u0628\u0627 \u0628\u0643", "\u0634\u0643\u0631\u0627!"]
    v = CharVocab.from_transcripts(texts)
    assert v.symbols[0] == BLANK and v.symbols[1] == " "
    assert "!" not in v.symbols and "\u0645" in v.symbols
    assert v.decode(v.encode(texts[1])) == "\u0634\u0643\u0631\u0627"
    assert CharVocab.from_dict(v.to_dict()) == v


def test_from_transcripts_min_count():
    v = CharVocab.from_transcripts(["aaa b"], language="en", min_count=2)
    assert set(v.symbols) == {BLANK, " ", "a"}


def test_invalid_vocabularies():
    with pytest.raises(ValueError, match="blank"):
        CharVocab(("a", "b"))
    with pytest.raises(ValueError, match="duplicate"):
        CharVocab((BLANK, "a", "a"))
    with pytest.raises(ValueError, match="single"):
        CharVocab((BLANK, "ab"))
