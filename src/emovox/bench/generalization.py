"""``emovox bench generalization``: how emotion models hold up on corpora, languages and
channels they were not trained on. One command, one table.

For every candidate of :data:`emovox.recipes.generalization.CANDIDATES` (the plain linear model,
the SUPERB probe, the shipped recipe and its ablations; ``--encoder`` for another backbone) and
every acted corpus: leave-one-corpus-out UA, WA and weighted F1 on single clean clips, UA on
noisy (pink noise, 10 dB SNR) and telephone-band copies, UA with per-speaker adaptation, the
expected calibration error before and after temperature scaling, and (``--in-corpus``)
speaker-independent UA inside the corpus; ``--condition`` adds test copies under other
corruptions (each kind of the training augmentation alone, say). Scores are closed-set: the
argmax runs over the classes the test corpus shares with the training corpora. A second table
scores the valence/arousal/dominance head on ratings it was not trained on: CCC on each
dimensional corpus left out of training (BAVED's level as arousal, va47's valence and arousal),
and on the acted corpora's category-derived targets.
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
    p.add_argument("--condition", action="append", default=[], metavar="SPEC",
                   help="another test condition, a corruption spec of emovox.features.corrupt (noise:0, "
                        "reverb:0.6, codec:opus, speed:1.1, gain:-20 ...; repeatable): one more UA column")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="feature extraction processes")
    p.add_argument("--cache-dir", help="feature cache folder (default: the user cache)")
    p.add_argument("-o", "--output", metavar="DIR", help="write results.md and results.json here")
    p.add_argument("--json", action="store_true", help="JSON on stdout instead of the markdown table")


def run(pool, candidates, in_corpus_names=(), seed: int = 0, on_candidate=None, conditions=()) -> dict:
    """Every candidate's leave-one-corpus-out results (single clips under :data:`CONDITIONS
    <emovox.recipes.pool.CONDITIONS>` and ``conditions``; CCC on the left-out dimensional
    corpora; optionally in-corpus UA) on ``pool``; ``on_candidate(results so far)`` after each
    (the command writes them, so a long run that is stopped keeps what it measured)."""
    from ..recipes import generalization as G
    from ..recipes.pool import CONDITIONS

    out = {}
    for cand in candidates:
        t0 = time.perf_counter()
        res = {"loco": G.leave_one_corpus_out(cand, pool, tuple(CONDITIONS) + tuple(conditions), seed=seed),
               "attributes": G.leave_one_corpus_out_attributes(cand, pool, seed=seed)}
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


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"


def _mean(values) -> float:
    """Mean over the finite values; NaN (shown "-") when there are none."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def markdown(results: dict, encoder: str, conditions=()) -> str:
    """One row per (candidate, test corpus) and a mean row per candidate (a ``UA <spec>`` column
    for each extra condition); then the V/A/D table (:func:`attributes_markdown`)."""
    from ..report.tables import markdown_table

    columns = COLUMNS + tuple((f"UA {c}", f"{c}/ua") for c in conditions)
    rows = []
    for name, res in results.items():
        corpora = list(res["loco"])
        for c in corpora + ["mean"]:
            if c == "mean":
                vals = {k: _mean(res["loco"][x].get(k) for x in corpora) for _, k in columns}
                inc = _mean(res["in_corpus"].values()) if res.get("in_corpus") else None
            else:
                vals = res["loco"][c]
                inc = res.get("in_corpus", {}).get(c)
            row = {"candidate": name, "test corpus": f"**{c}**" if c == "mean" else c}
            row.update({label: _fmt(vals.get(k)) for label, k in columns})
            row["in-corpus UA"] = _fmt(inc)
            rows.append(row)
    table = f"Encoder: {encoder}. Leave-one-corpus-out, single clips, closed-set over shared classes.\n\n" + \
        markdown_table(rows)
    vad = attributes_markdown(results)
    return table + ("\n\n" + vad if vad else "")


def attributes_markdown(results: dict) -> str:
    """CCC of each candidate's V/A/D head on corpora left out of its training: the dimensional
    ones' own ratings, and the mean over the acted ones of their category-derived targets ("" when
    no candidate has an attribute head)."""
    from ..report.tables import markdown_table

    rows = []
    for name, res in results.items():
        dims, acted = res.get("attributes") or {}, res["loco"].values()
        if not dims and not any("clean/ccc" in m for m in acted):
            continue
        row = {"candidate": name}
        for corpus, scores in dims.items():
            row.update({f"{corpus} {k[4:]}": _fmt(v) for k, v in scores.items() if k != "ccc" and np.isfinite(v)})
        for a in ("valence", "arousal", "dominance"):
            row[f"acted {a} (from categories)"] = _fmt(_mean(m.get(f"clean/ccc_{a}") for m in acted))
        rows.append(row)
    if not rows:
        return ""
    return ("V/A/D head, CCC on corpora left out of training (the dimensional corpora's ratings; the "
            "acted corpora's category-derived targets, mean over the folds):\n\n" + markdown_table(rows))


def _run(args) -> int:
    from ..features.corrupt import corrupt
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
    for spec in args.condition:  # a bad spec fails here, before any extraction
        try:
            corrupt(np.zeros(1600, np.float32), spec)
        except ValueError as e:
            raise ValueError(f"--condition {spec!r}: {e}") from None
    pool = P.load_pool(args.encoder, args.per_corpus, tuple(P.CONDITIONS) + tuple(args.condition),
                       augment=any(c.augment for c in candidates), roots=roots,
                       cache_dir=args.cache_dir, seed=args.seed, jobs=args.jobs, layers=args.layers)
    if sum(n in P.ACTED for n in pool) < 2:
        raise ValueError(f"leave-one-corpus-out needs at least two acted corpora; found {sorted(pool)} "
                         f"(looked in {roots['ravdess'].parent} and {roots['tess'].parent})")
    corpora = {n: {"clips": len(c.ids), "speakers": len(set(c.speakers))} for n, c in pool.items()}
    encoder_label = args.encoder + (f", first {args.layers} blocks" if args.layers else "")

    def save(results: dict) -> dict:
        report = {"encoder": args.encoder, "layers": args.layers, "per_corpus": args.per_corpus, "seed": args.seed,
                  "conditions": list(P.CONDITIONS) + list(args.condition), "corpora": corpora,
                  "results": results}
        if args.output:
            out = Path(args.output)
            write_json(out / "results.json", report)
            atomic_write_text(out / "results.md", markdown(results, encoder_label, args.condition))
        return report

    report = save(run(pool, candidates, args.in_corpus or (), args.seed, on_candidate=save, conditions=args.condition))
    print(json_dumps(report) if args.json else markdown(report["results"], encoder_label, args.condition))
    return 0
