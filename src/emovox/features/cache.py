"""On-disk feature cache shared by runs and processes.

Layout under the cache root (default ``<user cache>/emovox/features``)::

    items/ab/<key>.npy         one array per (extractor config, audio content, segment)
    packs/<pack key>.npz       many items in one file, keyed by the ordered item keys
    failures/<key>.json        why an item could not be extracted (read across torchrun ranks)
    configs/<config key>.json  the extractor config behind a key, for people reading the cache
    digests.json               file digests memoised by (path, size, mtime), to skip re-hashing

An item key is the SHA-256 of the extractor's config, the audio file's SHA-256 and the segment
``start``/``end``, so changing any option of the extractor (or the audio bytes) gives new keys: a
stale entry is never read. Every file is written to a temporary name and renamed into place, so two
processes writing the same entry at once leave one complete entry and a reader never sees a
partial file. Entries that fail to load (a disk that filled up, a truncated copy) count as misses:
``key in cache`` checks that an item's header and size agree, and an entry found unreadable is
removed, so the next extraction computes it again instead of failing on it forever.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..utils import atomic_open, cache_dir, file_digest, json_dumps, write_json

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
"""Bumped when the stored layout or the meaning of a key changes."""


def config_key(config: dict[str, Any]) -> str:
    """A stable hash of a JSON-serialisable extractor config."""
    text = json_dumps({"format": CACHE_FORMAT, "config": config}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _segment(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


class FeatureCache:
    """Features on disk, keyed by extractor config + audio content + segment."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_dir("features")
        self.root.mkdir(parents=True, exist_ok=True)
        self._digests: dict[str, str] | None = None
        self._digests_dirty = False

    # ------------------------------------------------------------------ keys
    def item_key(self, config: dict[str, Any] | str, audio_digest: str, start: float | None = None,
                 end: float | None = None) -> str:
        """The key of one item: ``config`` (dict, or a :func:`config_key`) + audio digest + segment."""
        ck = config if isinstance(config, str) else config_key(config)
        text = json_dumps([CACHE_FORMAT, ck, audio_digest, _segment(start), _segment(end)])
        return hashlib.sha256(text.encode()).hexdigest()

    def remember_config(self, config: dict[str, Any]) -> str:
        """Record the config under ``configs/`` (once) and return its key."""
        ck = config_key(config)
        path = self.root / "configs" / f"{ck}.json"
        if not path.exists():
            write_json(path, config)
        return ck

    def digest(self, path: str | os.PathLike) -> str:
        """SHA-256 of an audio file, memoised by (absolute path, size, mtime_ns).
        Raises OSError (FileNotFoundError, PermissionError) for files that cannot be read."""
        p = Path(path).resolve()
        st = p.stat()
        memo = self._load_digests()
        k = f"{p}|{st.st_size}|{st.st_mtime_ns}"
        d = memo.get(k)
        if d is None:
            d = memo[k] = file_digest(p)
            self._digests_dirty = True
        return d

    def _load_digests(self) -> dict[str, str]:
        if self._digests is None:
            try:
                self._digests = json.loads((self.root / "digests.json").read_text())
            except (OSError, ValueError):
                self._digests = {}
        return self._digests

    def save_digests(self) -> None:
        """Merge new digests into ``digests.json`` (atomic; concurrent writers may drop each
        other's additions, which only costs a re-hash later)."""
        if not self._digests_dirty:
            return
        try:
            on_disk = json.loads((self.root / "digests.json").read_text())
        except (OSError, ValueError):
            on_disk = {}
        on_disk.update(self._digests or {})
        with atomic_open(self.root / "digests.json", "w", encoding="utf-8") as f:
            json.dump(on_disk, f)
        self._digests_dirty = False

    # ------------------------------------------------------------------ items
    def path(self, key: str) -> Path:
        return self.root / "items" / key[:2] / f"{key}.npy"

    def __contains__(self, key: str) -> bool:
        """True when the item is stored whole: its .npy header reads and the file is exactly as
        long as the header says (a truncated or garbled entry is removed and counts as a miss)."""
        p = self.path(key)
        if not p.is_file():
            return False
        try:
            with open(p, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
                expected = f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if dtype.hasobject or p.stat().st_size != expected:
                raise ValueError(f"{p.stat().st_size} bytes, the header promises {expected}")
        except FileNotFoundError:
            return False
        except (OSError, ValueError, EOFError, TypeError) as e:
            self._discard(p, e)
            return False
        return True

    def _discard(self, p: Path, cause: Exception) -> None:
        log.warning("feature cache: removing unreadable entry %s (%s); it will be computed again", p, cause)
        try:
            p.unlink()
        except OSError:
            pass

    def get(self, key: str) -> np.ndarray | None:
        """The stored array, or None on a miss (an unreadable entry is logged and removed, so
        that it is computed again)."""
        p = self.path(key)
        try:
            return np.load(p, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as e:
            self._discard(p, e)
            return None

    def put(self, key: str, array: np.ndarray) -> Path:
        """Store ``array`` atomically; returns its path. Clears any failure record."""
        p = self.path(key)
        with atomic_open(p, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        fail = self._failure_path(key)
        if fail.exists():
            fail.unlink(missing_ok=True)
        return p

    # ------------------------------------------------------------------ failures
    def _failure_path(self, key: str) -> Path:
        return self.root / "failures" / f"{key}.json"

    def put_failure(self, key: str, cause: str) -> None:
        write_json(self._failure_path(key), {"cause": cause})

    def get_failure(self, key: str) -> str | None:
        try:
            return json.loads(self._failure_path(key).read_text())["cause"]
        except (OSError, ValueError, KeyError):
            return None

    # ------------------------------------------------------------------ packs
    def pack_key(self, keys: Sequence[str]) -> str:
        h = hashlib.sha256(str(CACHE_FORMAT).encode())
        for k in keys:
            h.update(k.encode())
        return h.hexdigest()

    def pack_path(self, keys: Sequence[str]) -> Path:
        return self.root / "packs" / f"{self.pack_key(keys)}.npz"

    def save_pack(self, keys: Sequence[str], arrays: Sequence[np.ndarray]) -> Path:
        """Store many items in one file (arrays must share dtype and trailing dimensions;
        their first dimensions may differ)."""
        if len(keys) != len(arrays):
            raise ValueError(f"{len(keys)} keys for {len(arrays)} arrays")
        p = self.pack_path(keys)
        sizes = np.array([a.shape[0] if a.ndim else 1 for a in arrays], dtype=np.int64)
        shapes = {a.shape[1:] for a in arrays if a.ndim}
        if len(shapes) > 1:
            raise ValueError(f"pack needs equal trailing dimensions, got {sorted(shapes)}")
        data = np.concatenate([np.atleast_1d(a) for a in arrays]) if arrays else np.zeros(0, np.float32)
        scalar = np.array([a.ndim == 0 for a in arrays], dtype=bool)
        with atomic_open(p, "wb") as f:
            np.savez(f, keys=np.array(list(keys), dtype="U64"), data=data, sizes=sizes, scalar=scalar)
        return p

    def load_pack(self, keys: Sequence[str]) -> list[np.ndarray] | None:
        """The items of a pack written for exactly these keys, or None."""
        p = self.pack_path(keys)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                if list(z["keys"]) != list(keys):
                    return None
                data, sizes, scalar = z["data"], z["sizes"], z["scalar"]
        except Exception as e:  # noqa: BLE001 - zipfile, numpy and the OS raise many types
            self._discard(p, e)
            return None
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        return [data[bounds[i]] if scalar[i] else data[bounds[i]:bounds[i + 1]] for i in range(len(keys))]
