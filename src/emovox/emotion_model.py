"""The emotion model file: a trained :class:`~emovox.heads.probe.Probe` plus everything needed to
use it (encoder name and options, label set, attribute names, version, training notes).

The bundled default (``default_model_path()``) is the MLP head on the first 3 blocks of Whisper
base, trained on seven corpora by ``emovox train-default`` (the recipe is
:mod:`emovox.recipes.default_model`; see docs/MODEL_CARD.md)::

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

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .heads.probe import Probe, ProbeConfig
from .utils import atomic_torch_save, read_torch

FORMAT = "emovox-emotion-model"
FORMAT_VERSION = 1
DEFAULT_MODEL_FILE = "emotion-whisper-base.pt"


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
    temperature: float = 1.0  # calibration: probabilities are softmax(logits / temperature)
    member_temperatures: list[float] = field(default_factory=list)  # an ensemble: logits = mean(l_i / t_i)
    version: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # training data, targets, metrics, licence


def adapt_to_recording(pooled: np.ndarray, train_mean: np.ndarray) -> np.ndarray:
    """Per-recording adaptation: shift the pooled features (N, L, D) of one recording's segments
    so that their mean is the training features' mean (L, D). It removes what all segments
    share (voice, microphone, room, language) and keeps how they differ; it hurts when they
    differ little (one emotion throughout) and means nothing for one segment (unchanged)."""
    x = np.asarray(pooled, dtype=np.float32)
    if len(x) < 2:
        return x
    return (x - x.mean(0, keepdims=True) + np.asarray(train_mean, np.float32)[None]).astype(np.float32)


def combine_members(outputs: Sequence[tuple[torch.Tensor | None, torch.Tensor | None]],
                    temperatures: Sequence[float]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """An ensemble's ``(logits, attributes)`` from its members' (absent heads: None): the mean of
    the calibrated logits ``l_i / t_i`` and the mean of the attributes. The one definition, for the
    model file and for the benchmark that chooses it."""
    logits, attributes = zip(*outputs)
    return (torch.stack([lg / t for lg, t in zip(logits, temperatures)]).mean(0) if logits[0] is not None else None,
            torch.stack(attributes).mean(0) if attributes[0] is not None else None)


class EmotionModel(nn.Module):
    """Emotion heads on pooled encoder features. ``forward(pooled (B, L, D)) -> (probs (B, C),
    dims (B, K))``, the tensor form used for ONNX export; :meth:`predict_from_pooled` is the dict
    form used by the predictor."""

    def __init__(self, probe: Probe | Sequence[Probe], config: EmotionModelConfig):
        super().__init__()
        probes = [probe] if isinstance(probe, Probe) else list(probe)
        pc = probes[0].config
        if any(p.config != pc for p in probes):
            raise ValueError("EmotionModel: the members of an ensemble must share one probe config")
        if len(probes) > 1 and len(config.member_temperatures) != len(probes):
            raise ValueError(f"EmotionModel: {len(probes)} members and {len(config.member_temperatures)} "
                             "member temperatures")
        if config.labels and len(config.labels) != pc.num_classes:
            raise ValueError(f"EmotionModel: {len(config.labels)} labels for {pc.num_classes} probe classes")
        if len(config.attributes) != pc.num_attributes:
            raise ValueError(f"EmotionModel: {len(config.attributes)} attributes for {pc.num_attributes} outputs")
        self.members = nn.ModuleList(probes)
        self.config = config
        self.config.probe = asdict(pc)
        if len(probes) == 1:
            self.config.member_temperatures = []

    @property
    def probe(self) -> Probe:
        """The (first) member: its input normaliser holds the training features' mean."""
        return self.members[0]

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
        outs = [(o.logits, o.attributes) for o in (m(pooled) for m in self.members)]
        logits, attributes = outs[0] if len(outs) == 1 else combine_members(outs, self.config.member_temperatures)
        B = pooled.shape[0]
        probs = (logits / self.config.temperature).softmax(-1) if logits is not None else pooled.new_zeros(B, 0)
        dims = attributes.clamp(-1.0, 1.0) if attributes is not None else pooled.new_zeros(B, 0)
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
        # one member: the Probe's own keys (files of every emovox); an ensemble: "<member>.<key>"
        source = self.probe.state_dict() if len(self.members) == 1 else self.members.state_dict()
        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in source.items()}
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
        probes = [Probe(ProbeConfig(**config.probe)) for _ in range(max(1, len(config.member_temperatures)))]
        try:
            (probes[0] if len(probes) == 1 else nn.ModuleList(probes)).load_state_dict(blob["state_dict"])
        except RuntimeError as e:
            raise ValueError(f"{path}: weights do not match the stored probe config ({e})") from e
        return cls(probes, config).to(device).eval()
