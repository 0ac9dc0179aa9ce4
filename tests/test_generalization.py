"""The multi-corpus recipe and its benchmark: the label space, masked and balanced training,
calibration, per-recording adaptation and leave-one-corpus-out scoring, on generated features
(real corpora: tests marked shared at the end)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from emovox.corpora.vocab import MODEL_EMOTIONS, model_label
from emovox.emotion_model import adapt_to_recording
from emovox.evaluate.calibration import expected_calibration_error, fit_temperature, softmax
from emovox.recipes import generalization as G
from emovox.train.losses import cross_entropy


def test_label_space_mapping():
    assert model_label("calm") == "neutral" and model_label("surprised") == "surprised"
    assert model_label("bored") is None and model_label(None) is None and model_label("angry") == "angry"
    assert set(MODEL_EMOTIONS) == {"neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"}


def test_masked_loss_gives_no_gradient_to_classes_outside_the_corpus_set():
    logits = torch.randn(4, 5, requires_grad=True)
    target = torch.tensor([0, 1, 1, 3])
    mask = torch.tensor([[1, 1, 0, 0, 0]] * 3 + [[0, 0, 1, 1, 1]], dtype=torch.bool)
    cross_entropy(logits, target, class_mask=mask).backward()
    g = logits.grad
    assert (g[~mask] == 0).all() and (g[mask].abs() > 0).all()
    # unmasked, the same rows push every class
    logits.grad = None
    cross_entropy(logits, target).backward()
    assert (logits.grad.abs() > 0).all()


def test_sample_weights_are_a_weighted_mean():
    logits = torch.randn(3, 4)
    target = torch.tensor([0, 1, 2])
    per = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    w = torch.tensor([1.0, 2.0, 0.0])
    assert cross_entropy(logits, target, sample_weight=w).item() == pytest.approx(((per * w).sum() / 3).item(),
                                                                                  rel=1e-6)


def test_balance_weights_equal_corpora_and_classes():
    y = np.array([0] * 8 + [1] * 2 + [0] * 3 + [2] * 3 + [-100] * 4)
    corpus = np.array([0] * 10 + [1] * 6 + [2] * 4)
    w = G.balance_weights(y, corpus)
    assert w.mean() == pytest.approx(1.0)
    totals = [w[corpus == c].sum() for c in range(3)]
    np.testing.assert_allclose(totals, totals[0], rtol=1e-9)
    assert w[:8].sum() == pytest.approx(w[8:10].sum())  # classes equal inside a corpus


def test_temperature_scaling_lowers_ece_on_overconfident_scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 2000)
    logits = rng.normal(size=(2000, 4))
    logits[np.arange(2000), y] += 1.0  # some signal...
    logits *= 6.0  # ...far too confident
    before = expected_calibration_error(softmax(logits), y)
    t = fit_temperature(logits, y)
    after = expected_calibration_error(softmax(logits, t), y)
    assert t > 2.0 and after < before / 3 and after < 0.05
    assert (softmax(logits, t).argmax(1) == logits.argmax(1)).all()  # the ranking is kept


def test_adaptation_changes_nothing_for_one_segment_and_centres_a_recording():
    one = np.random.default_rng(1).normal(size=(1, 3, 4)).astype(np.float32)
    train_mean = np.ones((3, 4), np.float32)
    assert np.array_equal(adapt_to_recording(one, train_mean), one)
    rec = np.random.default_rng(2).normal(size=(6, 3, 4)).astype(np.float32) + 5.0
    out = adapt_to_recording(rec, train_mean)
    np.testing.assert_allclose(out.mean(0), train_mean, atol=1e-5)
    np.testing.assert_allclose(out[1] - out[0], rec[1] - rec[0], atol=1e-5)  # differences kept


def _pool(seed: int = 0, names=("ravdess", "tess", "ased")) -> dict[str, G.CorpusData]:
    """Generated 'corpora' sharing a class structure in layer 1, each with its own offset (its
    channel) and speakers; ased lacks a class."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(len(MODEL_EMOTIONS), 8))
    pool = {}
    for name, classes in [("ravdess", [0, 1, 2, 3]), ("tess", [0, 1, 2, 3]), ("ased", [0, 1, 3])]:
        if name not in names:
            continue
        offset = rng.normal(scale=0.7, size=8)
        ids, spk, ys, xs = [], [], [], []
        for s in range(4):
            for c in classes:
                for r in range(6):
                    ids.append(f"{name}{s}{c}{r}")
                    spk.append(f"s{s}")
                    ys.append(c)
                    x = rng.normal(size=(2, 8))
                    x[1] += centres[c] + offset
                    xs.append(x)
        y = np.array(ys)
        a = np.full((len(y), 3), np.nan, np.float32)
        a[:, 1] = np.where(y == 3, 0.8, -0.2)
        x = np.stack(xs).astype(np.float32)
        pool[name] = G.CorpusData(name, ids, spk, y, a, {"clean": x, "noise:10": x + rng.normal(scale=0.3, size=x.shape).astype(np.float32),
                                                         "mix": x + rng.normal(scale=0.5, size=x.shape).astype(np.float32)})
    return pool


