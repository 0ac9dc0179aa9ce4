"""SA2SR: encoder, heads, the stopping rule and a tiny end-to-end pre-train + fine-tune run."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import write_audio
from emovox.encoders.bilstm import BiLSTMConfig, BiLSTMEncoder, load_bilstm, save_encoder
from emovox.heads.ctc import CTCHead, greedy_decode
from emovox.heads.sentiment import SentimentHead
from emovox.manifest import Manifest, Utterance
from emovox.recipes import sa2sr
from emovox.recipes.sa2sr import FinetuneConfig, PretrainConfig, SA2SRModel, load_config, pretraining

TINY = BiLSTMConfig(layers=2, hidden=8)


def _audio(batch=2, seconds=(1.0, 0.5), seed=0):
    g = torch.Generator().manual_seed(seed)
    n = [int(16000 * s) for s in seconds]
    x = torch.zeros(batch, max(n))
    for i, k in enumerate(n):
        x[i, :k] = 0.1 * torch.randn(k, generator=g)
    return x, torch.tensor(n)


# ----------------------------------------------------------------------------- encoder


def test_bilstm_defaults_are_the_papers():
    enc = BiLSTMEncoder()
    assert (enc.cfg.n_mels, enc.cfg.stack, enc.cfg.stride, enc.cfg.layers, enc.cfg.hidden) == (40, 3, 3, 5, 192)
    assert enc.input_dim == 120 and enc.dim == 384 and enc.num_layers == 5
    assert enc.frame_rate == pytest.approx(100 / 3)
    assert enc.spec_augment.config.time_mask_p == 0.5 and enc.spec_augment.config.freq_mask_p == 0.5


def test_bilstm_shapes_masks_and_padding_invariance():
    torch.manual_seed(0)
    enc = BiLSTMEncoder(TINY).eval()
    audio, lengths = _audio()
    out = enc(audio, lengths)
    assert len(out.hidden_states) == 2
    T = out.hidden_states[0].shape[1]
    assert all(h.shape == (2, T, 16) for h in out.hidden_states)
    assert out.lengths[0] == T and out.lengths[1] < T
    assert torch.all(out.hidden_states[-1][1, out.lengths[1]:] == 0)
    assert out.pooled().shape == (2, 2, 16)
    alone = enc(audio[1:, : lengths[1]], lengths[1:])
    n = int(alone.lengths[0])
    assert n == int(out.lengths[1])
    assert torch.allclose(alone.hidden_states[-1][0], out.hidden_states[-1][1, :n], atol=1e-5)


def test_bilstm_specaugment_only_in_training():
    torch.manual_seed(0)
    cfg = BiLSTMConfig(layers=1, hidden=4)
    cfg.augment.time_mask_p = cfg.augment.freq_mask_p = 1.0
    enc = BiLSTMEncoder(cfg)
    audio, lengths = _audio()
    enc.eval()
    a = enc(audio, lengths).hidden_states[0]
    b = enc(audio, lengths).hidden_states[0]
    assert torch.equal(a, b)
    enc.train()
    enc.spec_augment.reseed(1)
    c = enc(audio, lengths).hidden_states[0]
    enc.spec_augment.reseed(1)
    d = enc(audio, lengths).hidden_states[0]
    assert torch.equal(c, d) and not torch.allclose(a, c)


def test_bilstm_save_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    enc = BiLSTMEncoder(TINY).eval()
    save_encoder(enc, tmp_path / "encoder.pt")
    again = load_bilstm(tmp_path / "encoder.pt")
    audio, lengths = _audio()
    assert torch.allclose(enc(audio, lengths).hidden_states[-1], again(audio, lengths).hidden_states[-1])
    from emovox.encoders import load_encoder

    registered = load_encoder("bilstm", checkpoint=str(tmp_path / "encoder.pt"))
    assert torch.allclose(registered(audio, lengths).hidden_states[-1], again(audio, lengths).hidden_states[-1])
    torch.save({"kind": "other"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="x.pt"):
        load_bilstm(tmp_path / "x.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_bilstm(tmp_path / "missing.pt")


# ----------------------------------------------------------------------------- heads


def test_ctc_head_and_greedy_decode():
    head = CTCHead(16, 29)
    lp = head(torch.randn(2, 7, 16))
    assert lp.shape == (2, 7, 29)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(2, 7), atol=1e-5)
    fake = torch.full((2, 6, 5), -10.0)
    for t, k in enumerate([1, 1, 0, 1, 2, 2]):
        fake[0, t, k] = 0.0
        fake[1, t, k] = 0.0
    assert greedy_decode(fake, torch.tensor([6, 2])) == [[1, 1, 2], [1]]


def test_sentiment_head_shapes_and_padding():
    torch.manual_seed(0)
    head = SentimentHead(16, hidden=8).eval()
    x = torch.randn(2, 10, 16)
    lengths = torch.tensor([10, 4])
    logits = head(x, lengths)
    assert logits.shape == (2, 3)
    x2 = x.clone()
    x2[1, 4:] = 99.0
    assert torch.allclose(head(x2, lengths), logits, atol=1e-6)
    assert torch.allclose(head(x[1:, :4], lengths[1:]), logits[1:], atol=1e-5)


# ----------------------------------------------------------------------------- configs and stopping


def test_config_defaults_and_overrides(tmp_path):
    c = PretrainConfig()
    assert (c.sentiment_weight, c.lr, c.betas, c.patience, c.speeds) == (200.0, 5e-5, (0.9, 0.999), 25, (0.9, 1.0, 1.1))
    assert c.monitor == "m" and PretrainConfig(sentiment_weight=0).monitor == "cer"
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"lr": 1e-3, "bilstm": {"layers": 2}}))
    c = load_config(PretrainConfig, f, {"bilstm.hidden": 16, "lr": None, "speeds": [1.0]})
    assert (c.lr, c.bilstm.layers, c.bilstm.hidden, c.speeds) == (1e-3, 2, 16, (1.0,))
    f.write_text(json.dumps({"learning_rate": 1}))
    with pytest.raises(ValueError, match="learning_rate"):
        load_config(PretrainConfig, f)
    assert c.ctc_reduction == "utterance"
    ft = load_config(FinetuneConfig, None, {"task": "categorical"})
    assert ft.monitor == "ua" and ft.regressor.kernels == (6, 3)


def test_ctc_reduction_sets_the_loss_scale_and_bad_values_are_refused(tmp_path):
    torch.manual_seed(0)
    model = SA2SRModel(BiLSTMEncoder(BiLSTMConfig(layers=1, hidden=8)), 29, 8)
    tokens = torch.tensor([[5, 6, 7, 8, 9, 10], [5, 6, 0, 0, 0, 0]])
    batch = {"audio": torch.randn(2, 8000), "audio_lengths": torch.tensor([8000, 6000]),
             "tokens": tokens, "tokens_lengths": torch.tensor([6, 2]), "sentiment": torch.tensor([0, 2])}
    model.eval()
    _, per_utt = sa2sr.pretrain_step(model, batch, 200.0, "utterance")
    _, per_char = sa2sr.pretrain_step(model, batch, 200.0, "character")
    assert per_utt["loss/ctc"] > 1.5 * per_char["loss/ctc"]  # targets of 6 and 2 characters
    assert per_utt["loss/sentiment"] == pytest.approx(per_char["loss/sentiment"])
    with pytest.raises(ValueError, match="ctc_reduction"):
        sa2sr.pretrain([_toy_manifest(tmp_path, n=6)], tmp_path / "run", _tiny_pretrain(ctc_reduction="sum"))


class _FixedModel(torch.nn.Module):
    """Always emits the tokens of "ab" and the given sentiment probabilities."""

    def __init__(self, probs):
        super().__init__()
        self.probs = torch.tensor(probs)

    def forward(self, audio, lengths):
        lp = torch.full((len(audio), 4, 29), -20.0)
        for t, k in enumerate([3, 0, 4, 0]):  # a, blank, b, blank in the English vocabulary
            lp[:, t, k] = 0.0
        return sa2sr.SA2SROutput(lp, torch.full((len(audio),), 4), self.probs.log())


def test_validation_metric_is_cer_minus_auc():
    from emovox.text.vocab import CharVocab

    vocab = CharVocab()
    assert vocab.decode([3, 4]) == "ab"
    batch = {"audio": torch.zeros(3, 10), "audio_lengths": torch.tensor([10, 10, 10]),
             "text": ["ab", "abc", "ab"], "sentiment": torch.tensor([0, 2, -100])}
    m = sa2sr.pretrain_metrics(_FixedModel([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]]), [batch], vocab)
    assert m["cer"] == pytest.approx(1 / 7)  # one deletion in 7 reference characters
    assert m["auc"] == pytest.approx(1.0)
    assert m["m"] == pytest.approx(1 / 7 - 1.0)
    # all labels of one class: AUC undefined, chance (0.5) stands in for the selection metric
    batch["sentiment"] = torch.tensor([1, 1, -100])
    m = sa2sr.pretrain_metrics(_FixedModel([[0.2, 0.6, 0.2]] * 3), [batch], vocab)
    assert m["auc"] != m["auc"] and m["m"] == pytest.approx(1 / 7 - 0.5)


# ----------------------------------------------------------------------------- end to end


def _toy_manifest(root, n=12) -> Manifest:
    words = ["yes", "no", "good", "bad"]
    sents = ["positive", "negative", "positive", "negative"]
    recs = []
    for i in range(n):
        k = i % 4
        write_audio(root / f"a{i}.wav", seconds=0.5 + 0.1 * (i % 3), freq=150 + 50 * k, seed=i)
        recs.append(Utterance(id=f"u{i}", audio=f"a{i}.wav", speaker=f"s{i % 6}", transcript=words[k],
                              sentiment=sents[k], emotion=["happy", "sad"][i % 2], arousal=k / 3,
                              extra={"level": ["low", "neutral", "high"][i % 3]}))
    m = Manifest(recs, corpus="toy", root=str(root), labels={"emotion": ["happy", "sad"],
                 "level": ["low", "neutral", "high"]}, scales={"arousal": [0.0, 1.0]})
    m.save(root / "toy.jsonl")
    return m


def _tiny_pretrain(**kw) -> PretrainConfig:
    base = {"bilstm": BiLSTMConfig(layers=2, hidden=8), "speeds": (0.9, 1.0), "batch_size": 6,
            "sentiment_hidden": 8}
    return PretrainConfig(**{**base, **kw})


def test_stopping_rule_stops_after_patience_and_keeps_lowest_m(tmp_path, monkeypatch):
    m = _toy_manifest(tmp_path, n=6)
    script = iter([1.0, 0.8, 0.9, 0.85, 0.95, 0.1, 0.1])
    monkeypatch.setattr(pretraining, "pretrain_metrics",
                        lambda model, batches, vocab: {"cer": 0.5, "auc": 0.5, "m": next(script)})
    cfg = _tiny_pretrain(patience=2, max_epochs=20, speeds=(1.0,))
    res = sa2sr.pretrain([m], tmp_path / "run", cfg, resume=False)
    assert res["stopped_early"] and res["epochs"] == 4  # best at epoch 2, then patience = 2 worse epochs
    assert res["best"]["m"] == 0.8 and [h["m"] for h in res["history"]] == [1.0, 0.8, 0.9, 0.85]


def test_pretrain_resume_and_finetune_end_to_end(tmp_path):
    torch.set_num_threads(1)
    m = _toy_manifest(tmp_path)
    out = tmp_path / "pt"
    first = sa2sr.pretrain([m], out, _tiny_pretrain(max_steps=2, save_every=1), resume=True)
    assert first["steps"] == 2 and (out / "last.pt").is_file()
    # "killed" after step 2: the same run with a larger budget continues from last.pt
    again = sa2sr.pretrain([m], out, _tiny_pretrain(max_steps=4, save_every=1), resume=True)
    assert again["steps"] == 4
    assert (out / "sa2sr.pt").is_file() and (out / "encoder.pt").is_file() and (out / "curves.png").is_file()
    assert {"cer", "auc", "m"} <= set(again["best"])
    model = sa2sr.load_sa2sr(out / "sa2sr.pt")
    assert model.encoder.cfg.hidden == 8 and len(model.vocab) == 29
    from emovox.encoders import load_encoder

    audio, lengths = _audio()
    want = model.encoder(audio, lengths).hidden_states[-1]
    for spec in (out, out / "sa2sr.pt", out / "encoder.pt"):  # every form of a pre-training output
        for enc in (load_encoder("bilstm", checkpoint=spec), load_encoder(str(spec))):
            assert torch.allclose(enc(audio, lengths).hidden_states[-1], want), spec
            # the trained weights are part of the feature-cache identity; an untrained BiLSTM's are not
            assert enc.config()["checkpoint"] and "checkpoint" not in load_encoder("bilstm", layers=2,
                                                                                   hidden=8).config()
    with pytest.raises(TypeError, match="cannot be combined"):
        load_encoder(str(out), layers=3)

    ft = FinetuneConfig(encoder=str(out), task="categorical", label="emotion", folds=3, run_folds=2,
                        max_steps=2, batch_size=4, regressor=sa2sr.RegressorConfig(channels=8, heads=2))
    res = sa2sr.finetune(m, tmp_path / "ft", ft)
    assert len(res["folds"]) == 2 and set(res["summary"]) == {"ua", "wa", "weighted_f1"}
    assert (tmp_path / "ft" / "fold-00" / "model.pt").is_file()

    frozen = FinetuneConfig(encoder=str(out / "encoder.pt"), freeze_encoder=True, task="ordinal", label="level",
                            folds=3, run_folds=1, max_steps=2, batch_size=4,
                            regressor=sa2sr.RegressorConfig(channels=8, heads=2))
    res = sa2sr.finetune(m, tmp_path / "ft-frozen", frozen)
    assert set(res["summary"]) == {"ccc", "ccc_level", "mse_level", "pearson_level"}
    again = sa2sr.finetune(m, tmp_path / "ft-frozen", frozen)  # finished folds are not re-run
    assert again["folds"][0]["test"] == res["folds"][0]["test"]


def test_a_run_folder_refuses_other_settings_but_takes_a_larger_budget(tmp_path):
    torch.set_num_threads(1)
    m = _toy_manifest(tmp_path, n=6)
    out = tmp_path / "pt"
    sa2sr.pretrain([m], out, _tiny_pretrain(max_steps=1, speeds=(1.0,)))
    assert json.loads((out / "config.json").read_text())["lr"] == 5e-5
    with pytest.raises(ValueError, match=r"other settings \(lr: 5e-05 -> 0.001\)") as e:
        sa2sr.pretrain([m], out, _tiny_pretrain(max_steps=1, speeds=(1.0,), lr=1e-3))
    assert str(out) in str(e.value) and "--restart" in str(e.value)
    assert sa2sr.pretrain([m], out, _tiny_pretrain(max_steps=2, speeds=(1.0,)))["steps"] == 2
    assert sa2sr.pretrain([m], out, _tiny_pretrain(max_steps=1, speeds=(1.0,), lr=1e-3), resume=False)["steps"] == 1
    ft = dict(encoder=str(out), task="categorical", label="emotion", folds=3, run_folds=1, max_steps=1,
              batch_size=4, regressor=sa2sr.RegressorConfig(channels=8, heads=2))
    first = sa2sr.finetune(m, tmp_path / "ft", FinetuneConfig(**ft))
    with pytest.raises(ValueError, match="task: 'categorical' -> 'ordinal'"):
        sa2sr.finetune(m, tmp_path / "ft", FinetuneConfig(**{**ft, "task": "ordinal", "label": "level"}))
    # a fold finished before the shared metrics layer ("wf1", "accuracy") is read under today's names
    done = tmp_path / "ft" / "fold-00" / "result.json"
    old = json.loads(done.read_text())
    test = old["test"]
    old["test"] = {"ua": test["ua"], "wf1": test["weighted_f1"], "accuracy": test["wa"]}
    done.write_text(json.dumps(old))
    again = sa2sr.finetune(m, tmp_path / "ft", FinetuneConfig(**ft))
    assert again["folds"][0]["test"] == first["folds"][0]["test"]
    assert set(again["summary"]) == {"ua", "wa", "weighted_f1"}


def test_bench_grid_pretrains_both_encoders_and_fine_tunes_the_variants(tmp_path, capsys):
    from emovox.cli import main

    torch.set_num_threads(1)
    _toy_manifest(tmp_path)
    out = tmp_path / "grid"
    assert main(["bench", "sa2sr", "grid", "--pretrain", str(tmp_path / "toy.jsonl"), "--emotion",
                 str(tmp_path / "toy.jsonl"), "-o", str(out), "--task", "categorical", "--label", "emotion",
                 "--folds", "3", "--run-folds", "1", "--variants", "none", "asr-frozen", "sa2sr-finetuned",
                 "--layers", "1", "--hidden", "8", "--no-speed-perturb", "--pt-steps", "1", "--pt-lr", "1e-3",
                 "--pt-grad-clip", "5", "--ft-steps", "1", "--batch-size", "4"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| variant | folds |") and [r.split(" | ")[0] for r in table[2:]] == \
        ["| none", "| asr-frozen", "| sa2sr-finetuned"]
    bench = json.loads((out / "bench.json").read_text())
    assert set(bench["pretraining"]) == {"asr", "sa2sr"} and bench["pretraining"]["asr"]["steps"] == 1
    for name, weight in (("asr", 0.0), ("sa2sr", 200.0)):
        cfg = json.loads((out / f"pretrain-{name}" / "config.json").read_text())
        assert (cfg["lr"], cfg["grad_clip"], cfg["sentiment_weight"]) == (1e-3, 5.0, weight)
    assert json.loads((out / "finetune-asr-frozen" / "config.json").read_text())["freeze_encoder"] is True


def test_bad_audio_is_skipped_and_reported(tmp_path):
    m = _toy_manifest(tmp_path, n=4)
    (tmp_path / "a1.wav").write_bytes(b"not audio at all")
    m.records.append(Utterance(id="gone", audio="missing.wav", transcript="x"))
    clips, failed = sa2sr.scan(m)
    assert len(clips) == 3
    assert {f["id"] for f in failed} == {"u1", "gone"}
    assert all(f["error"] for f in failed)


def test_bench_grid_table_orders_attributes_and_shows_spread():
    from emovox.bench.sa2sr import _metric_order, grid_table

    rows = {"none": {"folds": 2, "summary": {"ccc": {"mean": 0.2, "std": 0.1, "n": 2},
                                            "ccc_valence": {"mean": 0.1, "std": 0.05, "n": 2},
                                            "ccc_arousal": {"mean": 0.3, "std": 0.0, "n": 2}}},
            "sa2sr-frozen": {"folds": 2, "summary": {"ccc": {"mean": float("nan"), "std": float("nan"), "n": 0}}}}
    order = _metric_order(rows)
    assert order == ["ccc_arousal", "ccc_valence", "ccc"]
    table = grid_table({"variants": rows, "metric_order": order}).splitlines()
    assert table[0] == "| variant | folds | ccc_arousal | ccc_valence | ccc |"
    assert table[2] == "| none | 2 | 0.300 ± 0.000 | 0.100 ± 0.050 | 0.200 ± 0.100 |"
    assert table[3].endswith("| – | – | – |")


def test_corrupt_checkpoints_name_the_file(tmp_path):
    from emovox.encoders import load_encoder
    from emovox.recipes.sa2sr import load_sa2sr

    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"this is not a torch file")
    with pytest.raises(ValueError, match="broken.pt: cannot read"):
        load_encoder("bilstm", checkpoint=bad)
    with pytest.raises(ValueError, match="broken.pt: cannot read an SA2SR checkpoint"):
        load_sa2sr(bad)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_encoder("bilstm", checkpoint=tmp_path / "missing.pt")


def test_encoders_do_not_import_recipes_and_curves_leave_pyplot_alone(tmp_path):
    import subprocess
    import sys

    code = ("import sys, emovox.encoders.bilstm\n"
            "assert not [m for m in sys.modules if m.startswith('emovox.recipes')]\n"
            "from emovox.recipes.sa2sr import plot_curves\n"
            f"plot_curves([{{'epoch': 1, 'cer': 0.9, 'auc': 0.5}}, {{'epoch': 2, 'cer': 0.7}}], {str(tmp_path / 'c.png')!r})\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_finetune_targets_come_from_the_shared_reader(tmp_path):
    m = _toy_manifest(tmp_path, n=6)
    m.records[0].arousal = None
    m.records[1].extra.pop("level")
    m.records[2].valence = 0.5
    t = sa2sr.finetune_targets(m, FinetuneConfig(task="attributes"))  # nobody has a dominance
    assert t.attributes == ["arousal", "valence"] and t.y is None
    assert t.ids == ["u1", "u2", "u3", "u4", "u5"]  # u0 has no target at all
    clips, _ = sa2sr.scan(m, [u for u in m.records if u.id in t.ids])
    items = [sa2sr.EmotionSet(clips, t, 5.0)[i] for i in range(len(clips))]
    assert [i["id"] for i in items] == t.ids
    assert items[0]["target_mask"].tolist() == [True, False] and items[0]["target"][1] == 0.0  # NaN -> 0, masked
    assert items[1]["target_mask"].tolist() == [True, True] and items[1]["target"][1] == 0.5
    t = sa2sr.finetune_targets(m, FinetuneConfig(task="ordinal", label="level"))
    assert t.attributes == ["level"] and "u1" not in t.ids and t.a[:, 0].tolist() == [-1.0, 1.0, -1.0, 0.0, 1.0]
    t = sa2sr.finetune_targets(m, FinetuneConfig(task="categorical", label="emotion"))
    assert t.labels == ["happy", "sad"] and t.y.tolist() == [0, 1, 0, 1, 0, 1]
    with pytest.raises(ValueError, match="none of the attributes"):
        sa2sr.finetune_targets(m, FinetuneConfig(task="attributes", attributes=("dominance",)))
    with pytest.raises(ValueError, match="task must be"):
        sa2sr.finetune_targets(m, FinetuneConfig(task="regression"))


@pytest.mark.slow
def test_finetune_under_torchrun_trains_every_fold_with_ddp(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    _toy_manifest(tmp_path)
    script = tmp_path / "ft.py"
    script.write_text(
        "import sys, json, torch\n"
        "from emovox.manifest import Manifest\n"
        "from emovox.recipes import sa2sr\n"
        "torch.set_num_threads(1)\n"
        "m = Manifest.load(sys.argv[1])\n"
        "for frozen in (False, True):\n"
        "    cfg = sa2sr.FinetuneConfig(encoder='bilstm', freeze_encoder=frozen, task='categorical', label='emotion',\n"
        "                               folds=3, run_folds=2, max_steps=2, batch_size=4,\n"
        "                               regressor=sa2sr.RegressorConfig(channels=8, heads=2))\n"
        "    res = sa2sr.finetune(m, sys.argv[2] + ('-frozen' if frozen else ''), cfg)\n"
        "    assert [f['index'] for f in res['folds']] == [0, 1], res['folds']\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo / "src")}
    env.pop("RANK", None), env.pop("WORLD_SIZE", None)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(script), str(tmp_path / "toy.jsonl"), str(tmp_path / "ft")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    for out in ("ft", "ft-frozen"):
        result = json.loads((tmp_path / out / "result.json").read_text())
        assert len(result["folds"]) == 2 and result["summary"]["ua"]["n"] == 2
        assert all((tmp_path / out / f"fold-0{i}" / "model.pt").is_file() for i in (0, 1))


def test_a_whisper_sa2sr_output_loads_as_an_encoder_with_its_own_cache_identity(tmp_path):
    from emovox.encoders import load_encoder
    from emovox.encoders.bilstm import SA2SR_CHECKPOINT_KIND

    plain = load_encoder("whisper-tiny.en")
    tuned = load_encoder("whisper-tiny.en")
    with torch.no_grad():
        for p in tuned.parameters():  # what SA2SR pre-training would have changed
            p.add_(0.01 * torch.randn_like(p))
    (tmp_path / "run").mkdir()
    torch.save({"kind": SA2SR_CHECKPOINT_KIND, "config": {"encoder": "whisper-tiny.en"},
                "model": {f"encoder.{k}": v for k, v in tuned.state_dict().items()}}, tmp_path / "run" / "sa2sr.pt")
    audio, lengths = torch.randn(1, 8000) * 0.1, torch.tensor([8000])
    with torch.no_grad():
        want = tuned(audio, lengths).hidden_states[-1]
        for spec in (tmp_path / "run", tmp_path / "run" / "sa2sr.pt"):
            enc = load_encoder(str(spec))
            assert torch.equal(enc(audio, lengths).hidden_states[-1], want)
            # same architecture, other weights: the feature cache must not hand out plain tiny.en states
            assert enc.config() != plain.config() and enc.config()["checkpoint"]
            assert "checkpoint" not in plain.config()
