"""HTTP service: ``POST /v1/predict`` (an audio upload) -> per-segment records as JSON.

Run it with ``emovox serve`` (uvicorn, one process, the model loaded once at start-up)::

    curl -F audio=@call.flac -F language=en http://127.0.0.1:8000/v1/predict

Endpoints: ``POST /v1/predict`` (multipart: ``audio`` file; optional form fields
``language``, ``vad_threshold``, ``max_segment``, ``min_segment``), ``GET /health`` and the
OpenAPI documentation at ``/docs`` and ``/openapi.json``.

Answers: 200 with ``{"file", "duration", "model", "segments": [SegmentRecord...], "note"}``;
413 when the upload is larger than ``max_upload_bytes`` (checked on ``Content-Length`` and
while the body streams in, before it is stored whole) or the audio is longer than
``max_duration`` s; 415 when the upload is not audio emovox can decode; 422 for an empty,
truncated or corrupt recording, a missing ``audio`` field or an invalid option.
Requests are processed one at a time by the one loaded model (a lock; CPU-bound work gains
nothing from interleaving), each in its own temporary file and segmenter, so concurrent requests
never share state; ``/health`` answers while a prediction runs.
"""

# no "from __future__ import annotations": FastAPI reads the endpoint annotations at run time

import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger("emovox.serve")


@dataclass
class ServeConfig:
    """Service limits. Sizes in bytes, durations in seconds."""

    max_upload_bytes: int = 50 * 1024 * 1024
    max_duration: float = 600.0
    min_duration: float = 0.05
    chunk_bytes: int = 1 << 16


class _TooLarge(Exception):
    pass


class UploadLimit:
    """ASGI middleware: a 413 for request bodies over ``limit`` bytes, decided from
    ``Content-Length`` when present and by counting the streamed body otherwise (nothing over
    the limit is buffered)."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    if int(v) > self.limit:
                        return await self._reject(send, int(v))
                except ValueError:
                    pass
        seen = 0
        over = False  # the body passed the limit: whatever the app answers becomes a 413
        replied = False

        async def counted_receive():
            nonlocal seen, over
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise _TooLarge()
            return msg

        async def guarded_send(msg):
            nonlocal replied
            if over:
                if msg["type"] == "http.response.start" and not replied:
                    replied = True
                    await self._reject(send, seen)
                return
            if msg["type"] == "http.response.start":
                replied = True
            await send(msg)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _TooLarge:
            if not replied:
                await self._reject(send, seen)

    async def _reject(self, send, size: int) -> None:
        import json

        body = json.dumps({"detail": f"upload too large: more than {self.limit} bytes "
                                     f"(limit {self.limit / 1e6:.1f} MB)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _status_for(cause: str) -> int:
    """415 for things that are not (decodable) audio, 422 for broken or empty recordings."""
    c = cause.lower()
    if "not an audio file" in c or "format not recognised" in c or "unsupported" in c or "no audio stream" in c:
        return 415
    return 422


def create_app(predictor=None, loader: Callable[[], Any] | None = None, config: ServeConfig | None = None):
    """The FastAPI application. Give a loaded ``predictor`` or a ``loader`` called once at
    start-up (default: ``emovox.load()``)."""
    from fastapi import FastAPI, File, Form, HTTPException, UploadFile
    from fastapi.concurrency import run_in_threadpool

    from .version import __version__
    from .audio import AudioError, info
    from .vad import VADConfig

    cfg = config or ServeConfig()
    state: dict[str, Any] = {"predictor": predictor}
    lock = threading.Lock()
    load_lock = threading.Lock()

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
        yield

    app = FastAPI(title="emovox", version=__version__, lifespan=lifespan,
                  description="Speech emotion, text sentiment and transcript for every speech segment of "
                              "an uploaded recording.")
    app.add_middleware(UploadLimit, limit=cfg.max_upload_bytes)

    @app.get("/health")
    async def health() -> dict:
        p = state["predictor"]
        return {"status": "ok" if p is not None else "loading", "emovox": __version__,
                "model": getattr(p, "version", None), "max_upload_bytes": cfg.max_upload_bytes,
                "max_duration": cfg.max_duration}

    @app.post("/v1/predict")
    async def predict(audio: UploadFile = File(..., description="a recording (wav, flac, mp3, ogg ...)"),
                      language: str | None = Form(None, description="language code for transcription"),
                      vad_threshold: float | None = Form(None, gt=0, lt=1),
                      max_segment: float | None = Form(None, gt=1, le=30),
                      min_segment: float | None = Form(None, ge=0, le=30)) -> dict:
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
        name = os.path.basename(audio.filename or "upload")
        suffix = os.path.splitext(name)[1][:10]
        fd, tmp = tempfile.mkstemp(prefix="emovox-upload-", suffix=suffix)
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
            hdr = info(tmp)
        except AudioError as e:
            raise HTTPException(_status_for(e.cause), f"{name}: {e.cause}") from None
        if hdr.duration > cfg.max_duration:
            raise HTTPException(413, f"{name}: audio too long: {hdr.duration:.1f} s (limit {cfg.max_duration:.0f} s)")
        if hdr.duration < cfg.min_duration:
            raise HTTPException(422, f"{name}: audio too short: {hdr.duration * 1000:.1f} ms "
                                     f"(at least {cfg.min_duration * 1000:.0f} ms)")
        with lock:
            try:
                segments = p.predict(tmp, name=name, vad=vad, language=language)
            except AudioError as e:
                raise HTTPException(_status_for(e.cause), f"{name}: {e.cause}") from None
            except ValueError as e:
                raise HTTPException(422, f"{name}: {e}") from None
        return {"file": name, "duration": round(hdr.duration, 3), "model": p.version,
                "segments": [s.to_dict() for s in segments],
                "note": None if segments else "no speech detected"}

    return app


def serve(host: str = "127.0.0.1", port: int = 8000, loader: Callable[[], Any] | None = None,
          config: ServeConfig | None = None, log_level: str = "info") -> None:
    """Run the service with uvicorn (blocks). ``host="0.0.0.0"`` listens on every interface."""
    import uvicorn

    cfg = config or ServeConfig()
    uvicorn.run(create_app(loader=loader, config=cfg), host=host, port=port, log_level=log_level, workers=1)
