"""The ASR-features recipe of Tits, El Haddad and Dutoit (2018): a pretrained ASR network as an
emotion feature extractor.

Protocol (the paper's; every value is a field of :class:`ASRFeaturesConfig`):

1. Neural features: the mean over time of every unit of every encoder layer, per utterance,
   (N, L, D), from :func:`emovox.featurize.extract_manifest` (on-disk cache).
2. Speaker-independent folds (:func:`emovox.splits.make_folds`; paper: leave one speaker out).
3. In each fold, on the training part only: standardise every feature (z-score), clip to
   +-``clip_sigma`` (eGeMAPS functionals have extreme outliers), score features with the
   Fisher criterion (numeric targets cut into classes, :func:`~emovox.evaluate.analysis.discretize`),
   keep the best ``k`` = 100, fit linear regression (numeric/ordinal target) or logistic
   regression (categories); predict the held-out speaker(s).
4. Feature sets compared in the same run and on the same folds: all layers, the first three,
   the last three, every single layer, and the eGeMAPS functionals baseline.
5. Per speaker, the Pearson correlation of every unit with the (numeric) target, drawn as a
   layer x unit heatmap.

Outputs under the output folder: ``results.md`` (mean ± std over folds), ``results.json``
(config, mean/variance/std of every metric per feature set, per-fold metrics, pooled metrics,
failed files), ``predictions.csv`` (per fold, per feature set, per utterance), and PNGs under
``plots/`` (correlation heatmaps, confusion matrices, per-layer bars).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from .. import distributed
from ..evaluate import metrics as M
from ..evaluate.analysis import (correlation_heatmap, discretize, fisher_scores, layer_columns,
                                 parse_layers, per_speaker_correlations, select_top_k, unit_correlations)
from ..evaluate.crossval import CrossValResult, FoldResult, run_folds
from ..evaluate.linear import fit_logistic, fit_ridge
from ..evaluate.metrics import compute_metrics
from ..evaluate.targets import read_targets
from ..features.normalize import Standardizer, speaker_normalize
from ..manifest import Manifest
from ..report import plots, tables

log = logging.getLogger("emovox.recipes.asr_features")

TASKS = ("auto", "regression", "classification")


@dataclass
class ASRFeaturesConfig:
    """Settings of the recipe; defaults are Tits et al. (2018)'s where the paper gives one."""

    target: str = "arousal"
    """A numeric attribute (valence, arousal, dominance, or a numeric ``extra`` field) or a
    categorical label with a vocabulary in the manifest (``emotion``, BAVED ``level``)."""
    task: str = "auto"
    """``regression`` (numeric target, or a categorical one as ordinal codes 0..C-1 in
    vocabulary order), ``classification`` (categories), or ``auto`` (by the target's type)."""
    encoders: tuple[str, ...] = ("whisper-tiny.en",)
    """Encoders whose pooled layer outputs are the neural features (paper: a wavenet ASR)."""
    encoder_options: dict[str, Any] = field(default_factory=dict)
    """Options passed to feature extraction for the encoders (e.g. ``{"pad": True}``)."""
    baseline: str | None = "egemaps"
    """Hand-crafted baseline through the same pipeline (``None`` to skip)."""
    k: int = 100
    """Units kept by Fisher-score selection (paper: 100)."""
    protocol: str = "loso"
    """Fold protocol for make_folds: loso (paper), kfold, official, loo."""
    folds: int = 5
    """Number of speaker folds for ``kfold``."""
    seed: int = 0
    layer_sets: tuple[str, ...] = ("first3", "last3", "all")
    """Layer sets to compare (paper: first 3, last 3, all); see analysis.parse_layers."""
    single_layers: bool = True
    """Also evaluate every layer on its own (for the best single layer)."""
    clip_sigma: float | None = 5.0
    """Clip standardised features to +-this many standard deviations (None: no clipping)."""
    fisher_bins: int = 5
    """Classes a numeric target is cut into for the Fisher score (equal-frequency quantiles)."""
    speaker_norm: bool = False
    """Z-normalise every feature per speaker before the folds (needs no labels; not in the paper)."""
    C: float = 1.0
    """Inverse L2 strength of the logistic regression (classification)."""
    ridge: float = 0.0
    """L2 strength of the linear regression (paper: 0, plain least squares)."""
    unit_scale: bool = False
    """Map a numeric attribute from the corpus scale to [-1, 1] (Manifest.to_unit) first."""
    heatmap_speakers: int = 4
    """Per-speaker correlation heatmaps to draw (speakers with the most utterances)."""
    jobs: int = 1
    """Feature extraction worker processes."""
    fit_threads: int = 1
    """BLAS threads for the linear models: these problems are small, and more threads only
    contend for the cores (docs/RESULTS.md, Tits run times)."""
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.clip_sigma is not None and self.clip_sigma <= 0:
            raise ValueError(f"clip_sigma must be positive or None, got {self.clip_sigma}")
        self.encoders = tuple(self.encoders)
        self.layer_sets = tuple(self.layer_sets)