def test_leave_one_corpus_out_on_generated_corpora():
    pool = _pool(names=("ravdess", "ased"))
    cand = G.Candidate("linear", head="linear", lr=1e-2, max_epochs=30, patience=10)
    res = G.leave_one_corpus_out(cand, pool, conditions=("clean", "noise:10"))
    assert set(res) == {"ravdess", "ased"}
    for corpus, m in res.items():
        # separable classes behind an unseen channel offset, learnt from one other corpus: well
        # above the closed-set chance of 0.25-0.33
        assert m["clean/ua"] > 0.5, (corpus, m)
        assert 0.0 <= m["clean/ece"] <= 1.0 and m["temperature"] > 0
        assert {"noise:10/ua", "adapted-speaker/ua", "adapted-recording/ua", "adapted-one-emotion/ua"} <= set(m)
    # ased lacks class 2: its closed-set scores never predict it, and its CCC is on arousal only
    assert math.isfinite(res["ased"]["clean/ccc_arousal"]) and math.isnan(res["ased"]["clean/ccc_valence"])
    # only= changes which corpora are tested, not a fit (same seed, same rows): the same UA
    only = G.leave_one_corpus_out(cand, pool, conditions=("clean",), only=["ased"])
    assert set(only) == {"ased"} and only["ased"]["clean/ua"] == pytest.approx(res["ased"]["clean/ua"], abs=1e-12)


def test_plain_linear_and_bench_table():
    from emovox.bench.generalization import markdown, run

    pool = _pool(1, names=("tess", "ased"))
    results = run(pool, [G.CANDIDATES[0]], in_corpus_names=["plain linear"])
    table = markdown(results, "generated")
    assert "plain linear" in table and "**mean**" in table
    assert set(results["plain linear"]["in_corpus"]) == {"tess", "ased"}
    assert all(v > 0.6 for v in results["plain linear"]["in_corpus"].values())


def test_clean_members_train_without_the_augmented_copies():
    with pytest.raises(ValueError, match="clean_members"):
        G.Candidate("bad", members=1, clean_members=2)
    pool = _pool(7, names=("ravdess", "ased"))
    for c in pool.values():  # augmented copies far from the clean ones: each member's input
        c.x["mix"] = c.x["clean"] + 10.0  # normaliser shows which rows it was trained on
    cand = G.Candidate("mixed", head="linear", lr=1e-2, max_epochs=3, patience=3, members=2, clean_members=1)
    fitted = G.fit(cand, pool, ["ravdess", "ased"])
    clean_mean = np.concatenate([c.x["clean"] for c in pool.values()]).mean(0)
    augmented, clean = (p.feature_mean.numpy() for p in fitted.probes)
    # the clean member's mean is the clean clips' (up to the 10 % of speakers held out: well
    # under 1 against the offset of 10); the other's sits half-way to the augmented copies
    assert np.abs(clean - clean_mean).max() < 1.0
    assert np.abs(augmented - (clean_mean + 5.0)).max() < 1.0
    assert len(fitted.member_temperatures) == 2


