"""``emovox corpus {import,info,split,export}``: corpora to manifests, statistics, splits, exports."""

from __future__ import annotations

import sys
from pathlib import Path

from ._common import add_command, add_group, parse_options, parse_pairs


def register(sub) -> None:
    inner = add_group(sub, "corpus", "import corpora into manifests; info, splits and exports", "ACTION",
                      "Work with corpus manifests (JSONL): import an official corpus layout, print statistics, "
                      "make speaker-independent splits, export for other tools.",
                      epilog="example:\n  emovox corpus import ravdess /data/ravdess -o ravdess.jsonl\n"
                             "  emovox corpus info ravdess.jsonl --json")
    _register_import(inner)
    _register_info(inner)
    _register_split(inner)
    _register_export(inner)


# ----------------------------------------------------------------------------- import


def _register_import(sub) -> None:
    from ..corpora import FORMATS

    formats = "\n".join(f"  {k:12s} {v}" for k, v in FORMATS.items())
    p = add_command(sub, "import", "parse a corpus' official layout into a manifest (durations probed)",
                    "emovox corpus import ravdess /data/ravdess -o ravdess.jsonl --jobs 4\n"
                    "  emovox corpus import csv /data/mine --csv labels.csv --map audio=path --map emotion=label "
                    "-o mine.jsonl\n\nformats:\n" + formats, _import)
    p.add_argument("format", metavar="FORMAT", help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("root", metavar="ROOT", help="the corpus folder, as released")
    p.add_argument("-o", "--output", required=True, metavar="M.jsonl", help="manifest to write")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="threads probing audio (default 1)")
    p.add_argument("--strict", action="store_true", help="exit non-zero (writing nothing) if any file is bad")
    p.add_argument("--no-probe", action="store_true", help="skip decoding the audio (no durations, no checks)")
    p.add_argument("--json", action="store_true", help="print the manifest summary as JSON on stdout")
    p.add_argument("--csv", metavar="FILE", help="csv format: the table (relative to ROOT or absolute)")
    p.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                   help="csv format: take FIELD (audio, id, speaker, emotion, valence, ..., or any extra "
                        "name) from COLUMN; repeatable")
    p.add_argument("--classes", choices=["4", "6", "all"], help="iemocap: 4-class (happy+excited), 6-class "
                   "or all labels (default 4)")
    p.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other keyword of the importer's prepare(), e.g. -O include_song=true")


def _import(args) -> int:
    from ..corpora import prepare, skipped_of

    kw = parse_options(args.option, "--option")
    if args.csv:
        kw["csv"] = args.csv
    if args.map:
        kw["columns"] = parse_pairs(args.map, "--map")
    if args.classes:
        kw["classes"] = None if args.classes == "all" else int(args.classes)
    m = prepare(args.format, args.root, jobs=args.jobs, probe=not args.no_probe, strict=False, **kw)
    skipped = skipped_of(m)
    for s in skipped:
        print(f"emovox corpus import: skipped {s.path}: {s.cause}", file=sys.stderr)
    if skipped and args.strict:
        print(f"emovox corpus import: {len(skipped)} bad file(s); --strict: nothing written", file=sys.stderr)
        return 1
    m.save(args.output)
    s = m.summary()
    print(f"{m.corpus}: {s['utterances']} utterances, {s['speakers']} speakers, {s['hours']:.3f} h "
          f"-> {args.output}" + (f" ({len(skipped)} file(s) skipped)" if skipped else ""), file=sys.stderr)
    if args.json:
        _print_json(s)
    return 0


def _print_json(obj) -> None:
    from ..utils import json_dumps

    print(json_dumps(obj, indent=2))


# ----------------------------------------------------------------------------- info


def _register_info(sub) -> None:
    p = add_command(sub, "info", "utterances, speakers, hours and label counts of a manifest",
                    "emovox corpus info ravdess.jsonl --json", _info)
    p.add_argument("manifest", metavar="M.jsonl")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--check", action="store_true",
                   help="also validate every row (files present, labels in vocabulary, finite values); "
                        "exit 1 listing every problem")
    _outside_flag(p)


def _outside_flag(p) -> None:
    p.add_argument("--allow-outside-root", action="store_true",
                   help="accept audio paths that lead outside the manifest's root (absolute paths elsewhere, "
                        "'..'); refused by default (also: EMOVOX_ALLOW_OUTSIDE_ROOT=1)")


def _load(args):
    from ..manifest import Manifest

    return Manifest.load(args.manifest, allow_outside_root=True if args.allow_outside_root else None)


