"""The page at ``GET /``: self-contained (no external assets), and in headless Chromium an
upload shows the segment table and draws the timeline.

The browser test drives Debian's ``chromium`` through the DevTools protocol (a small
WebSocket client below, standard library only) and skips when /usr/bin/chromium is absent.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import make_fake_predictor, speech_recording

pytest.importorskip("fastapi")

CHROMIUM = Path("/usr/bin/chromium")


def test_page_is_self_contained():
    from fastapi.testclient import TestClient

    from emovox.serve import ServeConfig, create_app

    with TestClient(create_app(make_fake_predictor(), config=ServeConfig(token="t0ken"))) as c:
        r = c.get("/")  # no token needed for the page itself
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = r.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    html = r.text
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html), "the page loads something from elsewhere"
    assert "@import" not in html and "url(" not in html
    for hook in ('id="file"', 'id="segments"', 'id="timeline"', "v1/predict", "Authorization"):
        assert hook in html


# ----------------------------------------------------------------------------- a tiny DevTools client


class DevTools:
    """Just enough of a WebSocket client (RFC 6455, text frames) to send DevTools commands."""

    def __init__(self, url: str):
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        self.sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {m.group(3)} HTTP/1.1\r\nHost: {m.group(1)}:{m.group(2)}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.next_id = 0

    def _send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                  bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                  bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            assert chunk, "DevTools connection closed"
            out += chunk
        return out

    def _recv(self) -> str:
        parts = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            if b0 & 0x0F in (0x8, 0x9, 0xA):  # close / ping / pong
                continue
            parts += payload
            if b0 & 0x80:
                return parts.decode()

    def call(self, method: str, **params):
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._recv())
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg.get("result", {})

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def close(self) -> None:
        self.sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless page test needs Debian's chromium at /usr/bin/chromium "
                                                   "(apt-get install chromium)")
def test_page_uploads_and_draws_in_headless_chromium(tmp_path, speech_clips):
    import urllib.request

    from emovox.serve import ServeConfig, create_app, make_server

    audio, _ = speech_recording(speech_clips[:2], pause=1.0, lead=0.5)
    sf.write(tmp_path / "two.wav", audio, 16000)
    port = _free_port()
    cfg = ServeConfig(token="page-token", allowed_hosts=["127.0.0.1"])
    server = make_server(create_app(make_fake_predictor(), config=cfg), "127.0.0.1", port, cfg, log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    browser = subprocess.Popen([str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                "--disable-extensions", "--remote-debugging-port=0", "--window-size=1100,900",
                                f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tools = None
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        devtools_port = None
        for line in browser.stderr:
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                devtools_port = int(m.group(1))
                break
        assert devtools_port, "chromium did not start its DevTools endpoint"
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=30))
        page = next(t for t in targets if t["type"] == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        requests: list[str] = []
        tools.call("Network.enable")
        tools.call("Page.enable")
        tools.call("Emulation.setDeviceMetricsOverride", width=1100, height=900, deviceScaleFactor=1, mobile=False)
        tools.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
        while tools.evaluate("document.readyState") != "complete":
            assert time.monotonic() < deadline + 60
            time.sleep(0.1)
        doc = tools.call("DOM.getDocument")
        node = tools.call("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="#file")["nodeId"]
        tools.call("DOM.setFileInputFiles", nodeId=node, files=[str(tmp_path / "two.wav")])
        tools.evaluate("document.getElementById('token').value = 'page-token'; "
                       "document.getElementById('go').click(); true")
        rows = 0
        deadline = time.monotonic() + 60
        while rows < 2:
            assert time.monotonic() < deadline, tools.evaluate("document.getElementById('status').textContent")
            time.sleep(0.2)
            rows = tools.evaluate("document.querySelectorAll('#segments tbody tr').length")
        texts = tools.evaluate("[...document.querySelectorAll('#segments tbody tr')].map(r => r.innerText)")
        assert all("great" in t and "happy" in t for t in texts), texts
        assert "2 segment(s)" in tools.evaluate("document.getElementById('status').textContent")
        box = tools.evaluate("(() => { const r = document.getElementById('timeline').getBoundingClientRect(); "
                             "return [r.left, r.top, r.width, r.height]; })()")
        shot = tools.call("Page.captureScreenshot", format="png")["data"]
        urls = tools.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        requests.extend(urls)
    finally:
        if tools is not None:
            tools.close()
        browser.terminate()
        try:
            browser.wait(15)
        except subprocess.TimeoutExpired:
            browser.kill()
        server.should_exit = True
        thread.join(30)
    assert all(u.startswith(f"http://127.0.0.1:{port}/") for u in requests), requests
    from PIL import Image

    png = base64.b64decode(shot)
    (tmp_path / "page.png").write_bytes(png)
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    assert img.shape[:2] == (900, 1100)
    left, top, width, height = (int(round(v)) for v in box)
    plot = img[top:top + height, left:left + width]
    assert plot.size and width > 500 and height > 100
    white = (plot > 245).all(axis=2).mean()
    assert white < 0.97, "the timeline is blank"
    lines = (np.abs(plot - np.array([0x1D, 0x23, 0x30])).sum(axis=2) < 60).sum()  # valence and arousal
    happy = (np.abs(plot - np.array([0xF5, 0xB4, 0x00])).sum(axis=2) < 60).sum()  # the palette's amber band
    assert lines > 200 and happy > 500, (lines, happy)
    colours = {tuple(c) for c in plot.reshape(-1, 3)[:: 7]}
    assert len(colours) > 8  # lines, the emotion band, labels: not one flat colour
