"""The SUPERB-style probe: layer-weighted sum, masks, speaker normalisation, cross-validation with
a linear baseline, on generated features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emovox.heads.probe import Probe, ProbeConfig
from emovox.manifest import Manifest, Utterance
from emovox.features.normalize import speaker_normalize
from emovox.recipes.probe import ProbeRecipeConfig, build_data, markdown, run_probe, score, train_probe
from emovox.train import pad_sequence


def test_layer_weighted_sum_matches_manual_softmax():
    probe = Probe(ProbeConfig(num_layers=3, dim=4, num_classes=2))
    with torch.no_grad():
        probe.layer_logits.copy_(torch.tensor([0.0, 1.0, 2.0]))
    x = torch.randn(5, 3, 4)
    w = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0)
    torch.testing.assert_close(probe.combine(x), (x * w[None, :, None]).sum(1))
    assert probe.layer_weights().sum().item() == pytest.approx(1.0)
    # gradients reach the layer weights
    probe(x).logits.sum().backward()
    assert probe.layer_logits.grad is not None and probe.layer_logits.grad.abs().sum() > 0


def test_hidden_states_with_lengths_equal_pooled_input():
    probe = Probe(ProbeConfig(num_layers=2, dim=3, num_classes=0, num_attributes=3)).eval()
    a, b = torch.randn(4, 3), torch.randn(7, 3)
    layer0, lengths = pad_sequence([a, b], value=99.0)  # padding must not leak into the mean
    layer1, _ = pad_sequence([2 * a, 2 * b], value=-99.0)
    pooled = torch.stack([torch.stack([a.mean(0), 2 * a.mean(0)]), torch.stack([b.mean(0), 2 * b.mean(0)])])
    out_states = probe([layer0, layer1], lengths).attributes
    out_pooled = probe(pooled).attributes
    torch.testing.assert_close(out_states, out_pooled)
    assert out_pooled.shape == (2, 3)


def test_probe_config_and_shape_errors():
    with pytest.raises(ValueError, match="head"):
        ProbeConfig(num_layers=2, dim=3)
    probe = Probe(ProbeConfig(num_layers=2, dim=3, num_classes=4))
    with pytest.raises(ValueError, match=r"\(batch, 2, 3\)"):
        probe(torch.zeros(1, 3, 3))


def test_normalizer_and_clip():
    probe = Probe(ProbeConfig(num_layers=1, dim=2, num_classes=2, clip=3.0))
    x = torch.tensor([[[0.0, 10.0]], [[2.0, 30.0]]])
    probe.fit_normalizer(x)
    torch.testing.assert_close(probe.feature_mean, torch.tensor([[1.0, 20.0]]))
    z = probe.combine(torch.tensor([[[1.0, 1000.0]]]))
    assert z.tolist() == [[0.0, 3.0]]


def test_speaker_normalize_uses_each_speakers_own_statistics():
    x = np.concatenate([np.full((3, 1, 2), 5.0) + np.arange(3)[:, None, None],
                        np.full((3, 1, 2), -50.0) + 10 * np.arange(3)[:, None, None]]).astype(np.float32)
    z = speaker_normalize(x, ["a"] * 3 + ["b"] * 3)
    np.testing.assert_allclose(z[:3, 0, 0], z[3:, 0, 0], atol=1e-5)  # same shape, different offsets
    np.testing.assert_allclose(z[:3].mean(0), 0, atol=1e-5)


# ------------------------------------------------------------------ a generated corpus
LABELS = ["neutral", "happy", "sad", "angry"]


def synthetic(n_speakers: int = 6, per_class: int = 8, L: int = 3, D: int = 8, seed: int = 0):
    """Classes live in layer 1 as class = 2 * (s0 xor s1) + s2 for random signs s_i carried by
    features 0..2 (not linearly separable); layers 0 and 2 are noise, and every speaker has its
    own offset (so speaker normalisation helps)."""
    rng = np.random.default_rng(seed)
    records, feats = [], {}
    for s in range(n_speakers):
        offset = rng.normal(scale=3.0, size=(L, D))
        for c, lab in enumerate(LABELS):
            for r in range(per_class):
                uid = f"s{s}-{lab}-{r}"
                x = rng.normal(size=(L, D))
                s0 = rng.integers(2)
                s1, s2 = s0 ^ (c // 2), c % 2
                x[1, :3] += 4.0 * (2 * np.array([s0, s1, s2]) - 1)
                feats[uid] = (x + offset).astype(np.float32)
                records.append(Utterance(id=uid, audio=f"{uid}.wav", speaker=f"spk{s}", emotion=lab,
                                         arousal=float(c in (1, 3)) * 4 + 1, valence=float(c == 1) * 4 + 1))
    m = Manifest(records, corpus="synthetic", labels={"emotion": LABELS},
                 scales={"valence": [1, 5], "arousal": [1, 5]})
    return m, feats


def test_build_data_maps_attributes_to_unit_scale_and_skips_unlabelled():
    m, feats = synthetic(n_speakers=2, per_class=1)
    m.records.append(Utterance(id="nolabel", audio="x.wav", speaker="spk0"))
    feats["nolabel"] = feats[m.records[0].id]
    d = build_data(m, feats, "emotion", ["valence", "arousal"])
    assert "nolabel" not in d.ids and d.x.shape == (8, 3, 8)
    assert set(np.unique(d.a)) <= {-1.0, 1.0}
    with pytest.raises(ValueError, match="level"):
        build_data(m, feats, "level")


def test_train_probe_learns_and_beats_chance():
    m, feats = synthetic(n_speakers=4, per_class=10)
    d = build_data(m, feats, "emotion")
    d = d.replace_x(speaker_normalize(d.x, d.speakers))
    tr = d.subset([i for i, s in enumerate(d.speakers) if s != "spk3"])
    te = d.subset([i for i, s in enumerate(d.speakers) if s == "spk3"])
    cfg = ProbeRecipeConfig(max_epochs=40, lr=1e-2, speaker_norm="off")
    probe, result = train_probe(tr, te, cfg)
    from emovox.recipes.probe import predict

    logits, _ = predict(probe, te.x)
    assert score(te, logits, None)["ua"] > 0.6 and result.best_metric is not None
    # the layer carrying the information gets the largest weight
    assert int(probe.layer_weights().argmax()) == 1


@pytest.mark.slow
def test_run_probe_cross_validation_with_linear_baseline_and_plots(tmp_path):
    m, feats = synthetic()
    cfg = ProbeRecipeConfig(max_epochs=25, lr=1e-2, folds=3, speaker_norm="both",
                            attributes=["valence", "arousal"])
    res = run_probe(m, cfg, out_dir=tmp_path, features=feats)
    assert set(res["variants"]) == {"raw", "speaker-norm"}
    raw, norm = res["variants"]["raw"], res["variants"]["speaker-norm"]
    assert len(raw["folds"]) == 3 and {"ua", "wa", "weighted_f1", "ccc_valence", "ccc_arousal", "ccc"} <= set(raw["probe"])
    # XOR classes: the non-linear probe clearly beats the linear model on the same features
    assert norm["probe"]["ua"]["mean"] > norm["linear"]["ua"]["mean"] + 0.1
    assert norm["probe"]["ua"]["mean"] >= raw["probe"]["ua"]["mean"] - 0.05
    assert np.asarray(raw["confusion"]).sum() == len(m)
    assert (tmp_path / "confusion-raw.png").is_file() and (tmp_path / "layer_weights-speaker-norm.png").is_file()
    json.dumps(res)  # JSON-ready
    table = markdown(res)
    assert "linear" in table and "probe" in table


def test_train_probe_is_deterministic_whatever_ran_before():
    """Folds are split over torchrun ranks: a fold's result must not depend on the global RNG state."""
    m, feats = synthetic(n_speakers=3, per_class=3)
    d = build_data(m, feats, "emotion")
    cfg = ProbeRecipeConfig(max_epochs=2, speaker_norm="off", linear=False)
    torch.manual_seed(123)
    a, _ = train_probe(d, None, cfg)
    torch.rand(1000)  # consume RNG, as a previous fold would
    b, _ = train_probe(d, None, cfg)
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, msg=k)
