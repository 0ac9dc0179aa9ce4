"""Ranks and shards for work that runs under ``torchrun`` across processes and machines.

Everything that trains or extracts over a corpus asks this module which part is its own.
Without torchrun the process is rank 0 of a world of 1 and nothing changes.
"""

from __future__ import annotations

import os
from typing import Sequence, TypeVar

T = TypeVar("T")


def rank() -> int:
    """Global rank of this process (``RANK`` from torchrun, else 0)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def shard(items: Sequence[T], rank_: int | None = None, world: int | None = None) -> list[T]:
    """The items this rank owns: every ``world``-th one starting at ``rank``."""
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    return list(items[r::w])


def init_process_group(backend: str | None = None) -> bool:
    """Start torch.distributed when launched by torchrun (NCCL on GPU, gloo on CPU).

    Returns True when a process group is (now) active.
    """
    if world_size() <= 1:
        return False
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return True
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend)
    return True


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