# ---------------------------------------------------------------------------- targets
@dataclass
class Target:
    """The values to predict for the utterances that have one (from :func:`read_targets`)."""

    ids: list[str]
    values: np.ndarray  # (N,) float for regression, object (label strings) for classification
    task: str
    labels: list[str] | None  # class list (classification) or ordinal order (regression on labels)
    fisher_classes: np.ndarray  # (N,) int class codes for the Fisher score
    name: str = ""  # the target's name (metrics of a regression are ccc_<name>, mse_<name>)

    @property
    def codes(self) -> np.ndarray:
        """Class indices of ``values`` into ``labels`` (classification)."""
        return np.array([self.labels.index(v) for v in self.values], dtype=np.int64)


def load_target(manifest: Manifest, cfg: ASRFeaturesConfig) -> Target:
    """Read ``cfg.target`` from every utterance; utterances without a value are left out. A label
    with a vocabulary is a class (classification) or, with ``task="regression"``, one ordinal
    column coded by :func:`~emovox.evaluate.targets.ordinal_value`; numbers are regressed as
    they are (or in [-1, 1] with ``unit_scale``)."""
    name = cfg.target
    raw = [r.get(name) for r in manifest.records if r.get(name) is not None]
    if not raw:
        raise ValueError(f"no utterance in the manifest has a value for the target {name!r}")
    if len(raw) < len(manifest):
        log.warning("%d of %d utterances have no %s and are left out", len(manifest) - len(raw), len(manifest), name)
    categorical = name in manifest.labels or any(isinstance(v, str) for v in raw)
    task = cfg.task if cfg.task != "auto" else ("classification" if categorical else "regression")
    if categorical and task == "classification":
        t = read_targets(manifest, name)
        return Target(t.ids, np.array(t.class_names(t.y), dtype=object), task, t.labels, t.y, name)
    if categorical:  # ordinal regression on the vocabulary order (low/neutral/high -> -1/0/1)
        t = read_targets(manifest, name, ordinal=True)
        y = t.a[:, 0].astype(np.float64)
        return Target(t.ids, y, task, list(manifest.labels[name]), np.unique(y, return_inverse=True)[1], name)
    if task == "classification":
        raise ValueError(f"target {name!r} is numeric; use --task regression (or name a categorical label)")
    t = read_targets(manifest, attributes=[name], unit_scale=cfg.unit_scale)
    y = t.a[:, 0].astype(np.float64)
    return Target(t.ids, y, task, None, discretize(y, cfg.fisher_bins), name)


# ---------------------------------------------------------------------------- features
@dataclass
class FeatureMatrix:
    """Utterance features from one extractor, aligned with the target: (N, L, D)."""

    name: str
    values: np.ndarray
    failed: dict[str, str]


def _failed_dict(failed: Any) -> dict[str, str]:
    if not failed:
        return {}
    if isinstance(failed, dict):
        return {str(k): str(v) for k, v in failed.items()}
    out = {}
    for item in failed:
        if isinstance(item, (tuple, list)) and len(item) == 2:
            out[str(item[0])] = str(item[1])
        else:
            cause = getattr(item, "cause", None)
            path = getattr(item, "path", None)
            out[str(getattr(item, "id", item))] = f"{path}: {cause}" if path and cause else str(cause or item)
    return out


