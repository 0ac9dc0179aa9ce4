"""Hugging Face speech encoders (WavLM, wav2vec 2.0, HuBERT, ...) behind the one interface.

For users who have the papers' models (``microsoft/wavlm-base`` needs network; a local
``save_pretrained`` folder does not). ``transformers.AutoModel`` runs with
``output_hidden_states=True``; ``hidden_states[0]`` is the CNN feature projection with positions
(the model's own convention) and ``hidden_states[i]`` transformer layer ``i``. Frame lengths come
from the model's convolution arithmetic; the frame rate is 16000 / (product of conv strides),
50 Hz for the wav2vec 2.0 family. Whisper checkpoints do not come here: they are ported into
:class:`emovox.encoders.whisper.WhisperEncoder`.

Models whose first convolution uses group norm over the whole input (``feat_extract_norm ==
"group"``, e.g. wav2vec2-base, WavLM-base) see padding, so a padded batch is run item by item to
give each item the same states as alone; layer-norm models run batched with an attention mask.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ..tensors import lengths_to_mask
from .base import Encoder, EncoderOutput


class HFEncoder(Encoder):
    """``forward(audio (B, S) 16 kHz, lengths (B,)) -> EncoderOutput`` with ``num_hidden_layers
    + 1`` states of ``(B, T, hidden_size)``. ``normalize``: zero-mean unit-variance per clip
    before the model (None: as the checkpoint's feature-extractor config says, else False)."""

    def __init__(self, model: torch.nn.Module, name: str, normalize: bool | None = None):
        super().__init__()
        self.model = model
        self.name = name
        cfg = model.config
        strides = getattr(cfg, "conv_stride", None) or [320]
        self.frame_rate = self.sample_rate / math.prod(strides)
        self.num_layers = int(cfg.num_hidden_layers) + 1
        self.dim = int(cfg.hidden_size)
        self.normalize = bool(normalize)
        self.per_item = getattr(cfg, "feat_extract_norm", "layer") == "group"

    def config(self) -> dict:
        return {"name": self.name, "normalize": self.normalize, "layers": self.num_layers, "dim": self.dim}

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        get = getattr(self.model, "_get_feat_extract_output_lengths", None)
        if get is not None:
            return get(lengths).long()
        return (lengths.float() * self.frame_rate / self.sample_rate).floor().long()

    def _run(self, audio: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor]:
        if self.normalize:
            m = mask.float() if mask is not None else torch.ones_like(audio)
            n = m.sum(1, keepdim=True).clamp_min(1)
            mean = (audio * m).sum(1, keepdim=True) / n
            var = (((audio - mean) * m) ** 2).sum(1, keepdim=True) / n
            audio = (audio - mean) / torch.sqrt(var + 1e-7) * m
        kwargs = {"attention_mask": mask.long()} if mask is not None else {}
        out = self.model(audio, output_hidden_states=True, return_dict=True, **kwargs)
        return list(out.hidden_states)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        if audio.dim() == 1:
            audio = audio[None]
        if lengths is None:
            lengths = torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long, device=audio.device)
        frames = self.frame_lengths(lengths)
        if not bool((lengths < audio.shape[1]).any()):
            states = self._run(audio, None)
        elif self.per_item:
            items = [self._run(audio[i:i + 1, :int(n)], None) for i, n in enumerate(lengths.tolist())]
            t = int(frames.max())
            states = []
            for layer in range(len(items[0])):
                h = audio.new_zeros(len(items), t, items[0][layer].shape[-1])
                for i, it in enumerate(items):
                    h[i, :it[layer].shape[1]] = it[layer][0, :t]
                states.append(h)
        else:
            mask = lengths_to_mask(lengths.to(audio.device), audio.shape[1])
            states = self._run(audio, mask)
        t = min(h.shape[1] for h in states)
        return EncoderOutput([h[:, :t] for h in states], frames.clamp(max=t), self.frame_rate)


def load_hf_encoder(path_or_id: str, device: str | torch.device = "cpu", normalize: bool | None = None) -> HFEncoder:
    """A Hugging Face speech model as an :class:`HFEncoder` in eval mode."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(path_or_id)
    if normalize is None:
        normalize = _checkpoint_normalizes(path_or_id)
    name = f"hf:{Path(path_or_id).name if Path(path_or_id).is_dir() else path_or_id}"
    return HFEncoder(model, name, normalize).to(device).eval()


def _checkpoint_normalizes(path_or_id: str) -> bool:
    """``do_normalize`` from the checkpoint's preprocessor_config.json, False when absent."""
    local = Path(path_or_id) / "preprocessor_config.json"
    try:
        if local.is_file():
            return bool(json.loads(local.read_text()).get("do_normalize", False))
        from transformers import AutoFeatureExtractor

        return bool(getattr(AutoFeatureExtractor.from_pretrained(path_or_id), "do_normalize", False))
    except Exception:
        return False
