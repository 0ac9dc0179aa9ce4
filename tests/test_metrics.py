"""Metrics against hand-computed examples and scikit-learn; report tables and plots."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from emovox.evaluate import metrics as M
from emovox.report import plots, tables


# ---------------------------------------------------------------------------- regression
def test_mse_ccc_pearson_by_hand():
    t = [1.0, 2.0, 3.0]
    p = [2.0, 2.0, 4.0]
    assert M.mse(t, p) == pytest.approx(2 / 3)
    # means 2 and 8/3; population var(t)=2/3, var(p)=8/9, cov=2/3
    assert M.ccc(t, p) == pytest.approx(2 * (2 / 3) / (2 / 3 + 8 / 9 + (2 - 8 / 3) ** 2))
    assert M.ccc(t, p) == pytest.approx(2 / 3)
    assert M.pearson(t, p) == pytest.approx((2 / 3) / math.sqrt(2 / 3 * 8 / 9))
    assert M.ccc(t, t) == pytest.approx(1.0)
    assert M.ccc([-1, 0, 1], [1, 0, -1]) == pytest.approx(-1.0)
    # a shifted copy is perfectly correlated but not concordant
    assert M.pearson(t, [x + 5 for x in t]) == pytest.approx(1.0)
    assert M.ccc(t, [x + 5 for x in t]) < 0.1


def test_regression_edge_cases():
    assert math.isnan(M.pearson([1, 1, 1], [1, 2, 3]))
    assert M.ccc([1, 2, 3], [2, 2, 2]) == 0.0
    assert M.ccc([2, 2], [2, 2]) == 1.0
    with pytest.raises(ValueError, match="3 values but y_pred has 2"):
        M.mse([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least one"):
        M.ccc([], [])
    assert isinstance(M.mse(np.array([1.0]), np.array([0.0])), float)


def test_regression_vs_numpy_and_sklearn():
    rng = np.random.default_rng(0)
    t = rng.normal(size=200)
    p = 0.5 * t + rng.normal(size=200)
    assert M.mse(t, p) == pytest.approx(skm.mean_squared_error(t, p))
    assert M.pearson(t, p) == pytest.approx(np.corrcoef(t, p)[0, 1])
    from scipy.stats import spearmanr

    assert M.spearman(t, p) == pytest.approx(spearmanr(t, p).statistic)
    s = M.regression_summary(t, p)
    assert set(s) == {"ccc", "mse", "mae", "pearson"} and s["ccc"] < s["pearson"]


# ---------------------------------------------------------------------------- classification
Y_TRUE = ["ang", "ang", "ang", "hap", "neu", "neu"]
Y_PRED = ["ang", "ang", "neu", "neu", "neu", "hap"]
LABELS = ["neu", "hap", "ang"]


def test_classification_by_hand():
    # recalls: ang 2/3, hap 0/1, neu 1/2
    assert M.unweighted_average_recall(Y_TRUE, Y_PRED) == pytest.approx((2 / 3 + 0 + 1 / 2) / 3)
    assert M.weighted_accuracy(Y_TRUE, Y_PRED) == pytest.approx(3 / 6)
    # F1: ang p=1 r=2/3 -> 0.8; hap 0; neu p=1/3 r=1/2 -> 0.4; weights 3,1,2
    assert M.weighted_f1(Y_TRUE, Y_PRED) == pytest.approx((3 * 0.8 + 0 + 2 * 0.4) / 6)
    cm = M.confusion_matrix(Y_TRUE, Y_PRED, LABELS)
    assert cm.tolist() == [[1, 1, 0], [1, 0, 0], [1, 0, 2]]  # rows neu, hap, ang
    assert cm.dtype == np.int64


def test_classification_vs_sklearn():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 5, size=300)
    p = np.where(rng.random(300) < 0.6, t, rng.integers(0, 5, size=300))
    assert M.unweighted_average_recall(t, p) == pytest.approx(skm.balanced_accuracy_score(t, p))
    assert M.weighted_accuracy(t, p) == pytest.approx(skm.accuracy_score(t, p))
    assert M.weighted_f1(t, p) == pytest.approx(skm.f1_score(t, p, average="weighted"))
    assert M.macro_f1(t, p) == pytest.approx(skm.f1_score(t, p, average="macro"))
    labels = [4, 2, 0, 1, 3]
    np.testing.assert_array_equal(M.confusion_matrix(t, p, labels), skm.confusion_matrix(t, p, labels=labels))


def test_unknown_label_is_named():
    with pytest.raises(ValueError, match="'sad'"):
        M.confusion_matrix(["ang"], ["sad"], labels=["ang", "hap"])


def test_roc_auc_binary_and_multiclass_vs_sklearn():
    # hand example: positives score 0.8, 0.4; negatives 0.5, 0.1 -> 3 of 4 pairs ordered
    assert M.roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.5, 0.1]) == pytest.approx(0.75)
    assert M.roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)  # ties count one half
    rng = np.random.default_rng(2)
    t = rng.integers(0, 3, size=200)
    logits = rng.normal(size=(200, 3)) + 1.5 * np.eye(3)[t]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    names = np.array(["negative", "neutral", "positive"])[t]
    got = M.roc_auc(names, probs, labels=["negative", "neutral", "positive"])
    assert got == pytest.approx(skm.roc_auc_score(t, probs, multi_class="ovr", average="macro"))
    assert 0.7 < got < 1.0
    b = (t == 2).astype(int)
    assert M.roc_auc(b, probs[:, 2]) == pytest.approx(skm.roc_auc_score(b, probs[:, 2]))
    assert M.roc_auc(b, np.stack([1 - probs[:, 2], probs[:, 2]], 1)) == pytest.approx(skm.roc_auc_score(b, probs[:, 2]))
    assert math.isnan(M.roc_auc([1, 1], [0.2, 0.3], labels=[0, 1]))
    with pytest.raises(ValueError, match="columns"):
        M.roc_auc(names, probs[:, :2], labels=["negative", "neutral", "positive"])


def test_classification_summary_is_json_ready():
    s = M.classification_summary(Y_TRUE, Y_PRED, LABELS)
    json.dumps(s)
    assert s["labels"] == LABELS and s["per_class"]["hap"]["support"] == 1
    assert s["ua"] == pytest.approx(M.unweighted_average_recall(Y_TRUE, Y_PRED))


# ---------------------------------------------------------------------------- tables
def test_mean_spread_and_markdown():
    assert tables.mean_spread([1.0, 3.0]) == (2.0, 1.0)
    assert tables.mean_spread([1.0, 3.0, float("nan")], "var") == (2.0, 1.0)
    assert tables.format_mean_spread([1.0, 3.0], digits=2) == "2.00 ± 1.00"
    assert tables.format_mean_spread((1.0, 3.0, 5.0), spread="var") == "3.000 ± 2.667"
    assert tables.format_pm(float("nan"), 0.1) == "-"
    md = tables.markdown_table([{"features": "a|b", "ua": 0.5, "n": 3}, {"features": "c", "ua": float("nan")}])
    lines = md.strip().splitlines()
    assert lines[0] == "| features | ua | n |"
    assert lines[1] == "|:---|---:|---:|"
    assert lines[2] == "| a\\|b | 0.500 | 3 |"
    assert lines[3] == "| c | - | - |"


def test_csv_and_json_roundtrip(tmp_path):
    rows = [{"id": "x", "p": np.float32(0.25)}, {"id": "y", "p": None, "extra": np.int64(2)}]
    tables.write_csv(tmp_path / "r.csv", rows)
    back = tables.read_csv(tmp_path / "r.csv")
    assert back == [{"id": "x", "p": "0.25", "extra": ""}, {"id": "y", "p": "", "extra": "2"}]
    tables.write_json(tmp_path / "r.json", {"a": float("nan"), "b": np.arange(2), "c": [np.float64(1.5)]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": None, "b": [0, 1], "c": [1.5]}
    assert not list(tmp_path.glob(".*.tmp"))


# ---------------------------------------------------------------------------- plots
def _is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_pngs(tmp_path):
    m = np.random.default_rng(0).normal(size=(4, 50))
    m[0, 0] = np.nan
    assert _is_png(plots.heatmap(m, [f"L{i}" for i in range(4)], None, tmp_path / "h.png", title="corr"))
    assert _is_png(plots.confusion_heatmap([[3, 1], [0, 4]], ["a", "b"], tmp_path / "c.png", normalize=True))
    assert _is_png(plots.bar_plot({"a": 0.5, "b": 0.7}, tmp_path / "b.png", errors={"a": 0.1, "b": 0.05}))
    assert _is_png(plots.line_plot({"train": [3, 2, 1], "validation": [3, 2.5]}, tmp_path / "l.png"))
    with pytest.raises(ValueError, match="labels"):
        plots.heatmap(np.zeros((2, 3)), ["a"], None, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