def extract_features(manifest: Manifest, name: str, cfg: ASRFeaturesConfig, options: dict[str, Any]) -> FeatureMatrix:
    """Features of one extractor for every utterance, as (N, L, D) (functionals: L = 1)."""
    from ..featurize import extract_manifest

    t0 = time.perf_counter()
    table = extract_manifest(manifest, name, jobs=cfg.jobs, cache_dir=cfg.cache_dir, **options)
    by_id = {i: np.asarray(f, dtype=np.float32) for i, f in zip(table.ids, table.features)}
    failed = _failed_dict(getattr(table, "failed", None))
    missing = [r.id for r in manifest.records if r.id not in by_id and r.id not in failed]
    for i in missing:
        failed[i] = "no features returned"
    if not by_id:
        raise ValueError(f"{name}: no utterance could be featurised ({len(failed)} failed)")
    shape = next(iter(by_id.values())).shape
    values = np.full((len(manifest),) + shape, np.nan, dtype=np.float32)
    for n, r in enumerate(manifest.records):
        if r.id in by_id:
            values[n] = by_id[r.id]
    if values.ndim == 2:
        values = values[:, None, :]
    log.info("%s features: %s per utterance, %d failed, %.1f s", name, shape, len(failed), time.perf_counter() - t0)
    return FeatureMatrix(name, values, failed)


def usable_rows(manifest: Manifest, matrices: dict[str, FeatureMatrix]) -> tuple[np.ndarray, dict[str, str]]:
    """(N,) bool mask of the utterances every extractor featurised with finite values, and
    ``{id: why}`` for the others (logged; the run goes on without them)."""
    failed: dict[str, str] = {}
    for m in matrices.values():
        for i, why in m.failed.items():
            failed.setdefault(i, f"{m.name}: {why}")
    ok = np.array([r.id not in failed for r in manifest.records])
    for m in matrices.values():
        ok &= np.isfinite(m.values.reshape(len(manifest), -1)).all(1)
    for n in np.flatnonzero(~ok):
        failed.setdefault(manifest.records[n].id, "non-finite features")
    if failed:
        log.warning("%d utterance(s) left out because feature extraction failed: %s", len(failed),
                    "; ".join(f"{i} ({why})" for i, why in list(failed.items())[:5]) + (" ..." if len(failed) > 5 else ""))
    return ok, failed


