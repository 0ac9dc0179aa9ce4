"""Worker processes that never lose a batch, and signals that stop one cleanly.

:func:`run_pool` maps a function over items in ``jobs`` spawned worker processes and yields
``(index, result)`` in input order. Unlike ``multiprocessing.Pool`` it watches each worker's
process as well as its pipe, so a worker that dies (the OOM killer, a segfault in a decoder)
costs only the item it held: that item's result is a :class:`WorkerDied` (naming the signal or
exit code), a fresh worker takes its place, and the batch goes on. An exception raised by the
function for one item (anything but an interrupt) becomes that item's :class:`ItemFailed`.
Workers ignore SIGINT (the parent decides), exit when the parent's end of their pipe closes,
and on Linux are sent SIGKILL by the kernel if the parent dies; when the consumer stops early
or is interrupted, every worker is ended (SIGTERM, then SIGKILL) before ``run_pool`` returns.

:class:`Interrupts` turns SIGTERM and SIGINT into :class:`Interrupted` (a ``KeyboardInterrupt``)
only at the points the caller marks as safe (``with interrupts.allowed(): ...``); a signal that
arrives elsewhere waits for the next such point, so an output is never torn mid-record.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

STOP_GRACE = 5.0
"""Seconds a worker gets to exit after SIGTERM before SIGKILL."""


@dataclass
class WorkerDied:
    """The worker holding this item died: ``cause`` says how (``worker process killed by
    SIGKILL``, ``... exited with status 1``)."""

    cause: str


@dataclass
class ItemFailed:
    """The function raised on this item: ``cause`` is ``"Type: message"``."""

    cause: str


class PoolError(RuntimeError):
    """The workers cannot start (their initializer fails)."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT, raised where the program allows it; ``signum`` says which."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


