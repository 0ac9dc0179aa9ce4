"""Fisher scores, layer selection, per-speaker correlations and cross-validation helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emovox.evaluate import analysis as A
from emovox.evaluate.crossval import FoldResult, pooled, run_folds, summarize
from emovox.evaluate.metrics import mse


def test_fisher_scores_hand_computed():
    x = np.array([[1.0, 1.0, 0.0, 5.0],
                  [2.0, 3.0, 0.0, 5.0],
                  [3.0, 1.0, 1.0, 5.0],
                  [4.0, 3.0, 1.0, 5.0]])
    y = ["a", "a", "b", "b"]
    f = A.fisher_scores(x, y)
    # col 0: class means 1.5 / 3.5, overall 2.5 -> between 2*1 + 2*1 = 4; within 2*0.25 + 2*0.25 = 1
    assert f[0] == pytest.approx(4.0)
    assert f[1] == 0.0  # same class means
    assert f[2] == math.inf  # constant within classes, different between
    assert f[3] == 0.0  # constant everywhere
    # three unbalanced classes: x = [0, 2, 4, 4, 10], classes [0, 0, 1, 1, 2]
    g = A.fisher_scores(np.array([[0.0], [2.0], [4.0], [4.0], [10.0]]), [0, 0, 1, 1, 2])
    # mu = 4; between = 2*(1-4)^2 + 2*0 + 1*36 = 54; within = 2*1 + 0 + 0 = 2
    assert g[0] == pytest.approx(27.0)


def test_fisher_shape_errors():
    with pytest.raises(ValueError, match="3 feature rows but 2"):
        A.fisher_scores(np.zeros((3, 2)), [0, 1])


def test_discretize():
    np.testing.assert_array_equal(A.discretize([0.0, 2.0, 1.0, 2.0]), [0, 2, 1, 2])  # few values: one class each
    y = np.linspace(-1, 1, 100)
    c = A.discretize(y, bins=4)
    assert sorted(np.bincount(c).tolist()) == [25, 25, 25, 25]
    assert np.all(np.diff(c) >= 0)  # monotone in the target
    with pytest.raises(ValueError, match="nan"):
        A.discretize([0.0, np.nan])


def test_parse_layers():
    assert A.parse_layers("all", 5) == [0, 1, 2, 3, 4]
    assert A.parse_layers("first3", 5) == [0, 1, 2]
    assert A.parse_layers("last3", 5) == [2, 3, 4]
    assert A.parse_layers("last3", 2) == [0, 1]
    assert A.parse_layers("middle", 5) == [1, 2, 3]
    assert A.parse_layers("-1", 5) == [4]
    assert A.parse_layers("1-2,4", 5) == [1, 2, 4]
    assert A.parse_layers([3, 0, 3], 5) == [0, 3]
    with pytest.raises(ValueError, match="out of range"):
        A.parse_layers("7", 5)
    with pytest.raises(ValueError, match="unknown layer"):
        A.parse_layers("top", 5)


def test_top_k_from_chosen_layers():
    # 3 layers x 4 units; unit (layer 2, unit 1) best overall, (layer 0, unit 3) best of layer 0
    scores = np.zeros((3, 4))
    scores[2, 1], scores[0, 3], scores[1, 0], scores[0, 0] = 9.0, 5.0, 7.0, np.nan
    flat = scores.reshape(-1)
    assert A.select_top_k(flat, 2).tolist() == [9, 4]  # columns 2*4+1 and 1*4+0
    first = A.layer_columns(A.parse_layers("first1", 3), 4)
    assert first.tolist() == [0, 1, 2, 3]
    assert A.select_top_k(flat, 1, first).tolist() == [3]
    last2 = A.layer_columns(A.parse_layers("last2", 3), 4)
    top = A.select_top_k(flat, 2, last2)
    assert top.tolist() == [9, 4] and set(top) <= set(last2.tolist())
    assert len(A.select_top_k(flat, 100, first)) == 4
    assert A.select_top_k(flat, 4, first)[-1] == 0  # nan ranks last


def test_unit_and_per_speaker_correlations(tmp_path):
    rng = np.random.default_rng(0)
    n = 40
    y = rng.normal(size=n)
    speakers = ["s1"] * 20 + ["s2"] * 20
    x = rng.normal(size=(n, 2, 3))
    x[:, 1, 2] = y  # perfectly correlated unit
    x[:20, 0, 0] = -y[:20]  # anti-correlated for speaker s1 only
    x[:, 0, 1] = 1.0  # constant unit
    r = A.unit_correlations(x, y)
    assert r.shape == (2, 3)
    assert r[1, 2] == pytest.approx(1.0)
    assert math.isnan(r[0, 1])
    per = A.per_speaker_correlations(x, y, speakers)
    assert set(per) == {"s1", "s2"}
    assert per["s1"][0, 0] == pytest.approx(-1.0)
    assert abs(per["s2"][0, 0]) < 0.9
    assert per["s2"][1, 2] == pytest.approx(np.corrcoef(x[20:, 1, 2], y[20:])[0, 1])
    png = A.correlation_heatmap(per["s1"], tmp_path / "corr_s1.png", title="s1")
    assert png.read_bytes()[:4] == b"\x89PNG"
    # a speaker with too few utterances or a constant target is skipped
    assert A.per_speaker_correlations(x[:2], y[:2], ["a", "a"]) == {}


# ---------------------------------------------------------------------------- crossval
class _Fold:
    def __init__(self, name, test):
        self.name, self.test = name, test


def test_run_folds_and_summary():
    y = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 5.0}
    folds = [_Fold("f1", ["a", "b"]), _Fold("f2", ["c", "d"])]

    def one(fold):
        preds = [{"id": i, "target": y[i], "prediction": 2.0} for i in fold.test]
        return FoldResult(fold.name, {"mse": mse([p["target"] for p in preds], [2.0] * len(preds))}, preds)

    cv = run_folds(folds, one)
    assert [f.fold for f in cv.folds] == ["f1", "f2"]
    s = cv.summary()["mse"]
    # fold mses: (1 + 0)/2 = 0.5 and (1 + 9)/2 = 5.0
    assert s["mean"] == pytest.approx(2.75) and s["var"] == pytest.approx(2.25 ** 2) and s["n"] == 2
    assert cv.table_row()["mse"] == "2.750 ± 2.250"
    rows = cv.predictions()
    assert [r["fold"] for r in rows] == ["f1", "f1", "f2", "f2"]
    assert pooled(rows, {"mse": mse})["mse"] == pytest.approx((1 + 0 + 1 + 9) / 4)


def test_summarize_ignores_nan_and_skip_errors():
    s = summarize([{"ccc": 0.5, "mse": 1.0}, {"ccc": float("nan"), "mse": 3.0}])
    assert s["ccc"]["mean"] == 0.5 and s["ccc"]["n"] == 1 and s["mse"]["mean"] == 2.0

    def bad(fold):
        if fold.name == "f2":
            raise RuntimeError("boom")
        return FoldResult(fold.name, {"x": 1.0})

    folds = [_Fold("f1", []), _Fold("f2", [])]
    with pytest.raises(RuntimeError, match="boom"):
        run_folds(folds, bad)
    assert [f.fold for f in run_folds(folds, bad, on_error="skip").folds] == ["f1"]
