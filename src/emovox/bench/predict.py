"""``emovox bench predict``: what emotion and sentiment add to transcription, and memory vs length.

For each length (default 10 s, 10 min, 60 min) a recording is generated once in a temporary
folder by concatenating espeak-ng sentences and pauses (written block by block). Then, on that
same file and in one run, each measurement runs in its own fresh process (so peak memory is its
own; models are loaded and run once on the first 8 s before the clock starts):

* ``transcribe``: faster-whisper alone on the whole file (``emovox.text.transcribe``, the same
  model, beam size and threads as the predictor uses);
* ``predict``: ``emovox.load().predict(file)``: VAD, Whisper encoder + emotion heads,
  transcription of each segment and VADER sentiment;
* ``predict-onnx``: the same with ``backend="onnx"`` (``predict-onnx-int8``: int8 encoder).

Reported per run: wall seconds, real-time factor (wall / audio seconds), overhead relative to
``transcribe``, the process's peak resident memory (``ru_maxrss``) and the normalised word
error rate of the whole transcript against the recording's script.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from ..utils import json_dumps

SENTENCES = (
    "Good morning, and thank you all for joining the call today.",
    "I am really pleased with how the launch went, the feedback has been wonderful.",
    "The delivery was late again, and the customer was furious about it.",
    "Let us go through the numbers for the third quarter one by one.",
    "Honestly, I am worried that we will miss the deadline next month.",
    "That is fantastic news, congratulations to the whole team.",
    "Please send me the report before Friday so I can review it.",
    "I do not understand why nobody told me about this problem earlier.",
)


def make_recording(path: Path, seconds: float, seed: int = 0) -> Path:
    """Write ``seconds`` of synthesised speech with 0.4-1.5 s pauses (16 kHz WAV), block by block,
    ending in silence rather than a cut sentence, and its script beside it (``.txt``)."""
    import numpy as np
    import soundfile as sf

    from ..text.synth import synthesize_array

    rng = np.random.default_rng(seed)
    clips = [synthesize_array(s, pitch=int(p)) for s, p in zip(SENTENCES, rng.integers(35, 65, len(SENTENCES)))]
    total = int(seconds * 16000)
    written = 0
    said = []
    with sf.SoundFile(str(path), "w", 16000, 1, subtype="PCM_16") as f:
        i = 0
        while written < total:
            pause = np.zeros(int(rng.uniform(0.4, 1.5) * 16000), np.float32)
            clip = clips[i % len(clips)]
            if written + len(pause) + len(clip) > total:  # the last sentence would be cut: silence instead
                pause, clip = np.zeros(total - written, np.float32), clip[:0]
            else:
                said.append(SENTENCES[i % len(SENTENCES)])
            f.write(pause)
            f.write(clip)
            written += len(pause) + len(clip)
            i += 1
    path.with_suffix(".txt").write_text(" ".join(said) + "\n", encoding="utf-8")
    return path


def _child(mode: str, path: str, threads: int, model: str | None, conn) -> None:
    """One measurement in a fresh process; sends a dict back through ``conn``."""
    import resource

    import torch

    from ..audio import info

    torch.set_num_threads(threads)
    out: dict = {"mode": mode}
    try:
        from ..audio import load_audio

        warm = load_audio(path, end=min(8.0, info(path).duration))  # first calls pay one-off costs
        t0 = time.perf_counter()
        if mode == "transcribe":
            from ..text.transcribe import get_transcriber

            tr = get_transcriber("whisper-tiny.en", threads=threads)
            tr.transcribe(warm)
            out["load_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            text = tr.transcribe(path).text
        else:
            from ..predict import load

            backend = {"predict": "torch", "predict-onnx": "onnx", "predict-onnx-int8": "onnx-int8"}[mode]
            p = load(model, backend=backend, threads=threads)
            p.predict(warm)
            out["load_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            before = dict(p.timings)
            records = p.predict(path)
            out["stages_s"] = {k: round(v - before[k], 2) for k, v in p.timings.items()}
            out["segments"] = len(records)
            text = " ".join(r.transcript for r in records)
        out["wall_s"] = time.perf_counter() - t1
        out["words"] = len(text.split())
        out["wer"] = _wer(Path(path).with_suffix(".txt"), text)
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except Exception as e:  # reported, the benchmark goes on
        out["error"] = f"{type(e).__name__}: {e}"
    conn.send(out)
    conn.close()


def _wer(reference: Path, text: str) -> float | None:
    """Normalised WER of ``text`` against the recording's script (None without one)."""
    if not reference.is_file():
        return None
    from ..evaluate.wer import wer

    return wer(reference.read_text(encoding="utf-8"), text, normalize=True)


