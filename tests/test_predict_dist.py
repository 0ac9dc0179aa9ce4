"""``emovox predict DIR -o OUT`` across processes and restarts (emovox.predict_runs): torchrun ranks
share the files and rank 0 merges their parts into what one process writes; a run killed with
SIGKILL resumes, skipping what was done and retrying failures; the journal's rules on their own.

The end-to-end tests run the bundled model for real on generated speech (espeak-ng), without
transcription (``--transcriber none``) to stay fast: the transcript is not the point here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from conftest import make_fake_predictor, speech_recording
from emovox.predict_runs import PredictRun, RunError, parts_dir, read_parts, run_fingerprint
from emovox.records import FileResult, Scores, SegmentRecord

SR = 16000
NAMES = ["a0.wav", "a1.wav", "b0-bad.wav", "b1.wav", "c0.wav", "c1.wav", "d0.wav"]
LONG = {"b1.wav", "c0.wav"}  # ~40 s each, one per rank: a kill lands while they run
GOOD = [n for n in NAMES if "bad" not in n]


def _env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EMOVOX_PROGRESS": "0"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def _predict(folder: Path, out: Path, *extra: str, torchrun: bool = False) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"] if torchrun \
        else [sys.executable]
    return [*launcher, "-m", "emovox", "predict", str(folder), "-o", str(out), "--transcriber", "none", *extra]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    return res


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, speech_clips):
    """Seven inputs in a folder: five short recordings, two long ones and one that is not audio;
    and ``ref.jsonl``, what one uninterrupted process writes for them."""
    root = tmp_path_factory.mktemp("dist")
    folder = root / "in"
    folder.mkdir()
    for i, name in enumerate(NAMES):
        if "bad" in name:
            (folder / name).write_bytes(b"RIFF\x00\x00\x00\x00not a wave at all" * 8)
            continue
        clips = [speech_clips[(i + k) % 3] for k in range(12 if name in LONG else 1)]
        audio, _ = speech_recording(clips, pause=0.8, lead=0.3)
        sf.write(folder / name, audio, SR)
    ref = root / "ref" / "ref.jsonl"
    _run(_predict(folder, ref, "-j", "1"), root)
    return folder, ref


def _entries(out: Path) -> tuple[int, set[str]]:
    """(complete journal lines, names of the files journaled without an error) of ``out.parts``."""
    lines, ok = 0, set()
    for p in parts_dir(out).glob("rank-*.jsonl"):
        data = p.read_bytes()
        for line in data[:data.rfind(b"\n") + 1].decode().splitlines():
            lines += 1
            d = json.loads(line)
            if d["result"]["error"] is None:
                ok.add(Path(d["file"]).name)
    return lines, ok


def _resumed(stderr: str) -> int:
    return sum(int(n) for n in re.findall(r"resuming: (\d+) of \d+ file\(s\) already done", stderr))


def test_reference_output(corpus):
    folder, ref = corpus
    records = [json.loads(x) for x in ref.read_text().splitlines()]
    assert {Path(r["file"]).name for r in records} == set(NAMES)
    assert [Path(r["file"]).name for r in records if "error" in r] == ["b0-bad.wav"]
    assert sum(Path(r["file"]).name in LONG for r in records) >= 20  # the long ones have many segments
    # a failure keeps the parts, so that a rerun retries only it
    assert _entries(ref)[1] == set(GOOD)


@pytest.mark.slow
def test_torchrun_two_ranks_write_what_one_process_writes(corpus, tmp_path):
    folder, ref = corpus
    out = tmp_path / "out.jsonl"
    res = _run(_predict(folder, out, torchrun=True), tmp_path)
    assert out.read_bytes() == ref.read_bytes()  # same records, same order, same bytes
    journals = sorted(p.name for p in parts_dir(out).iterdir())
    assert journals == ["rank-0.jsonl", "rank-1.jsonl"]  # both ranks worked (kept: one file failed)
    assert "rank 1" in res.stderr and "rank 0 writes" in res.stderr
    # a rerun retries only the failed file, over any number of processes, and writes the same
    again = _run(_predict(folder, out, "-j", "1"), tmp_path)
    assert _resumed(again.stderr) == len(GOOD) and out.read_bytes() == ref.read_bytes()


def _processes(marker: str) -> list[int]:
    """Processes whose command line holds ``marker``."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker in p.joinpath("cmdline").read_bytes().decode(errors="replace"):
                    state = p.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
                    pids.append(int(p.name)) if state != "Z" else None
            except OSError:
                pass
    return pids


