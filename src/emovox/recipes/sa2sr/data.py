"""SA2SR data: the datasets built on the usable clips of a manifest.

- :func:`scan` / :class:`Clip` (from :mod:`emovox.train.runs`): the usable records of a manifest;
- :class:`PretrainSet`: (clip, speed) pairs for pre-training, items ``{"audio" (S,), "tokens"
  (U,), "sentiment", "text", "index"}``;
- :class:`EmotionSet`: clips with their emotion targets (an :class:`emovox.evaluate.targets.Targets`)
  for fine-tuning, items ``{"id", "audio" (S,) or "states" (T, D), "label"}`` or ``{..., "target"
  (K,), "target_mask" (K,)}``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import numpy as np
import torch

from ...evaluate.targets import IGNORE_INDEX, Targets
from ...features.augment import speed_perturb
from ...manifest import SENTIMENTS
from ...train.data import pad_collate
from ...train.runs import Clip, scan  # noqa: F401 (re-exported: the SA2SR data API)


class PretrainSet(torch.utils.data.Dataset):
    """(clip, speed) pairs -> {"audio" (S,), "tokens" (U,), "sentiment" int, "text" str, "index"}.

    Sentiment is the proxy label's index in SENTIMENTS, or IGNORE_INDEX when absent; "text" is
    the transcript as the vocabulary spells it (the CER reference)."""

    def __init__(self, clips: Sequence[Clip], vocab, speeds: Sequence[float] = (1.0,)):
        self.items = [(c, s) for c in clips for s in speeds]
        self.vocab = vocab

    def __len__(self) -> int:
        return len(self.items)

    def lengths(self) -> list[float]:
        """Seconds of every item after its speed change (for length bucketing)."""
        return [c.seconds / s for c, s in self.items]

    def __getitem__(self, i: int) -> dict[str, Any]:
        clip, speed = self.items[i]
        audio = speed_perturb(clip.load(), speed)
        ids = self.vocab.encode(clip.utt.transcript or "")
        s = clip.utt.sentiment
        return {"audio": audio, "tokens": torch.tensor(ids, dtype=torch.long),
                "sentiment": SENTIMENTS.index(s) if s in SENTIMENTS else IGNORE_INDEX,
                "text": self.vocab.decode(ids), "index": i}


pretrain_collate = partial(pad_collate, pad_keys=("audio", "tokens"))


class EmotionSet(torch.utils.data.Dataset):
    """Clips and their rows of ``targets`` -> {"id", "audio" (S,) or "states" (T, D)} plus
    "label" (class index, IGNORE_INDEX = none) for a categorical target, or "target" (K,)
    float32 and "target_mask" (K,) bool for regression columns (a missing value is 0, masked)."""

    def __init__(self, clips: Sequence[Clip], targets: Targets, max_seconds: float,
                 states: dict[str, torch.Tensor] | None = None):
        self.clips, self.max_seconds, self.states = list(clips), max_seconds, states
        rows = targets.rows_of([c.utt.id for c in self.clips])
        if len(rows) != len(self.clips):
            raise ValueError("EmotionSet: every clip needs a row in the targets")
        self.y = None if targets.y is None else targets.y[rows]
        self.a = None if targets.a is None else targets.a[rows]

    def __len__(self) -> int:
        return len(self.clips)

    def lengths(self) -> list[float]:
        return [min(c.seconds, self.max_seconds) for c in self.clips]

    def labels(self) -> list[int]:
        """Class indices of the items that have one (categorical targets)."""
        return [] if self.y is None else [int(v) for v in self.y if v != IGNORE_INDEX]

    def __getitem__(self, i: int) -> dict[str, Any]:
        c = self.clips[i]
        item: dict[str, Any] = {"id": c.utt.id}
        if self.states is not None:
            item["states"] = self.states[c.utt.id]
        else:
            item["audio"] = c.load(self.max_seconds)
        if self.y is not None:
            item["label"] = int(self.y[i])
        else:
            a = self.a[i]
            present = ~np.isnan(a)
            item["target"] = torch.from_numpy(np.where(present, a, 0.0).astype(np.float32))
            item["target_mask"] = torch.from_numpy(present)
        return item


finetune_collate = partial(pad_collate, pad_keys=("audio", "states"))
