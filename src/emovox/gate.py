"""What stands between the network and the model in ``emovox serve``: ASGI middleware and a
uvicorn protocol that decide about a request before its body is read.

* :class:`Gate`: the ``Host`` allow-list (400), the bearer token (401, compared in constant
  time), the queue (503 with ``Retry-After`` when full, before the upload is read) and slow
  bodies (408 when nothing arrives for ``body_timeout`` s or the whole body takes longer than
  ``request_timeout`` s);
* :class:`UploadLimit`: 413 for bodies over the size limit, decided from ``Content-Length``
  and by counting the streamed body (nothing over the limit is buffered);
* :func:`timed_protocol`: uvicorn's h11 protocol with a deadline for the request *headers*
  (a client trickling its headers is cut off after ``header_timeout`` s);
* :class:`WorkQueue`: the bounded queue of uploads waiting for (or holding) the model, served
  first come, first served (:class:`FairLock`), so no request waits more than the queue ahead.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import threading

PUBLIC_PATHS = ("/", "/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")
"""Paths answered without the token: the page, the health check and the API documentation."""


async def respond(send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A JSON ``{"detail": ...}`` answer that closes the connection."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class _Abort(Exception):
    def __init__(self, status: int, detail: str, headers=None):
        self.status, self.detail, self.headers = status, detail, headers or []


async def _guarded(app, scope, receive, send, wrap_receive) -> None:
    """Run ``app`` with ``wrap_receive(receive)``; an :class:`_Abort` raised by it (or recorded
    while the app answers) replaces the app's answer with its own."""
    state = {"abort": None, "replied": False}

    async def inner_receive():
        try:
            return await wrap_receive()
        except _Abort as a:
            state["abort"] = a
            raise

    async def guarded_send(msg):
        a = state["abort"]
        if a is not None:
            if msg["type"] == "http.response.start" and not state["replied"]:
                state["replied"] = True
                await respond(send, a.status, a.detail, a.headers)
            return
        if msg["type"] == "http.response.start":
            state["replied"] = True
        await send(msg)

    try:
        await app(scope, inner_receive, guarded_send)
    except _Abort as a:
        state["abort"] = a
    except Exception:
        if state["abort"] is None:
            raise
    if state["abort"] is not None and not state["replied"]:
        a = state["abort"]
        await respond(send, a.status, a.detail, a.headers)


class UploadLimit:
    """ASGI middleware: a 413 for request bodies over ``limit`` bytes."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    def _too_large(self) -> _Abort:
        return _Abort(413, f"upload too large: more than {self.limit} bytes (limit {self.limit / 1e6:.1f} MB)")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    if int(v) > self.limit:
                        return await respond(send, 413, self._too_large().detail)
                except ValueError:
                    pass
        seen = 0

        async def counted():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise self._too_large()
            return msg

        await _guarded(self.app, scope, receive, send, counted)


class FairLock:
    """A lock taken in the order it was asked for (``threading.Lock`` lets a newcomer overtake
    a thread that has waited long, which starves requests under load)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0

    def __enter__(self) -> "FairLock":
        with self._cond:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._cond.wait()
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


class WorkQueue:
    """At most ``size`` predictions waiting for or holding the model. ``retry_after`` is an
    estimate (s) from the mean time per prediction."""

    def __init__(self, size: int):
        self.size = max(1, int(size))
        self.count = 0
        self.mean = 5.0
        self._lock = threading.Lock()

    def full(self) -> bool:
        return self.count >= self.size

    def enter(self) -> bool:
        with self._lock:
            if self.count >= self.size:
                return False
            self.count += 1
            return True

    def leave(self, seconds: float | None = None) -> None:
        with self._lock:
            self.count = max(0, self.count - 1)
            if seconds is not None:
                self.mean = 0.8 * self.mean + 0.2 * seconds

    def retry_after(self) -> int:
        return int(min(600, max(1, math.ceil(self.mean * max(1, self.count)))))

    def busy(self) -> _Abort:
        return _Abort(503, f"busy: {self.count} recording(s) already waiting for the model (queue of "
                           f"{self.size}); retry later", [(b"retry-after", str(self.retry_after()).encode())])


def host_of(value: str) -> str:
    """``example.org:8000`` -> ``example.org``; ``[::1]:8000`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Gate:
    """ASGI middleware: Host allow-list, bearer token, early queue check and body timeouts.
    ``hosts`` None or containing ``*``: any Host; ``token`` None: no authentication."""

    def __init__(self, app, *, hosts=None, token: str | None = None, queue: WorkQueue | None = None,
                 body_timeout: float = 10.0, request_timeout: float = 120.0, queued_path: str = "/v1/predict"):
        self.app = app
        self.hosts = None if hosts is None or "*" in hosts else {host_of(h) for h in hosts}
        self.token = token.encode() if token else None
        self.queue = queue
        self.body_timeout = body_timeout
        self.request_timeout = request_timeout
        self.queued_path = queued_path

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        if self.hosts is not None:
            host = host_of(headers.get(b"host", b"").decode("latin-1"))
            if host not in self.hosts:
                return await respond(send, 400, f"host {host!r} is not allowed here (start the service with "
                                                "--allow-host NAME to accept it)")
        if self.token is not None and scope.get("path") not in PUBLIC_PATHS:
            given = headers.get(b"authorization", b"")
            scheme, _, credential = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(credential.strip(), self.token):
                return await respond(send, 401, "missing or wrong bearer token (send 'Authorization: Bearer TOKEN')",
                                     [(b"www-authenticate", b'Bearer realm="emovox"')])
        if self.queue is not None and scope.get("path") == self.queued_path and self.queue.full():
            a = self.queue.busy()
            return await respond(send, a.status, a.detail, a.headers)
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        done = False

        async def timed():
            nonlocal done
            if done:
                return await receive()
            wait = min(self.body_timeout, deadline - loop.time())
            try:
                msg = await asyncio.wait_for(receive(), timeout=max(wait, 0.001))
            except asyncio.TimeoutError:
                slow = "nothing arrived for {:.0f} s".format(self.body_timeout) if wait >= self.body_timeout \
                    else "the body took longer than {:.0f} s".format(self.request_timeout)
                raise _Abort(408, f"request timed out: {slow}") from None
            if msg["type"] != "http.request" or not msg.get("more_body", False):
                done = True
            return msg

        await _guarded(self.app, scope, receive, send, timed)


def timed_protocol(header_timeout: float):
    """uvicorn's h11 protocol class, with the connection closed when a request's headers are not
    complete ``header_timeout`` s after the connection opened (or the last answer ended)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        _head_timer = None
        _timed_cycle = None

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(header_timeout, self._head_timeout)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and self.cycle is not self._timed_cycle:
                self._timed_cycle = self.cycle  # this request's headers are in
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return TimedH11Protocol
