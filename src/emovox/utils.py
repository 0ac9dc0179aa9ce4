"""Small shared helpers: cache directory, atomic writes, logging and progress bars."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

log = logging.getLogger("emovox")


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr (stdout is kept for machine-readable output)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``; a no-op elsewhere).

    Encoding segments of ever-different lengths fragments glibc's heap: without this the
    predictor's resident memory grew by about 140 MB over 240 segments of 0.5-12 s (PyTorch
    encoder alone), with it about 70 MB before levelling off; called once per transcription
    window, it costs well under a millisecond."""
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util

        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.malloc_trim  # AttributeError on a C library without it (musl, macOS)
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC: Any = None


def cache_dir(*parts: str) -> Path:
    """The user cache directory (``$EMOVOX_CACHE``, else ``$XDG_CACHE_HOME/emovox``,
    else ``~/.cache/emovox``), created on demand, joined with ``parts``."""
    base = os.environ.get("EMOVOX_CACHE")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "emovox")
    path = Path(base, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    Readers never see a half-written file, and a crash leaves the previous version intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file and a rename."""
    import torch

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def read_torch(path: str | os.PathLike, what: str, weights_only: bool = True, map_location: Any = "cpu") -> Any:
    """``torch.load`` whose failures (not a torch file, truncated, foreign pickles) raise
    ValueError naming the file and ``what`` was expected there."""
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as e:  # noqa: BLE001 - torch/pickle raise many types
        raise ValueError(f"{path}: cannot read {what} ({type(e).__name__}: {e})") from None


def json_safe(obj: Any) -> Any:
    """``obj`` with nan/inf replaced by ``None`` (strict JSON has no NaN; an undefined metric is
    ``null``), numpy values by Python ones, tuples by lists and paths by strings."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def json_dumps(obj: Any, **kwargs) -> str:
    """Strict JSON text (never a ``NaN`` token; see :func:`json_safe`)."""
    return json.dumps(json_safe(obj), ensure_ascii=False, allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented strict JSON, atomically (``nan`` becomes ``null``)."""
    atomic_write_text(path, json_dumps(obj, indent=2) + "\n")
    return Path(path)


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def progress(iterable: Iterable | None = None, *, desc: str = "", total: int | None = None,
             disable: bool | None = None, unit: str = "it"):
    """A tqdm progress bar on stderr; hidden when stderr is not a terminal unless forced by
    ``EMOVOX_PROGRESS=1``, and on every rank but 0 under torchrun."""
    from tqdm.auto import tqdm

    from .distributed import rank

    if disable is None:
        forced = os.environ.get("EMOVOX_PROGRESS")
        disable = (forced == "0") or (forced != "1" and not sys.stderr.isatty()) or rank() != 0
    return tqdm(iterable, desc=desc, total=total, disable=disable, unit=unit, file=sys.stderr,
                dynamic_ncols=True)