def _with_dimensional(pool: dict[str, G.CorpusData], seed: int = 4) -> dict[str, G.CorpusData]:
    """``pool`` plus a generated 'baved': no categories, arousal ratings that follow the same
    class structure as the acted corpora's arousal targets, behind its own channel offset."""
    rng = np.random.default_rng(seed)
    ref = next(iter(pool.values()))
    x = ref.x["clean"] + rng.normal(scale=0.7, size=ref.x["clean"].shape[2]).astype(np.float32)
    a = np.full((len(x), 3), np.nan, np.float32)
    a[:, 1] = ref.a[:, 1] + rng.normal(scale=0.1, size=len(x))
    n = len(x)
    pool["baved"] = G.CorpusData("baved", [f"b{i}" for i in range(n)], [f"b{i % 5}" for i in range(n)],
                                 np.full(n, -100), a, {"clean": x, "mix": x})
    return pool


def test_the_attribute_head_is_scored_on_a_left_out_dimensional_corpus():
    pool = _with_dimensional(_pool(5, names=("ravdess", "ased")))
    cand = G.Candidate("linear", head="linear", lr=1e-2, max_epochs=30, patience=10)
    res = G.leave_one_corpus_out_attributes(cand, pool)
    assert set(res) == {"baved"}
    # arousal follows the class structure the acted corpora teach (targets -0.2 / 0.8 plus noise
    # of 0.1): a head that learnt it agrees well beyond chance (CCC 0) on the unseen corpus;
    # valence and dominance have no ratings there, so no CCC
    assert res["baved"]["ccc_arousal"] > 0.5 and math.isnan(res["baved"]["ccc_valence"])
    assert G.leave_one_corpus_out_attributes(G.CANDIDATES[0], pool) == {}  # no attribute head


def test_bench_table_has_extra_conditions_and_the_vad_table():
    from emovox.bench.generalization import markdown, run

    pool = _with_dimensional(_pool(6, names=("ravdess", "ased")))
    for c in ("ravdess", "ased"):
        pool[c].x["reverb:0.5"] = pool[c].x["clean"] * 0.9
    cand = G.Candidate("linear", head="linear", lr=1e-2, max_epochs=20, patience=10)
    results = run(pool, [cand], conditions=("reverb:0.5",))
    assert all(math.isfinite(m["reverb:0.5/ua"]) for m in results["linear"]["loco"].values())
    table = markdown(results, "generated", ["reverb:0.5"])
    header = next(line for line in table.splitlines() if line.startswith("| candidate | test corpus"))
    assert "UA reverb:0.5" in header
    vad = table.split("V/A/D head")[1]
    assert "baved arousal" in vad and "baved valence" not in vad and "acted arousal (from categories)" in vad