def _kill_after_first_file(cmd: list[str], out: Path, cwd: Path) -> None:
    """Start ``cmd`` in its own process group, SIGKILL the whole group once a file is journaled,
    and wait until no process of the run is left (torchrun's ranks live in sessions of their
    own: they end on their own when their launcher dies)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _entries(out)[1]:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no file was finished"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        proc.stderr.close()
    deadline = time.monotonic() + 60
    while _processes(str(out)):
        assert time.monotonic() < deadline, f"processes of the killed run live on: {_processes(str(out))}"
        time.sleep(0.1)


def _kill_and_resume(corpus, tmp_path, cmd_args: tuple[str, ...], torchrun: bool) -> None:
    folder, ref = corpus
    out = tmp_path / "out.jsonl"
    _kill_after_first_file(_predict(folder, out, *cmd_args, torchrun=torchrun), out, tmp_path)
    lines, done = _entries(out)
    assert done and done < set(GOOD), done  # killed after a file, before the last
    if torchrun and out.exists():  # the ranks had SIGTERM from the dying launcher: what was done, and why not the rest
        partial = [json.loads(x) for x in out.read_text().splitlines()]
        assert {Path(x["file"]).name for x in partial if "error" not in x} == done
        # the bad file may have failed on its own before the kill; every other unfinished file was interrupted
        assert all("interrupted by SIGTERM" in x["error"] for x in partial if "error" in x
                   and Path(x["file"]).name not in done and "bad" not in Path(x["file"]).name)
    else:
        assert not out.exists()  # SIGKILL before the merge: no output, and never half of one
    res = _run(_predict(folder, out, *cmd_args, torchrun=torchrun), tmp_path)
    assert out.read_bytes() == ref.read_bytes()  # as if never interrupted
    assert _resumed(res.stderr) == len(done)  # every finished file skipped ...
    after, _ = _entries(out)
    assert after - lines == len(NAMES) - len(done)  # ... and each other one predicted once (the bad one retried)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the run's processes in /proc")
def test_torchrun_killed_then_resumed(corpus, tmp_path):
    _kill_and_resume(corpus, tmp_path, (), torchrun=True)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the run's processes in /proc")
@pytest.mark.parametrize("jobs", ["2", "1"])
def test_workers_killed_then_resumed(corpus, tmp_path, jobs):
    _kill_and_resume(corpus, tmp_path, ("-j", jobs), torchrun=False)


# ----------------------------------------------------------------------------- the journal's rules


def _result(path: Path, error: str | None = None, valence: float = 0.25) -> FileResult:
    if error:
        return FileResult(file=str(path), error=error)
    seg = SegmentRecord(str(path), 0.5, 1.5, "", None, valence, -0.125, 0.0, Scores("sad", {"sad": 0.75, "happy": 0.25}))
    return FileResult(file=str(path), segments=[seg], duration=2.0)


def test_journal_skips_done_retries_failed_and_reads_back_exactly(tmp_path):
    paths = [tmp_path / f"{c}.wav" for c in "abc"]
    for p in paths:
        p.write_bytes(b"x" * 10)
    model = make_fake_predictor()
    out = tmp_path / "o.jsonl"
    with PredictRun(out, model, paths) as run:
        assert run.todo == [str(p) for p in paths] and not run.skipped
        run.add(_result(paths[0], valence=0.1 + 0.2))  # a float that must come back bit for bit
        run.add(_result(paths[1], error="boom"))
    again = PredictRun(out, model, paths)
    assert again.skipped == [str(paths[0])] and again.todo == [str(paths[1]), str(paths[2])]
    with pytest.raises(RunError, match="no result"):
        again.results()
    partial = again.results(missing="not processed")
    assert partial[0] == _result(paths[0], valence=0.1 + 0.2)
    assert partial[1].error == "not processed" and partial[2].error == "not processed"  # an old error: not retried yet
    with again:
        again.add(_result(paths[1]))  # the retry succeeds: the latest entry wins
        again.add(_result(paths[2]))
    assert [r.ok for r in again.results()] == [True, True, True]


def test_journal_redoes_changed_files_and_settings_and_drops_a_torn_line(tmp_path):
    paths = [tmp_path / f"{c}.wav" for c in "ab"]
    for p in paths:
        p.write_bytes(b"x" * 10)
    model = make_fake_predictor()
    out = tmp_path / "o.jsonl"
    with PredictRun(out, model, paths) as run:
        for p in paths:
            run.add(_result(p))
    journal = parts_dir(out) / "rank-0.jsonl"
    with open(journal, "ab") as f:
        f.write(b'{"file": "half a li')  # a kill mid-write
    paths[1].write_bytes(b"y" * 11)  # the recording changed since
    run = PredictRun(out, model, paths)
    assert run.skipped == [str(paths[0])] and run.todo == [str(paths[1])]
    with run:
        pass
    assert journal.read_bytes().endswith(b"\n") and len(journal.read_bytes().splitlines()) == 2
    other = make_fake_predictor(vad={"threshold": 0.3})  # other settings: nothing is reused
    assert run_fingerprint(other) != run_fingerprint(model)
    assert PredictRun(out, other, paths).todo == [str(p) for p in paths]
    threads = make_fake_predictor(threads=1)  # thread counts do not change results
    assert run_fingerprint(threads) == run_fingerprint(model)


def test_journal_shards_by_index_and_is_locked(tmp_path):
    paths = [tmp_path / f"{i}.wav" for i in range(5)]
    model = make_fake_predictor()
    out = tmp_path / "o.jsonl"
    assert PredictRun(out, model, paths, rank=0, world=2).mine == [str(paths[i]) for i in (0, 2, 4)]
    assert PredictRun(out, model, paths, rank=1, world=2).mine == [str(paths[i]) for i in (1, 3)]
    with pytest.raises(ValueError):
        PredictRun(out, model, paths, rank=2, world=2)
    with PredictRun(out, model, paths, rank=1, world=2):
        with pytest.raises(RunError, match="another emovox predict"):
            PredictRun(out, model, paths, rank=1, world=2).open()
        with PredictRun(out, model, paths, rank=0, world=2) as other:  # another rank's journal: fine
            other.add(_result(paths[0]))
    # entries of every rank (and any world size) count on resume
    assert PredictRun(out, model, paths, rank=0, world=1).skipped == []  # no stamp: the file does not exist
    assert set(read_parts(parts_dir(out), run_fingerprint(model))) == {str(paths[0])}


def test_torchrun_needs_an_output(tmp_path, monkeypatch, capsys):
    from emovox.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    sf.write(tmp_path / "a.wav", [0.0] * 1600, SR)
    assert main(["predict", str(tmp_path / "a.wav")]) == 1
    assert "-o" in capsys.readouterr().err
