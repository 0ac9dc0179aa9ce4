"""``emovox label M.jsonl -o M2.jsonl``: transcripts and proxy sentiment labels, resumable."""

from __future__ import annotations

import sys

from ._common import add_command


def register(sub) -> None:
    p = add_command(
        sub, "label",
        "fill transcripts (ASR) and proxy text-sentiment labels into a manifest; an interrupted run "
        "resumes where it stopped (rerun the same command)",
        "emovox label ravdess.jsonl -o ravdess.labelled.jsonl --transcriber whisper-tiny.en --labeler vader\n"
        "  emovox label baved.jsonl -o baved.labelled.jsonl --keep-transcripts --labeler e5\n"
        "  torchrun --nproc-per-node 2 -m emovox.cli label big.jsonl -o big.labelled.jsonl",
        _run)
    p.add_argument("manifest", metavar="M.jsonl", help="input manifest")
    p.add_argument("-o", "--output", required=True, metavar="M2.jsonl", help="labelled manifest to write")
    p.add_argument("--transcriber", default="whisper-tiny.en", metavar="NAME",
                   help="whisper-tiny.en (default), whisper-base, pocketsphinx, hf:MODEL_ID or a model directory")
    p.add_argument("--labeler", default="vader", metavar="NAME",
                   help="vader (default, English), e5 (multilingual, learned), hf:MODEL_ID or a model directory")
    p.add_argument("--language", default=None, metavar="CODE",
                   help="force the transcription language (default: each record's language, else detection)")
    p.add_argument("--keep-transcripts", action="store_true",
                   help="keep transcripts already in the manifest; transcribe only the records without one")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="parallel transcription workers (default 1)")
    p.add_argument("--threads", type=int, default=2, metavar="N", help="CPU threads for the models (default 2)")
    p.add_argument("--beam-size", type=int, default=5, metavar="N", help="Whisper beam size (default 5)")
    p.add_argument("--batch-size", type=int, default=16, metavar="N",
                   help="utterances per sentiment batch and journal flush (default 16)")
    p.add_argument("--strict", action="store_true", help="stop at the first failed file (exit 1)")
    p.add_argument("--restart", action="store_true", help="discard a journal left by an interrupted run")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def _run(args) -> int:
    from ..distributed import is_main
    from ..manifest import Manifest
    from ..text.labeling import LabelConfig, LabelError, label_manifest
    from ..utils import json_dumps

    if min(args.jobs, args.threads, args.batch_size) < 1:
        raise ValueError("--jobs, --threads and --batch-size must be at least 1")
    manifest = Manifest.load(args.manifest)
    config = LabelConfig(transcriber=args.transcriber, labeler=args.labeler, language=args.language,
                         keep_transcripts=args.keep_transcripts, threads=args.threads, jobs=args.jobs,
                         beam_size=args.beam_size, strict=args.strict,
                         batch_size=args.batch_size)
    try:
        result = label_manifest(manifest, args.output, config, manifest_path=args.manifest, restart=args.restart)
    except LabelError as e:
        print(f"emovox label: error: {e}", file=sys.stderr)
        return 1
    if not is_main():
        return 0
    s = result.summary()
    if args.json:
        print(json_dumps(s))
    rate = s["labelled"] / s["seconds"] if s["seconds"] else 0.0
    print(f"emovox label: {s['utterances']} utterances -> {args.output} ({s['labelled']} labelled now, "
          f"{s['resumed']} resumed, {s['failed']} failed; {rate:.2f} utt/s); sentiment {s['sentiment']}",
          file=sys.stderr)
    for uid, cause in list(result.failed.items())[:20]:
        print(f"  failed: {uid}: {cause}", file=sys.stderr)
    if len(result.failed) > 20:
        print(f"  ... and {len(result.failed) - 20} more (see extra.label_error in the output)", file=sys.stderr)
    return 1 if (args.strict and result.failed) else 0
