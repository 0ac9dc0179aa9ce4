"""The HTTP service (emovox.serve): answers, limits, concurrency and a bounded load test."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import make_fake_predictor, speech_recording

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from emovox.serve import ServeConfig, create_app  # noqa: E402

SR = 16000
LIMITS = ServeConfig(max_upload_bytes=400_000, max_duration=12.0)


def wav_bytes(audio: np.ndarray, sr: int = SR, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format=fmt, subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture(scope="module")
def uploads(speech_clips):
    one, _ = speech_recording(speech_clips[:1], pause=0.5, lead=0.5)
    two, _ = speech_recording(speech_clips[:2], pause=1.0, lead=0.5)
    return {
        "one.wav": wav_bytes(one),
        "two.flac": wav_bytes(two, fmt="FLAC"),
        "silent.wav": wav_bytes(np.zeros(SR, np.float32)),
        "long.flac": wav_bytes(np.zeros(13 * SR, np.float32), fmt="FLAC"),  # small file, too long
        "big.wav": wav_bytes(np.zeros(14 * SR, np.float32)),  # 448 kB > 400 kB
        "text.wav": b"hello, this is not audio at all" * 10,
        "empty.wav": b"",
        "truncated.wav": wav_bytes(one)[:5000],
        "tiny.wav": wav_bytes(np.zeros(16, np.float32)),
    }


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    with TestClient(create_app(make_fake_predictor(), config=LIMITS)) as c:
        yield c


def post(client, name, data, **form):
    return client.post("/v1/predict", files={"audio": (name, data)}, data=form)


def test_health_and_openapi(client):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["model"] == "fake-emotion-1" and h["max_upload_bytes"] == 400_000
    spec = client.get("/openapi.json").json()
    assert "/v1/predict" in spec["paths"] and "/health" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_predict_returns_records(client, uploads):
    r = post(client, "two.flac", uploads["two.flac"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["file"] == "two.flac" and body["model"] == "fake-emotion-1" and len(body["segments"]) == 2
    seg = body["segments"][0]
    for key in ("start", "end", "transcript", "sentiment", "valence", "arousal", "dominance", "emotion"):
        assert key in seg
    assert post(client, "silent.wav", uploads["silent.wav"]).json() == {
        "file": "silent.wav", "duration": 1.0, "model": "fake-emotion-1", "segments": [],
        "note": "no speech detected"}


def test_options_as_form_fields(client, uploads):
    merged = post(client, "two.flac", uploads["two.flac"], min_segment="5", max_segment="20").json()
    assert len(merged["segments"]) == 1
    assert post(client, "one.wav", uploads["one.wav"], language="de").json()["segments"][0]["language"] == "de"
    assert post(client, "one.wav", uploads["one.wav"], vad_threshold="1.5").status_code == 422
    assert post(client, "one.wav", uploads["one.wav"], max_segment="abc").status_code == 422


@pytest.mark.parametrize("name,status,words", [
    ("big.wav", 413, "too large"),
    ("long.flac", 413, "too long"),
    ("text.wav", 415, "not an audio file"),
    ("empty.wav", 422, "empty"),
    ("truncated.wav", 422, "truncated"),
    ("tiny.wav", 422, "too short"),
])
def test_limits_and_bad_uploads(client, uploads, name, status, words):
    r = post(client, name, uploads[name])
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_missing_field_and_streamed_oversize(client, uploads):
    assert client.post("/v1/predict", data={"language": "en"}).status_code == 422
    import httpx

    req = httpx.Request("POST", "http://x/v1/predict", files={"audio": ("big.wav", uploads["big.wav"])})
    body = req.read()

    def chunks():  # no Content-Length: the limit is enforced while the body streams in
        for i in range(0, len(body), 50_000):
            yield body[i:i + 50_000]

    r = client.post("/v1/predict", content=chunks(), headers={"content-type": req.headers["content-type"]})
    assert r.status_code == 413 and "too large" in r.json()["detail"]


def test_concurrent_requests_do_not_mix(client, uploads):
    names = ["one.wav", "two.flac", "silent.wav"]
    expected = {n: post(client, n, uploads[n]).json() for n in names}
    got: list[tuple[str, dict]] = []

    def worker(n):
        for _ in range(3):
            got.append((n, post(client, n, uploads[n]).json()))

    threads = [threading.Thread(target=worker, args=(n,)) for n in names * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 18
    assert all(body == expected[n] for n, body in got)


# ----------------------------------------------------------------------------- load test

SERVER = """
import sys
sys.path.insert(0, {tests!r})
import uvicorn
from conftest import make_fake_predictor
from emovox.serve import ServeConfig, create_app
cfg = ServeConfig(max_upload_bytes={limit}, max_duration={duration})
uvicorn.run(create_app(make_fake_predictor(threads=1), config=cfg), host="127.0.0.1", port={port},
            log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads server memory from /proc")
def test_load_from_second_process(uploads, tmp_path):
    """A server process on 127.0.0.1 takes 204 requests (a third bad or oversized) from this
    process, four at a time: every good request succeeds, every bad one gets its 4xx, and the
    server's resident memory after the second half is within 30 MB of after the first."""
    import httpx

    port = _free_port()
    script = tmp_path / "server.py"
    script.write_text(SERVER.format(tests=str(Path(__file__).parent), limit=LIMITS.max_upload_bytes,
                                    duration=LIMITS.max_duration, port=port))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        plan = ([("one.wav", 200), ("two.flac", 200), ("silent.wav", 200), ("one.wav", 200),
                 ("text.wav", 415), ("big.wav", 413)] * 17)
        rss = []
        failures: list[str] = []
        from concurrent.futures import ThreadPoolExecutor

        def send(item):
            name, status = item
            with httpx.Client(timeout=60) as c:
                r = c.post(f"{url}/v1/predict", files={"audio": (name, uploads[name])})
            if r.status_code != status:
                failures.append(f"{name}: {r.status_code} {r.text[:200]}")

        with ThreadPoolExecutor(4) as pool:
            for _ in range(2):
                list(pool.map(send, plan))
                rss.append(_rss_kb(proc.pid))
        print(f"load test: {2 * len(plan)} requests, server RSS after each half (kB): {rss}")
        assert not failures, failures[:5]
        assert proc.poll() is None
        assert rss[1] - rss[0] < 30_000, rss
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.parametrize("argv", [["predict", "--help"], ["serve", "--help"], ["export", "onnx", "--help"],
                                  ["bench", "predict", "--help"]])
def test_commands_have_help_with_example(argv, capsys):
    from emovox.cli import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_real_bundled_model_over_http(uploads):
    """The service with the real pieces (bundled emotion model, Whisper tiny.en, VADER)."""
    from fastapi.testclient import TestClient

    import emovox
    from emovox.emotion_model import EmotionModel

    with TestClient(create_app(emovox.load(threads=2), config=LIMITS)) as c:
        r = post(c, "two.flac", uploads["two.flac"])
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["segments"]) == 2
        for seg in body["segments"]:
            assert seg["transcript"].strip(), "Whisper returned no words for synthesised speech"
            assert seg["emotion"]["label"] in seg["emotion"]["probs"]
            assert set(seg["emotion"]["probs"]) == set(EmotionModel.load().labels)
            assert abs(sum(seg["emotion"]["probs"].values()) - 1) < 1e-3
            assert seg["sentiment"]["label"] in ("negative", "neutral", "positive")
            assert all(-1.5 <= seg[k] <= 1.5 for k in ("valence", "arousal", "dominance"))
        assert post(c, "text.wav", uploads["text.wav"]).status_code == 415
