"""The shared evaluation layer: one target reader, one metrics function, one normalisation, one
linear model, used by every recipe."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from emovox.evaluate.linear import fit_logistic, fit_ridge, linear_baseline
from emovox.evaluate.metrics import compute_metrics
from emovox.evaluate.targets import IGNORE_INDEX, ordinal_value, read_targets
from emovox.features.normalize import Standardizer, group_normalize, standardize
from emovox.manifest import Manifest, Utterance
from emovox.utils import json_dumps, write_json


def _manifest():
    recs = [Utterance(id=f"u{i}", audio=f"u{i}.wav", speaker=f"s{i % 2}", emotion=e, arousal=a,
                      extra={"level": lv} if lv else {})
            for i, (e, a, lv) in enumerate([("happy", 1.0, "low"), ("sad", 5.0, "high"), (None, 3.0, None),
                                            ("happy", None, "neutral"), (None, None, None)])]
    return Manifest(recs, corpus="toy", labels={"emotion": ["neutral", "happy", "sad"],
                                                "level": ["low", "neutral", "high"]},
                    scales={"arousal": [1.0, 5.0]})


def test_ordinal_coding_is_evenly_spaced_in_unit_range():
    assert [ordinal_value(v, ["low", "neutral", "high"]) for v in ("low", "neutral", "high")] == [-1.0, 0.0, 1.0]
    assert ordinal_value("x", ["low", "high"]) is None and ordinal_value("a", ["a"]) is None


def test_read_targets_categorical_attributes_and_ordinal():
    m = _manifest()
    t = read_targets(m, "emotion", ["arousal"])
    assert t.ids == ["u0", "u1", "u2", "u3"]  # u4 has no target at all
    assert t.labels == ["happy", "sad"]  # the vocabulary, restricted to what occurs
    assert t.y.tolist() == [0, 1, IGNORE_INDEX, 0]
    np.testing.assert_array_equal(t.a[:, 0], [-1.0, 1.0, 0.0, np.nan])  # scale 1..5 -> -1..1
    raw = read_targets(m, attributes=["arousal"], unit_scale=False)
    assert raw.a[:, 0].tolist() == [1.0, 5.0, 3.0]
    o = read_targets(m, "level", ordinal=True)
    assert o.y is None and o.attributes == ["level"] and o.a[:, 0].tolist() == [-1.0, 1.0, 0.0]
    assert read_targets(m, "emotion", labels=["neutral", "happy", "sad"]).y.tolist() == [1, 2, 1]
    sub = t.subset(t.rows_of(["u3", "u0"]))
    assert sub.ids == ["u3", "u0"] and sub.class_names(sub.y) == ["happy", "happy"]


def test_read_targets_errors_name_the_cause():
    m = _manifest()
    with pytest.raises(ValueError, match="u1: emotion 'sad' is not one of"):
        read_targets(m, "emotion", labels=["happy"])
    with pytest.raises(ValueError, match="ordered vocabulary"):
        read_targets(m, "speaker", ordinal=True)
    with pytest.raises(ValueError, match="no utterance has a 'intensity' label"):
        read_targets(m, "intensity")
    m.records[0].extra["arousal_text"] = "loud"
    with pytest.raises(ValueError, match="u0: arousal_text 'loud' is not a number"):
        read_targets(m, attributes=["arousal_text"])


def test_compute_metrics_fixed_names_and_values():
    m = compute_metrics([0, 1, 1, IGNORE_INDEX], np.array([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0], [0.0, 9.0]]), 2)
    assert set(m) == {"ua", "wa", "weighted_f1"}
    assert m["ua"] == pytest.approx(0.75) and m["wa"] == pytest.approx(2 / 3)  # the ignored row is left out
    t = np.array([[0.0, 1.0], [1.0, np.nan], [2.0, 3.0]])
    r = compute_metrics(a_true=t, a_pred=t * 2, attributes=["valence", "arousal"])
    assert set(r) == {"ccc_valence", "mse_valence", "pearson_valence", "ccc_arousal", "mse_arousal",
                      "pearson_arousal", "ccc"}
    assert r["mse_valence"] == pytest.approx(5 / 3) and r["pearson_arousal"] == pytest.approx(1.0)
    assert r["ccc"] == pytest.approx((r["ccc_valence"] + r["ccc_arousal"]) / 2)
    one = compute_metrics(a_true=[[1.0]], a_pred=[[0.0]], attributes=["a"])
    assert math.isnan(one["ccc_a"]) and one["mse_a"] == 1.0 and math.isnan(one["ccc"])


def test_undefined_metrics_are_written_as_null(tmp_path):
    text = json_dumps({"ccc": float("nan"), "x": [np.float32(np.inf), np.int64(3)]})
    assert json.loads(text) == {"ccc": None, "x": [None, 3]}
    write_json(tmp_path / "r.json", {"m": float("nan")})
    assert "NaN" not in (tmp_path / "r.json").read_text()


def test_group_normalize_and_standardize():
    x = np.array([[1.0, 5.0], [3.0, 5.0], [100.0, 0.0], [300.0, 2.0]], np.float32)
    z = group_normalize(x, ["a", "a", "b", "b"])
    assert z.dtype == np.float32
    np.testing.assert_allclose(z[:, 0], [-1, 1, -1, 1], rtol=1e-6)
    assert z[:2, 1].tolist() == [0.0, 0.0]  # constant within the group: only centred
    tr, te = standardize(np.array([[0.0], [2.0]]), np.array([[100.0]]), clip=3.0)
    assert tr[:, 0].tolist() == [-1.0, 1.0] and te[0, 0] == 3.0
    assert Standardizer.fit(np.array([[0.0], [2.0]]), clip=None)(np.array([[100.0]]))[0, 0] == 99.0


def test_logistic_matches_scikit_learn_objective():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=120) > 0).astype(int) + (x[:, 2] > 1)
    ours = fit_logistic(x, y, 3, C=0.5, iters=500).probabilities(x)
    theirs = LogisticRegression(C=0.5, max_iter=5000, tol=1e-10).fit(x, y).predict_proba(x)
    # the same convex objective: probabilities agree to the solvers' tolerances (both ~1e-6 on
    # the gradient), far below the 1e-3 bound
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_ridge_zero_is_least_squares_and_alpha_shrinks():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 3.0
    np.testing.assert_allclose(fit_ridge(x, y, 0.0)(x)[:, 0], y, rtol=1e-9)  # exact fit, no noise
    w0 = fit_ridge(x, y, 0.0).weight.abs().sum().item()
    assert fit_ridge(x, y, 100.0).weight.abs().sum().item() < w0


def test_linear_baseline_on_separable_targets():
    rng = np.random.default_rng(2)
    recs, feats = [], {}
    for i in range(90):
        c = i % 3
        recs.append(Utterance(id=f"u{i}", audio="x.wav", speaker=f"s{i % 5}", emotion=["happy", "sad", "angry"][c],
                              valence=float(c) - 1.0))
        feats[f"u{i}"] = rng.normal(size=(2, 4)) + np.eye(3, 4)[c] * 4
    m = Manifest(recs, labels={"emotion": ["happy", "sad", "angry"]}, scales={"valence": [-1.0, 1.0]})
    t = read_targets(m, "emotion", ["valence"])
    x = np.stack([feats[i] for i in t.ids])
    tr, te = np.arange(60), np.arange(60, 90)
    res = linear_baseline(x[tr], t.subset(tr), x[te], t.subset(te), x[tr[:15]], t.subset(tr[:15]))
    assert res["ua"] > 0.9 and res["ccc_valence"] > 0.8 and {"wa", "weighted_f1", "mse_valence"} <= set(res)
