"""``emovox predict AUDIO...``: emotion, sentiment and transcript per speech segment."""

from __future__ import annotations

import itertools
import os
import signal
import sys
from pathlib import Path
from typing import Iterator

from ._common import add_command


def register(sub) -> None:
    p = add_command(sub, "predict", "emotion, sentiment and transcript for every speech segment of recordings",
                    "emovox predict meeting.flac calls/ --format jsonl -o results.jsonl --plot timeline.png",
                    run)
    p.add_argument("inputs", nargs="+", metavar="AUDIO", help="audio files or folders (searched recursively)")
    p.add_argument("--model", default=None, help="emotion model file (default: the bundled model)")
    p.add_argument("--format", choices=("table", "jsonl", "csv"), default=None,
                   help="output format (default: table on a terminal or with no -o, else from -o's suffix)")
    p.add_argument("-o", "--output", default=None,
                   help="write results here (atomically) instead of stdout; finished files are journaled in "
                        "OUTPUT.parts/, so rerunning after a kill skips them and retries failures; under torchrun "
                        "the ranks share the files and rank 0 writes OUTPUT")
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


def _say(text: str) -> None:
    from .. import distributed

    who = f"emovox predict [rank {distributed.rank()}]" if distributed.world_size() > 1 else "emovox predict"
    print(f"{who}: {text}", file=sys.stderr)


def _results(model, paths: list[str], jobs: int, stop, done: list) -> Iterator:
    """The batch's results as they finish, each reported on stderr and appended to ``done``;
    after SIGTERM/SIGINT, what had finished before it (the workers are ended first), then the
    end (``stop.signum`` says why)."""
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
                if r is None:
                    break
            done.append(r)
            if not r.ok:
                _say(f"{r.file}: {r.error}")
            elif r.note:
                _say(f"{r.file}: {r.note}")
            yield r
            if r is not None and stop.signum is not None and not draining:
                break
    finally:
        it.close()


def _interrupted(signum: int) -> str:
    return f"not processed: interrupted by {signal.Signals(signum).name}"


def run(args) -> int:
    from .. import distributed
    from ..formats import FORMATS
    from ..jobs import Interrupts, PoolError, exit_code
    from ..predict import expand_inputs, load
    from ..predict_runs import RunError
    from ..records import FileResult, failures_summary
    from ..vad import VADConfig

    paths = expand_inputs(args.inputs)
    if not paths:
        print("emovox predict: no audio files found in the inputs", file=sys.stderr)
        return 1
    problem = check_outputs(paths, args.output, args.plot)
    if problem:
        print(f"emovox predict: refusing: {problem}", file=sys.stderr)
        return 1
    world = distributed.world_size()
    if world > 1 and not args.output:
        print("emovox predict: refusing: under torchrun the ranks share their work through -o OUTPUT "
              "(give one on a folder every rank can reach)", file=sys.stderr)
        return 1
    if world > 1:  # torchrun starts each rank in a session of its own: end with it, not orphaned
        from ..jobs import end_with_parent

        end_with_parent(signal.SIGTERM)
    jobs = args.jobs if args.jobs is not None else (2 if len(paths) > 1 and world == 1 else 1)
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))) if world > 1 else 1
    vad = VADConfig(threshold=args.vad_threshold, max_segment=args.max_segment, min_segment=args.min_segment)
    model = load(args.model, backend=args.backend, transcriber=args.transcriber, language=args.language,
                 sentiment=args.sentiment, threads=max(1, args.threads // local), vad=vad, onnx_dir=args.onnx_dir)
    fmt = FORMATS[_format(args)]
    with Interrupts() as stop:
        try:
            if args.output:
                results = _to_file(args, model, paths, jobs, fmt, stop)
                if results is None:  # not rank 0: its part is in the journal, rank 0 reports
                    return exit_code(stop.signum) if stop.signum is not None else 0
            else:
                results = []
                tail = lambda: (FileResult(file=p, error=_interrupted(stop.signum))  # noqa: E731
                                for p in (paths[len(results):] if stop.signum is not None else []))
                for text in fmt(itertools.chain(_results(model, paths, jobs, stop, results), _lazy(tail))):
                    sys.stdout.write(text)
                    sys.stdout.flush()
        except (PoolError, RunError) as e:
            _say(f"error: {e}")
            return 1
        if args.plot:
            from ..report.timeline import plot_timeline

            for r, target in zip(results, plot_targets(paths, args.plot)):
                if r.ok and r.segments:
                    plot_timeline(r.segments, target, title=Path(r.file).name)
                    _say(f"timeline written to {target}")
        summary = failures_summary(results)
        if summary:
            sys.stderr.write(summary)
        ok = sum(r.ok for r in results)
        _say(f"{ok} of {len(results)} file(s) done, {sum(len(r.segments) for r in results)} segment(s)")
        if stop.signum is not None:
            _say(f"interrupted by {signal.Signals(stop.signum).name}; the output holds the {ok} finished file(s) "
                 "and an error record for each of the others" +
                 (f" (rerun the same command to finish: {args.output}.parts keeps what is done)" if args.output
                  else ""))
            return exit_code(stop.signum)
    return 1 if (args.strict and ok < len(results)) else 0


def _lazy(make) -> Iterator:
    yield from make()


def _to_file(args, model, paths: list[str], jobs: int, fmt, stop) -> list | None:
    """Predict this rank's share of ``paths`` into the parts journal (resuming from it), then on
    rank 0 write ``-o`` from every rank's results (``emovox.predict_runs``). Returns the results
    of all inputs on rank 0, None elsewhere."""
    from ..predict_runs import PredictRun
    from ..utils import atomic_open

    run = PredictRun(args.output, model, paths)
    if run.skipped:
        _say(f"resuming: {len(run.skipped)} of {len(run.mine)} file(s) already done in {run.dir}, skipped; "
             f"{len(run.todo)} to do")
    run.connect()
    try:
        mine: list = []
        with run:
            for r in _results(model, run.todo, jobs, stop, mine):
                run.add(r)
        if stop.signum is None:
            run.finish()
        if run.rank != 0:
            failed = sum(not r.ok for r in mine)
            _say(f"{len(mine) - failed} of {len(mine)} file(s) of this rank done, {failed} failed; rank 0 writes "
                 f"{args.output}")
            return None
        results = run.results(missing=_interrupted(stop.signum) if stop.signum is not None else None)
        with atomic_open(args.output, "w", encoding="utf-8", newline="") as out:
            for text in fmt(results):
                out.write(text)
        if stop.signum is None and all(r.ok for r in results):
            run.remove()
        return results
    finally:
        run.close_group()
