"""The SUPERB-style probe as a cross-validated experiment, with a linear baseline on the same
features (``emovox probe``).

Pipeline: manifest -> pooled features through the cache (any encoder: ``(layers, dim)`` per
utterance; eGeMAPS functionals: one "layer") -> optional per-speaker z-scores -> speaker-grouped
folds (:func:`emovox.splits.make_folds`) -> per fold: the probe trained with the shared
:class:`~emovox.train.Trainer` (Adam 1e-4, batch 32, up to 50 epochs, model chosen on the
validation metric) and a logistic/ridge regression on the flattened standardised features ->
per-fold metrics, mean and spread, pooled confusion matrix and learnt layer weights.

Targets: one categorical label (``emotion`` or any vocabulary of the manifest, e.g. BAVED
``level``), attributes (``valence``/``arousal``/``dominance`` mapped to [-1, 1] with
``Manifest.to_unit``, or given explicitly per utterance), or both at once.
Targets come from :func:`emovox.evaluate.targets.read_targets`, metrics from
:func:`emovox.evaluate.metrics.compute_metrics` (``ua``, ``wa``, ``weighted_f1``;
``ccc_<attribute>``, ``mse_<attribute>`` and their mean ``ccc``), the baseline from
:func:`emovox.evaluate.linear.linear_baseline`: the same as every other recipe's.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..evaluate.linear import linear_baseline
from ..evaluate.metrics import compute_metrics
from ..evaluate.targets import IGNORE_INDEX, Targets, read_targets
from ..features.normalize import speaker_normalize
from ..heads.probe import Probe, ProbeConfig
from ..manifest import Manifest
from ..train import TrainConfig, Trainer, ccc_loss, class_weights, cross_entropy, seed_everything

log = logging.getLogger("emovox.probe")

SPEAKER_NORM = ("off", "on", "both")


@dataclass
class ProbeRecipeConfig:
    """Defaults: Dutta & Ganapathy (2024) / SUPERB downstream, 6 speaker folds."""

    features: str = "whisper-tiny.en"  # an encoder name or a pooled feature ("egemaps")
    feature_options: dict[str, Any] = field(default_factory=dict)
    target: str | None = "emotion"  # categorical label name, or None for attributes only
    attributes: list[str] = field(default_factory=list)  # e.g. ["valence", "arousal", "dominance"]
    hidden: int = 256  # 0: no hidden layer
    combine: str = "weighted"  # "weighted" (SUPERB's layer-weighted sum) or "concat" (all layers side by side)
    dropout: float = 0.1
    lr: float = 1e-4
    weight_decay: float = 0.0
    batch_size: int = 32
    max_epochs: int = 50
    patience: int | None = None  # None = all epochs, keep the best on validation
    class_weighted: bool = False
    clip_sigma: float | None = 5.0  # clip standardised features (eGeMAPS has huge outliers)
    speaker_norm: str = "both"  # "off", "on" or "both" (report with and without)
    protocol: str = "kfold"
    folds: int = 6
    seed: int = 0
    validation: float = 0.1
    linear: bool = True  # also fit the linear baseline
    jobs: int = 1  # feature extraction processes
    threads: int = 1  # torch threads while training the (small) head
    cache_dir: str | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.speaker_norm not in SPEAKER_NORM:
            raise ValueError(f"speaker_norm must be one of {SPEAKER_NORM}, got {self.speaker_norm!r}")
        if not self.target and not self.attributes:
            raise ValueError("the probe needs a categorical target, attributes, or both")


# ============================================================================ data
@dataclass
class ProbeData:
    """Pooled features ``x`` (N, L, D) float32 of the utterances of ``targets`` (same order), and
    the ids whose features failed."""

    x: np.ndarray
    targets: Targets
    failed: list[str] = field(default_factory=list)
    class_mask: np.ndarray | None = None  # (N, C) bool: the classes each row's corpus annotates
    weight: np.ndarray | None = None  # (N,) training weight of each row (corpus/class balance)

    ids = property(lambda self: self.targets.ids)
    speakers = property(lambda self: self.targets.speakers)
    y = property(lambda self: self.targets.y)
    a = property(lambda self: self.targets.a)
    labels = property(lambda self: self.targets.labels)
    attributes = property(lambda self: self.targets.attributes)

    def subset(self, idx: Sequence[int]) -> "ProbeData":
        idx = np.asarray(idx, dtype=np.int64)
        return ProbeData(self.x[idx], self.targets.subset(idx), [],
                         None if self.class_mask is None else self.class_mask[idx],
                         None if self.weight is None else self.weight[idx])

    def replace_x(self, x: np.ndarray) -> "ProbeData":
        return ProbeData(x, self.targets, self.failed, self.class_mask, self.weight)


def as_layers(features: np.ndarray) -> np.ndarray:
    """(N, D) functionals -> (N, 1, D); (N, L, D) pooled encoder features unchanged."""
    f = np.asarray(features, dtype=np.float32)
    if f.ndim == 2:
        return f[:, None, :]
    if f.ndim != 3:
        raise ValueError(f"the probe reads pooled features (N, D) or (N, layers, dim), got shape {f.shape}")
    return f


def build_data(manifest: Manifest, features: Mapping[str, np.ndarray], target: str | None,
               attributes: Sequence[str] = (),
               attribute_values: Mapping[str, Sequence[float]] | None = None) -> ProbeData:
    """Align features (id -> array) with the targets of :func:`read_targets`. ``attribute_values``
    (id -> K values in [-1, 1]) overrides the manifest's attributes (e.g. category-derived
    targets); else they are read from the utterances and mapped to [-1, 1] with the manifest's
    scales. The class list is the manifest's whole vocabulary for ``target``."""
    if target and target not in manifest.labels:
        raise ValueError(f"{manifest.corpus or 'manifest'}: no label vocabulary {target!r} "
                         f"(known: {', '.join(manifest.labels) or 'none'})")
    missing = [u.id for u in manifest if u.id not in features]
    have = manifest.filter(lambda u: u.id in features)
    if not len(have):
        raise ValueError(f"{manifest.corpus or 'manifest'}: no utterance has both features and a target")
    labels = list(manifest.labels[target]) if target else None
    targets = read_targets(have, target, attributes, labels=labels, attribute_values=attribute_values)
    return ProbeData(as_layers(np.stack([features[i] for i in targets.ids])), targets, missing)


