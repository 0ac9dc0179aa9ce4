"""CARE (Dutta & Ganapathy 2024): adapters and frame rate, frozen parts, gradient routing, the
exposed layers read by the probe, checkpoints through load_encoder, and pre-training that
resumes after an interruption.

Most tests run a small randomly initialised CARE (Whisper-shaped trunk of 4 blocks of 32 units,
a 2-layer BERT of 32 units); the pre-training test uses the real offline defaults (Whisper
tiny.en, all-MiniLM-L6-v2) on generated audio."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import write_audio
from emovox.encoders import load_encoder
from emovox.encoders.care import (CareConfig, CareEncoder, SemanticAdapter, _text_layers, frames_after_down,
                                  load_care, save_care)
from emovox.encoders.whisper import WhisperDims
from emovox.features.descriptors import DescriptorConfig
from emovox.manifest import Manifest, Utterance

DIMS = WhisperDims(n_state=32, n_head=2, n_layer=4)
TEXT = {"model_type": "bert", "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
        "num_hidden_layers": 3, "hidden_dropout_prob": 0.5, "attention_probs_dropout_prob": 0.5}
K = DescriptorConfig().dim  # the descriptors the recipe regresses (64)


def small_care(branches: str = "full", text_layers: int = 3, seed: int = 0, **kw) -> CareEncoder:
    torch.manual_seed(seed)
    layers = _text_layers(TEXT, text_layers) if branches != "acoustic" else None
    return CareEncoder(CareConfig(branches=branches, text_layers=text_layers, target_dim=K, seed=seed), DIMS,
                       layers, TEXT, **kw).eval()


def _audio(seconds=(1.0, 0.63), seed=0):
    g = torch.Generator().manual_seed(seed)
    n = [int(16000 * s) for s in seconds]
    x = torch.zeros(len(n), max(n))
    for i, k in enumerate(n):
        x[i, :k] = 0.1 * torch.randn(k, generator=g)
    return x, torch.tensor(n)


# ----------------------------------------------------------------------------- shapes and frame rate


def test_adapter_returns_every_frame_at_the_frame_rate_and_ignores_padding():
    torch.manual_seed(0)
    layer = _text_layers(TEXT, 1)[0].eval()
    ad = SemanticAdapter(layer, 32, kernel=5, stride=3).eval()
    for t in range(1, 40):  # every length comes back exactly (a 5-frame kernel, stride 3)
        x = torch.randn(1, t, 32)
        z = ad.down(torch.nn.functional.pad(x.transpose(1, 2), (0, max(5, t + (5 - t) % 3) - t)))
        assert z.shape[-1] == int(frames_after_down(torch.tensor([t]), 5, 3)) == max(1, -(-(t - 2) // 3))
        assert ad.up(z).shape[-1] >= t
        with torch.no_grad():
            assert ad(x, torch.tensor([t])).shape == (1, t, 32)
    x = torch.randn(2, 37, 32)
    lengths = torch.tensor([37, 20])
    x[1, 20:] = 0.0
    with torch.no_grad():
        both = ad(x, lengths)
        alone = ad(x[1:, :20], lengths[1:])
    assert torch.count_nonzero(both[1, 20:]) == 0  # nothing beyond an item's length
    # same frames alone as in a padded batch (float32 sums in another order: relative 1e-5)
    assert torch.allclose(both[1, :20], alone[0], atol=1e-5 * float(alone.abs().max()))


def test_care_exposes_front_end_common_and_paired_upper_layers():
    x, lengths = _audio()
    frames = [-(-(int(n) // 160) // 2) for n in lengths]  # Whisper's 50 Hz frame count
    full = small_care()
    with torch.no_grad():
        out = full(x, lengths)
        parts = full._run(*_mel(full, x, lengths), True, True)
    assert full.num_layers == len(out.hidden_states) == 1 + 2 + 3 and full.dim == 64
    assert out.frame_rate == 50 and out.lengths.tolist() == frames
    assert all(h.shape == (2, max(frames), 64) for h in out.hidden_states)
    lower, acoustic, semantic, _ = parts
    for i, h in enumerate(lower):  # single-branch outputs duplicated: [h ++ h]
        assert torch.equal(out.hidden_states[i][..., :32], out.hidden_states[i][..., 32:])
        assert torch.allclose(out.hidden_states[i][0, :, 32:], h[0], atol=1e-6)
    # 3 semantic layers and 2 acoustic ones pair by relative depth: (s1, a1), (s2, a2), (s3, a2)
    for u, (s, a) in enumerate([(0, 0), (1, 1), (2, 1)]):
        up = out.hidden_states[3 + u][0]
        assert torch.allclose(up[:, :32], semantic[s][0], atol=1e-6)
        assert torch.allclose(up[:, 32:], acoustic[a][0], atol=1e-6)
    for branches, layers, dim in (("acoustic", 1 + 2 + 2, 32), ("semantic", 1 + 2 + 3, 32)):
        m = small_care(branches)
        assert (m.num_layers, m.dim) == (layers, dim)
        assert [h.shape[-1] for h in m(x, lengths).hidden_states] == [dim] * layers
    as_acoustic = small_care(expose="acoustic")  # a full model read as the ablation
    assert as_acoustic.num_layers == 5 and as_acoustic.dim == 32
    with pytest.raises(ValueError, match="cannot expose"):
        small_care("acoustic", expose="semantic")


def _mel(model, x, lengths):
    win = model.windows(x, lengths)
    return win.mel, win.mel_lengths


# ----------------------------------------------------------------------------- training signal


def _batch(seed=0):
    x, lengths = _audio(seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    return {"audio": x, "audio_lengths": lengths, "sentence": torch.randn(2, 32, generator=g),
            "has_text": torch.tensor([True, True])}


def _touched(model, loss) -> set[str]:
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return {n for n, p in model.named_parameters() if p.grad is not None and float(p.grad.abs().sum()) > 0}


def test_gradient_routing_each_loss_trains_only_its_own_parameters():
    from emovox.recipes.care import care_losses

    model = small_care().train()
    losses = care_losses(model, _batch(), DescriptorConfig(center=True))
    groups = model.parameter_groups()
    acoustic, semantic = _touched(model, losses["acoustic"]), _touched(model, losses["semantic"])
    assert acoustic == set(groups["acoustic"])
    assert semantic == set(groups["semantic"])
    assert any(n.startswith("blocks.") for n in semantic) and not any(n.startswith("blocks.") for n in acoustic)
    assert {n for n in acoustic if n.startswith("acoustic_head.")} == {"acoustic_head.weight", "acoustic_head.bias"}
    assert {"semantic_layers.0.down.weight", "semantic_layers.2.up.bias", "semantic_in.0.weight"} <= semantic
    assert not (acoustic | semantic) & set(groups["frozen"])
    assert any(n.startswith("semantic_layers.") and ".layer." in n for n in groups["frozen"])
    # in the acoustic ablation the acoustic loss is the only signal, so it trains the common blocks
    ablation = small_care("acoustic").train()
    touched = _touched(ablation, care_losses(ablation, _batch(), DescriptorConfig(center=True))["acoustic"])
    assert any(n.startswith("blocks.") for n in touched) and touched == set(ablation.parameter_groups()["acoustic"])


def test_frozen_parts_do_not_change_and_text_layers_never_drop_out():
    from emovox.recipes.care import care_losses

    model = small_care().train()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert {"conv1.weight", "conv2.bias"} <= set(frozen) and len(frozen) > 4
    x, lengths = _audio()
    with torch.no_grad():  # text dropout 0.5 in its config: the frozen layers must stay in eval mode
        assert torch.equal(model(x, lengths).hidden_states[-1], model(x, lengths).hidden_states[-1])
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.01)
    for _ in range(2):
        opt.zero_grad()
        sum(care_losses(model, _batch(), DescriptorConfig(center=True)).values()).backward()
        opt.step()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in frozen.items())
    assert all(not torch.equal(after[n], v) for n, v in trained.items())


# ----------------------------------------------------------------------------- probe and checkpoints


def test_probe_weighted_sum_reads_care_layers():
    from emovox.heads.probe import Probe, ProbeConfig

    model = small_care()
    x, lengths = _audio(seconds=(1.0, 0.7, 0.4, 0.9))
    with torch.no_grad():
        out = model(x, lengths)
    pooled = out.pooled()  # (B, L, D): mean over each item's frames, per layer
    assert pooled.shape == (4, model.num_layers, model.dim)
    n = int(out.lengths[2])
    assert torch.allclose(pooled[2, -1], out.hidden_states[-1][2, :n].mean(0), atol=1e-5)
    probe = Probe(ProbeConfig(num_layers=model.num_layers, dim=model.dim, num_classes=3))
    probe.fit_normalizer(pooled)
    with torch.no_grad():
        probe.layer_logits.copy_(torch.arange(model.num_layers, dtype=torch.float32))
    w = torch.softmax(torch.arange(model.num_layers, dtype=torch.float32), 0)
    z = (pooled - pooled.mean(0)) / pooled.std(0, unbiased=False).clamp_min(1e-5)
    assert torch.allclose(probe.combine(pooled), (w[None, :, None] * z).sum(1), atol=1e-5)
    assert probe(pooled).logits.shape == (4, 3)
    assert probe(out.hidden_states, out.lengths).logits.shape == (4, 3)  # raw states + lengths


def test_checkpoint_round_trip_through_load_encoder_and_featurize(tmp_path):
    from emovox.featurize import extract_manifest

    model = small_care(seed=3)
    with torch.no_grad():
        for p in model.parameters():  # not the initial weights: a load that re-initialises fails
            p.add_(0.01 * torch.randn_like(p))
    path = save_care(model, tmp_path / "run" / "care.pt", metrics={"loss": 1.0})
    x, lengths = _audio()
    with torch.no_grad():
        want = model(x, lengths).hidden_states
        for enc in (load_encoder("care", checkpoint=str(path)), load_encoder(str(path)),
                    load_encoder(str(tmp_path / "run"))):
            got = enc(x, lengths).hidden_states
            assert len(got) == len(want) and all(torch.equal(a, b) for a, b in zip(got, want))
            assert enc.config()["checkpoint"] == load_care(path).config()["checkpoint"] != "init-seed3"
        half = load_encoder(str(path), expose="semantic")(x, lengths).hidden_states
        assert torch.equal(half[-1], want[-1][..., :32])
    bad = tmp_path / "other.pt"
    torch.save({"kind": "something else"}, bad)
    with pytest.raises(ValueError, match="not a CARE checkpoint"):
        load_encoder(str(bad))
    with pytest.raises(TypeError, match="cannot be combined"):
        load_encoder("care", checkpoint=str(path), text_layers=2)

    recs = []
    for i in range(3):
        write_audio(tmp_path / f"a{i}.wav", seconds=0.5 + 0.3 * i, freq=180 + 40 * i, seed=i)
        recs.append(Utterance(id=f"u{i}", audio=f"a{i}.wav", speaker=f"s{i}"))
    table = extract_manifest(Manifest(recs, root=str(tmp_path)), str(path), cache_dir=tmp_path / "cache",
                             show_progress=False)
    assert table.features.shape == (3, model.num_layers, model.dim)
    from emovox.audio import load_audio

    a = torch.from_numpy(load_audio(tmp_path / "a1.wav"))
    with torch.no_grad():
        direct = model(a[None], torch.tensor([len(a)])).pooled()[0].numpy()
    np.testing.assert_allclose(table.features[1], direct, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- pre-training


def _toy_manifest(root, n=10) -> Manifest:
    texts = ["the cat sat on the mat", "open the door please", "what a lovely day", "", "stop that now"]
    recs = []
    for i in range(n):
        write_audio(root / f"c{i}.wav", seconds=0.6 + 0.25 * (i % 4), freq=140 + 30 * (i % 5), seed=i)
        recs.append(Utterance(id=f"c{i}", audio=f"c{i}.wav", speaker=f"s{i % 4}", transcript=texts[i % 5] or None))
    m = Manifest(recs, corpus="toy", root=str(root))
    m.save(root / "toy.jsonl")
    return m


class _Interrupt(Exception):
    pass


def test_pretrain_resumes_after_an_interrupted_run_exactly(tmp_path):
    from emovox.encoders.care import build_care
    from emovox.recipes import care

    torch.set_num_threads(1)
    m = _toy_manifest(tmp_path)
    cfg = care.CarePretrainConfig(batch_size=3, max_steps=4, lr=1e-3, crop_seconds=0.8, eval_every=2,
                                  save_every=1, validation_fraction=0.2)

    def kill_at_step_3(trainer, logs):  # dies after step 3 has run but before its checkpoint
        if trainer.step == 3:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        care.pretrain([m], tmp_path / "resumed", cfg, device="cpu", callbacks=[kill_at_step_3])
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)["step"] == 2
    resumed = care.pretrain([m], tmp_path / "resumed", cfg, device="cpu")
    straight = care.pretrain([m], tmp_path / "straight", cfg, device="cpu")
    assert resumed["steps"] == straight["steps"] == 4 and resumed["steps_this_run"] == 2
    a = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the same crops and steps
    hist = straight["history"]
    assert [h["step"] for h in hist] == [2, 3, 4] and {"acoustic", "semantic", "loss", "train_loss"} <= set(hist[-1])
    assert resumed["train_with_transcript"] < resumed["train_utterances"]  # untranscribed: acoustic only
    for f in ("care.pt", "best.pt", "curves.png", "history.json", "result.json", "config.json"):
        assert (tmp_path / "straight" / f).is_file(), f
    assert json.loads((tmp_path / "straight" / "config.json").read_text())["lr"] == 1e-3

    init = build_care(cfg.model_config())
    trained = load_encoder(str(tmp_path / "straight"))
    before, after = dict(init.named_parameters()), dict(trained.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n, p in before.items() if not p.requires_grad)
    assert not torch.equal(before["blocks.0.attn.query.weight"], after["blocks.0.attn.query.weight"])
    assert not torch.equal(before["acoustic_head.weight"], after["acoustic_head.weight"])

    with pytest.raises(ValueError, match="other settings"):  # a run folder keeps its settings
        care.pretrain([m], tmp_path / "straight", care.CarePretrainConfig(**{**vars(cfg), "lr": 1e-4}),
                      device="cpu")


def test_pretrain_help_defaults_are_the_configs():
    from dataclasses import asdict

    from emovox.commands.pretrain import CARE_DEFAULTS, SA2SR_DEFAULTS
    from emovox.recipes.care import CarePretrainConfig
    from emovox.recipes.sa2sr import PretrainConfig

    for shown, cfg in ((SA2SR_DEFAULTS, PretrainConfig()), (CARE_DEFAULTS, CarePretrainConfig())):
        actual = asdict(cfg)
        assert {k: actual[k] for k in shown} == shown


@pytest.mark.parametrize("branches", ["full", "acoustic"])
def test_trainable_only_export_rebuilds_the_frozen_parts_and_refuses_other_ones(tmp_path, branches):
    from emovox.cli import main
    from emovox.encoders.care import build_care

    model = build_care(CareConfig(branches=branches, text_layers=2, seed=1))
    with torch.no_grad():
        for p in model.parameters():  # trained weights differ from the initial ones
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    full = save_care(model, tmp_path / "run" / "care.pt", metrics={"loss": 0.5}, step=7)
    small = tmp_path / "small.pt"
    assert main(["export", "care", str(tmp_path / "run"), "-o", str(small)]) == 0
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert frozen > 0 and small.stat().st_size < full.stat().st_size - 4 * frozen * 0.9
    blob = torch.load(small, weights_only=False)
    assert blob["trainable_only"] and blob["step"] == 7 and blob["metrics"] == {"loss": 0.5}
    assert set(blob["model"]) == {n for n, p in model.named_parameters() if p.requires_grad}
    x, lengths = _audio()
    with torch.no_grad():
        want = model(x, lengths).hidden_states
        got = load_encoder(str(small))(x, lengths).hidden_states
    assert len(got) == len(want) and all(torch.equal(a, b) for a, b in zip(got, want))

    blob["frozen_digest"] = "0" * 64  # trained on other frozen weights than the ones rebuilt here
    torch.save(blob, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt.*differ from those it was trained with"):
        load_care(tmp_path / "other.pt")
    blob = torch.load(small, weights_only=False)
    blob["model"]["extra.weight"] = torch.zeros(1)
    torch.save(blob, tmp_path / "extra.pt")
    with pytest.raises(ValueError, match="extra.pt.*does not have.*extra.weight"):
        load_care(tmp_path / "extra.pt")
