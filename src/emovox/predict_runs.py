"""Batch prediction into one output that survives kills and spreads over processes and machines.

``emovox predict INPUTS -o OUT`` (any ``-j``, or under ``torchrun`` on any number of machines)
keeps a folder ``OUT.parts/`` beside the output:

- **Sharding.** Input ``i`` (in the order :func:`emovox.predict.expand_inputs` gives, the same
  on every rank) belongs to rank ``i % WORLD_SIZE``; without torchrun the process is rank 0 of 1.
- **Journals.** Each rank appends one JSON line per finished input to its own
  ``OUT.parts/rank-<RANK>.jsonl`` (flushed and fsynced before the next input is reported; a
  kill can only tear the last line, which is dropped when the journal is next opened), holding
  the whole :class:`~emovox.records.FileResult` with the input's size and modification time and a
  fingerprint of the settings (:func:`run_fingerprint`: model, its version and file, backend,
  transcriber, language, sentiment labeler, VAD and every other prediction setting; not the
  thread or worker counts, which do not change results). A journal is held under an exclusive
  lock while its rank writes it, so two runs cannot write the same one.
- **Resume.** A rank skips an input whose latest entry in *any* journal of the folder (whichever
  rank, run or world size wrote it) has this run's fingerprint, the file's current size and
  modification time, and no error. So a rerun after a crash, a kill or Ctrl-C does only what is
  left, with ``-j 1``, ``-j N`` or another number of ranks; **failed inputs are retried** (a
  missing file may have been restored, a worker may have been killed by the OOM killer), and a
  changed file or changed settings are predicted again.
- **Merge.** When every rank is done (a gloo barrier under torchrun), rank 0 reads every
  journal, takes each input's latest entry and writes the output atomically, in input order,
  through the chosen format (:data:`emovox.formats.FORMATS`): byte for byte what one
  uninterrupted process writes. The folder is then removed, unless a file failed: then it stays,
  so that the next run retries only the failures.

The output's folder must be shared by all machines (as for ``emovox label``). Interrupted by
SIGTERM/SIGINT, ``emovox predict`` still writes the output from what is done (an error record
``not processed: interrupted ...`` for the rest) and keeps the folder for the rerun.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, is_dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

from . import distributed
from .records import FileResult, SegmentRecord
from .utils import json_dumps

log = logging.getLogger("emovox.predict")

__all__ = ["PredictRun", "RunError", "parts_dir", "run_fingerprint", "file_stamp", "read_parts", "result_from_dict",
           "RANK_WAIT"]

RANK_WAIT = timedelta(hours=24)
"""How long a rank that has finished waits for the others (torchrun ends every rank as soon as
one fails, so this only bounds a rank that hangs; past it, the parts stay and a rerun merges)."""


class RunError(RuntimeError):
    """The parts folder cannot be used (locked by another run) or misses results."""


def parts_dir(output: str | os.PathLike) -> Path:
    """``OUT.parts`` beside the output."""
    output = Path(output)
    return output.with_name(output.name + ".parts")


def file_stamp(path: str | os.PathLike) -> list[int] | None:
    """``[size, mtime_ns]`` of a file, or None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


def run_fingerprint(predictor) -> str:
    """What makes two runs give the same records: the predictor's version, its configuration and
    how it was built (minus the thread count), and the model file's size and time."""
    config = asdict(predictor.config) if is_dataclass(predictor.config) else dict(vars(predictor.config))
    config.pop("threads", None)
    spec = {k: v for k, v in (getattr(predictor, "spec", None) or {}).items() if k != "threads"}
    if isinstance(spec.get("path"), str):
        spec["model_stamp"] = file_stamp(spec["path"])
    keys = {"version": getattr(predictor, "version", ""), "config": config, "spec": spec}
    return hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()[:16]


def result_from_dict(d: dict[str, Any]) -> FileResult:
    """The inverse of ``FileResult.to_dict``."""
    return FileResult(file=d["file"], segments=[SegmentRecord.from_dict(s) for s in d.get("segments") or []],
                      duration=d.get("duration"), error=d.get("error"), note=d.get("note"))


@dataclass
class Entry:
    """One input's result in a journal."""

    result: FileResult
    stamp: list[int] | None
    time: float


def _lines(path: Path) -> list[str]:
    """The complete lines of a journal (a torn last line, from a kill mid-write, is left out)."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    return data[:data.rfind(b"\n") + 1].decode("utf-8", errors="replace").splitlines()


def read_parts(folder: str | os.PathLike, fingerprint: str) -> dict[str, Entry]:
    """Each input's latest entry with this fingerprint, over every journal in ``folder``."""
    out: dict[str, Entry] = {}
    folder = Path(folder)
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("rank-*.jsonl")):
        for n, line in enumerate(_lines(path), start=1):
            try:
                d = json.loads(line)
                if d.get("fingerprint") != fingerprint:
                    continue
                e = Entry(result_from_dict(d["result"]), d.get("stamp"), float(d["time"]))
            except (ValueError, KeyError, TypeError) as err:
                log.warning("%s:%d: unreadable entry skipped (%s)", path, n, err)
                continue
            old = out.get(e.result.file)
            if old is None or e.time >= old.time:
                out[e.result.file] = e
    return out


