"""The emotion model file: a trained :class:`~emovox.heads.probe.Probe` plus everything needed to
use it (encoder name and options, label set, attribute names, version, training notes).

The bundled default (``default_model_path()``) is the probe on Whisper tiny.en trained on RAVDESS
by ``emovox train-default`` (see docs/MODEL_CARD.md)::

    model = EmotionModel.load(default_model_path())
    encoder = load_encoder(model.encoder_name, **model.encoder_options)
    out = model.predict_from_pooled(encoder(audio, lengths).pooled())   # pooled (B, L, D)
    out["probs"]   # (B, C) emotion probabilities in the order of model.labels
    out["dims"]    # (B, 3) valence, arousal, dominance in [-1, 1] (model.attributes)

File format: ``torch.save`` of a dict of plain types and tensors (readable with
``torch.load(..., weights_only=True)``): ``{"format": "emovox-emotion-model", "format_version": 1,
"config": {...}, "state_dict": {...}}``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .heads.probe import Probe, ProbeConfig
from .utils import atomic_torch_save, read_torch

FORMAT = "emovox-emotion-model"
FORMAT_VERSION = 1
DEFAULT_MODEL_FILE = "emotion-whisper-tiny.en.pt"


def default_model_path() -> Path:
    """The bundled default model inside the installed package (``emovox/assets``)."""
    return Path(__file__).resolve().parent / "assets" / DEFAULT_MODEL_FILE


@dataclass
class EmotionModelConfig:
    """What a model file says about itself."""

    encoder: str = "whisper-tiny.en"
    encoder_options: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)  # category vocabulary, logits order
    attributes: list[str] = field(default_factory=lambda: ["valence", "arousal", "dominance"])
    probe: dict[str, Any] = field(default_factory=dict)  # ProbeConfig fields
    version: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # training data, targets, metrics, licence


class EmotionModel(nn.Module):
    """Emotion heads on pooled encoder features. ``forward(pooled (B, L, D)) -> (probs (B, C),
    dims (B, K))``, the tensor form used for ONNX export; :meth:`predict_from_pooled` is the dict
    form used by the predictor."""

    def __init__(self, probe: Probe, config: EmotionModelConfig):
        super().__init__()
        pc = probe.config
        if config.labels and len(config.labels) != pc.num_classes:
            raise ValueError(f"EmotionModel: {len(config.labels)} labels for {pc.num_classes} probe classes")
        if len(config.attributes) != pc.num_attributes:
            raise ValueError(f"EmotionModel: {len(config.attributes)} attributes for {pc.num_attributes} outputs")
        self.probe = probe
        self.config = config
        self.config.probe = asdict(pc)

    # attributes the predictor reads
    @property
    def encoder_name(self) -> str:
        return self.config.encoder

    @property
    def encoder_options(self) -> dict[str, Any]:
        return dict(self.config.encoder_options)

    @property
    def labels(self) -> list[str]:
        return list(self.config.labels)

    @property
    def attributes(self) -> list[str]:
        return list(self.config.attributes)

    @property
    def version(self) -> str:
        return self.config.version

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.probe(pooled)
        B = pooled.shape[0]
        probs = out.logits.softmax(-1) if out.logits is not None else pooled.new_zeros(B, 0)
        dims = out.attributes.clamp(-1.0, 1.0) if out.attributes is not None else pooled.new_zeros(B, 0)
        return probs, dims

    @torch.no_grad()
    def predict_from_pooled(self, pooled: torch.Tensor | np.ndarray) -> dict[str, Any]:
        """pooled (B, L, D) per-layer means -> ``{"probs": (B, C), "dims": (B, K), "labels",
        "attributes"}`` (tensors; ``emotion``/``vad`` are aliases of ``probs``/``dims``)."""
        x = torch.as_tensor(np.asarray(pooled, np.float32) if isinstance(pooled, np.ndarray) else pooled)
        if x.dim() == 2:
            x = x[None]
        was = self.training
        self.eval()
        try:
            probs, dims = self(x.to(self.probe.feature_mean.device, torch.float32))
        finally:
            self.train(was)
        return {"probs": probs, "dims": dims, "emotion": probs, "vad": dims,
                "labels": self.labels, "attributes": self.attributes}

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model file atomically; weights are stored as float32 CPU tensors."""
        path = Path(path)
        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.probe.state_dict().items()}
        atomic_torch_save({"format": FORMAT, "format_version": FORMAT_VERSION,
                           "config": asdict(self.config), "state_dict": state}, path)
        os.chmod(path, 0o644)  # a model file is meant to be read by others (mkstemp makes 0600)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> "EmotionModel":
        """Read a model file (default: the bundled model); errors name the file and the cause."""
        path = Path(path) if path is not None else default_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"emotion model not found: {path}")
        blob = read_torch(path, "an emotion model file")
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"{path}: not an emovox emotion model (format {blob.get('format') if isinstance(blob, dict) else type(blob).__name__!r})")
        if blob.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{path}: format version {blob['format_version']} is newer than this emovox "
                             f"reads ({FORMAT_VERSION}); upgrade emovox")
        config = EmotionModelConfig(**blob["config"])
        probe = Probe(ProbeConfig(**config.probe))
        try:
            probe.load_state_dict(blob["state_dict"])
        except RuntimeError as e:
            raise ValueError(f"{path}: weights do not match the stored probe config ({e})") from e
        return cls(probe, config).to(device).eval()