def _info(args) -> int:
    m = _load(args)
    s = m.summary()
    problems = m.validate(check_files=True) if args.check else []
    if args.check:
        s["problems"] = problems
    if args.json:
        _print_json(s)
    else:
        print(f"corpus      {s['corpus']}\nroot        {s['root']}\nutterances  {s['utterances']}\n"
              f"speakers    {s['speakers']}\nhours       {s['hours']:.3f}\ntranscribed {s['transcribed']}"
              + (f"\nskipped     {s['skipped']} file(s) at import" if s.get("skipped") else ""))
        for key in ("splits", "languages"):
            if s[key]:
                print(f"{key:11s} " + ", ".join(f"{k} {v}" for k, v in s[key].items()))
        for name, counts in s["labels"].items():
            print(f"{name:11s} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for a, st in s["attributes"].items():
            print(f"{a:11s} n={st['count']} min={st['min']:.3g} max={st['max']:.3g} mean={st['mean']:.3g}"
                  f" scale={st['scale']}")
    for p in problems:
        print(f"emovox corpus info: {args.manifest}: {p}", file=sys.stderr)
    return 1 if problems else 0


# ----------------------------------------------------------------------------- split


def _register_split(sub) -> None:
    p = add_command(sub, "split", "speaker-independent folds (loso, kfold, official, loo) as JSON",
                    "emovox corpus split ravdess.jsonl --protocol kfold --folds 5 --seed 0 -o folds/\n\n"
                    "writes DIR/folds.json: {\"format\": 1, \"protocol\", \"seed\", \"corpus\", \"manifest\",\n"
                    "  \"folds\": [{\"name\", \"train\": [ids], \"validation\": [ids], \"test\": [ids]}, ...]}\n"
                    "and DIR/summary.json + DIR/summary.md (utterances, speakers, hours, labels per fold and "
                    "partition).\nAny split that puts one speaker in two partitions is refused.", _split)
    p.add_argument("manifest", metavar="M.jsonl")
    p.add_argument("--protocol", required=True, choices=["loso", "kfold", "official", "loo"])
    p.add_argument("--folds", type=int, default=5, metavar="K", help="kfold: number of folds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed for fold and validation assignment (default 0)")
    p.add_argument("--validation", type=float, default=0.1, metavar="FRACTION",
                   help="share of training utterances moved (by speaker) to validation (default 0.1)")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the per-fold summary as JSON on stdout")
    _outside_flag(p)


def _summary_markdown(rows: list[dict]) -> str:
    label = next((k for k in rows[0] if k not in {"fold", "partition", "utterances", "speakers", "hours"}), None)
    head = ["fold", "partition", "utterances", "speakers", "hours"] + ([label] if label else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r[k]) for k in head[:5]]
        if label:
            cells.append(", ".join(f"{k} {v}" for k, v in r[label].items()))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _split(args) -> int:
    from ..splits import fold_summary, make_folds, save_folds
    from ..utils import atomic_write_text, write_json

    m = _load(args)
    folds = make_folds(m, args.protocol, k=args.folds, seed=args.seed, validation=args.validation)
    out = Path(args.output)
    save_folds(out / "folds.json", folds, protocol=args.protocol, seed=args.seed, corpus=m.corpus,
               manifest=str(Path(args.manifest).resolve()), validation=args.validation)
    rows = fold_summary(m, folds)
    write_json(out / "summary.json", rows)
    atomic_write_text(out / "summary.md", f"# {m.corpus} {args.protocol} folds (seed {args.seed})\n\n"
                      + _summary_markdown(rows))
    print(f"{len(folds)} fold(s) -> {out / 'folds.json'}", file=sys.stderr)
    if args.json:
        _print_json(rows)
    return 0


# ----------------------------------------------------------------------------- export


def _register_export(sub) -> None:
    p = add_command(sub, "export", "write a manifest for other toolkits (EmoBox JSONL, lhotse manifests)",
                    "emovox corpus export ravdess.jsonl --format emobox -o ravdess_emobox.jsonl\n"
                    "  emovox corpus export ravdess.jsonl --format lhotse -o lhotse/   "
                    "# <corpus>_recordings.jsonl.gz + _supervisions.jsonl.gz", _export)
    p.add_argument("manifest", metavar="M.jsonl")
    p.add_argument("--format", required=True, choices=["emobox", "lhotse"])
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="a .jsonl file (emobox) or a folder (lhotse)")
    p.add_argument("--label", default="emotion", help="emobox: the categorical field written as 'emo'")
    _outside_flag(p)


def _export(args) -> int:
    m = _load(args)
    if args.format == "emobox":
        m.to_emobox(args.output, label=args.label)
        written = [args.output]
    else:
        written = [str(p) for p in m.save_lhotse(args.output)]
    print(f"{len(m)} utterances -> {', '.join(written)}", file=sys.stderr)
    return 0