def measure(mode: str, path: Path, threads: int = 2, model: str | None = None, timeout: float = 7200) -> dict:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(mode, str(path), threads, model, send))
    proc.start()
    send.close()
    result = recv.recv() if recv.poll(timeout) else {"mode": mode, "error": "timed out"}
    proc.join(30)
    return result


def run_bench(durations: list[float], modes: list[str], threads: int = 2, model: str | None = None,
              workdir: str | None = None, log=sys.stderr) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="emovox-bench-", dir=workdir) as tmp:
        for seconds in durations:
            path = make_recording(Path(tmp) / f"speech_{int(seconds)}s.wav", seconds)
            base = None
            for mode in modes:
                print(f"bench predict: {mode} on {seconds:.0f} s ...", file=log, flush=True)
                r = measure(mode, path, threads, model)
                r["audio_s"] = seconds
                if "wall_s" in r:
                    r["rtf"] = r["wall_s"] / seconds
                    if mode == "transcribe":
                        base = r["wall_s"]
                    elif base:
                        r["overhead"] = r["wall_s"] / base - 1
                print(f"bench predict: {json_dumps(r)}", file=log, flush=True)
                rows.append(r)
            path.unlink()
            path.with_suffix(".txt").unlink(missing_ok=True)
    return rows


def markdown(rows: list[dict]) -> str:
    """One row per run. ``stages`` (predict runs): seconds in read+VAD / emotion / transcription
    within the run, and what VAD + emotion + sentiment add to that run's own transcription time
    (the comparison that other jobs on the machine cannot skew)."""
    lines = ["| audio | run | wall (s) | real-time factor | vs transcription alone | peak RSS (MB) | segments | words "
             "| WER | stages: VAD / emotion / transcription (s) | added to own transcription |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {_dur(r['audio_s'])} | {r['mode']} | error: {r['error']} | | | | | | | | |")
            continue
        ov = f"{100 * r['overhead']:+.0f}%" if "overhead" in r else "-"
        wer = f"{r['wer']:.3f}" if r.get("wer") is not None else "-"
        st, added = r.get("stages_s"), "-"
        if st:
            stages = f"{st['read+vad']:.1f} / {st['emotion']:.1f} / {st['transcribe']:.1f}"
            if st["transcribe"] > 0:
                added = f"{100 * (st['read+vad'] + st['emotion'] + st['sentiment']) / st['transcribe']:+.0f}%"
        else:
            stages = "-"
        lines.append(f"| {_dur(r['audio_s'])} | {r['mode']} | {r['wall_s']:.1f} | {r['rtf']:.3f} | {ov} | "
                     f"{r['peak_rss_mb']:.0f} | {r.get('segments', '-')} | {r.get('words', '-')} | {wer} | {stages} | {added} |")
    return "\n".join(lines) + "\n"


def _dur(s: float) -> str:
    return f"{s:.0f} s" if s < 60 else f"{s / 60:.0f} min"


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict vs transcription alone: time, real-time factor, peak memory",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example:\n  emovox bench predict --durations 10,600,3600 > predict-bench.md")
    p.add_argument("--durations", default="10,600,3600", help="recording lengths in seconds (comma separated)")
    p.add_argument("--modes", default="transcribe,predict,predict-onnx",
                   help="runs per length: transcribe, predict, predict-onnx, predict-onnx-int8 (comma separated)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default=None, help="emotion model file (default: the bundled model)")
    p.add_argument("--workdir", default=None, help="where the temporary recordings go (default: system temp)")
    p.add_argument("--json", action="store_true", help="JSON rows on stdout instead of a markdown table")
    p.set_defaults(func=_run)


def _run(args) -> int:
    durations = [float(x) for x in args.durations.split(",") if x.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = set(modes) - {"transcribe", "predict", "predict-onnx", "predict-onnx-int8"}
    if bad:
        raise ValueError(f"unknown modes: {', '.join(sorted(bad))}")
    rows = run_bench(durations, modes, args.threads, args.model, args.workdir)
    print(json_dumps(rows, indent=2) if args.json else markdown(rows))
    return 1 if any("error" in r for r in rows) else 0
