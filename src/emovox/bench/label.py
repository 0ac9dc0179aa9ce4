"""``emovox bench label``: throughput of the transcribers and sentiment labelers (utterances/s).

Transcribers run on the clips of a manifest (or on espeak-ng speech generated on the fly when no
manifest is given); labelers on the transcripts of that manifest (or on a fixed sentence set).
Reported per component: utterances per second of wall clock and of this process' CPU time (the
CPU figure is what the machine would give with no other load), plus the model load time.
"""

from __future__ import annotations

import sys
import time

SENTENCES = ["Kids are talking by the door.", "Dogs are sitting by the door.", "I love this, it is wonderful!",
             "This is terrible, I hate it.", "The meeting is at three o'clock.", "What a great idea, thank you.",
             "I am so sad and angry about this.", "Please call me tomorrow morning."]


def register(sub) -> None:
    from ..commands._common import add_command

    p = add_command(sub, "label", "utterances/s of each transcriber and sentiment labeler (emovox label's parts)",
                    "emovox bench label --manifest ravdess.jsonl --utterances 20 "
                    "--transcriber whisper-tiny.en --transcriber pocketsphinx --labeler vader --labeler e5", _run)
    p.add_argument("--manifest", metavar="M.jsonl", help="clips and transcripts to use (default: generated speech)")
    p.add_argument("--utterances", type=int, default=20, metavar="N", help="clips per transcriber (default 20)")
    p.add_argument("--texts", type=int, default=400, metavar="N", help="texts per labeler (default 400)")
    p.add_argument("--transcriber", action="append", metavar="NAME", help="repeatable (default whisper-tiny.en; 'none' for no transcriber)")
    p.add_argument("--labeler", action="append", metavar="NAME", help="repeatable (default vader and e5; 'none' for no labeler)")
    p.add_argument("--threads", type=int, default=2, metavar="N")
    p.add_argument("--beam-size", type=int, default=5, metavar="N")
    p.add_argument("--json", action="store_true", help="JSON on stdout instead of a markdown table")


def _clips(args) -> tuple[list, list[str]]:
    from ..audio import load_audio

    if args.manifest:
        from ..manifest import Manifest

        m = Manifest.load(args.manifest)
        recs = m.records[:: max(1, len(m) // max(1, args.utterances))][:args.utterances]
        texts = [r.transcript for r in m if r.transcript] or SENTENCES
        return [load_audio(m.audio_path(r), start=r.start, end=r.end) for r in recs], texts
    from ..text.synth import synthesize_array

    return [synthesize_array(SENTENCES[i % len(SENTENCES)]) for i in range(args.utterances)], SENTENCES


def _timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def _run(args) -> int:
    from ..report.tables import markdown_table
    from ..text.sentiment import get_labeler
    from ..text.transcribe import get_transcriber
    from ..utils import json_dumps

    clips, texts = _clips(args) if any(n != "none" for n in (args.transcriber or ["x"])) else ([], SENTENCES)
    if args.manifest and not clips:
        from ..manifest import Manifest

        texts = [r.transcript for r in Manifest.load(args.manifest) if r.transcript] or SENTENCES
    texts = (texts * (args.texts // max(1, len(texts)) + 1))[:args.texts]
    audio_s = sum(len(c) for c in clips) / 16000 or float("nan")
    rows = []
    for name in [n for n in (args.transcriber or ["whisper-tiny.en"]) if n != "none"]:
        load, _ = _timed(lambda: get_transcriber(name, threads=args.threads, beam_size=args.beam_size))
        t = get_transcriber(name, threads=args.threads, beam_size=args.beam_size)
        t.transcribe(clips[0])  # warm-up
        wall, cpu = _timed(lambda: [t.transcribe(c) for c in clips])
        rows.append({"component": f"transcriber {t.name}", "items": len(clips), "utt/s": len(clips) / wall,
                     "utt/s (cpu)": len(clips) / cpu, "RTF": wall / audio_s, "load (s)": load})
        print(f"{t.name}: {len(clips) / wall:.2f} utt/s", file=sys.stderr)
    for name in [n for n in (args.labeler or ["vader", "e5"]) if n != "none"]:
        load, _ = _timed(lambda: get_labeler(name, threads=args.threads))
        lab = get_labeler(name, threads=args.threads)
        lab(texts[:4])  # warm-up
        wall, cpu = _timed(lambda: lab(texts))
        rows.append({"component": f"labeler {lab.name}", "items": len(texts), "utt/s": len(texts) / wall,
                     "utt/s (cpu)": len(texts) / cpu, "RTF": None, "load (s)": load})
        print(f"{lab.name}: {len(texts) / wall:.1f} texts/s", file=sys.stderr)
    print(json_dumps(rows) if args.json else markdown_table(rows, digits=2))
    return 0
