"""Trainer: batching and masks, exact resume, early stopping, DDP equivalence (torchrun, gloo)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from emovox.train import (BatchPlan, TrainConfig, Trainer, lengths_to_mask, masked_mean, pad_collate,
                          pad_sequence)

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ batching and masks
def test_pad_sequence_and_mask():
    a, b = torch.ones(3, 2), torch.full((5, 2), 2.0)
    x, lengths = pad_sequence([a, b], value=-1.0)
    assert x.shape == (2, 5, 2) and lengths.tolist() == [3, 5]
    assert (x[0, 3:] == -1).all() and (x[0, :3] == 1).all()
    mask = lengths_to_mask(lengths)
    assert mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]


def test_masked_mean_ignores_padding():
    x, lengths = pad_sequence([torch.tensor([[1.0], [3.0]]), torch.tensor([[10.0], [20.0], [30.0]])], value=1e6)
    assert masked_mean(x, lengths).squeeze(-1).tolist() == [2.0, 20.0]


def test_pad_collate_pads_variable_and_stacks_fixed():
    items = [{"audio": torch.zeros(4), "label": 1, "id": "a"}, {"audio": torch.ones(6), "label": 2, "id": "b"}]
    b = pad_collate(items)
    assert b["audio"].shape == (2, 6) and b["audio_lengths"].tolist() == [4, 6]
    assert b["label"].tolist() == [1, 2] and b["id"] == ["a", "b"]
    same = pad_collate([{"x": torch.zeros(3)}, {"x": torch.ones(3)}])
    assert same["x"].shape == (2, 3) and "x_lengths" not in same


def test_batch_plan_deterministic_bucketing_and_shards():
    lengths = [float(i % 17) for i in range(100)]
    plan = BatchPlan(100, 8, seed=3, lengths=lengths, bucket_batches=4)
    b0, b0_again, b1 = plan.batches(0), plan.batches(0), plan.batches(1)
    assert b0 == b0_again and b0 != b1
    assert sorted(i for b in b0 for i in b) == list(range(100))
    # bucketing: the spread of lengths inside a batch is small compared with random batches
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in b0) / len(b0)
    assert spread < 8
    parts = [BatchPlan.local(b0[0], r, 3) for r in range(3)]
    assert sum(parts, []) == b0[0] and max(map(len, parts)) - min(map(len, parts)) <= 1


# ------------------------------------------------------------------ a tiny model and data
class Regression(nn.Module):
    def __init__(self, dropout: float = 0.0):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(dropout), nn.Linear(8, 1))

    def training_step(self, batch):
        loss = ((self.net(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean()
        return loss, {}


def make_data(n: int = 37, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.1 * torch.randn(n, generator=g)
    return [{"x": x[i], "y": y[i]} for i in range(n)]


def params_of(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


class Crash(Exception):
    pass


def test_resume_after_kill_mid_epoch_equals_uninterrupted_run(tmp_path):
    data, val = make_data(37), make_data(11, seed=2)
    cfg = dict(lr=1e-2, batch_size=5, max_epochs=3, save_every=3, seed=7, tensorboard=False, restore_best=False)

    full = Regression(dropout=0.3)  # dropout: RNG state must be restored too
    Trainer(full, data, TrainConfig(**cfg, checkpoint_dir=str(tmp_path / "a")), validation_data=val).fit()

    def crash_at_step_11(trainer, logs):  # mid epoch 2 (8 batches per epoch); last save at step 9
        if trainer.step == 11:
            raise Crash

    killed = Regression(dropout=0.3)
    with pytest.raises(Crash):
        Trainer(killed, data, TrainConfig(**cfg, checkpoint_dir=str(tmp_path / "b")), validation_data=val,
                callbacks=[crash_at_step_11]).fit()
    assert not torch.equal(params_of(killed), params_of(full))

    resumed = Regression(dropout=0.3)
    t = Trainer(resumed, data, TrainConfig(**cfg, checkpoint_dir=str(tmp_path / "b")), validation_data=val)
    result = t.fit(resume=True)
    assert result.step == 24 and result.epoch == 3
    assert torch.equal(params_of(resumed), params_of(full))
    assert (tmp_path / "b" / "last.pt").is_file() and (tmp_path / "b" / "best.pt").is_file()
    assert not list((tmp_path / "b").glob(".*.tmp"))


def test_wall_clock_budget_saves_and_resume_finishes_the_same_run(tmp_path, monkeypatch):
    """max_minutes: the run stops after the step that spends the budget, with last.pt saved and
    not marked finished; resuming gives the uninterrupted run's weights. The clock is simulated
    (each reading one second later) so the stop step is exact."""
    import emovox.train.trainer as T

    data, val = make_data(37), make_data(11, seed=2)
    cfg = dict(lr=1e-2, batch_size=5, max_epochs=3, save_every=3, seed=7, tensorboard=False, restore_best=False)
    full = Regression(dropout=0.3)
    Trainer(full, data, TrainConfig(**cfg, checkpoint_dir=str(tmp_path / "a")), validation_data=val).fit()

    clock = iter(range(10**6))
    monkeypatch.setattr(T.time, "monotonic", lambda: float(next(clock)))
    part = Regression(dropout=0.3)
    res = Trainer(part, data, TrainConfig(**cfg, max_minutes=5 / 60, checkpoint_dir=str(tmp_path / "b")),
                  validation_data=val).fit()
    assert res.out_of_time and not res.stopped_early and res.step == 5
    assert res.history and res.history[-1]["step"] == 5  # validated before stopping
    monkeypatch.undo()

    resumed = Regression(dropout=0.3)
    res = Trainer(resumed, data, TrainConfig(**cfg, checkpoint_dir=str(tmp_path / "b")), validation_data=val).fit(
        resume=True)
    assert res.step == 24 and not res.out_of_time
    assert torch.equal(params_of(resumed), params_of(full))


def test_early_stopping_and_best_model_restored(tmp_path):
    data = make_data(20)
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.69, 0.4, 0.9])
    snapshots = []

    def evaluate(model, batches):
        for _ in batches:
            pass
        snapshots.append(params_of(model).clone())
        return {"f1": next(scores)}

    model = Regression()
    cfg = TrainConfig(lr=1e-2, batch_size=10, max_epochs=20, monitor="f1", mode="max", patience=2,
                      checkpoint_dir=str(tmp_path), tensorboard=True)
    result = Trainer(model, data, cfg, validation_data=data, evaluate=evaluate).fit()
    assert result.stopped_early and result.epoch == 4  # 0.7 at epoch 2, then patience = 2 worse evaluations
    assert result.best_metric == 0.7 and result.best_step == 4
    assert torch.equal(params_of(model), snapshots[1])
    assert list((tmp_path / "tb").glob("events.*"))


@pytest.mark.parametrize("patience, evaluations", [(0, 2), (1, 2), (2, 3), (3, 4)])
def test_patience_counts_evaluations_without_improvement_exactly(patience, evaluations):
    seen = []

    def evaluate(model, batches):
        for _ in batches:
            pass
        seen.append(len(seen))
        return {"loss": 1.0 if len(seen) == 1 else 2.0}  # best at the first evaluation, never again

    cfg = TrainConfig(lr=1e-2, batch_size=10, max_epochs=20, patience=patience, tensorboard=False)
    result = Trainer(Regression(), make_data(20), cfg, validation_data=make_data(4), evaluate=evaluate).fit()
    assert result.stopped_early and len(seen) == evaluations and result.epoch == evaluations
    assert result.best_step == 2 and len(result.history) == evaluations


def test_bad_monitor_and_empty_data_raise():
    with pytest.raises(ValueError, match="empty"):
        Trainer(Regression(), [], TrainConfig())
    with pytest.raises(ValueError, match="mode"):
        TrainConfig(mode="up")
    t = Trainer(Regression(), make_data(8), TrainConfig(batch_size=4, max_epochs=1, monitor="uar",
                                                        tensorboard=False), validation_data=make_data(4))
    with pytest.raises(KeyError, match="uar"):
        t.fit()


def test_frozen_parameters_stay_frozen():
    model = Regression()
    model.net[0].requires_grad_(False)
    before = model.net[0].weight.clone()
    Trainer(model, make_data(10), TrainConfig(lr=0.1, batch_size=5, max_epochs=2, tensorboard=False)).fit()
    assert torch.equal(model.net[0].weight, before)


# ------------------------------------------------------------------ DDP equivalence
DDP_SCRIPT = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {tests!r})
    from test_train import Regression, make_data, params_of
    from emovox.train import Trainer, TrainConfig
    torch.set_num_threads(1)
    model = Regression()
    cfg = TrainConfig(lr=1e-2, batch_size=8, max_epochs=2, seed=5, tensorboard=False)
    Trainer(model, make_data(21), cfg, validation_data=make_data(6, seed=3)).fit()
    import emovox.distributed as D
    if D.rank() == 0:
        torch.save(params_of(model), sys.argv[1])
""")


@pytest.mark.slow
def test_torchrun_two_processes_equal_one_process(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT.format(tests=str(REPO / "tests")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    env.pop("RANK", None), env.pop("WORLD_SIZE", None)
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one.pt")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(script), str(tmp_path / "two.pt")], env=env, capture_output=True, text=True,
                         timeout=120)
    assert two.returncode == 0, two.stderr[-3000:]
    p1, p2 = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert not torch.equal(p1, params_of(Regression()))  # it trained
    torch.testing.assert_close(p1, p2, rtol=1e-5, atol=1e-6)
