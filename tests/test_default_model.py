"""The emotion model file (emovox.emotion_model): save/load round trip, predict_from_pooled;
the category-derived V/A/D targets (emovox.recipes.pool); and the bundled default model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovox.emotion_model import EmotionModel, EmotionModelConfig, default_model_path
from emovox.heads.probe import Probe, ProbeConfig
from emovox.manifest import Manifest, Utterance
from emovox.recipes.pool import EMOTION_VAD, category_vad

LABELS = list(EMOTION_VAD)


def tiny_model(L: int = 5, D: int = 8) -> EmotionModel:
    torch.manual_seed(0)
    probe = Probe(ProbeConfig(num_layers=L, dim=D, num_classes=len(LABELS), num_attributes=3, hidden=16))
    probe.fit_normalizer(torch.randn(20, L, D) * 3 + 1)
    return EmotionModel(probe, EmotionModelConfig(labels=LABELS, version="test-1",
                                                  encoder_options={"pad_to_30s": False}, meta={"note": "x"}))


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    model = tiny_model()
    x = torch.randn(4, 5, 8)
    before = model.predict_from_pooled(x)
    path = model.save(tmp_path / "m.pt")
    loaded = EmotionModel.load(path)
    after = loaded.predict_from_pooled(x)
    torch.testing.assert_close(before["probs"], after["probs"])
    torch.testing.assert_close(before["dims"], after["dims"])
    assert loaded.labels == LABELS and loaded.attributes == ["valence", "arousal", "dominance"]
    assert loaded.version == "test-1" and loaded.encoder_name == "whisper-tiny.en"
    assert loaded.encoder_options == {"pad_to_30s": False} and loaded.config.meta == {"note": "x"}
    # plain types and tensors only: loadable without unpickling code
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == "emovox-emotion-model"


def test_an_ensemble_averages_calibrated_member_logits_and_round_trips(tmp_path):
    torch.manual_seed(1)
    cfg = ProbeConfig(num_layers=5, dim=8, num_classes=len(LABELS), num_attributes=3, hidden=16)
    members = [Probe(cfg).eval() for _ in range(3)]
    temps = [1.0, 2.0, 0.5]
    model = EmotionModel(members, EmotionModelConfig(labels=LABELS, temperature=1.5, member_temperatures=temps))
    x = torch.randn(4, 5, 8)
    with torch.no_grad():
        outs = [m(x) for m in members]
        logits = sum(o.logits / t for o, t in zip(outs, temps)) / 3
        attributes = sum(o.attributes for o in outs) / 3
    got = model.predict_from_pooled(x)
    # float32 sums in another order: a few ulps of logits of order 1
    torch.testing.assert_close(got["probs"], (logits / 1.5).softmax(-1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got["dims"], attributes.clamp(-1, 1), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got["probs"], EmotionModel(members[0], EmotionModelConfig(
        labels=LABELS, temperature=1.5)).predict_from_pooled(x)["probs"])  # not just the first member
    loaded = EmotionModel.load(model.save(tmp_path / "ens.pt"))
    assert len(loaded.members) == 3 and loaded.config.member_temperatures == temps
    torch.testing.assert_close(loaded.predict_from_pooled(x)["probs"], got["probs"])
    with pytest.raises(ValueError, match="3 members and 2 member temperatures"):
        EmotionModel(members, EmotionModelConfig(labels=LABELS, member_temperatures=[1.0, 1.0]))
    with pytest.raises(ValueError, match="share one probe config"):
        EmotionModel([members[0], Probe(ProbeConfig(num_layers=5, dim=8, num_classes=len(LABELS),
                                                    num_attributes=3, hidden=8))],
                     EmotionModelConfig(labels=LABELS, member_temperatures=[1.0, 1.0]))


def test_predict_from_pooled_shapes_and_ranges():
    out = tiny_model().predict_from_pooled(np.random.default_rng(0).normal(size=(3, 5, 8)).astype(np.float32))
    assert out["probs"].shape == (3, len(LABELS)) and out["dims"].shape == (3, 3)
    torch.testing.assert_close(out["probs"].sum(1), torch.ones(3))
    assert out["dims"].abs().max() <= 1.0
    assert out["emotion"] is out["probs"] and out["vad"] is out["dims"] and out["labels"] == LABELS
    single = tiny_model().predict_from_pooled(torch.randn(5, 8))  # one utterance without batch dim
    assert single["probs"].shape == (1, len(LABELS))


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        EmotionModel.load(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.pt"):
        EmotionModel.load(bad)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(ValueError, match="not an emovox emotion model"):
        EmotionModel.load(other)
    with pytest.raises(ValueError, match="labels"):
        EmotionModel(tiny_model().probe, EmotionModelConfig(labels=["a", "b"]))


def test_category_vad_scales_by_intensity():
    m = Manifest([Utterance("a", "a.wav", emotion="angry", extra={"intensity": "strong"}),
                  Utterance("b", "b.wav", emotion="angry", extra={"intensity": "normal"}),
                  Utterance("c", "c.wav", emotion="neutral", extra={"intensity": "normal"}),
                  Utterance("d", "d.wav", emotion="bored")])
    t = category_vad(m)
    assert t["a"] == pytest.approx(list(EMOTION_VAD["angry"]))
    assert t["b"] == pytest.approx([0.75 * v for v in EMOTION_VAD["angry"]])
    assert t["c"] == [0.0, 0.0, 0.0] and "d" not in t
    assert all(-1 <= v <= 1 for vad in EMOTION_VAD.values() for v in vad)


def test_bundled_default_model_loads_and_predicts():
    from emovox.corpora.vocab import MODEL_EMOTIONS
    from emovox.recipes import generalization as G

    path = default_model_path()
    assert path.is_file(), f"the bundled default model is missing: {path} (run emovox train-default)"
    assert path.stat().st_size < 5_000_000
    model = EmotionModel.load()
    # the recipe emovox bench generalization chose: Whisper base, first 3 blocks, the MLP head
    assert model.encoder_name == G.SHIPPED_ENCODER == "whisper-base"
    assert model.encoder_options == {"layers": G.SHIPPED_LAYERS} and model.config.meta["recipe"] == G.SHIPPED
    assert model.labels == list(MODEL_EMOTIONS)
    assert model.attributes == ["valence", "arousal", "dominance"]
    L, D = model.probe.config.num_layers, model.probe.config.dim
    assert (L, D) == (G.SHIPPED_LAYERS + 1, 512)
    out = model.predict_from_pooled(torch.zeros(2, L, D))
    assert out["probs"].shape == (2, len(MODEL_EMOTIONS)) and out["dims"].shape == (2, 3)
    corpora = model.config.meta["corpora"]
    assert set(corpora) == {"ravdess", "tess", "ased", "nemo", "turev", "baved", "va47"}
    assert all(c["licence"] and c["licence"] != "?" for c in corpora.values())
    assert "non-commercial" in model.config.meta["licence"]
    assert 0.5 < model.config.temperature < 10


def test_bundled_model_through_predict_on_real_ravdess_clips():
    """Pipeline integrity on real speech: VAD segments -> Whisper encoder -> bundled heads must
    reproduce the categories of clips of the model's training corpus (strong intensity, one actor;
    measured 7 of 7).
    A mismatch between training features and predict-time features makes this fail."""
    from conftest import shared_path

    import emovox

    actor = shared_path("ravdess", "Actor_02")
    clips = sorted(actor.glob("03-01-0[2-8]-02-01-01-02.*"))
    assert len(clips) == 7
    names = {"02": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fearful", "07": "disgust",
             "08": "surprised"}  # calm counts as neutral in the model's label space
    model = emovox.load(transcriber=None, threads=2)
    correct = 0
    for clip in clips:
        segments = model.predict(clip)
        assert segments, f"no speech found in {clip}"
        longest = max(segments, key=lambda s: s.end - s.start)
        correct += longest.emotion.label == names[clip.name.split("-")[2]]
    assert correct >= 5, f"only {correct} of 7 training clips labelled right through predict()"
