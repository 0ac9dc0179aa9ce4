"""ONNX export of the emotion path (Whisper encoder + heads), read back by
:class:`emovox.scoring.OnnxScorer` (``emovox predict --backend onnx``).

``export_onnx(model_path, out_dir)`` writes three files:

* ``encoder.onnx``: ``mel (1, n_mels, F)`` float32 log-mel window (at most 3000 frames, 30 s)
  and ``valid (1,)`` int64 encoder frames that cover audio -> ``pooled (1, layers, dim)``, the
  mean over those frames of every hidden state (as ``EncoderOutput.pooled()``);
* ``heads.onnx``: ``pooled (B, layers, dim)`` -> ``probs (B, C)`` category probabilities and
  ``dims (B, K)`` valence/arousal/dominance (``EmotionModel.forward``);
* ``meta.json``: labels, attributes, encoder name and options, model version and the SHA-256 of
  the model file the export came from (a stale export is detected and redone by
  :func:`ensure_onnx`).

The log-mel spectrogram stays in PyTorch (``emovox.encoders.whisper.log_mel_spectrogram``):
ONNX has no portable STFT at opset 17 on every runtime. :func:`emovox.scoring.compare` measures
the largest difference between the two backends.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .utils import atomic_open, cache_dir, file_digest, write_json

log = logging.getLogger("emovox.export")

FILES = ("encoder.onnx", "heads.onnx", "meta.json")
OPSET = 17


class PooledWindowEncoder(nn.Module):
    """One log-mel window -> per-layer means over its first ``valid`` encoder frames."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, mel: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        lengths = torch.full((mel.shape[0],), mel.shape[-1], dtype=torch.long)
        states = self.encoder.encode_windows(mel, lengths)  # list of (1, T, D)
        t = states[0].shape[1]
        # not tensors.lengths_to_mask: its int(max_len) would freeze T into the traced graph
        m = (torch.arange(t)[None, :] < valid[:, None]).to(mel.dtype).unsqueeze(-1)  # (1, T, 1)
        denom = m.sum(1).clamp_min(1.0)
        return torch.stack([(h * m).sum(1) / denom for h in states], dim=1)


@dataclass
class ExportResult:
    out_dir: Path
    encoder: Path
    heads: Path
    meta: dict


def export_onnx(model_path: str | os.PathLike | None, out_dir: str | os.PathLike, opset: int = OPSET,
                quantize: str | None = None) -> ExportResult:
    """Export the encoder and heads of an emotion model file (default: the bundled one).

    ``quantize="int8"``: dynamic int8 quantisation of the encoder's weights (ONNX Runtime's
    ``quantize_dynamic``): faster on CPU, features within about 0.1% (cosine) of float32."""
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    from .emotion_model import EmotionModel, default_model_path
    from .encoders import load_encoder

    model_path = Path(model_path) if model_path is not None else default_model_path()
    heads = EmotionModel.load(model_path).eval()
    encoder = load_encoder(heads.encoder_name, **heads.encoder_options).eval()
    if not hasattr(encoder, "encode_windows"):
        raise ValueError(f"ONNX export supports Whisper encoders; {heads.encoder_name} is not one")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_mels = encoder.dims.n_mels
    frames = 300  # example window: 3 s; the time axis is dynamic
    mel = torch.randn(1, n_mels, frames)
    valid = torch.tensor([frames // 2], dtype=torch.long)
    _export(PooledWindowEncoder(encoder).eval(), (mel, valid), out_dir / "encoder.onnx", ["mel", "valid"],
            ["pooled"], {"mel": {2: "frames"}}, opset)
    if quantize == "int8":
        _quantize_int8(out_dir / "encoder.onnx")
    pooled = torch.randn(2, encoder.num_layers, encoder.dim)
    _export(heads, (pooled,), out_dir / "heads.onnx", ["pooled"], ["probs", "dims"],
            {"pooled": {0: "batch"}, "probs": {0: "batch"}, "dims": {0: "batch"}}, opset)
    meta = {"labels": heads.labels, "attributes": heads.attributes, "encoder": heads.encoder_name,
            "feature_mean": heads.probe.feature_mean.tolist(),
            "encoder_options": heads.encoder_options, "pad_to_30s": bool(getattr(encoder, "pad_to_30s", False)),
            "n_mels": n_mels, "window_frames": int(encoder.window_frames), "layers": encoder.num_layers,
            "dim": encoder.dim, "version": heads.version, "model_file": str(model_path),
            "model_sha256": file_digest(model_path), "opset": opset, "quantize": quantize,
            "torch": torch.__version__}
    write_json(out_dir / "meta.json", meta)
    return ExportResult(out_dir, out_dir / "encoder.onnx", out_dir / "heads.onnx", meta)


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic_axes: dict, opset: int) -> None:
    """TorchScript-based export (no onnxscript needed) into a temporary file, then renamed."""
    import warnings

    with atomic_open(path, "wb") as f, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python bools on shapes
        torch.onnx.export(module, args, f, input_names=inputs, output_names=outputs, dynamic_axes=dynamic_axes,
                          opset_version=opset, dynamo=False, do_constant_folding=True)


def _quantize_int8(path: Path) -> None:
    """Replace an ONNX file by its dynamically int8-quantised version (weights of MatMul/Gemm)."""
    import logging as _logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_name(f".{path.stem}.int8.onnx")
    root = _logging.getLogger()
    level = root.level
    root.setLevel(_logging.ERROR)  # quantize_dynamic warns about optional pre-processing on the root logger
    try:
        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    os.replace(tmp, path)


def default_onnx_dir(model_path: Path, quantize: str | None = None) -> Path:
    tag = f"-{quantize}" if quantize else ""
    return cache_dir("onnx", f"{model_path.stem}-{file_digest(model_path)[:12]}{tag}")


def ensure_onnx(model_path: str | os.PathLike | None, onnx_dir: str | os.PathLike | None = None,
                quantize: str | None = None) -> Path:
    """The folder of an up-to-date export of ``model_path``: ``onnx_dir`` when given (it must
    hold an export of this very model file; its own quantisation is used), else a cache folder
    exported on first use (``quantize="int8"``: the int8 encoder)."""
    from .emotion_model import default_model_path

    model_path = Path(model_path) if model_path is not None else default_model_path()
    if onnx_dir is not None:
        d = Path(onnx_dir)
        missing = [f for f in FILES if not (d / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{d}: not an emovox ONNX export (missing {', '.join(missing)}); "
                                    f"run 'emovox export onnx -o {d}'")
        meta = json.loads((d / "meta.json").read_text())
        if meta.get("model_sha256") != file_digest(model_path):
            raise ValueError(f"{d}: exported from another model file ({meta.get('model_file')}); "
                             f"re-export with 'emovox export onnx --model {model_path} -o {d}'")
        return d
    d = default_onnx_dir(model_path, quantize)
    if not all((d / f).is_file() for f in FILES):
        log.info("exporting %s to ONNX in %s (once)", model_path.name, d)
        export_onnx(model_path, d, quantize=quantize)
    return d
