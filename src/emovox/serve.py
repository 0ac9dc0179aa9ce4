"""HTTP service: ``POST /v1/predict`` (an audio upload) -> per-segment records as JSON.

Run it with ``emovox serve`` (uvicorn, one process, the model loaded once at start-up)::

    curl -F audio=@call.flac -F language=en http://127.0.0.1:8000/v1/predict

Endpoints: ``POST /v1/predict`` (multipart: one ``audio`` file; optional form fields
``language``, ``vad_threshold``, ``max_segment``, ``min_segment``), ``GET /`` (a page to try
it: upload a recording, see the segment table and the timeline), ``GET /health`` and the
OpenAPI documentation at ``/docs`` and ``/openapi.json``.

Answers: 200 with ``{"file", "duration", "model", "segments": [SegmentRecord...], "note"}``;
400 for a ``Host`` not on the allow-list; 401 without the bearer token (when one is set);
408 for a client that sends its headers or body too slowly; 413 when the upload is larger than
``max_upload_bytes`` (checked on ``Content-Length`` and while the body streams in) or the audio
is longer than ``max_duration`` s; 415 when the upload is not audio emovox decodes (playlists,
concat lists and URLs included: only the uploaded bytes are ever read); 422 for an empty,
truncated or corrupt recording, a bad filename, a second ``audio`` part, a missing ``audio``
field or an invalid option; 503 with ``Retry-After`` when ``max_queue`` recordings are already
waiting. Error details name the upload, never a path on the server.

The upload is stored under its own temporary name (its filename is only echoed back), its
header is checked (format from the bytes, sample rate, channels, length: emovox.audio) before
it joins the queue, and predictions run one at a time on the one model (a lock: CPU-bound work
gains nothing from interleaving), first come first served; ``/health`` answers while a prediction runs. Memory per
request is bounded: the upload is on disk, audio is decoded 30 s (at most 4 M samples) at a time,
and a segment is at most 30 s at 16 kHz (see docs/API.md for figures).
"""

# no "from __future__ import annotations": FastAPI reads the endpoint annotations at run time

import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger("emovox.serve")


TOKEN_ENV = "EMOVOX_TOKEN"
"""Environment variable holding the bearer token when ``--token`` is not given."""

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServeConfig:
    """Service limits. Sizes in bytes, durations in seconds."""

    max_upload_bytes: int = 50 * 1024 * 1024
    max_duration: float = 600.0
    min_duration: float = 0.05
    chunk_bytes: int = 1 << 16
    token: str | None = None
    """Bearer token every request but ``/``, ``/health`` and the docs must carry (None: none)."""
    allowed_hosts: list[str] | None = None
    """``Host`` names accepted (``*``: any). None: no check in :func:`create_app`; :func:`serve`
    fills in the loopback names and the address it listens on."""
    max_queue: int = 8
    """Recordings waiting for or holding the model; more get 503 with ``Retry-After``."""
    header_timeout: float = 10.0
    """Seconds a client has to send a request's headers."""
    body_timeout: float = 10.0
    """Seconds the body may go without a byte arriving."""
    request_timeout: float = 120.0
    """Seconds the whole body may take."""
    max_connections: int = 64
    """Open connections (and tasks) beyond which uvicorn answers 503."""


def _status_for(cause: str) -> int:
    """415 for things that are not (decodable) audio, 422 for broken or empty recordings and
    headers outside the limits (sample rate, channels)."""
    c = cause.lower()
    if "not an audio file" in c or "format not recognised" in c or "unsupported" in c or "no audio stream" in c:
        return 415
    return 422


def upload_name(raw: str | None) -> str:
    """The name an upload is known by in answers: its filename's last component. Raises
    ValueError for control characters (a NUL byte ...) or a name longer than 255 characters."""
    name = raw or "upload"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValueError(f"bad filename {name!r}: control characters (such as a NUL byte) are not allowed")
    if len(name) > 255:
        raise ValueError(f"bad filename: {len(name)} characters, at most 255")
    return name.replace("\\", "/").rsplit("/", 1)[-1] or "upload"


