"""``emovox predict AUDIO...``: emotion, sentiment and transcript per speech segment."""

from __future__ import annotations

import contextlib
import os
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
                   help="timeline PNG of valence/arousal and categories (one input: this path; several: "
                        "PNG_<name>.png next to it, <name> made unique per input)")
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


def _same(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """The same file: the same resolved path, or (both existing) the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def plot_targets(paths: list[str], plot: str | os.PathLike) -> list[Path]:
    """The timeline PNG of each input: ``plot`` itself for one input; else ``<stem>_<name>.png``
    beside it, ``name`` the input's stem, or, where stems repeat, its path below the inputs'
    common folder (then its suffix, then its position) so that no two inputs share a PNG."""
    base = Path(plot)
    if len(paths) == 1:
        return [base]
    names = [Path(p).stem for p in paths]
    if len(set(names)) < len(names):
        absolute = [Path(os.path.abspath(p)) for p in paths]
        common = Path(os.path.commonpath([str(a.parent) for a in absolute]))
        rel = [a.relative_to(common) for a in absolute]
        names = [n if names.count(n) == 1 else "-".join(r.with_suffix("").parts) for n, r in zip(names, rel)]
        names = [n if names.count(n) == 1 else f"{n}-{r.suffix.lstrip('.')}" for n, r in zip(names, rel)]
        seen: dict[str, int] = {}
        for i, n in enumerate(names):
            seen[n] = seen.get(n, 0) + 1
            if seen[n] > 1:
                names[i] = f"{n}-{seen[n]}"
    return [base.with_name(f"{base.stem}_{n}.png") for n in names]


def check_outputs(paths: list[str], output: str | None, plot: str | None) -> str | None:
    """Why these outputs may not be written (one would replace an input, or each other), or None."""
    from ..audio import AUDIO_EXTENSIONS

    if output:
        hit = next((p for p in paths if _same(output, p)), None)
        if hit:
            return f"-o {output} is the input {hit}: writing results there would destroy the recording"
        if Path(output).suffix.lower() in AUDIO_EXTENSIONS:
            return f"-o {output}: an audio file name, but results are text (use .jsonl, .csv or .txt)"
    if plot:
        if Path(plot).suffix.lower() != ".png":
            return f"--plot {plot}: the timeline is a PNG image; give a name ending in .png"
        for target in plot_targets(paths, plot):
            hit = next((p for p in paths if _same(target, p)), None)
            if hit:
                return f"--plot would write {target}, which is the input {hit}"
            if output and _same(target, output):
                return f"--plot would write {target}, which is the -o output"
    return None


def run(args) -> int:
    from ..formats import FORMATS
    from ..jobs import Interrupts, PoolError, exit_code
    from ..predict import expand_inputs, load
    from ..records import FileResult, failures_summary
    from ..utils import atomic_open
    from ..vad import VADConfig

    paths = expand_inputs(args.inputs)
    if not paths:
        print("emovox predict: no audio files found in the inputs", file=sys.stderr)
        return 1
    problem = check_outputs(paths, args.output, args.plot)
    if problem:
        print(f"emovox predict: refusing: {problem}", file=sys.stderr)
        return 1
    jobs = args.jobs if args.jobs is not None else (2 if len(paths) > 1 else 1)
    vad = VADConfig(threshold=args.vad_threshold, max_segment=args.max_segment, min_segment=args.min_segment)
    model = load(args.model, backend=args.backend, transcriber=args.transcriber, language=args.language,
                 sentiment=args.sentiment, threads=max(1, args.threads), vad=vad, onnx_dir=args.onnx_dir)
    fmt = FORMATS[_format(args)]
    results: list = []
    with Interrupts() as stop:
        def report(r):
            results.append(r)
            if not r.ok:
                print(f"emovox predict: {r.file}: {r.error}", file=sys.stderr)
            elif r.note:
                print(f"emovox predict: {r.file}: {r.note}", file=sys.stderr)
            return r

        def each():
            """The batch's results; after SIGTERM/SIGINT, what had finished and then an error
            record for every file not done (the workers are ended first)."""
            it = model.predict_batch(paths, jobs=jobs)
            draining = False
            try:
                while True:
                    r = None
                    try:
                        if draining:  # the pool hands over what had arrived before the signal
                            r = next(it)
                        else:
                            with stop.allowed():
                                r = next(it)
                            draining = stop.signum is not None
                    except StopIteration:
                        break
                    except KeyboardInterrupt:
                        if r is not None:
                            yield report(r)
                        break
                    yield report(r)
            finally:
                it.close()
            if stop.signum is not None:
                import signal

                cause = f"not processed: interrupted by {signal.Signals(stop.signum).name}"
                for p in paths[len(results):]:
                    yield report(FileResult(file=p, error=cause))

        try:
            with contextlib.ExitStack() as stack:
                out = stack.enter_context(atomic_open(args.output, "w", encoding="utf-8", newline="")) \
                    if args.output else sys.stdout
                for text in fmt(each()):
                    out.write(text)
                    out.flush()
        except PoolError as e:
            print(f"emovox predict: error: {e}", file=sys.stderr)
            return 1
        if args.plot:
            from ..report.timeline import plot_timeline

            for r, target in zip(results, plot_targets(paths, args.plot)):
                if r.ok and r.segments:
                    plot_timeline(r.segments, target, title=Path(r.file).name)
                    print(f"emovox predict: timeline written to {target}", file=sys.stderr)
        summary = failures_summary(results)
        if summary:
            sys.stderr.write(summary)
        ok = sum(r.ok for r in results)
        print(f"emovox predict: {ok} of {len(results)} file(s) done, "
              f"{sum(len(r.segments) for r in results)} segment(s)", file=sys.stderr)
        if stop.signum is not None:
            import signal

            print(f"emovox predict: interrupted by {signal.Signals(stop.signum).name}; the output holds the "
                  f"{ok} finished file(s) and an error record for each of the others", file=sys.stderr)
            return exit_code(stop.signum)
    return 1 if (args.strict and ok < len(results)) else 0
