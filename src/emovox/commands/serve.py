"""``emovox serve``: the HTTP service (POST /v1/predict, a page to try it at /, GET /health,
OpenAPI docs at /docs)."""

from __future__ import annotations

from ._common import add_command


def register(sub) -> None:
    p = add_command(sub, "serve", "HTTP service: upload a recording, get per-segment emotion as JSON",
                    "emovox serve --port 8000 &  curl -F audio=@call.flac http://127.0.0.1:8000/v1/predict\n"
                    "  EMOVOX_TOKEN=s3cret emovox serve --host 0.0.0.0 --allow-host ser.example.org   "
                    "# curl -H 'Authorization: Bearer s3cret' ...",
                    run)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1; "
                                                        "0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default=None, help="emotion model file (default: the bundled model)")
    p.add_argument("--backend", choices=("torch", "onnx", "onnx-int8"), default="torch",
                   help="encoder + heads on PyTorch, ONNX Runtime, or ONNX Runtime with an int8 encoder")
    p.add_argument("--onnx-dir", default=None, help="exported ONNX files for --backend onnx")
    p.add_argument("--transcriber", default="whisper-tiny.en", help="transcription model, or 'none'")
    p.add_argument("--sentiment", default="vader", help="text sentiment labeler, or 'none'")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload (MB, default 50)")
    p.add_argument("--max-duration", type=float, default=600.0, help="longest recording (s, default 600)")
    p.add_argument("--token", default=None,
                   help="require 'Authorization: Bearer TOKEN' on every request but /, /health and the docs "
                        "(default: $EMOVOX_TOKEN; none when unset)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="accept requests whose Host is NAME (repeatable; '*' for any). Default: 127.0.0.1, "
                        "localhost, ::1 and --host")
    p.add_argument("--max-queue", type=int, default=8,
                   help="recordings that may wait for the model; more get 503 with Retry-After (default 8)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds a client may take to send its headers, or stay silent while sending the body "
                        "(default 10; the whole body within 12x that)")


def run(args) -> int:
    from ..predict import load
    from ..serve import ServeConfig, serve

    import os

    from ..serve import LOOPBACK, TOKEN_ENV

    hosts = None
    if args.allow_host:
        hosts = [*LOOPBACK, *([args.host] if args.host not in ("0.0.0.0", "::") else []), *args.allow_host]
    cfg = ServeConfig(max_upload_bytes=int(args.max_upload_mb * 1e6), max_duration=args.max_duration,
                      token=args.token or os.environ.get(TOKEN_ENV) or None, allowed_hosts=hosts,
                      max_queue=args.max_queue, header_timeout=args.timeout, body_timeout=args.timeout,
                      request_timeout=12 * args.timeout)

    def loader():
        return load(args.model, backend=args.backend, transcriber=args.transcriber, sentiment=args.sentiment,
                    threads=args.threads, onnx_dir=args.onnx_dir)

    serve(args.host, args.port, loader=loader, config=cfg,
          log_level="debug" if getattr(args, "verbose", False) else "info")
    return 0
