"""The extractor interface of the feature layer and its filterbank front ends.

An :class:`Extractor` maps mono float32 clips to one float32 array each; the manifest-level
engine (:mod:`emovox.featurize`) batches clips, caches results and reports failures.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..audio import SAMPLE_RATE
from ..tensors import pad_batch


class Extractor:
    """Maps a list of mono float32 clips (at ``sample_rate``) to one float32 array each.

    Subclasses set ``name``, implement :meth:`config` (everything that changes the output: it keys
    the cache) and :meth:`extract_one` or :meth:`extract_batch`.
    """

    name: str = "extractor"
    sample_rate: int = SAMPLE_RATE
    batch_seconds: float = 60.0
    """How much (padded) audio one call of :meth:`extract_batch` may receive, in seconds."""
    min_seconds: float = 0.0
    """Shorter clips are reported as failures rather than extracted."""

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def extract_one(self, audio: np.ndarray) -> np.ndarray:
        return self.extract_batch([audio])[0]

    def extract_batch(self, audios: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.extract_one(a) for a in audios]


class FrontEndExtractor(Extractor):
    """``lfbe`` / ``mfcc``: (frames, dim) per clip, optionally normalised per utterance."""

    def __init__(self, kind: str = "lfbe", device: str = "cpu", normalize: bool = False, n_mfcc: int = 20,
                 batch_seconds: float = 120.0, **filterbank):
        from .filterbank import MFCC, FilterbankConfig, LogMel

        if kind not in ("lfbe", "mfcc"):
            raise ValueError(f"unknown front end {kind!r}")
        self.name, self.device, self.normalize = kind, device, bool(normalize)
        self.fb = FilterbankConfig(**filterbank)
        self.sample_rate = self.fb.sample_rate
        self.n_mfcc = int(n_mfcc)
        self.batch_seconds = batch_seconds
        self.min_seconds = 0.0 if self.fb.center else self.fb.win_length / self.fb.sample_rate  # >= 1 frame
        self.module = (LogMel(self.fb) if kind == "lfbe" else MFCC(self.fb, self.n_mfcc)).to(device)

    def config(self) -> dict[str, Any]:
        c = {"name": self.name, "filterbank": self.fb.to_dict(), "normalize": self.normalize, "version": 1}
        if self.name == "mfcc":
            c["n_mfcc"] = self.n_mfcc
        return c

    @torch.inference_mode()
    def extract_batch(self, audios):
        from .filterbank import normalize

        x, lengths = pad_batch(audios, self.device)
        feats, frames = self.module(x, lengths)
        if self.normalize:
            feats = normalize(feats, frames)
        feats = feats.float().cpu().numpy()
        return [feats[i, : int(n)] for i, n in enumerate(frames.cpu())]
