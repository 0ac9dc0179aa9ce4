"""The one training loop of emovox: every recipe (the probe, SA2SR, ...) trains through it.

What it gives you: mixed-length batching (your collate + optional length bucketing), exact
``--resume`` from atomic checkpoints (model, optimiser, scheduler, python/numpy/torch RNG of every
rank, sampler position, step, early-stopping state and config), early stopping on any validation
metric (min or max) with patience, the best model kept and restored, TensorBoard scalars,
progress bars on stderr, seeds, and data parallel training under ``torchrun`` (NCCL on GPU, gloo on
CPU) that matches one process with the same *global* batch.

Example::

    from emovox.train import Trainer, TrainConfig, pad_collate, ccc_loss

    def step(model, batch):                       # -> (scalar loss, {name: float})
        pred = model(batch["feats"], batch["feats_lengths"])
        loss = ccc_loss(pred, batch["vad"])
        return loss, {"loss": loss.item()}

    def evaluate(model, batches):                 # full validation set, in order -> metrics
        preds, golds = [], []
        for b in batches:
            preds.append(model(b["feats"], b["feats_lengths"])); golds.append(b["vad"])
        return {"ccc": 1 - ccc_loss(torch.cat(preds), torch.cat(golds)).item()}

    cfg = TrainConfig(lr=5e-5, batch_size=32, max_epochs=50, monitor="ccc", mode="max",
                      patience=25, checkpoint_dir="runs/exp1", save_every=500)
    trainer = Trainer(model, train_set, cfg, collate=pad_collate, step=step,
                      validation_data=val_set, evaluate=evaluate,
                      lengths=[len(x["feats"]) for x in train_set])   # lengths -> bucketing
    result = trainer.fit(resume=True)             # picks up runs/exp1/last.pt if it exists
    result.best_metric, result.best_step          # model now holds the best weights

Contracts:
- ``train_data``/``validation_data``: map-style datasets (``len`` and ``[i]``); ``collate`` turns a
  list of items into a batch (default :func:`pad_collate`); batches are moved to the device.
- ``step(model, batch) -> (loss, logs)``; without ``step`` the model's own
  ``training_step(batch)`` is used. The loss must be a mean over the batch's items: under DDP each
  rank's loss is rescaled by its share of the global batch, so gradients equal those of one
  process. (Batch-statistic losses such as CCC are computed per rank under DDP.)
- ``evaluate(model, batches) -> {metric: float}`` runs in eval mode under ``no_grad`` on every
  rank over the whole validation set; without it, the model's ``validation(batches)`` hook, else
  the mean ``step`` loss as ``{"loss": ...}``. ``config.monitor`` names the metric to select on.
- ``optimizer``: factory ``params -> Optimizer`` (default Adam(lr, betas, weight_decay) over the
  parameters that require grad, so frozen encoders stay frozen); ``scheduler``: factory
  ``optimizer -> LR scheduler`` stepped after every optimiser step.
- Under torchrun the model is wrapped in DistributedDataParallel; ``data_parallel=False`` trains
  in this process alone (for work already split across ranks, such as one fold per rank).
- Files in ``checkpoint_dir``: ``last.pt`` (everything needed to resume), ``best.pt`` (model
  weights + metrics of the best evaluation), ``tb/`` (TensorBoard). Rank 0 writes them.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .. import distributed as D
from ..utils import atomic_torch_save, progress, read_torch
from .data import BatchPlan, pad_collate, to_device

log = logging.getLogger("emovox.train")

StepFn = Callable[[nn.Module, Any], "tuple[torch.Tensor, Mapping[str, float]]"]
EvalFn = Callable[[nn.Module, Iterable[Any]], Mapping[str, float]]

CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
    """Everything that controls a run. Saved in every checkpoint."""

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    batch_size: int = 32  # global batch: split across ranks under torchrun
    eval_batch_size: int | None = None  # per rank; default batch_size
    max_epochs: int = 50
    max_steps: int | None = None
    # Wall-clock budget of one fit() call, in minutes: when spent, the run evaluates, saves
    # last.pt and returns; fit(resume=True) continues it with a fresh budget. None = no limit.
    max_minutes: float | None = None
    monitor: str = "loss"  # validation metric used for early stopping and model selection
    mode: str = "min"  # "min" or "max"
    # Stop after exactly ``patience`` evaluations in a row without improvement of ``monitor`` (as
    # the SA2SR paper and Lightning's EarlyStopping count): patience=2 with a metric that never
    # improves after the first evaluation stops after the third. None = never stop early.
    patience: int | None = None
    min_delta: float = 0.0
    eval_every: int | None = None  # also evaluate every N steps (always at the end of an epoch)
    grad_clip: float | None = None  # max global grad norm
    seed: int = 0
    checkpoint_dir: str | None = None
    save_every: int | None = None  # steps between last.pt saves (always at the end of an epoch)
    restore_best: bool = True  # load the best weights into the model when fit() returns
    drop_last: bool = False
    bucket_batches: int = 50  # pool size (in batches) for length bucketing
    num_workers: int = 0
    log_every: int = 10
    tensorboard: bool = True
    device: str = "auto"  # "auto" = cuda:<local rank> when available, else cpu
    progress: bool | None = None  # None = show on an interactive stderr

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise ValueError(f"TrainConfig.mode must be 'min' or 'max', got {self.mode!r}")
        if self.batch_size < 1:
            raise ValueError(f"TrainConfig.batch_size must be >= 1, got {self.batch_size}")
        self.betas = tuple(self.betas)  # type: ignore[assignment]


@dataclass
class TrainResult:
    step: int
    epoch: int
    best_metric: float | None
    best_step: int | None
    best_metrics: dict[str, float]
    last_metrics: dict[str, float]
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    out_of_time: bool = False  # stopped by max_minutes; resuming continues the run


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class _StepModule(nn.Module):
    """Runs ``step`` as its forward, so DistributedDataParallel sees the whole step."""

    def __init__(self, model: nn.Module, step: StepFn):
        super().__init__()
        self.model = model
        self._step = step

    def forward(self, batch: Any):
        return self._step(self.model, batch)


def _default_step(model: nn.Module, batch: Any):
    if not hasattr(model, "training_step"):
        raise TypeError("Trainer: pass step=... or give the model a training_step(batch) method")
    return model.training_step(batch)


class Trainer:
    """See the module docstring. ``fit()`` trains and returns a :class:`TrainResult`."""

    def __init__(self, model: nn.Module, train_data: Sequence[Any], config: TrainConfig | None = None, *,
                 collate: Callable[[list[Any]], Any] | None = None, step: StepFn | None = None,
                 validation_data: Sequence[Any] | None = None, evaluate: EvalFn | None = None,
                 optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None,
                 scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
                 lengths: Sequence[float] | None = None,
                 callbacks: Sequence[Callable[["Trainer", dict[str, Any]], None]] = (),
                 data_parallel: bool = True):
        self.config = config or TrainConfig()
        self.model = model
        self.train_data = train_data
        self.validation_data = validation_data
        self.collate = collate or pad_collate
        self.step_fn = step or _default_step
        self.evaluate_fn = evaluate
        self.callbacks = list(callbacks)
        if len(train_data) == 0:
            raise ValueError("Trainer: the training set is empty")

        # data_parallel=False: train alone even under torchrun (e.g. one cross-validation fold per rank)
        self.distributed = D.init_process_group() if data_parallel else False
        self.rank, self.world = (D.rank(), D.world_size()) if self.distributed else (0, 1)
        self.device = self._pick_device(self.config.device)
        self.model.to(self.device)
        self._wrapped: nn.Module = _StepModule(self.model, self.step_fn)
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._wrapped = DDP(self._wrapped, device_ids=ids)

        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("Trainer: the model has no trainable parameters")
        c = self.config
        self.optimizer = (optimizer(params) if optimizer else
                          torch.optim.Adam(params, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay))
        self.scheduler = scheduler(self.optimizer) if scheduler else None
        self.plan = BatchPlan(len(train_data), c.batch_size, seed=c.seed, shuffle=True,
                              drop_last=c.drop_last, lengths=lengths, bucket_batches=c.bucket_batches)

        # loop state (all of it goes into checkpoints)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_metric: float | None = None
        self.best_step: int | None = None
        self.best_metrics: dict[str, float] = {}
        self.last_metrics: dict[str, float] = {}
        self.bad_evals = 0
        self.history: list[dict[str, Any]] = []
        self._best_state: dict[str, torch.Tensor] | None = None
        self._writer = None
        self.stop_requested = False  # callbacks may set this

    # ------------------------------------------------------------------ setup helpers
    def _pick_device(self, name: str) -> torch.device:
        if name == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda", D.local_rank() if self.distributed else 0)
            return torch.device("cpu")
        return torch.device(name)

    @property
    def checkpoint_dir(self) -> Path | None:
        return Path(self.config.checkpoint_dir) if self.config.checkpoint_dir else None

    def _global_batches(self, epoch: int) -> list[list[int]]:
        batches = self.plan.batches(epoch)
        if self.world > 1:  # every rank needs at least one item
            batches = [b for b in batches if len(b) >= self.world]
        return batches

    def _loader(self, data, index_batches: list[list[int]], seed: int):
        g = torch.Generator()
        g.manual_seed(seed)
        return torch.utils.data.DataLoader(data, batch_sampler=index_batches, collate_fn=self.collate,
                                           num_workers=self.config.num_workers, generator=g)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, float]:
        """Metrics on the whole validation set (every rank computes the same numbers)."""
        if self.validation_data is None:
            return {}
        bs = self.config.eval_batch_size or self.config.batch_size
        idx = list(range(len(self.validation_data)))
        loader = self._loader(self.validation_data, [idx[i:i + bs] for i in range(0, len(idx), bs)], 0)
        batches = (to_device(b, self.device) for b in loader)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                if self.evaluate_fn is not None:
                    metrics = self.evaluate_fn(self.model, batches)
                elif hasattr(self.model, "validation"):
                    metrics = self.model.validation(batches)
                else:
                    total, n = 0.0, 0
                    for b in batches:
                        loss, _ = self.step_fn(self.model, b)
                        total, n = total + float(loss), n + 1
                    metrics = {"loss": total / max(n, 1)}
        finally:
            self.model.train(was_training)
        return {k: float(v) for k, v in metrics.items()}

    def _improved(self, value: float) -> bool:
        if self.best_metric is None:
            return True
        d = self.config.min_delta
        return value < self.best_metric - d if self.config.mode == "min" else value > self.best_metric + d

    def _after_evaluation(self, metrics: dict[str, float]) -> None:
        c = self.config
        self.last_metrics = metrics
        self.history.append({"step": self.step, "epoch": self.epoch, **metrics})
        self._scalars("val", metrics)
        if c.monitor not in metrics:
            raise KeyError(f"Trainer: monitor metric {c.monitor!r} not in validation metrics {sorted(metrics)}")
        value = metrics[c.monitor]
        if math.isfinite(value) and self._improved(value):
            self.best_metric, self.best_step, self.best_metrics = value, self.step, dict(metrics)
            self.bad_evals = 0
            self._best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            if self.checkpoint_dir and self.rank == 0:
                atomic_torch_save({"model": self._best_state, "metrics": metrics, "step": self.step,
                                   "epoch": self.epoch, "config": asdict(c)}, self.checkpoint_dir / "best.pt")
        else:
            self.bad_evals += 1
        log.info("step %d epoch %d: %s (best %s=%.4g at step %s)", self.step, self.epoch,
                 " ".join(f"{k}={v:.4g}" for k, v in metrics.items()), c.monitor,
                 self.best_metric if self.best_metric is not None else float("nan"), self.best_step)
        if c.patience is not None and self.bad_evals > 0 and self.bad_evals >= c.patience:
            log.info("early stopping: %s has not improved for %d evaluations", c.monitor, self.bad_evals)
            self.stop_requested = True

    # ------------------------------------------------------------------ checkpoints
    def _rng_state(self) -> dict[str, Any]:
        state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def state_dict(self) -> dict[str, Any]:
        rng = self._rng_state()
        if self.distributed:
            import torch.distributed as dist

            gathered: list[Any] = [None] * self.world
            dist.all_gather_object(gathered, rng)
            rng_all = gathered
        else:
            rng_all = [rng]
        return {
            "version": CHECKPOINT_VERSION,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": rng_all,
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "early": {"best_metric": self.best_metric, "best_step": self.best_step,
                      "best_metrics": self.best_metrics, "last_metrics": self.last_metrics,
                      "bad_evals": self.bad_evals, "stop": self.stop_requested},
            "best_state": self._best_state if not self.checkpoint_dir else None,
            "history": self.history,
            "world_size": self.world,
            "config": asdict(self.config),
        }

    def save_checkpoint(self, path: str | Path | None = None) -> Path | None:
        """Write everything needed to resume (atomically; rank 0 writes, all ranks take part)."""
        path = Path(path) if path else (self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None)
        if path is None:
            return None
        state = self.state_dict()
        if self.rank == 0:
            atomic_torch_save(state, path)
        if self.distributed:
            D.barrier()
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        state = read_torch(path, "a trainer checkpoint", weights_only=False)
        if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{path}: not an emovox trainer checkpoint (version {CHECKPOINT_VERSION})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        e = state["early"]
        self.best_metric, self.best_step = e["best_metric"], e["best_step"]
        self.best_metrics, self.last_metrics = e["best_metrics"], e["last_metrics"]
        self.bad_evals, self.stop_requested = e["bad_evals"], e["stop"]
        self.history = list(state["history"])
        if state.get("best_state") is not None:
            self._best_state = state["best_state"]
        elif self.checkpoint_dir and (self.checkpoint_dir / "best.pt").is_file():
            self._best_state = torch.load(self.checkpoint_dir / "best.pt", map_location="cpu",
                                          weights_only=False)["model"]
        rngs = state["rng"]
        if len(rngs) != self.world:
            log.warning("%s was written by %d process(es), resuming with %d: RNG streams restart",
                        path, len(rngs), self.world)
        else:
            rng = rngs[self.rank]
            random.setstate(rng["python"])
            np.random.set_state(rng["numpy"])
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
        log.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.step, self.epoch, self.batch_in_epoch)

    # ------------------------------------------------------------------ logging
    def _scalars(self, prefix: str, values: Mapping[str, float]) -> None:
        if self._writer is not None:
            for k, v in values.items():
                self._writer.add_scalar(f"{prefix}/{k}", float(v), self.step)

    def _open_writer(self) -> None:
        if self.config.tensorboard and self.checkpoint_dir and self.rank == 0:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.checkpoint_dir / "tb"))
            except Exception as e:  # noqa: BLE001 - tensorboard is optional
                log.warning("TensorBoard logging disabled: %s", e)

    # ------------------------------------------------------------------ the loop
    def _train_step(self, batch: Any, n_local: int, n_global: int) -> dict[str, float]:
        c = self.config
        self.optimizer.zero_grad(set_to_none=True)
        loss, logs = self._wrapped(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"Trainer: non-finite loss {float(loss)} at step {self.step + 1}")
        scale = n_local * self.world / n_global  # DDP averages over ranks; weight by share of items
        (loss * scale if scale != 1.0 else loss).backward()
        logs = {"loss": float(loss.detach()), **{k: float(v) for k, v in dict(logs).items()}}
        if c.grad_clip:
            logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip))
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        logs["lr"] = float(self.optimizer.param_groups[0]["lr"])
        return logs

    def fit(self, resume: bool | str | Path = False) -> TrainResult:
        """Train until ``max_epochs``/``max_steps`` or early stopping. ``resume=True`` continues
        from ``checkpoint_dir/last.pt`` when it exists; a path resumes from that file."""
        c = self.config
        seed_everything(c.seed + self.rank)
        if resume:
            path = Path(resume) if not isinstance(resume, bool) else (
                self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None)
            if path is None:
                raise ValueError("Trainer.fit(resume=True) needs config.checkpoint_dir")
            if path.is_file():
                self.load_checkpoint(path)
            elif not isinstance(resume, bool):
                raise FileNotFoundError(f"checkpoint not found: {path}")
        self._open_writer()
        self.model.train()
        running: dict[str, list[float]] = {}
        deadline = None if c.max_minutes is None else time.monotonic() + 60.0 * c.max_minutes
        out_of_time = False
        try:
            while not self._done() and not out_of_time:
                batches = self._global_batches(self.epoch)
                if not batches:
                    raise ValueError(f"Trainer: no training batch for {self.world} process(es) "
                                     f"({len(self.train_data)} items, batch size {c.batch_size})")
                todo = batches[self.batch_in_epoch:]
                local = [BatchPlan.local(b, self.rank, self.world) for b in todo]
                loader = self._loader(self.train_data, local, c.seed * 7919 + self.epoch * 31 + self.batch_in_epoch)
                bar = progress(total=len(batches), desc=f"epoch {self.epoch + 1}", disable=(
                    None if c.progress is None else not c.progress or self.rank != 0), unit="batch")
                bar.update(self.batch_in_epoch)
                for gbatch, batch in zip(todo, loader):
                    logs = self._train_step(to_device(batch, self.device), len(BatchPlan.local(
                        gbatch, self.rank, self.world)), len(gbatch))
                    self.step += 1
                    self.batch_in_epoch += 1
                    bar.update(1)
                    for k, v in logs.items():
                        running.setdefault(k, []).append(v)
                    if self.step % c.log_every == 0:
                        avg = {k: sum(v) / len(v) for k, v in running.items()}
                        self._scalars("train", avg)
                        bar.set_postfix(loss=f"{avg['loss']:.4g}")
                        running = {}
                    end_of_epoch = self.batch_in_epoch >= len(batches)
                    if end_of_epoch:
                        self.epoch += 1
                        self.batch_in_epoch = 0
                    out_of_time = self._past(deadline)
                    if (end_of_epoch or (c.eval_every and self.step % c.eval_every == 0)
                            or self._max_steps_reached() or out_of_time) and self.validation_data is not None:
                        self._after_evaluation(self.evaluate())
                    for cb in self.callbacks:
                        cb(self, logs)
                    if (end_of_epoch or (c.save_every and self.step % c.save_every == 0) or self._done()
                            or out_of_time):
                        self.save_checkpoint()
                    if self._done() or end_of_epoch or out_of_time:
                        break
                bar.close()
        finally:
            if self._writer is not None:
                self._writer.flush()
                self._writer.close()
                self._writer = None
        if c.restore_best and self._best_state is not None:
            self.model.load_state_dict(self._best_state)
        if out_of_time:
            log.info("stopped after %.4g minutes at step %d (max_minutes); resume to continue", c.max_minutes,
                     self.step)
        return TrainResult(self.step, self.epoch, self.best_metric, self.best_step, dict(self.best_metrics),
                           dict(self.last_metrics), self.stop_requested, list(self.history), out_of_time)

    def _past(self, deadline: float | None) -> bool:
        """Whether the wall-clock budget is spent; under torchrun rank 0's clock decides for all
        ranks, so every rank stops after the same step."""
        if deadline is None:
            return False
        past = time.monotonic() >= deadline
        if self.world == 1:
            return past
        import torch.distributed as dist

        flag = torch.tensor([float(past)], device=self.device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def _max_steps_reached(self) -> bool:
        return self.config.max_steps is not None and self.step >= self.config.max_steps

    def _done(self) -> bool:
        return self.stop_requested or self._max_steps_reached() or self.epoch >= self.config.max_epochs
