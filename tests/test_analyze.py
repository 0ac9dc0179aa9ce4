"""Sentiment-vs-emotion analysis (SA2SR paper, Table 1) and its command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from emovox.evaluate.sentiment_emotion import DEFAULT_GROUPS, sentiment_vs_label
from emovox.manifest import Manifest, Utterance

PROBS = {"negative": [0.8, 0.15, 0.05], "neutral": [0.1, 0.8, 0.1], "positive": [0.05, 0.15, 0.8]}


def _manifest(pairs, label="emotion", vocab=None) -> Manifest:
    recs = []
    for i, (cls, sent) in enumerate(pairs):
        u = Utterance(id=f"u{i}", audio=f"u{i}.wav", sentiment=sent, sentiment_probs=PROBS.get(sent),
                      extra={"sentiment_labeler": "vader"})
        if label == "emotion":
            u.emotion = cls
        else:
            u.extra[label] = cls
        recs.append(u)
    vocab = vocab or sorted({c for c, _ in pairs if c})
    return Manifest(recs, corpus="toy", labels={label: vocab})


PAIRS = ([("happy", "positive")] * 6 + [("happy", "neutral")] * 2 + [("angry", "negative")] * 5
         + [("angry", "neutral")] * 3 + [("sad", "negative")] * 2 + [("neutral", "neutral")] * 4
         + [("neutral", "positive")] * 1 + [("surprised", "positive")] * 2 + [("other", "negative")] * 2)


def test_counts_and_groups():
    t = sentiment_vs_label(_manifest(PAIRS, vocab=["neutral", "happy", "angry", "sad", "surprised", "other"]))
    assert t.classes == ["neutral", "happy", "angry", "sad", "surprised", "other"]
    assert t.counts[1] == [0, 2, 6] and t.counts[2] == [5, 3, 0] and t.counts[5] == [2, 0, 0]
    assert t.groups["angry"] == "negative" and t.groups["surprised"] == "neutral" and "other" not in t.groups
    assert t.unmapped == ["other"]
    # grouped rows: negative = angry + sad, neutral = neutral + surprised, positive = happy
    assert t.grouped_counts == [[7, 3, 0], [0, 4, 3], [0, 2, 6]]
    assert t.n == len(PAIRS) and t.n_correlated == len(PAIRS) - 2


def test_spearman_matches_scipy():
    t = sentiment_vs_label(_manifest(PAIRS))
    value = {"negative": -1, "neutral": 0, "positive": 1}
    kept = [(c, s) for c, s in PAIRS if c != "other"]
    x = [value[DEFAULT_GROUPS[c]] for c, _ in kept]
    y = [value[s] for _, s in kept]
    assert t.spearman == pytest.approx(spearmanr(x, y).statistic)
    assert t.spearman > 0.5 and t.spearman_p < 0.01
    scores = [PROBS[s][2] - PROBS[s][0] for _, s in kept]
    assert t.spearman_score == pytest.approx(spearmanr(x, scores).statistic)


def test_perfect_and_inverse_agreement():
    agree = [("happy", "positive"), ("angry", "negative"), ("neutral", "neutral")] * 4
    assert sentiment_vs_label(_manifest(agree)).spearman == pytest.approx(1.0)
    flipped = [("happy", "negative"), ("angry", "positive"), ("neutral", "neutral")] * 4
    assert sentiment_vs_label(_manifest(flipped)).spearman == pytest.approx(-1.0)
    constant = [("happy", "neutral"), ("angry", "neutral")] * 3
    assert np.isnan(sentiment_vs_label(_manifest(constant)).spearman)


def test_grouping_override_and_other_label():
    t = sentiment_vs_label(_manifest(PAIRS), groups={"surprised": "positive", "other": "negative"})
    assert t.groups["surprised"] == "positive" and t.unmapped == [] and t.n_correlated == len(PAIRS)
    with pytest.raises(ValueError, match="must be one of"):
        sentiment_vs_label(_manifest(PAIRS), groups={"happy": "great"})
    levels = [("low", "negative"), ("neutral", "neutral"), ("high", "positive")] * 3
    t = sentiment_vs_label(_manifest(levels, label="level", vocab=["low", "neutral", "high"]), label="level")
    assert t.classes == ["low", "neutral", "high"] and t.spearman == pytest.approx(1.0)


def test_missing_labels_are_skipped_and_empty_is_an_error():
    pairs = PAIRS + [("happy", None), (None, "positive")]
    t = sentiment_vs_label(_manifest(pairs))
    assert t.skipped == 2 and t.n == len(PAIRS)
    with pytest.raises(ValueError, match="no utterance has both"):
        sentiment_vs_label(_manifest([("happy", None)]))


def test_markdown_and_plot(tmp_path):
    t = sentiment_vs_label(_manifest(PAIRS))
    md = t.markdown()
    assert "| happy (positive) | 8 | 0 (0%) | 2 (25%) | 6 (75%) |" in md
    assert "Spearman rho" in md and "other (unmapped)" in md
    png = t.plot(tmp_path / "h.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_writes_markdown_json_png(tmp_path, capsys):
    from emovox.cli import main

    src = tmp_path / "m.jsonl"
    _manifest(PAIRS).save(src)
    rc = main(["analyze", "sentiment-vs-emotion", str(src), "-o", str(tmp_path / "out") + "/",
               "--group", "other=negative", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    assert data["groups"]["other"] == "negative" and data["n_correlated"] == len(PAIRS)
    for ext in ("md", "json", "png"):
        assert (tmp_path / "out" / f"sentiment_vs_emotion.{ext}").stat().st_size > 0
    assert main(["analyze", "sentiment-vs-emotion", str(src), "--label", "level"]) == 1
    assert "no utterance has both" in capsys.readouterr().err
