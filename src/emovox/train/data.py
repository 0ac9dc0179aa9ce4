"""Mixed-length batching: padding, masks, length bucketing and the deterministic batch sampler.

The sampler is what makes ``--resume`` exact and DDP equivalent to one process: the order of
every epoch is a pure function of ``(seed, epoch)``, batches are cut from the *global* order,
and under torchrun each rank takes its own slice of every global batch.
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping, Sequence

import torch

from ..tensors import lengths_to_mask, masked_mean, pad_sequence  # noqa: F401  (re-exported)


def pad_collate(items: Sequence[Mapping[str, Any]], pad_keys: Sequence[str] | None = None,
                pad_value: float = 0.0) -> dict[str, Any]:
    """Collate dict items into a batch. Tensors whose first dim varies (or keys in ``pad_keys``)
    are padded and get ``<key>_lengths`` (B,) beside them; same-shape tensors and numbers are
    stacked; anything else becomes a list.

    Example: ``[{"audio": (S1,), "label": 3}, {"audio": (S2,), "label": 1}]`` ->
    ``{"audio": (2, max S), "audio_lengths": (2,), "label": (2,)}``.
    """
    if not items:
        raise ValueError("pad_collate: empty batch")
    out: dict[str, Any] = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        first = vals[0]
        if isinstance(first, torch.Tensor):
            varies = any(v.shape != first.shape for v in vals)
            if first.dim() > 0 and (varies or (pad_keys is not None and key in pad_keys)):
                out[key], out[f"{key}_lengths"] = pad_sequence(vals, pad_value)
            elif varies:
                raise ValueError(f"pad_collate: {key!r} has mismatched shapes {[tuple(v.shape) for v in vals]}")
            else:
                out[key] = torch.stack(vals)
        elif isinstance(first, (bool, int, float)) and not isinstance(first, str):
            out[key] = torch.tensor(vals)
        else:
            out[key] = list(vals)
    return out


def to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor in a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


class BatchPlan:
    """Deterministic global batches of dataset indices for each epoch.

    ``batches(epoch)`` -> list of global batches (lists of indices, each ``batch_size`` long but the
    last). With ``lengths``, items are bucketed: the shuffled order is cut into pools of
    ``bucket_batches`` batches, each pool sorted by length, cut into batches, and the batch order
    shuffled, so padding stays small. ``local(batch, rank, world)`` is a rank's slice.
    """

    def __init__(self, size: int, batch_size: int, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = False, lengths: Sequence[float] | None = None, bucket_batches: int = 50):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if lengths is not None and len(lengths) != size:
            raise ValueError(f"lengths has {len(lengths)} entries for a dataset of {size}")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        self.lengths = None if lengths is None else list(lengths)
        self.bucket_batches = bucket_batches

    def __len__(self) -> int:
        return self.size // self.batch_size if self.drop_last else math.ceil(self.size / self.batch_size)

    def batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + epoch)
        order = list(range(self.size))
        if self.shuffle:
            rng.shuffle(order)
        if self.lengths is not None:
            pool = self.batch_size * self.bucket_batches
            order = [i for s in range(0, len(order), pool)
                     for i in sorted(order[s:s + pool], key=lambda j: self.lengths[j])]
        out = [order[s:s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        if self.drop_last and out and len(out[-1]) < self.batch_size:
            out.pop()
        if self.lengths is not None and self.shuffle:
            rng.shuffle(out)
        return out

    @staticmethod
    def local(batch: list[int], rank: int, world: int) -> list[int]:
        """This rank's contiguous share of a global batch (sizes differ by at most one)."""
        n = len(batch)
        lo, hi = rank * n // world, (rank + 1) * n // world
        return batch[lo:hi]
