"""The Tits et al. (2018) recipe: pipeline pieces, a run on given features, and an end-to-end
run with the Whisper encoder on a generated corpus whose label sets the pitch."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from emovox.features.normalize import standardize
from emovox.manifest import Manifest, Utterance
from emovox.recipes import asr_features as R

from conftest import write_audio

LEVELS = ["low", "neutral", "high"]


def _manifest(root, n_speakers=4, per_label=4, labels=LEVELS, with_audio=False) -> Manifest:
    recs = []
    for s in range(n_speakers):
        for li, lab in enumerate(labels):
            for k in range(per_label):
                uid = f"s{s}_{lab}_{k}"
                if with_audio:
                    # pitch rises with the level; speakers differ a little; some loudness jitter
                    freq = 140.0 * (1.6 ** li) * (1.0 + 0.04 * s) * (1.0 + 0.02 * k)
                    write_audio(root / f"{uid}.wav", seconds=0.8, freq=freq, amplitude=0.2 + 0.05 * (k % 3),
                                noise=0.01, seed=100 * s + 10 * li + k)
                recs.append(Utterance(id=uid, audio=f"{uid}.wav", speaker=f"s{s}", duration=0.8,
                                      extra={"level": lab}, arousal=float(li) - 1.0))
    return Manifest(recs, corpus="synthetic", root=str(root), labels={"level": list(labels)},
                    scales={"arousal": [-1.0, 1.0]})


def _features(m: Manifest, informative_layer=0, layers=4, dim=16, seed=0) -> R.FeatureMatrix:
    """(N, layers, dim) noise, where 3 units of one layer carry the level (+ speaker offsets)."""
    rng = np.random.default_rng(seed)
    codes = np.array([LEVELS.index(r.get("level")) for r in m.records], dtype=float)
    spk = np.array([int(r.speaker[1:]) for r in m.records], dtype=float)
    x = rng.normal(size=(len(m), layers, dim))
    x[:, informative_layer, :3] += 2.0 * codes[:, None] + 0.3 * spk[:, None]
    return R.FeatureMatrix("fake-encoder", x, {})


def test_load_target_kinds(tmp_path):
    m = _manifest(tmp_path)
    t = R.load_target(m, R.ASRFeaturesConfig(target="level"))
    assert t.task == "classification" and t.labels == LEVELS and t.values[0] == "low"
    t = R.load_target(m, R.ASRFeaturesConfig(target="level", task="regression"))
    assert t.task == "regression" and set(t.values.tolist()) == {-1.0, 0.0, 1.0}  # the one ordinal coding
    t = R.load_target(m, R.ASRFeaturesConfig(target="arousal"))
    assert t.task == "regression" and t.fisher_classes.max() == 2
    with pytest.raises(ValueError, match="numeric"):
        R.load_target(m, R.ASRFeaturesConfig(target="arousal", task="classification"))
    with pytest.raises(ValueError, match="no utterance"):
        R.load_target(m, R.ASRFeaturesConfig(target="valence"))
    with pytest.raises(ValueError, match="task"):
        R.ASRFeaturesConfig(task="ranking")


def test_standardize_and_clip_use_training_statistics():
    train = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    test = np.array([[100.0, 5.0]])
    a, b = standardize(train, test, clip=5.0)
    np.testing.assert_allclose(a[:, 0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    assert b[0, 0] == 5.0  # (100 - 2) / 1.63 clipped
    assert b[0, 1] == 4.0  # constant training column: std taken as 1
    _, b = standardize(train, test, clip=None)
    assert b[0, 0] > 50


def test_selection_is_fitted_on_training_rows_only(monkeypatch):
    seen = []
    real = R.fisher_scores

    def spy(x, classes):
        seen.append(len(x))
        return real(x, classes)

    monkeypatch.setattr(R, "fisher_scores", spy)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 8))
    y = np.repeat([0.0, 1.0, 2.0], 10)
    cfg = R.ASRFeaturesConfig(k=3)
    target = R.Target([], y, "regression", None, y.astype(int), "level")
    pred, probs, sel = R.fit_predict(x[:20], y[:20], y[:20].astype(int), x[20:], target, cfg)
    assert seen == [20] and pred.shape == (10,) and probs is None and len(sel) == 3


def test_run_on_given_features(tmp_path):
    m = _manifest(tmp_path, n_speakers=4, per_label=5)
    fake = _features(m, informative_layer=0)
    cfg = R.ASRFeaturesConfig(target="level", encoders=("fake-encoder",), baseline=None, k=5,
                              protocol="loso", heatmap_speakers=2)
    report = R.run(m, cfg, tmp_path / "out", features={"fake-encoder": fake})
    sets = report["feature_sets"]
    assert report["folds"] == 4 and report["task"] == "classification"
    first = next(v for k, v in sets.items() if "first3" in k)
    last = next(v for k, v in sets.items() if "last3" in k)
    assert first["summary"]["ua"]["mean"] > 0.8  # the informative layer is among the first three
    assert last["summary"]["ua"]["mean"] < 0.7  # ... and not among the last three (chance 1/3)
    assert report["best_single_layer"]["fake-encoder"]["layer"] == 0
    out = tmp_path / "out"
    saved = json.loads((out / "results.json").read_text())
    assert saved["feature_sets"].keys() == sets.keys()
    assert "| features |" in (out / "results.md").read_text()
    lines = (out / "predictions.csv").read_text().splitlines()
    assert lines[0].startswith("fold,id,speaker,features,target,prediction,p_low")
    assert len(lines) == 1 + len(m) * len(sets)
    from emovox.report.tables import read_csv

    for row in read_csv(out / "predictions.csv"):  # probability columns follow the vocabulary
        probs = {lab: float(row[f"p_{lab}"]) for lab in LEVELS}
        assert max(probs, key=probs.get) == row["prediction"]
    assert (out / "plots" / "fisher_fake-encoder.png").is_file()
    assert (out / "plots" / "layers_fake-encoder.png").is_file()


def test_regression_run_draws_speaker_heatmaps(tmp_path):
    m = _manifest(tmp_path, n_speakers=3, per_label=4)
    fake = _features(m, informative_layer=3)
    cfg = R.ASRFeaturesConfig(target="level", task="regression", encoders=("fake-encoder",), baseline=None,
                              k=5, layer_sets=("all",), single_layers=False, heatmap_speakers=2)
    report = R.run(m, cfg, tmp_path / "out", features={"fake-encoder": fake})
    s = report["feature_sets"]["fake-encoder all (L0-3)"]["summary"]
    assert s["ccc"]["mean"] > 0.7 and s["mse_level"]["mean"] < 0.3
    pngs = sorted(p.name for p in (tmp_path / "out" / "plots").glob("corr_*.png"))
    assert pngs == ["corr_fake-encoder_all.png", "corr_fake-encoder_mean_over_speakers.png",
                    "corr_fake-encoder_s0.png", "corr_fake-encoder_s1.png"]


def test_failed_utterances_are_left_out_and_reported(tmp_path):
    m = _manifest(tmp_path, n_speakers=3, per_label=3)
    fake = _features(m)
    fake.values[0] = np.nan
    fake.failed["s0_low_1"] = "x.wav: unreadable"
    fake.values[1] = np.nan
    cfg = R.ASRFeaturesConfig(target="level", encoders=("fake-encoder",), baseline=None, k=5,
                              layer_sets=("all",), single_layers=False)
    report = R.run(m, cfg, None, features={"fake-encoder": fake})
    assert report["utterances"] == len(m) - 2
    assert set(report["failed"]) == {"s0_low_0", "s0_low_1"}


def test_cli_help_has_an_example(capsys):
    from emovox.cli import main

    with pytest.raises(SystemExit) as e:
        main(["asr-features", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "example:" in text and "--target" in text and "--speaker-norm" in text


def test_cli_reports_a_bad_target(tmp_path, capsys):
    from emovox.cli import main

    m = _manifest(tmp_path, n_speakers=2, per_label=2)
    m.save(tmp_path / "m.jsonl")
    rc = main(["asr-features", str(tmp_path / "m.jsonl"), "--target", "valence", "-o", str(tmp_path / "out")])
    assert rc == 1
    assert "no utterance in the manifest has a value for the target 'valence'" in capsys.readouterr().err


@pytest.mark.slow
def test_end_to_end_with_whisper_on_generated_tones(tmp_path):
    """Real extraction (Whisper tiny.en, cached under tmp) on 36 generated clips, 3 speakers."""
    pytest.importorskip("faster_whisper")
    from emovox.cli import main

    root = tmp_path / "corpus"
    m = _manifest(root, n_speakers=3, per_label=4, with_audio=True)
    m.save(tmp_path / "m.jsonl")
    out = tmp_path / "out"
    rc = main(["asr-features", str(tmp_path / "m.jsonl"), "--target", "level", "--baseline", "none",
               "--protocol", "loso", "-k", "20", "--layers", "all", "--no-single-layers",
               "--cache-dir", str(tmp_path / "cache"), "-o", str(out)])
    assert rc == 0
    report = json.loads((out / "results.json").read_text())
    (name, res), = report["feature_sets"].items()
    assert name.startswith("whisper-tiny.en all")
    assert res["summary"]["ua"]["mean"] > 0.6  # chance is 1/3
    assert report["failed"] == {}
    assert not math.isnan(res["pooled"]["weighted_f1"])