class PredictRun:
    """This rank's part of a batch prediction into ``output`` (see the module docstring).

    ``todo`` are this rank's inputs still to predict; hand each result to :meth:`add` as it
    arrives; then :meth:`finish` (every rank) and, on rank 0, :meth:`results` for the output."""

    def __init__(self, output: str | os.PathLike, predictor, paths: Sequence[str | os.PathLike],
                 rank: int | None = None, world: int | None = None):
        self.output = Path(output)
        self.dir = parts_dir(output)
        self.paths = [str(p) for p in paths]
        self.rank = distributed.rank() if rank is None else rank
        self.world = distributed.world_size() if world is None else world
        if not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} outside a world of {self.world}")
        self.fingerprint = run_fingerprint(predictor)
        self.started = time.time()
        self.mine = [p for i, p in enumerate(self.paths) if i % self.world == self.rank]
        entries = read_parts(self.dir, self.fingerprint)
        self.stamps = {p: file_stamp(p) for p in self.mine}
        self.skipped = [p for p in self.mine if p in entries and entries[p].result.ok
                        and entries[p].stamp == self.stamps[p] and self.stamps[p] is not None]
        done = set(self.skipped)
        self.todo = [p for p in self.mine if p not in done]
        self.journal = self.dir / f"rank-{self.rank}.jsonl"
        self._file = None

    # -- this rank's journal

    def __enter__(self) -> "PredictRun":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        """Open (and lock) this rank's journal for appending; drop a torn last line."""
        fresh = not self.dir.is_dir()
        self.dir.mkdir(parents=True, exist_ok=True)
        f = open(self.journal, "a+b")
        try:
            _lock(f, self.journal)
            f.seek(0)
            data = f.read()
            keep = data.rfind(b"\n") + 1
            if keep < len(data):
                f.truncate(keep)
                os.fsync(f.fileno())
        except BaseException:
            f.close()
            raise
        self._file = f
        if fresh:
            _fsync_dir(self.dir.parent)
        _fsync_dir(self.dir)

    def add(self, result: FileResult) -> None:
        """Journal one finished input (durably, before returning)."""
        if self._file is None:
            raise RunError("the journal is not open")
        entry = {"file": result.file, "fingerprint": self.fingerprint, "stamp": self.stamps.get(result.file),
                 "time": time.time(), "result": result.to_dict()}
        self._file.write((json_dumps(entry) + "\n").encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()  # releases the lock
            self._file = None

    # -- all ranks

    def connect(self) -> None:
        """Under torchrun: start the gloo process group before the work, while every rank is
        alive, so that :meth:`finish` waits on live peers only (a rank that dies makes the others'
        wait fail at once instead of hanging)."""
        if self.world <= 1:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="gloo", timeout=RANK_WAIT)

    def finish(self) -> None:
        """Wait until every rank has finished its part (a gloo barrier under torchrun). Raises
        :class:`RunError` when a rank is gone; the journals keep every finished input."""
        if self.world <= 1:
            return
        import torch.distributed as dist

        try:
            self.connect()
            dist.barrier()
        except Exception as e:  # noqa: BLE001 - torch raises several kinds for a lost peer
            raise RunError(f"rank {self.rank} could not wait for the other ranks ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''}); what is done is kept in {self.dir}, "
                           "rerun the same command to finish") from None

    def close_group(self) -> None:
        """End the process group (every rank, once its part of the work is over)."""
        if self.world > 1:
            distributed.destroy_process_group()

    def results(self, missing: str | None = None) -> list[FileResult]:
        """Every input's result, in input order, from all journals. An input without one raises
        :class:`RunError`, or, given ``missing``, gets an error record saying that; with
        ``missing``, errors journaled before this run started count as missing too (the input
        was not retried)."""
        entries = read_parts(self.dir, self.fingerprint)
        out, lacking = [], []
        for p in self.paths:
            e = entries.get(p)
            if e is not None and missing is not None and not e.result.ok and e.time < self.started:
                e = None
            if e is None:
                lacking.append(p)
                out.append(FileResult(file=p, error=missing or ""))
            else:
                out.append(e.result)
        if lacking and missing is None:
            raise RunError(f"{len(lacking)} input(s) have no result in {self.dir} (first: {lacking[0]}); "
                           "rerun the same command to finish them")
        return out

    def remove(self) -> None:
        """Delete the parts folder (once the output holds everything)."""
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            _fsync_dir(self.dir.parent)


def _lock(f, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise RunError(f"{path} is being written by another emovox predict (the same -o and rank); "
                       "wait for it to finish or stop it") from None


def _fsync_dir(path: Path) -> None:
    """Make a new entry in ``path`` durable (POSIX; a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
