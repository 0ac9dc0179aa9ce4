"""SA2SR data: usable clips of a manifest and the datasets built on them.

- :func:`scan` checks every record's audio header and returns :class:`Clip` objects (and the
  records that cannot be used, with the reason);
- :class:`PretrainSet`: (clip, speed) pairs for pre-training, items ``{"audio" (S,), "tokens"
  (U,), "sentiment", "text", "index"}``;
- :class:`EmotionSet`: clips with their emotion targets (an :class:`emovox.evaluate.targets.Targets`)
  for fine-tuning, items ``{"id", "audio" (S,) or "states" (T, D), "label"}`` or ``{..., "target"
  (K,), "target_mask" (K,)}``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any, Sequence

import numpy as np
import torch

from ...audio import AudioError, info, load_audio
from ...evaluate.targets import IGNORE_INDEX, Targets
from ...features.augment import speed_perturb
from ...manifest import SENTIMENTS, Manifest, Utterance
from ...train.data import pad_collate

log = logging.getLogger("emovox.sa2sr")

MIN_SECONDS = 0.1  # shorter clips give no stacked frame


@dataclass
class Clip:
    """One usable utterance: where its audio is and how long it is (s)."""

    manifest: Manifest
    utt: Utterance
    seconds: float

    def load(self, max_seconds: float | None = None) -> torch.Tensor:
        """(S,) float32 samples at 16 kHz, the first ``max_seconds`` when given."""
        u = self.utt
        end = u.end
        if max_seconds is not None:
            start = u.start or 0.0
            end = min(end, start + max_seconds) if end is not None else start + max_seconds
            end = min(end, (u.start or 0.0) + self.seconds)
        return torch.from_numpy(load_audio(self.manifest.audio_path(u), start=u.start, end=end))


def scan(manifest: Manifest, records: Sequence[Utterance] | None = None,
         min_seconds: float = MIN_SECONDS) -> tuple[list[Clip], list[dict[str, str]]]:
    """Check every record's audio header; returns usable clips and ``{"id", "error"}`` for the
    others (missing, unreadable, too short) so that a batch job can go on and report them."""
    clips, failed = [], []
    for u in records if records is not None else manifest.records:
        try:
            if u.start is not None and u.end is not None:
                secs = u.end - u.start
                path = manifest.audio_path(u)
                if not path.is_file():
                    raise AudioError(path, "file not found")
            else:
                secs = info(manifest.audio_path(u)).duration - (u.start or 0.0)
            if secs < min_seconds:
                raise AudioError(manifest.audio_path(u), f"too short ({secs:.3f} s < {min_seconds} s)")
            clips.append(Clip(manifest, u, secs))
        except AudioError as e:
            failed.append({"id": u.id, "error": str(e)})
    for f in failed:
        log.warning("skipping %s: %s", f["id"], f["error"])
    return clips, failed


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