def _scrub(text: str, tmp: str, name: str) -> str:
    """``text`` with the temporary file's path (and its folder) replaced by the upload's name."""
    return text.replace(tmp, name).replace(os.path.dirname(tmp) + os.sep, "").replace(os.path.dirname(tmp), "")


def page_html() -> str:
    """The self-contained page served at ``GET /`` (no external assets)."""
    from importlib import resources

    return resources.files("emovox").joinpath("assets", "page.html").read_text(encoding="utf-8")


PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
               "connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
"""Content-Security-Policy of the page: nothing is loaded from anywhere but the service."""


def create_app(predictor=None, loader: Callable[[], Any] | None = None, config: ServeConfig | None = None):
    """The FastAPI application. Give a loaded ``predictor`` or a ``loader`` called once at
    start-up (default: ``emovox.load()``)."""
    from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import HTMLResponse

    from .version import __version__
    from .audio import AudioError, info
    from .gate import FairLock, Gate, UploadLimit, WorkQueue
    from .vad import VADConfig

    cfg = config or ServeConfig()
    state: dict[str, Any] = {"predictor": predictor}
    lock = FairLock()  # one prediction at a time, first come first served
    load_lock = threading.Lock()
    queue = WorkQueue(cfg.max_queue)
    tmpdir = tempfile.mkdtemp(prefix="emovox-serve-")

    def get_predictor():
        if state["predictor"] is None:
            with load_lock:
                if state["predictor"] is None:
                    from .predict import load

                    state["predictor"] = (loader or load)()
        return state["predictor"]

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        await run_in_threadpool(get_predictor)
        try:
            yield
        finally:
            import shutil

            shutil.rmtree(tmpdir, ignore_errors=True)

    app = FastAPI(title="emovox", version=__version__, lifespan=lifespan,
                  description="Speech emotion, text sentiment and transcript for every speech segment of "
                              "an uploaded recording.")
    app.add_middleware(UploadLimit, limit=cfg.max_upload_bytes)
    app.add_middleware(Gate, hosts=cfg.allowed_hosts, token=cfg.token, queue=queue,
                       body_timeout=cfg.body_timeout, request_timeout=cfg.request_timeout)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html(), headers={"content-security-policy": PAGE_POLICY,
                                                  "x-content-type-options": "nosniff"})

    @app.get("/health")
    async def health() -> dict:
        p = state["predictor"]
        return {"status": "ok" if p is not None else "loading", "emovox": __version__,
                "model": getattr(p, "version", None), "max_upload_bytes": cfg.max_upload_bytes,
                "max_duration": cfg.max_duration, "auth": cfg.token is not None,
                "queue": {"waiting": queue.count, "size": queue.size}}

    @app.post("/v1/predict")
    async def predict(request: Request,
                      audio: UploadFile = File(..., description="a recording (wav, flac, mp3, ogg ...)"),
                      language: str | None = Form(None, description="language code for transcription"),
                      vad_threshold: float | None = Form(None, gt=0, lt=1),
                      max_segment: float | None = Form(None, gt=1, le=30),
                      min_segment: float | None = Form(None, ge=0, le=30)) -> dict:
        try:
            name = upload_name(audio.filename)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        form = await request.form()  # parsed once already; read again to see every part
        if len(form.getlist("audio")) > 1:
            raise HTTPException(422, f"{name}: send one audio file per request ({len(form.getlist('audio'))} "
                                     "'audio' parts were sent)")
        p = get_predictor()
        vad = None
        if vad_threshold is not None or max_segment is not None or min_segment is not None:
            base = p.config.vad
            try:
                vad = VADConfig(**{**base.__dict__, **{k: v for k, v in (("threshold", vad_threshold),
                                                                           ("max_segment", max_segment),
                                                                           ("min_segment", min_segment))
                                                       if v is not None}})
            except ValueError as e:
                raise HTTPException(422, str(e)) from None
        fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=".bin", dir=tmpdir)  # never the client's name
        try:
            size = 0
            with os.fdopen(fd, "wb") as f:
                while chunk := await audio.read(cfg.chunk_bytes):
                    size += len(chunk)
                    if size > cfg.max_upload_bytes:
                        raise HTTPException(413, f"upload too large: more than {cfg.max_upload_bytes} bytes")
                    f.write(chunk)
            return await run_in_threadpool(_run, p, tmp, name, vad, language)
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    def _run(p, tmp: str, name: str, vad, language) -> dict:
        try:
            hdr = info(tmp)  # outside the model lock: a bad or hostile file never waits in line
        except AudioError as e:
            raise HTTPException(_status_for(e.cause), f"{name}: {_scrub(e.cause, tmp, name)}") from None
        if hdr.duration > cfg.max_duration:
            raise HTTPException(413, f"{name}: audio too long: {hdr.duration:.1f} s (limit {cfg.max_duration:.0f} s)")
        if hdr.duration < cfg.min_duration:
            raise HTTPException(422, f"{name}: audio too short: {hdr.duration * 1000:.1f} ms "
                                     f"(at least {cfg.min_duration * 1000:.0f} ms)")
        if not queue.enter():
            a = queue.busy()
            raise HTTPException(a.status, a.detail, headers={"Retry-After": str(queue.retry_after())})
        started = None
        try:
            with lock:
                started = time.perf_counter()
                try:
                    segments = p.predict(tmp, name=name, vad=vad, language=language)
                except AudioError as e:
                    raise HTTPException(_status_for(e.cause), f"{name}: {_scrub(e.cause, tmp, name)}") from None
                except ValueError as e:
                    raise HTTPException(422, f"{name}: {_scrub(str(e), tmp, name)}") from None
                except Exception as e:  # noqa: BLE001 - logged here; the client learns only what failed
                    log.exception("prediction failed on upload %s", name)
                    raise HTTPException(500, f"{name}: could not be processed ({type(e).__name__})") from None
        finally:
            queue.leave(None if started is None else time.perf_counter() - started)
        return {"file": name, "duration": round(hdr.duration, 3), "model": p.version,
                "segments": [s.to_dict() for s in segments],
                "note": None if segments else "no speech detected"}

    return app


