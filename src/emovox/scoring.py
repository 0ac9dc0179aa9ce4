"""Audio segments -> emotion head outputs, on PyTorch or ONNX Runtime behind one protocol.

An :class:`EmotionScorer` maps a list of (samples,) 16 kHz float32 segments to
:class:`EmotionScores`: per-segment valence/arousal/dominance and category probabilities.

* :class:`TorchScorer`: the Whisper encoder (one pass per segment) and the
  :class:`~emovox.emotion_model.EmotionModel` heads on the per-layer means over time of its
  hidden states (``EncoderOutput.pooled()``, (B, layers, dim));
* :class:`OnnxScorer`: the same path from the files ``emovox export onnx`` writes
  (``encoder.onnx``, ``heads.onnx``, ``meta.json``); the log-mel spectrogram stays in PyTorch.
  Segments longer than one 30 s window are cut into windows as the PyTorch encoder does, and
  the window means are combined weighted by their frame counts.

:data:`BACKENDS` names the choices ``emovox.load(backend=...)`` accepts; :func:`make_scorer`
builds the scorer of a backend (exporting to ONNX into the cache on first use) and
:func:`compare` measures the largest difference between the two.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

BACKENDS = ("torch", "onnx", "onnx-int8")


@dataclass
class EmotionScores:
    """Head outputs for a batch: ``dims`` (B, K) attribute values named by ``attributes``
    (valence, arousal, dominance), ``probs`` (B, C) category probabilities named by ``labels``."""

    dims: np.ndarray
    probs: np.ndarray
    labels: list[str]
    attributes: list[str] = field(default_factory=lambda: ["valence", "arousal", "dominance"])


class EmotionScorer(Protocol):
    """Audio segments -> emotion head outputs. :class:`TorchScorer` and :class:`OnnxScorer`."""

    version: str

    def score(self, audios: Sequence[np.ndarray]) -> EmotionScores: ...

    def features(self, audios: Sequence[np.ndarray]) -> np.ndarray:
        """(B, layers, dim) pooled features: what :meth:`score_features` reads."""
        ...

    def score_features(self, pooled: np.ndarray) -> EmotionScores: ...

    def training_mean(self) -> np.ndarray | None:
        """(layers, dim) mean of the features the heads were trained on (for adaptation)."""
        ...


def _scores(out: dict[str, Any]) -> EmotionScores:
    """``EmotionModel.predict_from_pooled``'s dict -> :class:`EmotionScores` (numpy)."""

    def arr(x):
        return x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, np.float32)

    return EmotionScores(dims=arr(out["dims"]), probs=arr(out["probs"]), labels=list(out["labels"]),
                         attributes=list(out.get("attributes") or ["valence", "arousal", "dominance"]))


class TorchScorer:
    """The Whisper encoder (PyTorch, one pass per segment) and the emotion heads on the
    per-layer means of its hidden states.

    ``heads.predict_from_pooled(pooled (B, layers, dim))`` gives V/A/D and category
    probabilities. ``batch_size`` segments are encoded together (1 by default: no padding,
    so features match the per-utterance features the heads were trained on).
    """

    def __init__(self, encoder, heads, version: str = "", batch_size: int = 1):
        self.encoder = encoder.eval()
        self.heads = heads.eval() if hasattr(heads, "eval") else heads
        self.version = version
        self.batch_size = max(1, int(batch_size))

    def pooled(self, audios: Sequence[np.ndarray]):
        """(B, layers, dim) float32 tensor of per-layer means for a list of (samples,) arrays."""
        import torch

        outs = []
        for i in range(0, len(audios), self.batch_size):
            part = audios[i:i + self.batch_size]
            n = max(len(a) for a in part)
            x = torch.zeros(len(part), n)
            for j, a in enumerate(part):
                x[j, : len(a)] = torch.from_numpy(np.asarray(a, np.float32))
            lengths = torch.tensor([len(a) for a in part])
            with torch.inference_mode():
                outs.append(self.encoder(x, lengths).pooled().float())
        return torch.cat(outs)

    def features(self, audios: Sequence[np.ndarray]) -> np.ndarray:
        return self.pooled(audios).numpy()

    def score_features(self, pooled: np.ndarray) -> EmotionScores:
        import torch

        with torch.inference_mode():
            return _scores(self.heads.predict_from_pooled(torch.from_numpy(np.asarray(pooled, np.float32))))

    def training_mean(self) -> np.ndarray | None:
        return self.heads.probe.feature_mean.detach().cpu().numpy()

    def score(self, audios: Sequence[np.ndarray]) -> EmotionScores:
        return self.score_features(self.features(audios))