def test_bench_refuses_a_bad_condition_before_extracting(tmp_path, capsys):
    from emovox.cli import main

    assert main(["bench", "generalization", "--condition", "noise:loud", "--shared", str(tmp_path),
                 "--corpora", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "noise:loud" in err and "extract" not in err.lower()


@pytest.mark.parametrize("members", [1, 2])
def test_ship_makes_a_calibrated_model_file(tmp_path, members):
    import torch

    from emovox.emotion_model import EmotionModel
    from emovox.recipes.default_model import ship

    pool = _pool(2, names=("ravdess", "ased"))
    cand = G.Candidate("linear", head="linear", lr=1e-2, max_epochs=30, patience=10, members=members)
    model, report = ship(pool, cand, "whisper-tiny.en", version="gen-1")
    loaded = EmotionModel.load(model.save(tmp_path / "m.pt"))
    assert len(loaded.members) == members and len(loaded.config.member_temperatures) == (members if members > 1 else 0)
    if members > 1:  # trained from different initial weights: the members differ
        assert not torch.equal(loaded.members[0].classifier.weight, loaded.members[1].classifier.weight)
    assert loaded.labels == list(MODEL_EMOTIONS) and loaded.config.temperature == pytest.approx(report["temperature"])
    assert set(loaded.config.meta["corpora"]) == {"ravdess", "ased"} and "non-commercial" in loaded.config.meta["licence"]
    x = pool["ravdess"].x["clean"][:24]
    probs = loaded.predict_from_pooled(torch.from_numpy(x))["probs"].numpy()
    # it learnt the training corpus (over the classes it was trained on: the generated corpora
    # annotate 4 of the 7; the real ones annotate all 7)
    assert (probs[:, :4].argmax(1) == pool["ravdess"].y[:24]).mean() > 0.6
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)


def test_a_model_of_the_first_blocks_runs_only_those_in_predict(tmp_path):
    """ship(layers=2): the model records the option, and predict builds an encoder of 2 blocks
    whose 3 hidden states fit the heads (the generated features padded to tiny.en's shape)."""
    import emovox
    from emovox.recipes.default_model import ship
    from emovox.text.synth import demo_recording

    pool = _pool(3, names=("ravdess", "ased"))
    for c in pool.values():  # (N, 2, 8) -> (N, 3, 384): layer 1 carries the classes, as before
        c.x = {k: np.pad(v[:, [0, 1, 1]], ((0, 0), (0, 0), (0, 376))) for k, v in c.x.items()}
    cand = G.Candidate("linear", head="linear", lr=1e-2, max_epochs=5, patience=5)
    model, _ = ship(pool, cand, "whisper-tiny.en", version="two-blocks", layers=2)
    assert model.config.encoder_options == {"layers": 2}
    predictor = emovox.load(model.save(tmp_path / "m.pt"), transcriber=None, threads=2)
    assert len(predictor.scorer.encoder.blocks) == 2
    records = predictor.predict(demo_recording(tmp_path / "demo.wav"))
    assert records and all(abs(sum(r.emotion.probs.values()) - 1) < 1e-4 for r in records)


def test_predict_adaptation_changes_nothing_below_the_minimum_and_shifts_features_above(tmp_path):
    """predict(adapt=True) on a generated recording with the bundled model: with fewer segments
    than the minimum the records are the unadapted ones; with enough, the same segments come back
    with other emotion outputs."""
    import emovox
    from emovox.text.synth import demo_recording

    wav = demo_recording(tmp_path / "demo.wav")
    plain = emovox.load(transcriber=None, threads=2)
    base = plain.predict(wav)
    n = len(base)
    assert n >= 3
    few = emovox.load(transcriber=None, threads=2, adapt=True, adapt_min_segments=n + 1).predict(wav)
    assert [r.emotion.probs for r in few] == [r.emotion.probs for r in base]
    many = emovox.load(transcriber=None, threads=2, adapt=True, adapt_min_segments=2)
    adapted = many.predict(wav)
    assert [(r.start, r.end) for r in adapted] == [(r.start, r.end) for r in base]
    assert any(a.emotion.probs != b.emotion.probs for a, b in zip(adapted, base))


def test_backbone_defaults_to_the_shipped_encoder_and_depth():
    assert G.backbone(None, None) == (G.SHIPPED_ENCODER, G.SHIPPED_LAYERS)
    assert G.backbone(None, 2) == (G.SHIPPED_ENCODER, 2)
    assert G.backbone("whisper-tiny.en", None) == ("whisper-tiny.en", None)  # another encoder: all blocks