# ============================================================================ the default model
EMOTION_VAD: dict[str, tuple[float, float, float]] = {
    # (valence, arousal, dominance) in [-1, 1]: Russell & Mehrabian (1977)-style pleasure-arousal-
    # dominance coordinates of emotion terms as commonly tabulated in affective computing
    # (calm = "relaxed"; neutral = the origin). Approximate prototype values, not ratings.
    "neutral": (0.0, 0.0, 0.0),
    "calm": (0.68, -0.46, 0.06),
    "happy": (0.81, 0.51, 0.46),
    "sad": (-0.63, -0.27, -0.33),
    "angry": (-0.51, 0.59, 0.25),
    "fearful": (-0.64, 0.60, -0.43),
    "disgust": (-0.60, 0.35, 0.11),
    "surprised": (0.40, 0.67, -0.13),
}
INTENSITY_SCALE = {"normal": 0.75, "strong": 1.0}
"""RAVDESS intensity -> factor on the category's coordinates (a strong portrayal is further
from neutral than a normal one)."""


def category_vad(manifest, table: dict[str, tuple[float, float, float]] = EMOTION_VAD,
                 intensity: dict[str, float] = INTENSITY_SCALE) -> dict[str, list[float]]:
    """Category-derived valence/arousal/dominance targets (id -> [v, a, d] in [-1, 1]): the
    emotion's prototype coordinates times the intensity factor (1 when there is no intensity).
    Utterances whose emotion is not in ``table`` get no targets."""
    out = {}
    for utt in manifest:
        if utt.emotion in table:
            f = intensity.get(utt.get("intensity"), 1.0)
            out[utt.id] = [f * v for v in table[utt.emotion]]
    return out


def train_emotion_model(manifest, features, attribute_values: dict[str, list[float]] | None = None,
                        cfg=None, cv_folds: int = 6, epochs: int | None = None, version: str = "",
                        meta: dict[str, Any] | None = None) -> tuple["EmotionModel", dict[str, Any]]:
    """The default model's recipe: the probe with an emotion head and a valence/arousal/dominance
    head on pooled encoder ``features`` (id -> (L, D)).

    1. ``cv_folds``-fold speaker-grouped cross-validation (no speaker normalisation: a deployed
       model never sees the speaker's other utterances) measures accuracy and the epoch at which
       validation peaked; 2. the final probe is trained on every speaker for the median of those
       epochs (or ``epochs``). Returns the model and a JSON-ready report.
    """
    from .recipes.probe import ProbeRecipeConfig, build_data, run_variant, train_probe
    from .splits import make_folds

    cfg = cfg or ProbeRecipeConfig(attributes=list(ATTRIBUTE_NAMES), speaker_norm="off")
    data = build_data(manifest, features, cfg.target, cfg.attributes, attribute_values)
    report: dict[str, Any] = {"utterances": len(data.ids), "speakers": len(set(data.speakers)),
                              "feature_shape": list(data.x.shape[1:]), "config": asdict(cfg)}
    if cv_folds and cv_folds > 1:
        kept = set(data.ids)
        folds = make_folds(manifest.filter(lambda u: u.id in kept), "kfold", k=cv_folds, seed=cfg.seed,
                           validation=cfg.validation)
        cv = run_variant(data, folds, cfg, "default")
        report["cross_validation"] = cv
        steps = [f["best_step"] for f in cv["folds"] if f.get("best_step")]
        per_epoch = [max(1, -(-f["train"] // cfg.batch_size)) for f in cv["folds"] if f.get("best_step")]
        if epochs is None and steps:
            epochs = int(np.ceil(np.median([s / p for s, p in zip(steps, per_epoch)])))
    epochs = int(epochs or cfg.max_epochs)
    report["final_epochs"] = epochs
    probe, _ = train_probe(data, None, cfg, max_epochs=epochs)
    config = EmotionModelConfig(encoder=cfg.features, encoder_options=dict(cfg.feature_options),
                                labels=list(data.labels), attributes=list(data.attributes),
                                version=version, meta={**(meta or {}), "epochs": epochs,
                                                       "utterances": len(data.ids)})
    if "cross_validation" in report:
        config.meta["cross_validation"] = {k: v for k, v in report["cross_validation"]["probe"].items()}
    return EmotionModel(probe, config), report


ATTRIBUTE_NAMES = ("valence", "arousal", "dominance")


def speech_trimmed(manifest, suffix: str = "#speech", vad_config=None):
    """Copies of the utterances cut to their speech (first to last VAD segment, as the predictor
    segments recordings), with ids ``<id><suffix>``; clips where no speech is found are left out.
    Training on whole clips *and* these copies keeps the time-averaged features consistent with
    what the predictor feeds the model (the mean over time is sensitive to leading silence)."""
    from dataclasses import replace

    from .audio import AudioError
    from .utils import progress
    from .vad import segment_file

    out = []
    for utt in progress(manifest.records, desc="speech trimming", unit="file"):
        try:
            segs = list(segment_file(manifest.audio_path(utt), vad_config, keep_audio=False))
        except AudioError as e:
            logging.getLogger("emovox.emotion_model").warning("%s", e)
            continue
        if not segs:
            continue
        base = utt.start or 0.0
        start, end = base + segs[0].start, base + segs[-1].end
        if utt.end is not None:
            end = min(end, utt.end)
        out.append(replace(utt, id=f"{utt.id}{suffix}", start=round(start, 3), end=round(end, 3),
                           duration=round(end - start, 3)))
    return manifest.replace(out)