class OnnxScorer:
    """The emotion path on ONNX Runtime: log-mel (PyTorch) -> encoder.onnx -> heads.onnx.

    Same interface as :class:`TorchScorer`: ``score(list of (samples,) 16 kHz arrays) ->
    EmotionScores``. ``onnx_dir`` holds an export made by ``emovox.export.export_onnx``."""

    def __init__(self, onnx_dir: str | os.PathLike, version: str = "", threads: int = 2):
        import onnxruntime as ort

        d = Path(onnx_dir)
        self.meta = json.loads((d / "meta.json").read_text())
        self.version = version or self.meta.get("version", "")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(str(d / "encoder.onnx"), sess_options=opts, providers=providers)
        self.heads = ort.InferenceSession(str(d / "heads.onnx"), sess_options=opts, providers=providers)
        from .encoders.whisper import mel_filters

        self._filters = mel_filters(int(self.meta["n_mels"]))

    def pooled(self, audio: np.ndarray) -> np.ndarray:
        """(layers, dim) per-layer means of one segment."""
        import torch

        from .encoders.whisper import HOP_LENGTH, log_mel_spectrogram

        wf = int(self.meta["window_frames"])
        pad_30 = bool(self.meta.get("pad_to_30s"))
        x = torch.from_numpy(np.asarray(audio, np.float32))
        if len(x) < HOP_LENGTH:
            raise ValueError(f"audio too short for Whisper: {len(x)} samples (< {HOP_LENGTH}, 10 ms)")
        with torch.no_grad():
            mel = log_mel_spectrogram(x, int(self.meta["n_mels"]), wf * HOP_LENGTH if pad_30 else 0, self._filters)
        content = len(x) // HOP_LENGTH
        sums, total = 0.0, 0
        for start in range(0, content, wf):
            frames = min(wf, content - start)
            window = mel[:, start:start + (wf if pad_30 else frames)].numpy()[None]
            valid = (frames + 1) // 2
            out = self.encoder.run(["pooled"], {"mel": np.ascontiguousarray(window, np.float32),
                                                "valid": np.array([valid], np.int64)})[0][0]
            sums = sums + out * valid
            total += valid
        return (sums / max(total, 1)).astype(np.float32)

    def features(self, audios: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self.pooled(a) for a in audios])

    def training_mean(self) -> np.ndarray | None:
        mean = self.meta.get("feature_mean")  # exports made before adaptation existed lack it
        return None if mean is None else np.asarray(mean, np.float32)

    def score(self, audios: Sequence[np.ndarray]) -> EmotionScores:
        return self.score_features(self.features(audios))

    def score_features(self, pooled: np.ndarray) -> EmotionScores:
        pooled = np.ascontiguousarray(pooled, np.float32)
        probs, dims = self.heads.run(["probs", "dims"], {"pooled": pooled})
        return EmotionScores(dims=dims, probs=probs, labels=list(self.meta["labels"]),
                             attributes=list(self.meta["attributes"]))


def make_scorer(model_path: Path, heads, backend: str = "torch", *, onnx_dir: str | os.PathLike | None = None,
                device: str = "cpu", threads: int = 2, batch_size: int = 16, version: str = "") -> EmotionScorer:
    """The scorer of ``backend`` for the emotion model at ``model_path`` (``heads`` loaded from
    it). ONNX backends read ``onnx_dir``, or an export made into the cache on first use."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend.startswith("onnx"):
        from .export import ensure_onnx

        quantize = "int8" if backend == "onnx-int8" else None
        return OnnxScorer(ensure_onnx(model_path, onnx_dir, quantize=quantize), version=version, threads=threads)
    from .encoders import load_encoder

    encoder = load_encoder(heads.encoder_name, device=device, **heads.encoder_options)
    return TorchScorer(encoder, heads, version=version, batch_size=batch_size)


def compare(model_path: str | os.PathLike | None, onnx_dir: str | os.PathLike,
            audios: Sequence[np.ndarray]) -> dict[str, float]:
    """Largest absolute differences between PyTorch and ONNX Runtime on the same segments:
    pooled features, probabilities and attribute values."""
    from .emotion_model import EmotionModel, default_model_path
    from .encoders import load_encoder

    model_path = Path(model_path) if model_path is not None else default_model_path()
    heads = EmotionModel.load(model_path)
    torch_scorer = TorchScorer(load_encoder(heads.encoder_name, **heads.encoder_options), heads)
    onnx_scorer = OnnxScorer(onnx_dir)
    p_t = torch_scorer.pooled(audios).numpy()
    p_o = np.stack([onnx_scorer.pooled(a) for a in audios])
    s_t, s_o = torch_scorer.score(audios), onnx_scorer.score(audios)
    return {"pooled": float(np.abs(p_t - p_o).max()), "probs": float(np.abs(s_t.probs - s_o.probs).max()),
            "dims": float(np.abs(s_t.dims - s_o.dims).max()) if s_t.dims.size else 0.0}
