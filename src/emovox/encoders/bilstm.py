"""The SA2SR acoustic encoder (Ghriss et al. 2022): 40 LFBE -> stack 3 / keep every third ->
5 bidirectional LSTM layers of 192 units.

Shapes::

    audio (B, S) 16 kHz, lengths (B,) samples
    -> LFBE (B, T, 40) at 100 Hz, normalised per utterance, SpecAugment in training mode
    -> stacked (B, T/3, 120) at 33.3 Hz
    -> hidden_states: 5 x (B, T/3, 384), one per BiLSTM layer (zero on padded frames)

It implements the shared :class:`~emovox.encoders.base.Encoder` interface, so the SUPERB probe,
the Tits analysis and the emotion regressor read it like any other encoder. A pre-trained one is
saved with :func:`save_encoder` and loaded with :func:`load_bilstm`; :func:`load_pretrained`
reads the encoder of any pre-training output (``encoder.pt``, ``sa2sr.pt`` or the run folder), as
does ``emovox.encoders.load_encoder("bilstm", checkpoint=PATH)``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..features.augment import AugmentConfig, SpecAugment
from ..utils import file_digest, read_torch
from .base import Encoder, EncoderOutput, checkpoint_key

CHECKPOINT_KIND = "emovox.bilstm"
SA2SR_CHECKPOINT_KIND = "emovox.sa2sr"  # sa2sr.pt, written by emovox.recipes.sa2sr


@dataclass
class BiLSTMConfig:
    """The paper's encoder: 40 LFBE, 25 ms / 10 ms, stacking 3 with stride 3, 5 x BiLSTM(192)."""

    n_mels: int = 40
    stack: int = 3
    stride: int = 3
    layers: int = 5
    hidden: int = 192  # per direction; states are 2 * hidden wide
    dropout: float = 0.0  # between layers (not stated in the paper)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    @classmethod
    def from_dict(cls, d: dict) -> "BiLSTMConfig":
        d = dict(d)
        aug = d.pop("augment", None)
        known = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in d.items() if k in known})
        if isinstance(aug, dict):
            names = {f.name for f in fields(AugmentConfig)}
            aug = {k: tuple(v) if isinstance(v, list) else v for k, v in aug.items() if k in names}
            cfg.augment = AugmentConfig(**aug)
        return cfg