# ----------------------------------------------------------------------------- workers


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies."""
    end_with_parent(signal.SIGKILL)


def end_with_parent(signum: int = signal.SIGTERM) -> bool:
    """Linux: have the kernel send ``signum`` to this process when its parent dies (e.g. a
    torchrun rank whose launcher was killed: torchrun starts ranks in sessions of their own, so
    they would run on, orphaned). Sent at once if the parent is already gone. True when set."""
    import os

    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        import ctypes

        if ctypes.CDLL(None, use_errno=True).prctl(1, int(signum)) != 0:  # PR_SET_PDEATHSIG
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # it died before the request: nobody will send the signal
        os.kill(os.getpid(), signum)
    return True


def _worker_main(conn, init: Callable | None, init_args: tuple, func: Callable) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    try:
        if init is not None:
            init(*init_args)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        _send(conn, ("init-error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"))
        return
    if not _send(conn, ("ready", None)):
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if msg is None:
            return
        index, item = msg
        try:
            reply = ("done", index, func(item))
        except Exception as e:  # noqa: BLE001 - one item's failure, not the worker's
            reply = ("failed", index, f"{type(e).__name__}: {e}")
        if not _send(conn, reply):
            return


def _send(conn, msg) -> bool:
    try:
        conn.send(msg)
        return True
    except (BrokenPipeError, EOFError, OSError):
        return False


class _Worker:
    def __init__(self, ctx, init, init_args, func):
        parent, child = ctx.Pipe(duplex=True)
        self.conn = parent
        self.proc = ctx.Process(target=_worker_main, args=(child, init, init_args, func), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.busy: int | None = None

    def stop(self) -> None:
        _send(self.conn, None)

    def end(self, grace: float = STOP_GRACE) -> None:
        """Make sure the process is gone (asked, then SIGTERM, then SIGKILL)."""
        if self.proc.is_alive():
            self.proc.join(0.5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(grace)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(grace)
        self.conn.close()


def run_pool(items: Iterable[Any], func: Callable[[Any], Any], jobs: int, init: Callable | None = None,
             init_args: tuple = (), max_restarts: int | None = None) -> Iterator[tuple[int, Any]]:
    """``(index, func(item))`` for every item, in input order, computed in ``jobs`` spawned
    processes (each runs ``init(*init_args)`` once). A result is :class:`WorkerDied` or
    :class:`ItemFailed` instead when that item killed its worker or raised. ``func``, ``init``
    and the items must be picklable. Raises :class:`PoolError` when workers cannot start, or
    when more than ``max_restarts`` (default ``2 * jobs + 2``) workers die."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    items = list(items)
    if not items:
        return
    ctx = mp.get_context("spawn")
    jobs = max(1, min(int(jobs), len(items)))
    restarts_left = 2 * jobs + 2 if max_restarts is None else max_restarts
    todo = deque(range(len(items)))
    done: dict[int, Any] = {}
    workers = [_Worker(ctx, init, init_args, func) for _ in range(jobs)]
    following = 0
    stopping = False

    def receive(w: _Worker) -> None:
        nonlocal restarts_left
        closed = False
        try:
            msg = w.conn.recv() if w.conn.poll() else None
        except (EOFError, OSError):
            msg, closed = None, True
        if msg is not None:
            kind = msg[0]
            if kind == "ready":
                w.ready = True
            elif kind == "init-error":
                raise PoolError(f"worker process could not start: {msg[1]}")
            else:
                done[msg[1]] = msg[2] if kind == "done" else ItemFailed(msg[2])
                w.busy = None
            return
        if closed:  # its end of the pipe closed: it is exiting
            w.proc.join(STOP_GRACE)
        if w.proc.is_alive():
            if not closed:
                return
            w.proc.kill()
        w.proc.join()
        cause = describe_exit(w.proc.exitcode)
        if w.busy is not None:
            done[w.busy] = WorkerDied(f"worker process {cause}")
            w.busy = None
        workers.remove(w)
        w.end()
        if stopping:
            return
        if restarts_left <= 0:
            raise PoolError(f"too many worker processes died (last: {cause})")
        restarts_left -= 1
        if todo or any(x.busy is not None for x in workers):
            workers.append(_Worker(ctx, init, init_args, func))

    try:
        while following < len(items):
            while following in done:
                yield following, done.pop(following)
                following += 1
            if following >= len(items):
                break
            for w in workers:
                if w.ready and w.busy is None and todo:
                    w.busy = todo.popleft()
                    if not _send(w.conn, (w.busy, items[w.busy])):
                        pass  # it died: receive() notices and fails the item
            if not workers:
                raise PoolError("no worker process left")
            ready = wait([w.conn for w in workers] + [w.proc.sentinel for w in workers])
            for w in list(workers):
                if w.conn in ready or w.proc.sentinel in ready:
                    receive(w)
                    while w in workers and w.conn.poll():  # drain what it sent before going on
                        receive(w)
    except BaseException:
        # interrupted or abandoned: keep what already arrived, in order, then end the workers
        stopping = True
        for w in list(workers):
            with contextlib.suppress(Exception):
                while w.conn.poll():
                    receive(w)
        _end_all(workers)
        workers = []
        while following in done:
            yield following, done.pop(following)
            following += 1
        raise
    finally:
        for w in workers:
            w.stop()
        for w in workers:
            w.end()


def _end_all(workers: list[_Worker]) -> None:
    for w in workers:
        if w.proc.is_alive():
            with contextlib.suppress(Exception):
                w.proc.terminate()
    for w in workers:
        w.end()


# ----------------------------------------------------------------------------- signals


class Interrupts:
    """SIGTERM/SIGINT -> :class:`Interrupted`, raised only inside ``with self.allowed():``.

    Use as a context manager in the main thread (elsewhere it does nothing). ``signum`` is the
    first signal received (None if none)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum: int | None = None
        self._armed = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
        if self._armed:
            self._armed = False
            raise Interrupted(self.signum)

    def __enter__(self) -> "Interrupts":
        import threading

        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()

    @contextlib.contextmanager
    def allowed(self):
        """Let a signal interrupt the block (at once, if one arrived before)."""
        if self.signum is not None:
            raise Interrupted(self.signum)
        self._armed = True
        try:
            yield
        finally:
            self._armed = False


def exit_code(signum: int) -> int:
    """The shell's status for a process ended by ``signum`` (128 + signum)."""
    return 128 + int(signum)


__all__ = ["run_pool", "WorkerDied", "ItemFailed", "PoolError", "Interrupted", "Interrupts", "describe_exit",
           "exit_code", "end_with_parent", "STOP_GRACE"]
