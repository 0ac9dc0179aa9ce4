"""``emovox bench generalization``: how emotion models hold up on corpora, languages and
channels they were not trained on. One command, one table.

For every candidate of :data:`emovox.recipes.generalization.CANDIDATES` (the plain linear model,
the SUPERB probe, the shipped recipe and its ablations; ``--encoder`` for another backbone) and
every acted corpus: leave-one-corpus-out UA, WA and weighted F1 on single clean clips, UA on
noisy (pink noise, 10 dB SNR) and telephone-band copies, UA with per-speaker adaptation, the
expected calibration error before and after temperature scaling, and (``--in-corpus``)
speaker-independent UA inside the corpus. Scores are closed-set: the argmax runs over the
classes the test corpus shares with the training corpora.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def register(sub) -> None:
    from ..commands._common import add_command

    p = add_command(sub, "generalization",
                    "leave-one-corpus-out accuracy of emotion models, clean / noisy / telephone (one table)",
                    "emovox bench generalization --shared ../shared/data --corpora ../corpora -o runs/generalization\n"
                    "  emovox bench generalization --candidate linear --candidate 'plain linear' --encoder whisper-base",
                    _run)
    p.add_argument("--shared", metavar="DIR", help="../shared/data (RAVDESS, BAVED, va47); default $EMOVOX_SHARED or ../shared/data")
    p.add_argument("--corpora", metavar="DIR", help="the fetched corpora (TESS, ASED, nEMO, TurEV); default $EMOVOX_CORPORA or ../corpora")
    p.add_argument("--encoder", help="backbone (default: the shipped model's; e.g. whisper-tiny.en)")
    p.add_argument("--layers", type=int, metavar="K",
                   help="read only the encoder's first K transformer blocks (faster in predict; default: the "
                        "shipped model's with its encoder, else all)")
    p.add_argument("--per-corpus", type=int, default=700, metavar="N",
                   help="clips per corpus, balanced over speakers and classes (default 700; 0 = all)")
    p.add_argument("--candidate", action="append", metavar="NAME", help="only these candidates (repeatable)")
    p.add_argument("--in-corpus", action="append", metavar="NAME",
                   help="also measure in-corpus speaker-independent UA for these candidates (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="feature extraction processes")
    p.add_argument("--cache-dir", help="feature cache folder (default: the user cache)")
    p.add_argument("-o", "--output", metavar="DIR", help="write results.md and results.json here")
    p.add_argument("--json", action="store_true", help="JSON on stdout instead of the markdown table")


def run(pool, candidates, in_corpus_names=(), seed: int = 0, on_candidate=None) -> dict:
    """Every candidate's leave-one-corpus-out (and optionally in-corpus) results on ``pool``;
    ``on_candidate(results so far)`` after each (the command writes them, so a long run that is
    stopped keeps what it measured)."""
    from ..recipes import generalization as G

    out = {}
    for cand in candidates:
        t0 = time.perf_counter()
        res = {"loco": G.leave_one_corpus_out(cand, pool, seed=seed)}
        if cand.name in in_corpus_names:
            res["in_corpus"] = G.in_corpus(cand, pool, seed=seed)
        res["seconds"] = round(time.perf_counter() - t0, 1)
        out[cand.name] = res
        print(f"bench generalization: {cand.name} done in {res['seconds']} s", file=sys.stderr, flush=True)
        if on_candidate is not None:
            on_candidate(out)
    return out


COLUMNS = (("UA", "clean/ua"), ("WA", "clean/wa"), ("wF1", "clean/weighted_f1"), ("UA 10 dB", "noise:10/ua"),
           ("UA tel.", "telephone/ua"), ("UA adapt. spk", "adapted-speaker/ua"),
           ("UA adapt. 10 clips", "adapted-recording/ua"), ("UA adapt. 1 emotion", "adapted-one-emotion/ua"),
           ("ECE", "clean/ece"),
           ("ECE cal.", "clean/ece_calibrated"))


def markdown(results: dict, encoder: str) -> str:
    """One row per (candidate, test corpus) and a mean row per candidate."""
    from ..report.tables import markdown_table

    def fmt(v):
        return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"

    def mean(values):  # over the finite ones; NaN (shown "-") when there are none
        finite = [float(v) for v in values if v is not None and np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    rows = []
    for name, res in results.items():
        corpora = list(res["loco"])
        for c in corpora + ["mean"]:
            if c == "mean":
                vals = {k: mean(res["loco"][x].get(k) for x in corpora) for _, k in COLUMNS}
                inc = mean(res["in_corpus"].values()) if res.get("in_corpus") else None
            else:
                vals = res["loco"][c]
                inc = res.get("in_corpus", {}).get(c)
            row = {"candidate": name, "test corpus": f"**{c}**" if c == "mean" else c}
            row.update({label: fmt(vals.get(k)) for label, k in COLUMNS})
            row["in-corpus UA"] = fmt(inc)
            rows.append(row)
    return f"Encoder: {encoder}. Leave-one-corpus-out, single clips, closed-set over shared classes.\n\n" + \
        markdown_table(rows)


def _run(args) -> int:
    from ..recipes import generalization as G
    from ..recipes import pool as P
    from ..utils import atomic_write_text, json_dumps, write_json

    wanted = args.candidate or [c.name for c in G.CANDIDATES]
    known = {c.name: c for c in G.CANDIDATES}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ValueError(f"unknown candidate(s) {unknown}; known: {list(known)}")
    candidates = [known[w] for w in wanted]
    args.encoder, args.layers = G.backbone(args.encoder, args.layers)
    roots = P.corpus_roots(args.shared, args.corpora)
    pool = P.load_pool(args.encoder, args.per_corpus, augment=any(c.augment for c in candidates), roots=roots,
                       cache_dir=args.cache_dir, seed=args.seed, jobs=args.jobs, layers=args.layers)
    if sum(n in P.ACTED for n in pool) < 2:
        raise ValueError(f"leave-one-corpus-out needs at least two acted corpora; found {sorted(pool)} "
                         f"(looked in {roots['ravdess'].parent} and {roots['tess'].parent})")
    corpora = {n: {"clips": len(c.ids), "speakers": len(set(c.speakers))} for n, c in pool.items()}
    encoder_label = args.encoder + (f", first {args.layers} blocks" if args.layers else "")

    def save(results: dict) -> dict:
        report = {"encoder": args.encoder, "layers": args.layers, "per_corpus": args.per_corpus, "seed": args.seed, "corpora": corpora,
                  "results": results}
        if args.output:
            out = Path(args.output)
            write_json(out / "results.json", report)
            atomic_write_text(out / "results.md", markdown(results, encoder_label))
        return report

    report = save(run(pool, candidates, args.in_corpus or (), args.seed, on_candidate=save))
    print(json_dumps(report) if args.json else markdown(report["results"], encoder_label))
    return 0
