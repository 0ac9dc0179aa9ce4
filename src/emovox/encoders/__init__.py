"""Encoders: modules that map audio to per-layer hidden states (see :mod:`.base`).

``load_encoder(name, device="cpu", **options)`` is the one way to get one:

* ``"whisper-tiny.en"`` (default, offline), ``"whisper-base"``: Whisper encoders converted from
  the CTranslate2 weights pip packages ship; options ``pad_to_30s``, ``max_windows``;
* ``"wavenet"``: the speech-to-text-wavenet ASR of Tits et al. (randomly initialised, or
  ``checkpoint=PATH`` saved by :meth:`WaveNetASR.save`); options are :class:`WaveNetConfig` fields;
* an ``emovox pretrain sa2sr`` output (its folder, ``sa2sr.pt`` or ``encoder.pt``): the
  pre-trained encoder, BiLSTM or Whisper;
* ``"care"``: CARE (Dutta & Ganapathy 2024, :mod:`.care`): ``checkpoint=PATH`` (a ``care.pt`` of
  ``emovox pretrain care`` or its folder; the path alone works too) or, untrained, options that
  are :class:`~.care.CareConfig` fields; ``expose="acoustic"``/``"semantic"`` reads one branch;
* a Hugging Face id (``"openai/whisper-small"``, ``"microsoft/wavlm-base"``; needs network) or a
  local folder: a CTranslate2 Whisper directory, or a ``save_pretrained`` folder (Whisper is
  ported into :class:`WhisperEncoder`; other speech models run through ``transformers.AutoModel``
  with ``output_hidden_states=True``, see :mod:`.hf`);
* any name given to :func:`register_encoder`. A name ``X`` not registered yet is looked up by
  importing ``emovox.encoders.X`` (which may register itself) before giving up.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable

import torch

from ..tensors import pad_batch
from .base import Encoder, EncoderOutput

EncoderFactory = Callable[..., Encoder]
"""``factory(device=..., **options) -> Encoder``"""

_REGISTRY: dict[str, EncoderFactory] = {}

DEFAULT_ENCODER = "whisper-tiny.en"


def register_encoder(name: str, factory: EncoderFactory, *, overwrite: bool = False) -> None:
    """Make ``load_encoder(name, ...)`` call ``factory(device=device, **options)``."""
    if name in _REGISTRY and not overwrite and _REGISTRY[name] is not factory:
        raise ValueError(f"encoder {name!r} is already registered")
    _REGISTRY[name] = factory


def available_encoders() -> list[str]:
    """Registered names (Hugging Face ids and local folders are accepted besides these)."""
    return sorted(_REGISTRY)


def load_encoder(name: str = DEFAULT_ENCODER, device: str | torch.device = "cpu", **options) -> Encoder:
    """An :class:`Encoder` in eval mode on ``device``. Unknown options raise ``TypeError``."""
    if name in _REGISTRY:
        return _REGISTRY[name](device=device, **options)
    path = Path(os.path.expanduser(name))
    if path.exists() or ("/" in name and not name.startswith((".", "/"))):
        return _load_path_or_hub(name, device, **options)
    module = name.split(":")[0].replace("-", "_")
    if module.isidentifier():
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{module}":
                raise
        if name in _REGISTRY:
            return _REGISTRY[name](device=device, **options)
    raise ValueError(f"unknown encoder {name!r}: registered ones are {', '.join(available_encoders())}; "
                     "a Hugging Face id or a local model folder is also accepted")


def _load_path_or_hub(name: str, device, **options) -> Encoder:
    from .whisper import is_hf_whisper, load_whisper

    path = Path(os.path.expanduser(name))
    if path.is_dir() and (path / "model.bin").is_file():
        return load_whisper(str(path), device=device, **options)
    if path.name in ("sa2sr.pt", "encoder.pt") or (path.is_dir() and (path / "sa2sr.pt").is_file()):
        # an SA2SR pre-training output: its encoder, BiLSTM or Whisper (emovox.encoders.bilstm.load_pretrained)
        return load_encoder("bilstm", device=device, checkpoint=str(path), **options)
    if (path.is_file() and path.suffix == ".pt") or (path.is_dir() and (path / "care.pt").is_file()):
        from .care import load_care  # a CARE checkpoint or the pre-training folder holding one

        return load_care(path, device=device, **options)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: an encoder is a model folder or a registered name, not a file")
    if path.is_dir() and not (path / "config.json").is_file():
        raise ValueError(f"{path}: not a model folder (no model.bin of CTranslate2, no config.json of "
                         "Hugging Face)")
    if is_hf_whisper(name):
        return load_whisper(name, device=device, **options)
    from .hf import load_hf_encoder

    return load_hf_encoder(name, device=device, **options)


def _whisper_factory(model: str) -> EncoderFactory:
    def factory(device="cpu", **options) -> Encoder:
        from .whisper import load_whisper

        return load_whisper(model, device=device, **options)

    return factory


def _wavenet_factory(device="cpu", checkpoint: str | None = None, **options) -> Encoder:
    from .wavenet import WaveNetASR, WaveNetConfig

    if checkpoint:
        if options:
            raise TypeError(f"options {sorted(options)} cannot be combined with checkpoint= (the checkpoint "
                            "holds its own config)")
        return WaveNetASR.load(checkpoint, map_location=device).to(device).eval()
    return WaveNetASR(WaveNetConfig(**options)).to(device).eval()


register_encoder("whisper-tiny.en", _whisper_factory("tiny.en"))
register_encoder("whisper-base", _whisper_factory("base"))
register_encoder("wavenet", _wavenet_factory)


def _care_factory(device="cpu", **options) -> Encoder:
    from .care import care_factory

    return care_factory(device=device, **options)


register_encoder("care", _care_factory)

__all__ = ["Encoder", "EncoderOutput", "pad_batch", "load_encoder", "register_encoder", "available_encoders",
           "DEFAULT_ENCODER"]
