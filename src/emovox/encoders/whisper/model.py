"""Whisper's audio encoder in PyTorch on audio of any length, every layer's output exposed
through the common encoder interface; :func:`load_whisper` builds it from any weights."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...tensors import lengths_to_mask
from ..base import Encoder, EncoderOutput, checkpoint_key
from .audio import FRAME_RATE, HOP_LENGTH, log_mel_spectrogram, mel_filters
from .weights import (CONVERTER_VERSION, MODELS, WhisperDims, WhisperModelError, _canonical,
                      converted_weights, hf_to_state_dict)


class MultiHeadAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x ``(B, T, D)``; mask ``(B, 1, 1, T)`` bool, True where a key may be attended, or None."""
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.n_head, d // self.n_head).transpose(1, 2)
                   for p in (self.query, self.key, self.value))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))`` (exact-erf GELU MLP)."""

    def __init__(self, n_state: int, n_head: int, n_mlp: int):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.mlp = nn.Sequential(nn.Linear(n_state, n_mlp), nn.GELU(), nn.Linear(n_mlp, n_state))
        self.mlp_ln = nn.LayerNorm(n_state)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.attn_ln(x), mask)
        return x + self.mlp(self.mlp_ln(x))


@dataclass
class WhisperWindows:
    """Log-mel windows of a batch: ``mel`` ``(W, n_mels, F)`` (zero beyond each window's
    ``mel_lengths``), and for window ``w`` the batch item ``item[w]`` and its first encoder frame
    within that item ``offset[w]``; ``out_lengths[w]`` encoder frames of it cover the audio."""

    mel: torch.Tensor
    mel_lengths: torch.Tensor
    item: list[int]
    offset: list[int]
    out_lengths: list[int]


class WhisperEncoder(Encoder):
    """Whisper's encoder on audio of any length, with every layer's output.

    ``forward(audio (B, S) float32 16 kHz, lengths (B,) samples) -> EncoderOutput`` with
    ``n_layer + 1`` hidden states of ``(B, ceil(floor(S_i / 160) / 2), n_state)`` at 50 Hz.
    Options: ``pad_to_30s`` (see the module docstring), ``max_windows`` (windows run through the
    transformer at once; bounds memory on long inputs), ``layers`` (run only the first ``layers``
    transformer blocks: ``layers + 1`` hidden states, the same tensors as the full encoder's first
    ones, without the final layer norm, which belongs to the last block; None: all).
    """

    frame_rate = FRAME_RATE

    def __init__(self, dims: WhisperDims = WhisperDims(), name: str = "whisper", pad_to_30s: bool = False,
                 max_windows: int = 8, source: str = "", layers: int | None = None):
        super().__init__()
        self.dims = dims
        self.name = name
        self.source = source
        self.pad_to_30s = bool(pad_to_30s)
        self.max_windows = max(1, int(max_windows))
        depth = dims.n_layer if layers is None else int(layers)
        if not 1 <= depth <= dims.n_layer:
            raise ValueError(f"layers={layers}: this Whisper encoder has 1 to {dims.n_layer} blocks")
        self.depth = depth
        self.num_layers = depth + 1
        self.dim = dims.n_state
        self.conv1 = nn.Conv1d(dims.n_mels, dims.n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(dims.n_state, dims.n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", torch.zeros(dims.n_ctx, dims.n_state))
        self.blocks = nn.ModuleList(ResidualAttentionBlock(dims.n_state, dims.n_head, dims.mlp_width) for _ in range(depth))
        self.ln_post = nn.LayerNorm(dims.n_state) if depth == dims.n_layer else None
        self.register_buffer("mel_filters", mel_filters(dims.n_mels), persistent=False)

    @property
    def window_frames(self) -> int:
        """Mel frames per window (3000 = 30 s for every released Whisper)."""
        return 2 * self.dims.n_ctx

    def config(self) -> dict:
        return {"name": self.name, "pad_to_30s": self.pad_to_30s, "layers": self.num_layers, "dim": self.dim,
                "frame_rate": self.frame_rate, "converter": CONVERTER_VERSION, **checkpoint_key(self)}

    # ------------------------------------------------------------------ stages

    def windows(self, audio: torch.Tensor, lengths: torch.Tensor) -> WhisperWindows:
        """Log-mel of each item, cut into windows of at most ``window_frames`` frames."""
        wf = self.window_frames
        mels, items, offsets, outs = [], [], [], []
        pad = wf * HOP_LENGTH if self.pad_to_30s else 0
        for i, n in enumerate(lengths.tolist()):
            mel = log_mel_spectrogram(audio[i, :int(n)], self.dims.n_mels, pad, self.mel_filters)
            content = int(n) // HOP_LENGTH
            for start in range(0, content, wf):
                valid = min(wf, content - start)
                mels.append(mel[:, start:start + (wf if self.pad_to_30s else valid)])
                items.append(i)
                offsets.append(start // 2)
                outs.append((valid + 1) // 2)
        mel_lengths = torch.tensor([m.shape[1] for m in mels], dtype=torch.long)
        batch = audio.new_zeros(len(mels), self.dims.n_mels, int(mel_lengths.max()))
        for w, m in enumerate(mels):
            batch[w, :, :m.shape[1]] = m
        return WhisperWindows(batch, mel_lengths, items, offsets, outs)

    def embed(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Convolutional front end + positions: mel ``(W, n_mels, F)`` -> ``(W, ceil(F/2), D)`` and
        frame lengths ``(W,)``. Frames past a window's length are zeroed between the two
        convolutions so a padded window gives the same valid frames as the window alone."""
        mel = mel.to(self.conv1.weight.dtype)
        mel_lengths = mel_lengths.to(mel.device)
        x = F.gelu(self.conv1(mel))
        if bool((mel_lengths < mel.shape[-1]).any()):
            x = x * lengths_to_mask(mel_lengths, x.shape[-1]).unsqueeze(1).to(x.dtype)
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        if x.shape[1] > self.dims.n_ctx:
            raise ValueError(f"window of {x.shape[1]} frames exceeds the {self.dims.n_ctx} positions")
        return x + self.positional_embedding[:x.shape[1]], (mel_lengths + 1) // 2

    def encode_windows(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> list[torch.Tensor]:
        """All hidden states of a batch of windows: ``n_layer + 1`` tensors ``(W, T, D)``."""
        x, lengths = self.embed(mel, mel_lengths)
        mask = None
        if bool((lengths < x.shape[1]).any()):
            mask = lengths_to_mask(lengths, x.shape[1])[:, None, None, :]
        states = [x]
        for block in self.blocks:
            x = block(x, mask)
            states.append(x)
        if self.ln_post is not None:
            states[-1] = self.ln_post(x)
        return states

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        if audio.dim() == 1:
            audio = audio[None]
        if lengths is None:
            lengths = torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long)
        lengths = lengths.to("cpu", torch.long)
        if bool((lengths < HOP_LENGTH).any()):
            raise ValueError(f"audio too short for Whisper: {int(lengths.min())} samples (< {HOP_LENGTH}, 10 ms)")
        win = self.windows(audio, lengths)
        out_len = torch.zeros(len(lengths), dtype=torch.long)
        for i, o, n in zip(win.item, win.offset, win.out_lengths):
            out_len[i] = max(int(out_len[i]), o + n)
        states = [audio.new_zeros(len(lengths), int(out_len.max()), self.dim) for _ in range(self.num_layers)]
        order = sorted(range(len(win.item)), key=lambda w: -int(win.mel_lengths[w]))  # like lengths together
        for c in range(0, len(order), self.max_windows):
            idx = order[c:c + self.max_windows]
            f = int(win.mel_lengths[idx].max())
            chunk = self.encode_windows(win.mel[idx, :, :f], win.mel_lengths[idx])
            for layer, h in enumerate(chunk):
                rows = []
                for j, w in enumerate(idx):
                    i, o, n = win.item[w], win.offset[w], win.out_lengths[w]
                    rows.append((i, o, n, h[j, :n]))
                states[layer] = _scatter(states[layer], rows)
        return EncoderOutput(states, out_len.to(audio.device), self.frame_rate)


