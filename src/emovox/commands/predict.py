"""``emovox predict AUDIO...``: emotion, sentiment and transcript per speech segment."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from ._common import add_command


def register(sub) -> None:
    p = add_command(sub, "predict", "emotion, sentiment and transcript for every speech segment of recordings",
                    "emovox predict meeting.flac calls/ --format jsonl -o results.jsonl --plot timeline.png",
                    run)
    p.add_argument("inputs", nargs="+", metavar="AUDIO", help="audio files or folders (searched recursively)")
    p.add_argument("--model", default=None, help="emotion model file (default: the bundled model)")
    p.add_argument("--format", choices=("table", "jsonl", "csv"), default=None,
                   help="output format (default: table on a terminal or with no -o, else from -o's suffix)")
    p.add_argument("-o", "--output", default=None, help="write results here (atomically) instead of stdout")
    p.add_argument("--json", action="store_true", help="same as --format jsonl")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="timeline PNG of valence/arousal and categories (one file: this path; several: "
                        "PNG_<name>.png next to it)")
    p.add_argument("--backend", choices=("torch", "onnx", "onnx-int8"), default="torch",
                   help="run the encoder and heads with PyTorch or ONNX Runtime (see 'emovox export onnx')")
    p.add_argument("--onnx-dir", default=None, help="exported ONNX files for --backend onnx (default: cache)")
    p.add_argument("--transcriber", default="whisper-tiny.en",
                   help="transcription model (whisper-tiny.en, whisper-base, ..., or 'none')")
    p.add_argument("--language", default=None, help="language code for transcription (default: model's)")
    p.add_argument("--sentiment", default="vader", help="text sentiment labeler (vader, e5, or 'none')")
    p.add_argument("--max-segment", type=float, default=15.0, help="longest segment in seconds (default 15)")
    p.add_argument("--min-segment", type=float, default=1.0,
                   help="shorter segments are merged with a close neighbour (default 1.0 s)")
    p.add_argument("--vad-threshold", type=float, default=0.5, help="Silero VAD speech threshold (default 0.5)")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="worker processes for several files (default: 2 for several files, else 1)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads in total (default 2)")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when any file fails")


def _format(args) -> str:
    if args.json:
        return "jsonl"
    if args.format:
        return args.format
    if args.output:
        return {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}.get(Path(args.output).suffix.lower(), "table")
    return "table"


def run(args) -> int:
    from ..formats import FORMATS
    from ..predict import expand_inputs, load
    from ..records import failures_summary
    from ..report.timeline import plot_timeline
    from ..utils import atomic_open
    from ..vad import VADConfig

    paths = expand_inputs(args.inputs)
    if not paths:
        print("emovox predict: no audio files found in the inputs", file=sys.stderr)
        return 1
    jobs = args.jobs if args.jobs is not None else (2 if len(paths) > 1 else 1)
    vad = VADConfig(threshold=args.vad_threshold, max_segment=args.max_segment, min_segment=args.min_segment)
    model = load(args.model, backend=args.backend, transcriber=args.transcriber, language=args.language,
                 sentiment=args.sentiment, threads=max(1, args.threads), vad=vad, onnx_dir=args.onnx_dir)
    fmt = FORMATS[_format(args)]
    results = []
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(atomic_open(args.output, "w", encoding="utf-8", newline="")) \
            if args.output else sys.stdout

        def each():
            for r in model.predict_batch(paths, jobs=jobs):
                results.append(r)
                if not r.ok:
                    print(f"emovox predict: {r.file}: {r.error}", file=sys.stderr)
                elif r.note:
                    print(f"emovox predict: {r.file}: {r.note}", file=sys.stderr)
                yield r

        for text in fmt(each()):
            out.write(text)
            out.flush()
    if args.plot:
        good = [r for r in results if r.ok and r.segments]
        for r in good:
            target = Path(args.plot) if len(good) == 1 else \
                Path(args.plot).with_name(f"{Path(args.plot).stem}_{Path(r.file).stem}.png")
            plot_timeline(r.segments, target, title=Path(r.file).name)
            print(f"emovox predict: timeline written to {target}", file=sys.stderr)
    summary = failures_summary(results)
    if summary:
        sys.stderr.write(summary)
    ok = sum(r.ok for r in results)
    print(f"emovox predict: {ok} of {len(results)} file(s) done, "
          f"{sum(len(r.segments) for r in results)} segment(s)", file=sys.stderr)
    return 1 if (args.strict and ok < len(results)) else 0