def make_server(app, host: str = "127.0.0.1", port: int = 8000, config: ServeConfig | None = None,
                log_level: str = "info"):
    """A ``uvicorn.Server`` for ``app`` with the service's connection limits: headers within
    ``header_timeout``, idle keep-alive connections closed after 5 s, at most
    ``max_connections`` open. ``server.run()`` blocks; ``server.should_exit = True`` stops it."""
    import uvicorn

    from .gate import timed_protocol

    cfg = config or ServeConfig()
    ucfg = uvicorn.Config(app, host=host, port=port, log_level=log_level, workers=1,
                          http=timed_protocol(cfg.header_timeout), timeout_keep_alive=5,
                          limit_concurrency=cfg.max_connections, h11_max_incomplete_event_size=16 * 1024)
    return uvicorn.Server(ucfg)


def serve(host: str = "127.0.0.1", port: int = 8000, loader: Callable[[], Any] | None = None,
          config: ServeConfig | None = None, log_level: str = "info") -> None:
    """Run the service with uvicorn (blocks). ``host="0.0.0.0"`` listens on every interface.

    Without ``config.allowed_hosts`` the service accepts the loopback names and ``host`` itself;
    other names (``--allow-host``) must be given, so a page elsewhere cannot reach it through a
    name that resolves here. The token defaults to ``$EMOVOX_TOKEN``."""
    from dataclasses import replace

    cfg = config or ServeConfig()
    if cfg.allowed_hosts is None:
        cfg = replace(cfg, allowed_hosts=[*LOOPBACK, *([host] if host not in ("0.0.0.0", "::", "") else [])])
    if cfg.token is None and os.environ.get(TOKEN_ENV):
        cfg = replace(cfg, token=os.environ[TOKEN_ENV])
    if host not in LOOPBACK and cfg.token is None:
        log.warning("listening on %s without a token: anyone who can reach this port can use the model "
                    "(set --token or %s)", host, TOKEN_ENV)
    make_server(create_app(loader=loader, config=cfg), host, port, cfg, log_level).run()
