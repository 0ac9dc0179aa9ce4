"""``emovox bench serve``: the real service under a bounded, hostile load on loopback.

Starts ``emovox serve`` (the bundled model, Whisper tiny.en, VADER; a token; small upload
limit) as a child process on 127.0.0.1 and runs 20 concurrent clients against it, in rounds:

* good clients post a synthesised recording (espeak-ng speech) with the right token, a fixed
  number of times each per round;
* slow clients trickle a body one byte at a time (slower than the idle timeout), or send half
  their headers and stall;
* malformed clients post text, an HLS playlist naming a file on the server, an ffconcat list,
  a truncated WAV, a corrupt FLAC and a WAV declaring 3,000,017 Hz;
* oversized clients post more than the upload limit (with and without ``Content-Length``);
* wrong-token clients post a good recording with a bad or missing token.

The bad clients keep going (``--bad-pause`` s between requests) until the good ones have
finished the round; the service's queue holds twice the good clients, so bad requests meet the
checks meant for them rather than a full queue. Reported: failed good
requests (anything but 200 with segments), latency percentiles of the good requests (all made
while bad ones were in flight), the answers the bad clients got (status -> count), and the
server's resident memory after start-up, after each round, and its peak. Everything stays on
127.0.0.1; the request counts are bounded by the options.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from ..utils import json_dumps

TOKEN = "bench-token"


def register(sub) -> None:
    from ..commands._common import add_command

    p = add_command(sub, "serve", "the real HTTP service under 20 concurrent clients, some hostile (loopback only)",
                    "emovox bench serve --rounds 2 --requests 3 --json", run)
    p.add_argument("--good", type=int, default=8, help="good clients (default 8)")
    p.add_argument("--slow", type=int, default=3, help="slow clients (default 3)")
    p.add_argument("--malformed", type=int, default=4, help="clients sending non-audio or broken files (default 4)")
    p.add_argument("--oversized", type=int, default=3, help="clients sending too much (default 3)")
    p.add_argument("--wrong-token", type=int, default=2, help="clients with a bad or no token (default 2)")
    p.add_argument("--requests", type=int, default=3, help="requests per good client per round (default 3)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of load (default 2; memory is read after each)")
    p.add_argument("--bad-limit", type=int, default=400, help="most requests per bad client per round (default 400)")
    p.add_argument("--bad-pause", type=float, default=0.25,
                   help="seconds each bad client waits between requests (default 0.25; 0 floods the CPU)")
    p.add_argument("--timeout", type=float, default=5.0, help="the service's --timeout for slow clients (default 5)")
    p.add_argument("--threads", type=int, default=2, help="the service's model threads (default 2)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of markdown")


# ----------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(q / 100 * (len(xs) - 1)))))
    return round(xs[k], 2)


def _uploads(folder: Path) -> dict[str, bytes]:
    import io

    import numpy as np
    import soundfile as sf

    from ..text.synth import synthesize_array

    speech = [synthesize_array(t) for t in ("I am really pleased with how the launch went.",
                                            "The delivery was late again, and the customer was furious.")]
    gap = np.zeros(12000, np.float32)
    audio = np.concatenate([gap, speech[0], gap, speech[1], gap])
    buf = io.BytesIO()
    sf.write(buf, audio, 16000, format="WAV", subtype="PCM_16")
    good = buf.getvalue()
    secret = folder / "secret.flac"
    sf.write(secret, audio, 16000)
    odd = bytearray(good[:44])
    odd[24:28] = (3_000_017).to_bytes(4, "little")
    odd[28:32] = (6_000_034).to_bytes(4, "little")
    return {
        "good.wav": good,
        "notes.wav": b"this is not audio\n" * 200,
        "p.m3u8": f"#EXTM3U\n#EXTINF:10,\n{secret}\n#EXT-X-ENDLIST\n".encode(),
        "list.wav": b"ffconcat version 1.0\nfile secret.flac\nduration 5.0\n",
        "truncated.wav": good[: len(good) // 3],
        "corrupt.flac": b"fLaC" + bytes(range(256)) * 16,
        "odd-rate.wav": bytes(odd) + good[44:],
    }


# ----------------------------------------------------------------------------- clients


class Load:
    def __init__(self, url: str, port: int, uploads: dict[str, bytes], args):
        self.url, self.port, self.up, self.args = url, port, uploads, args
        self.good_ms: list[float] = []
        self.good_failures: list[str] = []
        self.bad = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def _post(self, client, name: str, data: bytes, token: str | None = TOKEN, **kw):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.post(f"{self.url}/v1/predict", files={"audio": (name, data)}, headers=headers, **kw)

    def good(self) -> None:
        import httpx

        with httpx.Client(timeout=600) as c:
            for _ in range(self.args.requests):
                t0 = time.perf_counter()
                try:
                    r = self._post(c, "good.wav", self.up["good.wav"])
                    ok = r.status_code == 200 and len(r.json()["segments"]) >= 1
                    why = f"{r.status_code} {r.text[:120]}"
                except httpx.HTTPError as e:
                    ok, why = False, f"{type(e).__name__}: {e}"
                ms = (time.perf_counter() - t0) * 1000
                with self.lock:
                    if ok:
                        self.good_ms.append(ms)
                    else:
                        self.good_failures.append(why)

    def _count(self, what: str) -> None:
        with self.lock:
            self.bad[what] += 1

    def malformed(self, k: int) -> None:
        import httpx

        names = ["notes.wav", "p.m3u8", "list.wav", "truncated.wav", "corrupt.flac", "odd-rate.wav"]
        with httpx.Client(timeout=120) as c:
            for i in range(self.args.bad_limit):
                if self.stop.wait(self.args.bad_pause if i else 0):
                    return
                name = names[(i + k) % len(names)]
                try:
                    self._count(f"{name} -> {self._post(c, name, self.up[name]).status_code}")
                except httpx.HTTPError as e:
                    self._count(f"{name} -> {type(e).__name__}")

    def oversized(self, k: int) -> None:
        import httpx

        big = self.up["good.wav"] * 12  # over the 2 MB limit the bench gives the service
        with httpx.Client(timeout=120) as c:
            for i in range(self.args.bad_limit):
                if self.stop.wait(self.args.bad_pause if i else 0):
                    return
                try:
                    if (i + k) % 2:
                        r = self._post(c, "big.wav", big)
                    else:
                        req = c.build_request("POST", f"{self.url}/v1/predict", files={"audio": ("big.wav", big)},
                                              headers={"Authorization": f"Bearer {TOKEN}"})
                        body = req.read()
                        chunks = (body[j:j + 65536] for j in range(0, len(body), 65536))  # no Content-Length
                        r = c.post(f"{self.url}/v1/predict", content=chunks,
                                   headers={"content-type": req.headers["content-type"],
                                            "Authorization": f"Bearer {TOKEN}"})
                    self._count(f"oversized -> {r.status_code}")
                except httpx.HTTPError as e:
                    self._count(f"oversized -> {type(e).__name__}")

    def wrong_token(self, k: int) -> None:
        import httpx

        with httpx.Client(timeout=120) as c:
            for i in range(self.args.bad_limit):
                if self.stop.wait(self.args.bad_pause if i else 0):
                    return
                token = None if (i + k) % 2 else "not-the-token"
                try:
                    self._count(f"wrong token -> {self._post(c, 'good.wav', self.up['good.wav'], token).status_code}")
                except httpx.HTTPError as e:
                    self._count(f"wrong token -> {type(e).__name__}")

    def slow(self, k: int) -> None:
        for _ in range(self.args.bad_limit):
            if self.stop.is_set():
                return
            s = socket.create_connection(("127.0.0.1", self.port), timeout=300)
            try:
                if k % 2:  # half the headers, then nothing
                    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    kind = "slow headers"
                else:  # a body trickled a byte at a time, slower than the idle timeout allows
                    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode()
                              + b"\r\nContent-Type: multipart/form-data; boundary=xx\r\nContent-Length: 100000\r\n\r\n")
                    kind = "slow body"
                    try:
                        for byte in b"--xx\r\n":
                            s.sendall(bytes([byte]))
                            if self.stop.wait(self.args.timeout * 1.5):
                                break
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the server answered 408 and closed while we trickled
                reply = s.recv(64)
                status = reply.split(b" ")[1].decode() if reply.startswith(b"HTTP/") else "closed by the server"
                self._count(f"{kind} -> {status}")
            except OSError as e:
                self._count(f"slow -> {type(e).__name__}")
            finally:
                s.close()


def _round(load: Load) -> float:
    a = load.args
    bad = ([threading.Thread(target=load.slow, args=(k,)) for k in range(a.slow)]
           + [threading.Thread(target=load.malformed, args=(k,)) for k in range(a.malformed)]
           + [threading.Thread(target=load.oversized, args=(k,)) for k in range(a.oversized)]
           + [threading.Thread(target=load.wrong_token, args=(k,)) for k in range(a.wrong_token)])
    good = [threading.Thread(target=load.good) for _ in range(a.good)]
    load.stop.clear()
    t0 = time.perf_counter()
    for t in bad + good:
        t.start()
    for t in good:
        t.join()
    seconds = time.perf_counter() - t0
    load.stop.set()
    for t in bad:
        t.join(a.timeout * 4 + 60)
    return seconds


# ----------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    import httpx

    total = args.good + args.slow + args.malformed + args.oversized + args.wrong_token
    port = _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="emovox-bench-serve-"))
    uploads = _uploads(tmp)
    cmd = [sys.executable, "-m", "emovox", "serve", "--host", "127.0.0.1", "--port", str(port), "--token", TOKEN,
           "--max-upload-mb", "2", "--max-queue", str(2 * args.good), "--timeout", str(args.timeout),
           "--threads", str(args.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).json()["status"] == "ok":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                print(f"emovox bench serve: the service did not start:\n{proc.stderr.read()[-2000:]}", file=sys.stderr)
                return 1
            time.sleep(0.5)
        with httpx.Client(timeout=600) as c:  # warm-up: models loaded and run once
            r = c.post(f"{url}/v1/predict", files={"audio": ("good.wav", uploads["good.wav"])},
                       headers={"Authorization": f"Bearer {TOKEN}"})
            if r.status_code != 200:
                print(f"emovox bench serve: warm-up request failed: {r.status_code} {r.text[:300]}", file=sys.stderr)
                return 1
        rss = {"after start-up": _rss_mb(proc.pid)}
        load = Load(url, port, uploads, args)
        seconds = []
        for k in range(args.rounds):
            print(f"emovox bench serve: round {k + 1} of {args.rounds} ({total} clients) ...", file=sys.stderr)
            seconds.append(round(_round(load), 1))
            rss[f"after round {k + 1}"] = _rss_mb(proc.pid)
        rss["peak"] = _rss_mb(proc.pid, "VmHWM")
        alive = proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    good_n = args.good * args.requests * args.rounds
    result = {
        "clients": {"total": total, "good": args.good, "slow": args.slow, "malformed": args.malformed,
                    "oversized": args.oversized, "wrong_token": args.wrong_token},
        "good_requests": good_n, "good_failed": len(load.good_failures), "good_failures": load.good_failures[:5],
        "good_latency_ms": {"p50": _percentile(load.good_ms, 50), "p90": _percentile(load.good_ms, 90),
                            "p99": _percentile(load.good_ms, 99), "max": _percentile(load.good_ms, 100)},
        "round_seconds": seconds, "bad_requests": sum(load.bad.values()), "bad_answers": dict(sorted(load.bad.items())),
        "server_rss_mb": rss, "server_alive": alive,
        "audio_seconds": 0.0,
    }
    import io

    import soundfile as sf

    result["audio_seconds"] = round(sf.info(io.BytesIO(uploads["good.wav"])).duration, 2)
    if args.json:
        print(json_dumps(result, indent=2))
    else:
        lat = result["good_latency_ms"]
        print(f"| clients | good requests | failed good | good latency p50 / p90 / p99 / max (s) | bad requests | "
              f"RSS start / after rounds / peak (MB) |\n|---|---|---|---|---|---|\n"
              f"| {total} ({args.good} good) | {good_n} | {result['good_failed']} | "
              + " / ".join(f"{v / 1000:.1f}" if v is not None else "-" for v in lat.values())
              + f" | {result['bad_requests']} | {rss['after start-up']} / "
              + " / ".join(str(rss[f"after round {k + 1}"]) for k in range(args.rounds)) + f" / {rss['peak']} |")
        print("\nbad clients got: " + ", ".join(f"{k}: {v}" for k, v in result["bad_answers"].items()))
    return 0 if not load.good_failures and alive else 1
