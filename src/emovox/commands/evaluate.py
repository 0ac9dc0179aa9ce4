"""``emovox evaluate ...``: accuracy measurements (``asr``: WER/CER and real-time factor)."""

from __future__ import annotations

import sys
from pathlib import Path

from ._common import add_command, add_group


def register(sub) -> None:
    inner = add_group(sub, "evaluate", "evaluations (asr: WER/CER and speed of transcribers)", "EVALUATION",
                      "Evaluations of emovox components on a manifest.")
    q = add_command(
        inner, "asr",
        "word/character error rate (normalised English) and real-time factor of transcribers on a manifest "
        "whose records carry reference transcripts",
        "emovox corpus import an4 ../shared/data/asr/an4 -o an4.jsonl\n"
        "  emovox evaluate asr an4.jsonl --split test --transcriber whisper-tiny.en --transcriber pocketsphinx",
        _asr)
    q.add_argument("manifest", metavar="M.jsonl")
    q.add_argument("--transcriber", action="append", metavar="NAME",
                   help="repeatable (default whisper-tiny.en): whisper-tiny.en, whisper-base, pocketsphinx, "
                        "hf:MODEL_ID or a model directory")
    q.add_argument("--split", metavar="NAME", help="only records of this split (e.g. test)")
    q.add_argument("--limit", type=int, metavar="N", help="only the first N records (after --split)")
    q.add_argument("--threads", type=int, default=2, metavar="N", help="CPU threads (default 2)")
    q.add_argument("--beam-size", type=int, default=5, metavar="N", help="Whisper beam size (default 5)")
    q.add_argument("--hypotheses", metavar="FILE", help="write reference/hypothesis pairs as JSONL")
    q.add_argument("--json", action="store_true", help="JSON on stdout instead of a markdown table")


def _asr(args) -> int:
    from ..evaluate.asr import evaluate_transcriber
    from ..manifest import Manifest
    from ..report.tables import json_safe, markdown_table
    from ..utils import atomic_open, json_dumps

    m = Manifest.load(args.manifest)
    if args.split:
        m = m.filter(lambda r: r.split == args.split)
        if not len(m):
            raise ValueError(f"{args.manifest}: no records in split {args.split!r}")
    if args.limit:
        m = m.replace(m.records[:args.limit])
    reports = []
    for name in args.transcriber or ["whisper-tiny.en"]:
        r = evaluate_transcriber(m, name, threads=args.threads, beam_size=args.beam_size)
        for uid, cause in r.failed.items():
            print(f"emovox evaluate asr: {uid}: {cause}", file=sys.stderr)
        print(f"{r.transcriber}: WER {100 * r.wer:.2f}% CER {100 * r.cer:.2f}% RTF {r.rtf_wall:.3f} "
              f"(cpu {r.rtf_cpu:.3f}) on {r.utterances} utterances", file=sys.stderr)
        reports.append(r)
    if args.hypotheses:
        with atomic_open(Path(args.hypotheses), "w", encoding="utf-8") as f:
            for r in reports:
                for h in r.hypotheses:
                    f.write(json_dumps({"transcriber": r.transcriber, **h}) + "\n")
    if args.json:
        print(json_dumps(json_safe([{**r.row(), "word_counts": r.word_counts, "errors": r.failed} for r in reports])))
    else:
        print(markdown_table([r.row() for r in reports]))
    return 0