# ---------------------------------------------------------------------------- one fold
def fit_predict(x_train: np.ndarray, y_train: np.ndarray, classes_train: np.ndarray, x_test: np.ndarray,
                target: Target, cfg: ASRFeaturesConfig) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Standardise, clip, select the ``k`` best columns by Fisher score, fit the linear model
    (:mod:`emovox.evaluate.linear`: least squares or ridge, or logistic regression), predict —
    all fitted on the training rows only. Classification takes ``y_train`` as class indices.
    Returns (predictions, class probabilities in ``target.labels`` order or None, selected columns)."""
    std = Standardizer.fit(x_train, cfg.clip_sigma)
    a, b = std(x_train), std(x_test)
    selected = select_top_k(fisher_scores(a, classes_train), cfg.k)
    if target.task == "classification":
        model = fit_logistic(a[:, selected], y_train, len(target.labels), C=cfg.C, seed=cfg.seed, iters=3000)
        probs = model.probabilities(b[:, selected])
        return probs.argmax(1), probs, selected
    return fit_ridge(a[:, selected], y_train, cfg.ridge)(b[:, selected])[:, 0], None, selected


def target_metrics(target: Target, y_true: Sequence, y_pred: Sequence) -> dict[str, float]:
    """:func:`~emovox.evaluate.metrics.compute_metrics` of labels (classification) or values."""
    if target.task == "classification":
        index = {c: i for i, c in enumerate(target.labels)}
        return compute_metrics([index[v] for v in y_true], [index[v] for v in y_pred], len(target.labels))
    return compute_metrics(a_true=np.asarray(y_true, np.float64)[:, None],
                           a_pred=np.asarray(y_pred, np.float64)[:, None], attributes=[target.name])


# ---------------------------------------------------------------------------- feature sets
@dataclass
class FeatureSet:
    """A named choice of columns of one feature matrix (flattened to (N, L * D))."""

    name: str
    source: str
    layers: list[int]
    columns: np.ndarray


def feature_sets(matrix: FeatureMatrix, cfg: ASRFeaturesConfig, baseline: bool) -> list[FeatureSet]:
    n_layers, dim = matrix.values.shape[1:]
    if baseline:
        return [FeatureSet(matrix.name, matrix.name, [0], layer_columns([0], dim))]
    sets, seen = [], set()
    for spec in cfg.layer_sets:
        layers = parse_layers(spec, n_layers)
        key = tuple(layers)
        name = f"{matrix.name} {spec} (L{layers[0]}-{layers[-1]})" if len(layers) > 1 else f"{matrix.name} L{layers[0]}"
        if key not in seen:
            seen.add(key)
            sets.append(FeatureSet(name, matrix.name, layers, layer_columns(layers, dim)))
    if cfg.single_layers:
        for l in range(n_layers):
            if (l,) not in seen:
                seen.add((l,))
                sets.append(FeatureSet(f"{matrix.name} L{l}", matrix.name, [l], layer_columns([l], dim)))
    return sets


# ---------------------------------------------------------------------------- the recipe
@dataclass
class SetResult:
    feature_set: FeatureSet
    cv: CrossValResult
    pooled: dict[str, float]


def run(manifest: Manifest, cfg: ASRFeaturesConfig, out_dir: str | Path | None = None,
        features: dict[str, FeatureMatrix] | None = None) -> dict[str, Any]:
    """Run the whole protocol; write the report to ``out_dir`` (rank 0 only) and return the
    JSON-ready results. ``features`` (name -> FeatureMatrix aligned with the manifest) skips
    extraction, for callers that already hold them."""
    from ..splits import make_folds

    t_start = time.perf_counter()
    target = load_target(manifest, cfg)
    keep = set(target.ids)
    manifest = manifest.filter(lambda r: r.id in keep)
    speakers = [r.speaker if r.speaker is not None else r.id for r in manifest.records]

    names = list(cfg.encoders) + ([cfg.baseline] if cfg.baseline else [])
    matrices: dict[str, FeatureMatrix] = {}
    for name in names:
        if features is not None and name in features:
            matrices[name] = features[name]
        else:
            opts = dict(cfg.encoder_options) if name in cfg.encoders else {}
            matrices[name] = extract_features(manifest, name, cfg, opts)
    t_features = time.perf_counter() - t_start

    ok, failed = usable_rows(manifest, matrices)
    keep_ids = {r.id for r, k in zip(manifest.records, ok) if k}
    idx = np.flatnonzero(ok)
    manifest = manifest.filter(lambda r: r.id in keep_ids)
    y = target.values[idx]
    y_fit = target.codes[idx] if target.task == "classification" else y  # what the linear model is fitted on
    classes = target.fisher_classes[idx]
    speakers = [speakers[i] for i in idx]
    for name, m in matrices.items():
        v = m.values[idx].astype(np.float64)
        matrices[name] = FeatureMatrix(name, speaker_normalize(v, speakers) if cfg.speaker_norm else v, m.failed)

    folds = make_folds(manifest, cfg.protocol, k=cfg.folds, seed=cfg.seed, validation=0.0)
    row_of = {r.id: n for n, r in enumerate(manifest.records)}
    ids = [r.id for r in manifest.records]
    log.info("%s on %d utterances, %d speakers, %d %s folds, task %s", cfg.target, len(ids),
             len({r.speaker for r in manifest.records if r.speaker is not None}), len(folds), cfg.protocol, target.task)

    results: list[SetResult] = []
    for name, matrix in matrices.items():
        flat = matrix.values.reshape(len(ids), -1)
        for fs in feature_sets(matrix, cfg, baseline=name == cfg.baseline and name not in cfg.encoders):
            x = flat[:, fs.columns]

            def one_fold(fold, x=x, fs=fs) -> FoldResult:
                tr = np.array([row_of[i] for i in fold.train + fold.validation])
                te = np.array([row_of[i] for i in fold.test])
                pred, probs, selected = fit_predict(x[tr], y_fit[tr], classes[tr], x[te], target, cfg)
                if probs is not None:
                    pred = np.array([target.labels[c] for c in pred], dtype=object)
                rows = []
                for j, n in enumerate(te):
                    row = {"id": ids[n], "speaker": speakers[n], "features": fs.name,
                           "target": y[n], "prediction": pred[j]}
                    if probs is not None:
                        row.update({f"p_{c}": float(p) for c, p in zip(target.labels, probs[j])})
                    rows.append(row)
                return FoldResult(fold.name, target_metrics(target, y[te], pred), rows,
                                  {"selected": fs.columns[selected].tolist()})

            with threadpool_limits(cfg.fit_threads):
                cv = run_folds(folds, one_fold)
            preds = cv.predictions()
            pool = target_metrics(target, [r["target"] for r in preds], [r["prediction"] for r in preds])
            results.append(SetResult(fs, cv, pool))
            log.info("%-40s %s", fs.name, "  ".join(f"{k} {v}" for k, v in cv.table_row().items()))

    n_speakers = len({r.speaker for r in manifest.records if r.speaker is not None})
    report = _report(cfg, target, results, folds, failed, len(ids), n_speakers)
    report["timing"] = {"features_s": round(t_features, 2), "total_s": round(time.perf_counter() - t_start, 2)}
    if out_dir is not None and distributed.is_main():
        write_report(Path(out_dir), report, results, matrices, y, speakers, target, cfg)
    return report


def _report(cfg: ASRFeaturesConfig, target: Target, results: list[SetResult], folds, failed: dict[str, str],
            n: int, n_speakers: int) -> dict[str, Any]:
    main_metric = "ua" if target.task == "classification" else "ccc"
    sets = {}
    for r in results:
        sets[r.feature_set.name] = {"source": r.feature_set.source, "layers": r.feature_set.layers,
                                    "summary": r.cv.summary(), "pooled": r.pooled,
                                    "folds": [{"fold": f.fold, "metrics": f.metrics} for f in r.cv.folds]}
    best_single: dict[str, Any] = {}
    for enc in cfg.encoders:
        singles = [r for r in results if r.feature_set.source == enc and len(r.feature_set.layers) == 1]
        if singles:
            def score(r: SetResult) -> float:
                """Mean over folds; pooled when folds are too small to score (leave-one-out)."""
                v = r.cv.summary()[main_metric]["mean"]
                v = r.pooled[main_metric] if math.isnan(v) else v
                return -math.inf if math.isnan(v) else v

            best = max(singles, key=score)
            best_single[enc] = {"feature_set": best.feature_set.name, "layer": best.feature_set.layers[0],
                                main_metric: score(best)}
    return {"recipe": "asr-features", "config": asdict(cfg), "target": cfg.target, "task": target.task,
            "labels": target.labels, "utterances": n, "speakers": n_speakers, "folds": len(folds),
            "main_metric": main_metric, "feature_sets": sets, "best_single_layer": best_single,
            "failed": failed}


def results_table(report: dict[str, Any], spread: str = "std") -> str:
    """The markdown table of a report: one row per feature set, ``mean ± spread`` over folds."""
    rows = []
    metrics = _metric_columns(report)
    for name, s in report["feature_sets"].items():
        row: dict[str, Any] = {"features": name}
        for m in metrics:
            row[m] = tables.format_pm(s["summary"][m]["mean"], s["summary"][m][spread])
        for m in metrics:
            row[f"pooled {m}"] = s["pooled"][m]
        rows.append(row)
    return tables.markdown_table(rows)


def _metric_columns(report: dict[str, Any]) -> list[str]:
    """The metrics of a report's table: what its summaries hold, less ``ccc`` when it only repeats
    the one ``ccc_<target>`` (reports written before the shared metric names have ``mse``,
    ``ccc``, ``pearson``)."""
    first = next(iter(report["feature_sets"].values()), {"summary": {}})["summary"]
    names = list(first)
    return [m for m in names if not (m == "ccc" and any(n.startswith("ccc_") for n in names))]


def write_report(out: Path, report: dict[str, Any], results: list[SetResult], matrices: dict[str, FeatureMatrix],
                 y: np.ndarray, speakers: list[str], target: Target, cfg: ASRFeaturesConfig) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plot_dir = out / "plots"
    text = (f"# ASR features: {cfg.target} ({report['task']})\n\n"
            f"{report['utterances']} utterances, {report['speakers']} speakers, {report['folds']} "
            f"{cfg.protocol} folds, k = {cfg.k}; mean ± std over folds, then metrics pooled over all "
            f"test predictions.\n\n" + results_table(report))
    if report["best_single_layer"]:
        text += "\nBest single layer: " + "; ".join(
            f"{enc}: layer {b['layer']} ({report['main_metric']} {b[report['main_metric']]:.3f})"
            for enc, b in report["best_single_layer"].items()) + "\n"
    if report["failed"]:
        text += f"\n{len(report['failed'])} utterance(s) failed feature extraction (see results.json).\n"
    tables.write_markdown(out / "results.md", text)
    tables.write_json(out / "results.json", report)
    rows = [p for r in results for p in r.cv.predictions()]
    tables.write_csv(out / "predictions.csv", rows)

    # per-layer bars of the main metric, per encoder
    main = report["main_metric"]
    for enc in cfg.encoders:
        singles = {s: v for s, v in report["feature_sets"].items() if v["source"] == enc and len(v["layers"]) == 1}
        if singles:
            folded = all(math.isfinite(v["summary"][main]["mean"]) for v in singles.values())
            values = {f"L{v['layers'][0]}": v["summary"][main]["mean"] if folded else v["pooled"][main]
                      for v in singles.values()}
            errors = {f"L{v['layers'][0]}": v["summary"][main]["std"] for v in singles.values()} if folded else None
            plots.bar_plot(values, plot_dir / f"layers_{_slug(enc)}.png", errors=errors,
                           title=f"{enc}: {main} per layer ({cfg.target})",
                           ylabel=f"{main} (mean over folds)" if folded else f"{main} (pooled over folds)")
    if target.task == "classification":  # confusion matrices of the layer sets and the baseline
        for r in results:
            if len(r.feature_set.layers) == 1 and r.feature_set.source in cfg.encoders:
                continue
            preds = r.cv.predictions()
            cm = M.confusion_matrix([p["target"] for p in preds], [p["prediction"] for p in preds], target.labels)
            plots.confusion_heatmap(cm, target.labels, plot_dir / f"confusion_{_slug(r.feature_set.name)}.png",
                                    title=r.feature_set.name, normalize=True)
    if not cfg.encoders:
        return
    enc = cfg.encoders[0]
    values = matrices[enc].values
    layer_names = [f"L{i}" for i in range(values.shape[1])]
    if target.task == "regression":
        corr = per_speaker_correlations(values, y, speakers)
        counts = {s: speakers.count(s) for s in corr}
        chosen = sorted(corr, key=lambda s: (-counts[s], s))[: cfg.heatmap_speakers]
        for s in chosen:
            correlation_heatmap(corr[s], plot_dir / f"corr_{_slug(enc)}_{_slug(s)}.png",
                                title=f"{enc}: r({cfg.target}) per unit, speaker {s}", layer_names=layer_names)
        if corr:
            mean = np.nanmean(np.stack(list(corr.values())), 0)
            correlation_heatmap(mean, plot_dir / f"corr_{_slug(enc)}_mean_over_speakers.png",
                                title=f"{enc}: r({cfg.target}), mean over {len(corr)} speakers", layer_names=layer_names)
        correlation_heatmap(unit_correlations(values, y), plot_dir / f"corr_{_slug(enc)}_all.png",
                            title=f"{enc}: r({cfg.target}) over all utterances", layer_names=layer_names)
    else:
        flat = values.reshape(len(y), -1)
        f = fisher_scores(Standardizer.fit(flat, cfg.clip_sigma)(flat), y)
        plots.heatmap(np.log10(f.reshape(values.shape[1:]) + 1e-6), layer_names, None,
                      plot_dir / f"fisher_{_slug(enc)}.png", title=f"{enc}: log10 Fisher score for {cfg.target}",
                      colorbar_label="log10 F", xlabel="unit", ylabel="layer", max_ticks=16)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in str(text)).strip("_")