class _Items(torch.utils.data.Dataset):
    def __init__(self, data: ProbeData):
        self.x = torch.from_numpy(np.ascontiguousarray(data.x))
        self.y = None if data.y is None else torch.from_numpy(data.y)
        self.a = None if data.a is None else torch.from_numpy(data.a)
        self.mask = None if data.class_mask is None else torch.from_numpy(data.class_mask.astype(bool))
        self.w = None if data.weight is None else torch.from_numpy(data.weight.astype(np.float32))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"x": self.x[i]}
        if self.y is not None:
            item["y"] = self.y[i]
        if self.a is not None:
            item["a"] = self.a[i]
        if self.mask is not None:
            item["mask"] = self.mask[i]
        if self.w is not None:
            item["w"] = self.w[i]
        return item


# ============================================================================ metrics
def score(data: ProbeData, logits: np.ndarray | None, attrs: np.ndarray | None) -> dict[str, float]:
    """Test metrics of :func:`~emovox.evaluate.metrics.compute_metrics` for ``data``'s targets."""
    return compute_metrics(data.y, logits, len(data.labels), data.a, attrs, data.attributes)


def selection_metric(data: ProbeData) -> str:
    """Validation metric the model is chosen on: weighted F1, mean CCC, or their mean."""
    if data.y is not None and data.a is not None:
        return "score"
    return "weighted_f1" if data.y is not None else "ccc"


def _with_score(m: dict[str, float]) -> dict[str, float]:
    if "weighted_f1" in m and "ccc" in m:
        m["score"] = (m["weighted_f1"] + (m["ccc"] if math.isfinite(m["ccc"]) else 0.0)) / 2
    return m


# ============================================================================ the probe
def make_probe(data: ProbeData, cfg: ProbeRecipeConfig) -> Probe:
    L, D = data.x.shape[1:]
    probe = Probe(ProbeConfig(num_layers=L, dim=D, num_classes=len(data.labels) if data.y is not None else 0,
                              num_attributes=len(data.attributes) if data.a is not None else 0,
                              hidden=cfg.hidden, dropout=cfg.dropout, clip=cfg.clip_sigma, combine=cfg.combine))
    probe.fit_normalizer(torch.from_numpy(data.x))
    return probe