def _scatter(target: torch.Tensor, rows: list[tuple[int, int, int, torch.Tensor]]) -> torch.Tensor:
    """Place each window's frames at (item, offset) without in-place ops on autograd leaves."""
    if not torch.is_grad_enabled() or not any(r[3].requires_grad for r in rows):
        for i, o, n, h in rows:
            target[i, o:o + n] = h
        return target
    target = target.clone()
    for i, o, n, h in rows:
        target[i, o:o + n] = h
    return target



def load_whisper(name: str = "tiny.en", device: str | torch.device = "cpu", pad_to_30s: bool = False,
                 max_windows: int = 8, layers: int | None = None) -> WhisperEncoder:
    """A :class:`WhisperEncoder` in eval mode: ``name`` is a bundled model (``"tiny.en"``,
    ``"base"``, optionally prefixed ``"whisper-"``), a CTranslate2 model directory, a local
    Hugging Face folder or a Hugging Face hub id (``openai/whisper-small``; needs network);
    ``layers``: run only the first blocks (:class:`WhisperEncoder`)."""
    p = Path(os.path.expanduser(str(name)))
    if p.is_dir() and (p / "model.bin").is_file():
        dims, sd = converted_weights(str(p))
        label = f"whisper-ct2:{p.name}"
    elif _canonical(str(name)) in MODELS:
        dims, sd = converted_weights(str(name))
        label = f"whisper-{_canonical(str(name))}"
    else:
        if p.is_dir() and not (p / "config.json").is_file():
            raise WhisperModelError(f"{p}: neither a CTranslate2 (model.bin) nor a Hugging Face (config.json) folder")
        dims, sd = hf_to_state_dict(str(name))
        label = f"whisper-hf:{p.name if p.is_dir() else name}"
    enc = WhisperEncoder(dims, name=label, pad_to_30s=pad_to_30s, max_windows=max_windows, source=str(name),
                         layers=layers)
    if enc.depth < dims.n_layer:  # the weights of the blocks not run, and the final norm, are not loaded
        unused = tuple(f"blocks.{i}." for i in range(enc.depth, dims.n_layer)) + ("ln_post.",)
        sd = {k: t for k, t in sd.items() if not k.startswith(unused)}
    missing, unexpected = enc.load_state_dict({k: t.float() for k, t in sd.items()}, strict=False)
    missing = [m for m in missing if m != "mel_filters"]
    if missing or unexpected:
        raise WhisperModelError(f"{name}: weights do not fit the encoder (missing {missing[:4]}, "
                                f"unexpected {unexpected[:4]})")
    return enc.to(device).eval()


def is_hf_whisper(path_or_id: str) -> bool:
    """True when a local folder's config.json says ``model_type: whisper``."""
    cfg = Path(os.path.expanduser(str(path_or_id))) / "config.json"
    if cfg.is_file():
        try:
            return json.loads(cfg.read_text()).get("model_type") == "whisper"
        except (OSError, json.JSONDecodeError):
            return False
    return "whisper" in str(path_or_id).lower()
