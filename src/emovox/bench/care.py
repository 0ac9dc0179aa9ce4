"""``emovox bench care``: the CARE comparison as one command, and pre-training throughput.

``emovox bench care M.jsonl --care runs/care`` probes (the shared SUPERB probe, speaker folds)
a pre-trained CARE, its two branches read alone (acoustic + common, semantic + common), any
separately pre-trained ablations (``--ablation NAME=DIR``) and the baselines (plain Whisper
tiny.en by default; add ``--baseline egemaps`` or an SA2SR encoder folder), and prints one table:
UA and weighted F1 (or CCC for attributes), mean ± std over folds, without and with per-speaker
normalisation. Each row's results and its learnt layer-weight bar chart go to OUT/<row>/.

``emovox bench care-throughput M.jsonl`` times CARE pre-training steps (forward, backward,
AdamW) on 5 s crops of real audio: audio seconds per second and peak memory, per branch setting.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

from ..commands._common import add_command, parse_options


def _rows(args) -> list[tuple[str, str, dict[str, Any]]]:
    """(row name, features, feature options) for every row of the table."""
    rows = []
    if args.care:
        rows += [("care", args.care, {}), ("care: acoustic + common", args.care, {"expose": "acoustic"}),
                 ("care: semantic + common", args.care, {"expose": "semantic"})]
    for item in args.ablation or []:
        name, _, path = item.partition("=")
        rows.append((f"care ablation: {name}", path or name, {}))
    for item in args.baseline:
        name, _, opts = item.partition(":")
        rows.append((name, name, parse_options([o for o in opts.split(",") if o]) if opts else {}))
    return rows


def run_table(args) -> dict[str, Any]:
    from ..manifest import Manifest
    from ..recipes.probe import ProbeRecipeConfig, run_probe
    from ..utils import write_json

    manifest = Manifest.load(args.manifest)
    attributes = [a for a in (args.attributes or "").split(",") if a]
    target = None if str(args.target).lower() in ("none", "") else args.target
    out = Path(args.output)
    table: dict[str, Any] = {}
    for name, features, options in _rows(args):
        slug = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")
        cfg = ProbeRecipeConfig(features=features, feature_options=options, target=target, attributes=attributes,
                                folds=args.folds, max_epochs=args.epochs, seed=args.seed, linear=False,
                                speaker_norm=args.speaker_norm, cache_dir=args.cache_dir, jobs=args.jobs)
        t0 = time.time()
        res = run_probe(manifest, cfg, out_dir=out / slug)
        write_json(out / slug / "results.json", res)
        table[name] = {"features": features, "options": options, "shape": res["feature_shape"],
                       "seconds": time.time() - t0,
                       "variants": {v: r["probe"] for v, r in res["variants"].items()},
                       "layer_weights": {v: r["layer_weights"] for v, r in res["variants"].items()}}
    result = {"manifest": str(args.manifest), "corpus": manifest.corpus, "folds": args.folds, "rows": table}
    write_json(out / "bench.json", result)
    return result


def markdown(result: dict[str, Any]) -> str:
    metrics = [m for m in ("ua", "weighted_f1", "ccc") if any(
        m in s for r in result["rows"].values() for s in r["variants"].values())]
    lines = ["| features | layers x dim | speaker norm | " + " | ".join(metrics) + " |",
             "|---|---|---|" + "---|" * len(metrics)]
    for name, row in result["rows"].items():
        for v, summ in row["variants"].items():
            cells = [f"{summ[m]['mean']:.3f} ± {summ[m]['std']:.3f}" if m in summ else "–" for m in metrics]
            shape = " x ".join(str(s) for s in row["shape"])
            lines.append(f"| {name} | {shape} | {'yes' if v == 'speaker-norm' else 'no'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _table(args) -> int:
    import torch

    from ..utils import json_dumps, atomic_write_text

    if args.threads:
        torch.set_num_threads(args.threads)
    result = run_table(args)
    text = markdown(result)
    atomic_write_text(Path(args.output) / "bench.md", text + "\n")
    print(json_dumps(result) if args.json else text)
    return 0


# ----------------------------------------------------------------------------- throughput


def measure_throughput(manifests, branches: str = "full", steps: int = 3, batch_size: int = 8,
                       warmup: int = 1, crop: float = 5.0, speech: str = "whisper-tiny.en") -> dict[str, Any]:
    """Time ``steps`` CARE pre-training steps (after ``warmup``) on the first clips of the
    manifests (random 5 s crops, sentence targets random: the text model costs nothing per step)."""
    import numpy as np
    import torch

    from ..recipes.care import CarePretrainConfig, CropSet, care_collate, care_losses
    from ..train.runs import scan
    from ..encoders.care import build_care

    cfg = CarePretrainConfig(branches=branches, speech=speech, crop_seconds=crop)
    model = build_care(cfg.model_config()).train()
    clips = []
    for m in manifests:
        clips += scan(m, m.records[: batch_size * (steps + warmup)])[0]
    rng = np.random.default_rng(0)
    texts = {(c.utt.transcript or "").strip(): rng.standard_normal(model.text_dim).astype(np.float32) * 0.1
             for c in clips}
    data = CropSet(clips, texts, model.text_dim, crop, train=True)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    desc = cfg.descriptor_config()
    audio_s, seconds = 0.0, 0.0
    for s in range(warmup + steps):
        idx = [(s * batch_size + i) % len(data) for i in range(batch_size)]
        batch = care_collate([data[i] for i in idx])
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        sum(care_losses(model, batch, desc).values()).backward()
        opt.step()
        if s >= warmup:
            seconds += time.perf_counter() - t0
            audio_s += float(batch["audio_lengths"].sum()) / 16000
    return {"branches": branches, "batch_size": batch_size, "steps": steps, "seconds_per_step": seconds / steps,
            "audio_seconds_per_step": audio_s / steps, "audio_seconds_per_second": audio_s / seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads()}


def _throughput(args) -> int:
    import torch

    from ..manifest import Manifest
    from ..utils import json_dumps

    if args.threads:
        torch.set_num_threads(args.threads)
    manifests = [Manifest.load(p) for p in args.manifests]
    rows = [measure_throughput(manifests, b, args.steps, args.batch_size, speech=args.speech) for b in args.branches]
    if args.json:
        print(json_dumps(rows))
    else:
        print("| branches | batch | s / step | audio s / step | audio s / s | peak RSS MB |\n|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['branches']} | {r['batch_size']} | {r['seconds_per_step']:.2f} | "
                  f"{r['audio_seconds_per_step']:.1f} | {r['audio_seconds_per_second']:.2f} | {r['peak_rss_mb']:.0f} |")
    return 0


def register(inner) -> None:
    p = add_command(inner, "care", "CARE vs baselines and the ablations through the shared probe, one table",
                    "emovox bench care ravdess.jsonl --care runs/care -o runs/bench-care\n"
                    "  emovox bench care ravdess.jsonl --care runs/care --ablation acoustic=runs/care-acoustic "
                    "--baseline whisper-tiny.en egemaps bilstm:checkpoint=runs/sa2sr -o runs/bench-care", _table)
    p.add_argument("manifest", metavar="M.jsonl", help="emotion manifest to probe on")
    p.add_argument("-o", "--output", required=True, help="folder for bench.json, bench.md and per-row results")
    p.add_argument("--care", help="a CARE pre-training folder or care.pt (full model and its branches read alone)")
    p.add_argument("--ablation", nargs="*", help="NAME=DIR of separately pre-trained ablations")
    p.add_argument("--baseline", nargs="*", default=["whisper-tiny.en"],
                   help="features to compare with, NAME[:KEY=VALUE,...] (default whisper-tiny.en)")
    p.add_argument("--target", default="emotion", help="categorical label, or 'none' (default emotion)")
    p.add_argument("--attributes", default="", help="attributes to regress, e.g. valence,arousal")
    p.add_argument("--folds", type=int, default=6, help="speaker folds (default 6)")
    p.add_argument("--epochs", type=int, default=50, help="probe epochs (default 50)")
    p.add_argument("--speaker-norm", default="both", choices=["off", "on", "both"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="feature extraction processes")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--cache-dir", help="feature cache folder (default: the user cache)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the markdown table")

    t = add_command(inner, "care-throughput", "CARE pre-training speed (audio s / s) and peak memory",
                    "emovox bench care-throughput an4.jsonl ravdess.jsonl --branches full acoustic semantic", _throughput)
    t.add_argument("manifests", nargs="+", help="manifests whose first clips are timed")
    t.add_argument("--branches", nargs="+", default=["full"], choices=["full", "acoustic", "semantic"])
    t.add_argument("--steps", type=int, default=3)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--speech", default="whisper-tiny.en")
    t.add_argument("--threads", type=int, help="torch CPU threads")
    t.add_argument("--json", action="store_true")
