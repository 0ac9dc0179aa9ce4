"""SA2SR settings: :class:`PretrainConfig` and :class:`FinetuneConfig` hold every value of the
paper as a default (and ours where the paper states none); :func:`load_config` builds one from
the defaults, a JSON file and command-line overrides. Both are saved inside every checkpoint and
as ``OUT/config.json`` of a run folder."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from ...encoders.bilstm import BiLSTMConfig
from ...features.augment import SPEED_FACTORS
from ...heads.regressor import RegressorConfig

__all__ = ["PretrainConfig", "FinetuneConfig", "RegressorConfig", "BiLSTMConfig", "load_config"]


def _from_dict(cls, d: dict[str, Any]):
    """Rebuild a (nested) config dataclass from ``asdict`` output; unknown keys are ignored."""
    kw = {}
    for f in fields(cls):
        if f.name not in d:
            continue
        v = d[f.name]
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if is_dataclass(default) and isinstance(v, dict):
            v = _from_dict(type(default), v) if not hasattr(type(default), "from_dict") else type(default).from_dict(v)
        elif isinstance(v, list):
            v = tuple(v)
        kw[f.name] = v
    return cls(**kw)


@dataclass
class PretrainConfig:
    """SA2SR pre-training. Defaults are the paper's (batch size and epoch cap are not stated
    there and are ours)."""

    encoder: str = "bilstm"  # or any emovox.encoders.load_encoder name, e.g. "whisper-tiny.en"
    bilstm: BiLSTMConfig = field(default_factory=BiLSTMConfig)
    vocab: str = "english"  # "english" (29 characters) or "auto" (characters of the transcripts)
    sentiment_weight: float = 200.0  # lambda; 0 = ASR-only baseline
    # L_CTC per utterance (summed over its characters, averaged over the batch): lambda = 200 only
    # balances a cross entropy of about 1 against a loss of that scale; per character (about 3)
    # it would leave the encoder a sentiment classifier. "character" = PyTorch's "mean".
    ctc_reduction: str = "utterance"
    sentiment_hidden: int = 128
    speeds: tuple[float, ...] = SPEED_FACTORS
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 32
    max_epochs: int = 200
    max_steps: int | None = None
    max_minutes: float | None = None  # wall-clock budget of one run (resume continues)
    patience: int = 25  # evaluations (epochs) without improvement of the monitor before stopping
    grad_clip: float | None = None
    max_seconds: float = 30.0  # longer training clips are skipped (memory)
    validation_fraction: float = 0.1  # held out per manifest that has no validation split
    limit: int | None = None  # use at most this many utterances per manifest (reduced budgets)
    seed: int = 0
    save_every: int | None = 200

    @property
    def monitor(self) -> str:
        """M = CER - AUC (minimised); CER alone for the ASR-only baseline."""
        return "m" if self.sentiment_weight > 0 else "cer"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PretrainConfig":
        return _from_dict(cls, d)


@dataclass
class FinetuneConfig:
    """Emotion fine-tuning. Regressor and loss are the paper's; the optimiser settings, epochs
    and folds are not stated there and are ours."""

    encoder: str = "bilstm"  # a pre-training output (folder, sa2sr.pt, encoder.pt) or encoder name
    no_pretraining: bool = False  # random initialisation (baseline)
    freeze_encoder: bool = False
    layer: int = -1  # which hidden state feeds the regressor
    task: str = "attributes"  # "attributes" | "ordinal" | "categorical"
    label: str = "emotion"  # categorical/ordinal label name (e.g. emotion, level)
    attributes: tuple[str, ...] = ("arousal", "valence", "dominance")
    regressor: RegressorConfig = field(default_factory=RegressorConfig)
    class_weighted: bool = True  # categorical: balanced class weights in the cross entropy
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 32
    max_epochs: int = 50
    max_steps: int | None = None
    patience: int = 10  # evaluations (epochs) without improvement of the monitor before stopping
    protocol: str = "kfold"
    folds: int = 5
    run_folds: int | None = None  # run only the first N folds (reduced budgets)
    validation_fraction: float = 0.1
    max_seconds: float = 30.0  # clips are cut to this length
    cache_frozen: bool = True  # frozen encoder: compute its states once and train the head on them
    seed: int = 0

    @property
    def monitor(self) -> str:
        """The validation metric (emovox.evaluate.metrics.compute_metrics name) kept at its
        maximum: unweighted average recall for categories, the mean CCC otherwise."""
        return "ua" if self.task == "categorical" else "ccc"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FinetuneConfig":
        return _from_dict(cls, d)


def load_config(cls, path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None):
    """A config: the class defaults, then a JSON file's values, then ``overrides`` (dotted keys
    such as ``"bilstm.layers"``; None values are skipped), so the command line wins."""
    d = asdict(cls())
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: config file not found")
        try:
            given = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from e
        _merge(d, given, str(p))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        *parents, last = key.split(".")
        node = d
        for k in parents:
            node = node[k]
        if last not in node:
            raise ValueError(f"unknown config key {key!r}")
        node[last] = value
    return cls.from_dict(d)


def _merge(base: dict[str, Any], given: dict[str, Any], source: str, prefix: str = "") -> None:
    for k, v in given.items():
        if k not in base:
            raise ValueError(f"{source}: unknown config key {prefix + k!r} (known: {sorted(base)})")
        if isinstance(base[k], dict) and isinstance(v, dict):
            _merge(base[k], v, source, prefix + k + ".")
        else:
            base[k] = v