@torch.no_grad()
def predict(probe: Probe, x: np.ndarray, batch: int = 256) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(N, L, D) -> logits (N, C) and attributes (N, K) as numpy (None for an absent head)."""
    probe.eval()
    dev = probe.feature_mean.device
    logits, attrs = [], []
    for s in range(0, len(x), batch):
        out = probe(torch.from_numpy(np.ascontiguousarray(x[s:s + batch])).to(dev))
        if out.logits is not None:
            logits.append(out.logits.float().cpu().numpy())
        if out.attributes is not None:
            attrs.append(out.attributes.float().cpu().numpy())
    return (np.concatenate(logits) if logits else None), (np.concatenate(attrs) if attrs else None)


def train_probe(train: ProbeData, validation: ProbeData | None, cfg: ProbeRecipeConfig,
                checkpoint_dir: str | None = None, max_epochs: int | None = None,
                data_parallel: bool = False) -> tuple[Probe, Any]:
    """Train a probe with the shared Trainer; returns the probe holding the best-on-validation
    weights (or the last ones when ``validation`` is None) and the TrainResult."""
    seed_everything(cfg.seed)  # the same initial weights whatever ran before in this process
    probe = make_probe(train, cfg)
    weight = None
    if cfg.class_weighted and train.y is not None:
        weight = class_weights(train.y[train.y >= 0].tolist(), len(train.labels))

    def step(model, batch):
        out = model(batch["x"])
        losses = {}
        if out.logits is not None:
            losses["ce"] = cross_entropy(out.logits, batch["y"], weight=weight, ignore_index=IGNORE_INDEX,
                                         class_mask=batch.get("mask"), sample_weight=batch.get("w"))
        if out.attributes is not None:
            losses["ccc"] = ccc_loss(out.attributes, torch.nan_to_num(batch["a"]), mask=~torch.isnan(batch["a"]))
        loss = sum(losses.values())
        return loss, {f"loss/{k}": float(v.detach()) for k, v in losses.items()}

    def evaluate(model, batches):  # scores the whole validation set at once (batches unused)
        logits, attrs = predict(model, validation.x)
        return _with_score(score(validation, logits, attrs))

    monitor = selection_metric(train)
    tc = TrainConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                     max_epochs=max_epochs or cfg.max_epochs, monitor=monitor, mode="max",
                     patience=cfg.patience, seed=cfg.seed, checkpoint_dir=checkpoint_dir, device=cfg.device, tensorboard=checkpoint_dir is not None,
                     progress=False, log_every=50)
    has_val = validation is not None and len(validation.ids) > 0
    trainer = Trainer(probe, _Items(train), tc, step=step, validation_data=_Items(validation) if has_val else None,
                      evaluate=evaluate if has_val else None, data_parallel=data_parallel)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)  # a head this small is fastest on one thread
    try:
        result = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    return probe.cpu().eval(), result


# ============================================================================ cross-validation
def run_variant(data: ProbeData, folds: Sequence[Any], cfg: ProbeRecipeConfig, name: str,
                out_dir: Path | None = None) -> dict[str, Any]:
    """Cross-validate the probe (and the linear baseline) on ``data`` over ``folds``."""
    from ..evaluate.crossval import FoldResult, run_folds

    index = {u: i for i, u in enumerate(data.ids)}

    def pick(ids: Sequence[str]) -> list[int]:
        return [index[u] for u in ids if u in index]

    def one_fold(fold) -> FoldResult:
        t0 = time.perf_counter()
        tr, va, te = (data.subset(pick(p)) for p in (fold.train, fold.validation, fold.test))
        if not len(te.ids) or not len(tr.ids):
            raise ValueError(f"fold {fold.name}: no training or test utterance with features")
        probe, result = train_probe(tr, va if len(va.ids) else None, cfg)
        logits, attrs = predict(probe, te.x)
        metrics = score(te, logits, attrs)
        seconds = time.perf_counter() - t0
        extra: dict[str, Any] = {"layer_weights": probe.layer_weights().tolist(), "best_step": result.best_step,
                                 "seconds": seconds, "train": len(tr.ids), "validation": len(va.ids),
                                 "test": len(te.ids)}
        if cfg.linear:
            t1 = time.perf_counter()
            extra["linear"] = linear_baseline(tr.x, tr.targets, te.x, te.targets, va.x, va.targets,
                                              cfg.clip_sigma, cfg.seed)
            extra["linear_seconds"] = time.perf_counter() - t1
        preds = []
        for i, u in enumerate(te.ids):
            row: dict[str, Any] = {"id": u}
            if logits is not None:
                row["target"] = te.labels[te.y[i]] if te.y[i] >= 0 else None
                row["prediction"] = te.labels[int(logits[i].argmax())]
            if attrs is not None:
                row.update({f"{a}_target": float(te.a[i, k]) for k, a in enumerate(te.attributes)})
                row.update({f"{a}_prediction": float(attrs[i, k]) for k, a in enumerate(te.attributes)})
            preds.append(row)
        return FoldResult(fold.name, metrics, preds, extra)

    cv = run_folds(folds, one_fold)
    linear_rows = [f.extra["linear"] for f in cv.folds if "linear" in f.extra]
    from ..evaluate.crossval import summarize

    out: dict[str, Any] = {
        "variant": name,
        "probe": cv.summary(),
        "linear": summarize(linear_rows) if linear_rows else None,
        "folds": [{"fold": f.fold, "probe": f.metrics, "linear": f.extra.get("linear"),
                   **{k: v for k, v in f.extra.items() if k != "linear"}} for f in cv.folds],
        "layer_weights": np.mean([f.extra["layer_weights"] for f in cv.folds], 0).tolist(),
        "layer_weights_std": np.std([f.extra["layer_weights"] for f in cv.folds], 0).tolist(),
        "seconds_per_fold": float(np.mean([f.extra["seconds"] for f in cv.folds])),
    }
    if data.y is not None:
        from ..evaluate.metrics import confusion_matrix

        rows = [p for p in cv.predictions() if p.get("target") is not None]
        out["labels"] = data.labels
        out["confusion"] = confusion_matrix([p["target"] for p in rows], [p["prediction"] for p in rows],
                                            data.labels).tolist()
    if out_dir is not None:
        _plots(out, out_dir, name)
    return out


def _plots(res: dict[str, Any], out_dir: Path, name: str) -> None:
    from ..report import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    L = len(res["layer_weights"])
    plots.bar_plot({str(i): w for i, w in enumerate(res["layer_weights"])}, out_dir / f"layer_weights-{name}.png",
                   errors=res["layer_weights_std"], title=f"learnt layer weights ({name}, mean over folds)",
                   ylabel="softmax weight", ylim=(0, max(1.0 / L * 2, max(res["layer_weights"]) * 1.2)))
    if "confusion" in res:
        plots.confusion_heatmap(res["confusion"], res["labels"], out_dir / f"confusion-{name}.png",
                                title=f"confusion, all folds ({name})")


def load_features(manifest: Manifest, cfg: ProbeRecipeConfig) -> tuple[dict[str, np.ndarray], list[str]]:
    """Pooled features (id -> array) through the cache, and the failures as strings."""
    from ..featurize import extract_manifest

    table = extract_manifest(manifest, cfg.features, jobs=cfg.jobs, cache_dir=cfg.cache_dir,
                             device=cfg.device, **cfg.feature_options)
    if not isinstance(table.features, np.ndarray):
        raise ValueError(f"{cfg.features}: the probe reads pooled features of one shape per utterance, "
                         f"got frame-level features")
    for f in table.failed:
        log.warning("no features for %s", f)
    return table.as_dict(), [str(f) for f in table.failed]


def run_probe(manifest: Manifest, cfg: ProbeRecipeConfig, out_dir: str | Path | None = None,
              features: Mapping[str, np.ndarray] | None = None,
              attribute_values: Mapping[str, Sequence[float]] | None = None) -> dict[str, Any]:
    """The whole experiment; returns a JSON-ready dict with one entry per speaker-norm variant."""
    from ..splits import make_folds

    t0 = time.perf_counter()
    failed: list[str] = []
    if features is None:
        features, failed = load_features(manifest, cfg)
    data = build_data(manifest, features, cfg.target, cfg.attributes, attribute_values)
    kept = set(data.ids)
    folds = make_folds(manifest.filter(lambda u: u.id in kept), cfg.protocol, k=cfg.folds, seed=cfg.seed,
                       validation=cfg.validation)
    variants = {"off": ["raw"], "on": ["speaker-norm"], "both": ["raw", "speaker-norm"]}[cfg.speaker_norm]
    counts = Counter(data.speakers)
    if "speaker-norm" in variants and sum(n > 1 for n in counts.values()) < len(counts) / 2:
        msg = (f"{manifest.corpus or 'manifest'}: most utterances have no speaker with other utterances, "
               f"so per-speaker normalisation is undefined")
        if variants == ["speaker-norm"]:
            raise ValueError(msg)
        log.warning("%s; reporting without it", msg)
        variants = ["raw"]
    out_path = Path(out_dir) if out_dir is not None else None
    results = {}
    for v in variants:
        d = data if v == "raw" else data.replace_x(speaker_normalize(data.x, data.speakers))
        results[v] = run_variant(d, folds, cfg, v, out_path)
    return {"corpus": manifest.corpus, "config": asdict(cfg), "utterances": len(data.ids),
            "speakers": len(set(data.speakers)), "folds": len(folds), "feature_shape": list(data.x.shape[1:]),
            "failed": failed, "variants": results, "seconds": time.perf_counter() - t0}


def markdown(result: Mapping[str, Any], digits: int = 3) -> str:
    """A results table: one row per (variant, model), metrics as mean ± std over folds."""
    from ..report.tables import format_mean_spread, markdown_table

    rows = []
    for v, res in result["variants"].items():
        for model in ("probe", "linear"):
            summ = res.get(model)
            if not summ:
                continue
            row = {"features": result["config"]["features"], "speaker norm": "yes" if v == "speaker-norm" else "no",
                   "model": model}
            row.update({k: format_mean_spread((s["mean"], s["std"]), digits) for k, s in summ.items() if k != "score"})
            rows.append(row)
    return markdown_table(rows)