class BiLSTMEncoder(Encoder):
    """Audio -> per-layer BiLSTM states. See the module docstring for shapes."""

    name = "bilstm"

    def __init__(self, config: BiLSTMConfig | None = None, seed: int = 0):
        super().__init__()
        self.cfg = config or BiLSTMConfig()
        c = self.cfg
        self.num_layers = c.layers
        self.dim = 2 * c.hidden
        self.frame_rate = 100.0 / c.stride
        self.input_dim = c.n_mels * c.stack
        self.spec_augment = SpecAugment(c.augment, seed=seed)
        self.lstms = nn.ModuleList(
            nn.LSTM(self.input_dim if i == 0 else self.dim, c.hidden, batch_first=True, bidirectional=True)
            for i in range(c.layers))
        self.drop = nn.Dropout(c.dropout)

    # ------------------------------------------------------------------ front end
    def features(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, S), lengths (B,) samples -> stacked LFBE (B, T', n_mels * stack), lengths (B,).

        SpecAugment (on the 100 Hz LFBE, before stacking) only in training mode."""
        from ..features import filterbank

        c = self.cfg
        feats, flen = filterbank.lfbe(audio, lengths, n_mels=c.n_mels)
        feats = filterbank.normalize(feats, flen)
        feats = self.spec_augment(feats, flen)
        return filterbank.stack_frames(feats, flen, n=c.stack, stride=c.stride)

    # ------------------------------------------------------------------ layers
    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """feats (B, T, input_dim), lengths (B,) frames -> EncoderOutput with ``layers`` states."""
        if feats.shape[-1] != self.input_dim:
            raise ValueError(f"bilstm expects {self.input_dim}-dim input frames, got {feats.shape[-1]}")
        lengths = lengths.clamp(min=1, max=feats.shape[1])
        frames = feats.shape[1]
        x, states = feats, []
        for i, lstm in enumerate(self.lstms):
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = lstm(packed)
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=frames)
            states.append(y)
            x = self.drop(y) if i < len(self.lstms) - 1 else y
        return EncoderOutput(states, lengths.to(feats.device), self.frame_rate)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        feats, flen = self.features(audio, lengths)
        return self.encode(feats, flen)

    def config(self) -> dict:
        return {"name": self.name, **asdict(self.cfg), **checkpoint_key(self)}


# ----------------------------------------------------------------------------- files


def save_encoder(encoder: BiLSTMEncoder, path: str | os.PathLike, **meta) -> None:
    """Write a stand-alone encoder file (config + weights + ``meta``) atomically."""
    from ..utils import atomic_torch_save

    atomic_torch_save({"kind": CHECKPOINT_KIND, "config": asdict(encoder.cfg),
                       "state_dict": encoder.state_dict(), "meta": meta}, path)


def is_bilstm_checkpoint(obj) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == CHECKPOINT_KIND


def load_bilstm(path: str | os.PathLike | None = None, device: str = "cpu", **options) -> BiLSTMEncoder:
    """A BiLSTM encoder: from an encoder file written by :func:`save_encoder` or by
    ``emovox pretrain sa2sr`` (its ``encoder.pt``), or randomly initialised when ``path`` is None
    (``options`` then override :class:`BiLSTMConfig` fields)."""
    if path is None:
        enc = BiLSTMEncoder(BiLSTMConfig.from_dict(options))
        return enc.to(device).eval()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: BiLSTM encoder checkpoint not found")
    obj = read_torch(path, "a BiLSTM encoder checkpoint", weights_only=False)
    if not is_bilstm_checkpoint(obj):
        raise ValueError(f"{path}: not a BiLSTM encoder checkpoint (expected kind {CHECKPOINT_KIND!r})")
    enc = BiLSTMEncoder(BiLSTMConfig.from_dict(obj["config"]))
    enc.load_state_dict(obj["state_dict"])
    return enc.to(device).eval()


def load_pretrained(path: str | os.PathLike, device: str = "cpu") -> Encoder:
    """The encoder of a pre-training run, reading the file once whichever kind it is: an
    ``encoder.pt`` (:func:`save_encoder`), an ``sa2sr.pt`` written by ``emovox pretrain sa2sr``
    (the encoder part of its model, BiLSTM or a named encoder such as Whisper), or a pre-training
    output folder (its ``sa2sr.pt``). Returned in eval mode on ``device``."""
    given = path
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "sa2sr.pt")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{given}: no sa2sr.pt in this folder (is it a pre-training output?)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: encoder checkpoint not found")
    obj = read_torch(path, "an SA2SR or BiLSTM checkpoint", weights_only=False)
    if is_bilstm_checkpoint(obj):
        enc: Encoder = BiLSTMEncoder(BiLSTMConfig.from_dict(obj["config"]))
        enc.load_state_dict(obj["state_dict"])
    elif isinstance(obj, dict) and obj.get("kind") == SA2SR_CHECKPOINT_KIND:
        enc = _sa2sr_encoder(obj)
    else:
        raise ValueError(f"{path}: not an SA2SR or BiLSTM checkpoint")
    enc.checkpoint_digest = file_digest(path)[:16]  # in config(): feature caches tell trained weights apart
    return enc.to(device).eval()


def _sa2sr_encoder(obj: dict) -> Encoder:
    """The encoder inside an SA2SR checkpoint: its ``config`` names the encoder (``"bilstm"`` with
    the ``bilstm`` settings, or an ``emovox.encoders`` name) and ``model`` holds the SA2SR model's
    weights, the encoder's under the ``encoder.`` prefix."""
    cfg = obj["config"]
    name = cfg.get("encoder", "bilstm")
    if name == "bilstm":
        enc: Encoder = BiLSTMEncoder(BiLSTMConfig.from_dict(cfg.get("bilstm") or {}))
    else:
        from . import load_encoder

        enc = load_encoder(name)
    prefix = "encoder."
    enc.load_state_dict({k[len(prefix):]: v for k, v in obj["model"].items() if k.startswith(prefix)})
    return enc


def _factory(device: str = "cpu", checkpoint: str | os.PathLike | None = None, **options) -> Encoder:
    """``load_encoder("bilstm", checkpoint=PATH)``: PATH is an ``encoder.pt``, an ``sa2sr.pt`` or a
    pre-training output folder (see :func:`load_pretrained`); without it a randomly initialised
    encoder (``options`` are :class:`BiLSTMConfig` fields)."""
    if checkpoint is None:
        return load_bilstm(None, str(device), **options)
    if options:
        raise TypeError(f"options {sorted(options)} cannot be combined with checkpoint= (the checkpoint holds "
                        "its own config)")
    if not os.path.exists(checkpoint):
        raise FileNotFoundError(f"{checkpoint}: BiLSTM encoder checkpoint not found")
    return load_pretrained(checkpoint, device=str(device))


def _register() -> None:
    from . import register_encoder

    register_encoder("bilstm", _factory, overwrite=True)


_register()
