"""``emovox bench sa2sr``: the SA2SR paper's comparison as one command, and training throughput.

``emovox bench sa2sr grid`` pre-trains an ASR-only (lambda = 0) and an SA2SR (lambda = 200)
encoder on the given transcribed manifests (or reuses finished runs), then fine-tunes on an
emotion manifest over speaker folds with every variant: no pre-training, ASR-only and SA2SR,
each frozen and fine-tuned; it prints the analogue of the paper's Tables 2-4 (CCC per attribute,
or UA, WA and weighted F1 for categories) as mean +- standard deviation over folds.

``emovox bench sa2sr throughput`` times pre-training steps: utterances and seconds of audio per
second, for 1 process and, with ``--procs 1 2``, for torchrun with 2 processes as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..commands._common import add_command, add_group

VARIANTS = ("none", "asr-frozen", "asr-finetuned", "sa2sr-frozen", "sa2sr-finetuned")


# ----------------------------------------------------------------------------- grid


def _pretrain_config(args, weight: float):
    from ..recipes.sa2sr import PretrainConfig, load_config

    return load_config(PretrainConfig, args.pretrain_config, {
        "sentiment_weight": weight, "max_epochs": args.pt_epochs, "max_steps": args.pt_steps,
        "lr": args.pt_lr, "grad_clip": args.pt_grad_clip,
        "limit": args.pt_limit, "speeds": (1.0,) if args.no_speed_perturb else None,
        "bilstm.layers": args.layers, "bilstm.hidden": args.hidden, "batch_size": args.batch_size,
        "seed": args.seed, "encoder": args.encoder})


def run_grid(args) -> dict[str, Any]:
    """Pre-train (or reuse) both encoders, fine-tune every variant; returns the table data."""
    from ..manifest import Manifest
    from ..recipes.sa2sr import FinetuneConfig, finetune, load_config, pretrain

    out = Path(args.output)
    runs = {"asr": args.asr_run, "sa2sr": args.sa2sr_run}
    pre: dict[str, Any] = {}
    for name, weight in (("asr", 0.0), ("sa2sr", 200.0)):
        if runs[name]:
            continue
        if not args.pretrain:
            raise ValueError(f"give --pretrain manifests or --{name}-run with a finished pre-training")
        runs[name] = str(out / f"pretrain-{name}")
        res = pretrain([Manifest.load(p) for p in args.pretrain], runs[name], _pretrain_config(args, weight),
                       validation=[Manifest.load(p) for p in (args.validation or [])])
        pre[name] = {k: res[k] for k in ("best", "epochs", "steps", "train_utterances", "train_hours", "seconds")}
    base = load_config(FinetuneConfig, args.finetune_config, {
        "task": args.task, "label": args.label,
        "attributes": tuple(args.attributes.split(",")) if args.attributes else None,
        "protocol": args.protocol, "folds": args.folds, "run_folds": args.run_folds,
        "max_epochs": args.ft_epochs, "max_steps": args.ft_steps, "lr": args.ft_lr, "patience": args.ft_patience,
        "batch_size": args.batch_size, "seed": args.seed, "max_seconds": args.max_seconds})
    emotion = Manifest.load(args.emotion)
    rows = {}
    for variant in args.variants:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose from {list(VARIANTS)}")
        source = "sa2sr" if variant == "none" else variant.split("-")[0]
        cfg = replace(base, encoder=os.path.join(runs[source], "sa2sr.pt"), no_pretraining=variant == "none",
                      freeze_encoder=variant.endswith("frozen"))
        t0 = time.time()
        res = finetune(emotion, out / f"finetune-{variant}", cfg)
        rows[variant] = {"summary": res["summary"], "folds": len(res["folds"]), "seconds": time.time() - t0}
    return {"pretraining": pre, "runs": runs, "variants": rows, "emotion": str(args.emotion),
            "task": base.task, "metric_order": _metric_order(rows)}


def _metric_order(rows: dict[str, Any]) -> list[str]:
    """Table columns: CCC per attribute (arousal, valence, dominance first), their mean, the
    classification metrics, then the rest (MSE, Pearson) in name order."""
    keys = sorted({k for r in rows.values() for k in r["summary"]})
    first = [k for k in ("ccc_arousal", "ccc_valence", "ccc_dominance") if k in keys]
    first += [k for k in keys if k.startswith("ccc_") and k not in first]
    first += [k for k in ("ccc", "ua", "wa", "weighted_f1") if k in keys]
    return first + [k for k in keys if k not in first]


def grid_table(result: dict[str, Any]) -> str:
    """Markdown: one row per variant, mean +- std over folds for every metric."""
    cols = result["metric_order"]
    lines = ["| variant | folds | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for variant, row in result["variants"].items():
        cells = []
        for c in cols:
            s = row["summary"].get(c)
            cells.append(f"{s['mean']:.3f} ± {s['std']:.3f}" if s and s["n"] else "–")
        lines.append(f"| {variant} | {row['folds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _grid(args) -> int:
    from ..utils import json_dumps, write_json

    _threads(args)
    result = run_grid(args)
    write_json(Path(args.output) / "bench.json", result)
    print(json_dumps(result) if args.json else grid_table(result))
    return 0


# ----------------------------------------------------------------------------- throughput


def measure_throughput(manifests, steps: int, batch_size: int, layers: int | None = None,
                       hidden: int | None = None, speeds=(1.0,), warmup: int = 1, limit: int | None = None,
                       checkpoint_dir: str | None = None) -> dict[str, Any]:
    """Time ``steps`` pre-training steps (after ``warmup``) of the SA2SR model; under torchrun
    the numbers are global (all processes). Returns utterances/s and audio seconds/s."""
    import torch

    from .. import distributed as D
    from ..recipes import sa2sr
    from ..train import TrainConfig, Trainer

    cfg = sa2sr.PretrainConfig(limit=limit, speeds=tuple(speeds))
    if layers:
        cfg.bilstm.layers = layers
    if hidden:
        cfg.bilstm.hidden = hidden
    clips = []
    for m in manifests:
        recs = [u for u in m.records if (u.transcript or "").strip()][: limit or None]
        clips += sa2sr.scan(m, recs)[0]
    vocab = sa2sr.make_vocab("english", [])
    data = sa2sr.PretrainSet(clips, vocab, cfg.speeds)
    model = sa2sr.SA2SRModel(sa2sr.build_encoder("bilstm", cfg.bilstm), len(vocab), cfg.sentiment_hidden)
    counts = {"utts": 0, "audio": 0.0, "t0": None}

    def step(model, batch):
        if counts["t0"] is None and trainer.step >= warmup:
            counts["t0"] = time.perf_counter()
        if counts["t0"] is not None:
            counts["utts"] += int(batch["audio"].shape[0])
            counts["audio"] += float(batch["audio_lengths"].sum()) / 16000.0
        return sa2sr.pretrain_step(model, batch, cfg.sentiment_weight, cfg.ctc_reduction)

    tc = TrainConfig(lr=cfg.lr, batch_size=batch_size, max_steps=steps + warmup, max_epochs=10**6,
                     checkpoint_dir=checkpoint_dir, tensorboard=False, progress=False, seed=0)
    trainer = Trainer(model, data, tc, collate=sa2sr.pretrain_collate, step=step, lengths=data.lengths())
    trainer.fit()
    elapsed = time.perf_counter() - (counts["t0"] or time.perf_counter())
    totals = torch.tensor([counts["utts"], counts["audio"]], dtype=torch.float64)
    if trainer.distributed:
        import torch.distributed as dist

        dist.all_reduce(totals)
    return {"processes": D.world_size(), "threads_per_process": torch.get_num_threads(), "steps": steps,
            "batch_size": batch_size, "utterances": int(totals[0]), "audio_seconds": float(totals[1]),
            "seconds": elapsed, "utterances_per_s": float(totals[0]) / elapsed,
            "audio_seconds_per_s": float(totals[1]) / elapsed,
            "encoder": f"{cfg.bilstm.layers}x BiLSTM({cfg.bilstm.hidden})"}


def _throughput_once(args) -> dict[str, Any]:
    from ..manifest import Manifest

    return measure_throughput([Manifest.load(p) for p in args.manifests], args.steps, args.batch_size,
                              args.layers, args.hidden, (1.0,) if args.no_speed_perturb else (0.9, 1.0, 1.1),
                              limit=args.limit)


def _throughput(args) -> int:
    from .. import distributed as D
    from ..utils import json_dumps

    if args.procs is None:  # this process (possibly one of torchrun's) measures
        _threads(args)
        res = _throughput_once(args)
        if D.is_main():
            print(json_dumps(res) if args.json else _throughput_table([res]))
        D.destroy_process_group()
        return 0
    results = []
    for n in args.procs:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
               "-m", "emovox.cli", "bench", "sa2sr", "throughput", *args.manifests, "--json",
               "--steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--threads", str(args.threads or max(1, (os.cpu_count() or 1) // n))]
        for flag, v in (("--layers", args.layers), ("--hidden", args.hidden), ("--limit", args.limit)):
            if v:
                cmd += [flag, str(v)]
        if args.no_speed_perturb:
            cmd.append("--no-speed-perturb")
        print(f"running: {' '.join(cmd)}", file=sys.stderr)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"throughput run with {n} process(es) failed (exit {proc.returncode})")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(json_dumps(results) if args.json else _throughput_table(results))
    return 0


def _throughput_table(results: list[dict[str, Any]]) -> str:
    lines = ["| processes | threads/process | encoder | batch | utterances/s | audio s/s |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['processes']} | {r['threads_per_process']} | {r['encoder']} | {r['batch_size']} | "
                     f"{r['utterances_per_s']:.2f} | {r['audio_seconds_per_s']:.1f} |")
    return "\n".join(lines)


def _threads(args) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


# ----------------------------------------------------------------------------- CLI


def register(sub) -> None:
    inner = add_group(sub, "sa2sr", "SA2SR: the paper's variant grid, and training throughput",
                      "{grid,throughput}", __doc__.split("\n\n", 1)[1])

    g = add_command(
        inner, "grid", "no pre-training / ASR-only / SA2SR x frozen / fine-tuned, over speaker folds",
        "emovox bench sa2sr grid --pretrain an4.jsonl ljspeech.jsonl --emotion ravdess.jsonl \\\n"
        "      --task categorical --label emotion --protocol kfold --folds 4 -o runs/bench-ravdess\n"
        "  emovox bench sa2sr grid --asr-run runs/asr --sa2sr-run runs/sa2sr --emotion va47.jsonl -o runs/b",
        _grid)
    g.add_argument("--pretrain", nargs="*", help="transcribed manifests to pre-train on")
    g.add_argument("--validation", nargs="*", help="validation manifests for pre-training")
    g.add_argument("--asr-run", help="reuse a finished ASR-only pre-training folder")
    g.add_argument("--sa2sr-run", help="reuse a finished SA2SR pre-training folder")
    g.add_argument("--emotion", required=True, help="emotion manifest to fine-tune on")
    g.add_argument("-o", "--output", required=True, help="folder for every run and bench.json")
    g.add_argument("--variants", nargs="+", default=list(VARIANTS), help=f"subset of {' '.join(VARIANTS)}")
    g.add_argument("--task", choices=["attributes", "ordinal", "categorical"])
    g.add_argument("--label")
    g.add_argument("--attributes")
    g.add_argument("--protocol", choices=["kfold", "loso", "official", "loo"])
    g.add_argument("--folds", type=int)
    g.add_argument("--run-folds", type=int, help="run only the first N folds")
    g.add_argument("--encoder", help="pre-training encoder (bilstm or e.g. whisper-tiny.en)")
    g.add_argument("--layers", type=int, help="BiLSTM layers (5)")
    g.add_argument("--hidden", type=int, help="BiLSTM units (192)")
    g.add_argument("--no-speed-perturb", action="store_true")
    g.add_argument("--pt-epochs", type=int, help="pre-training epochs")
    g.add_argument("--pt-steps", type=int, help="pre-training steps")
    g.add_argument("--pt-limit", type=int, help="utterances per pre-training manifest")
    g.add_argument("--pt-lr", type=float, help="pre-training Adam learning rate (5e-5)")
    g.add_argument("--pt-grad-clip", type=float, help="pre-training gradient norm clip (off)")
    g.add_argument("--ft-epochs", type=int, help="fine-tuning epochs per fold")
    g.add_argument("--ft-steps", type=int, help="fine-tuning steps per fold")
    g.add_argument("--ft-lr", type=float)
    g.add_argument("--ft-patience", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--max-seconds", type=float)
    g.add_argument("--pretrain-config", help="JSON PretrainConfig values")
    g.add_argument("--finetune-config", help="JSON FinetuneConfig values")
    g.add_argument("--seed", type=int)
    g.add_argument("--threads", type=int)
    g.add_argument("--json", action="store_true")

    t = add_command(
        inner, "throughput", "pre-training throughput (utterances/s, audio s/s), 1 vs N processes",
        "emovox bench sa2sr throughput an4.jsonl --steps 10 --batch-size 16 --procs 1 2",
        _throughput)
    t.add_argument("manifests", nargs="+")
    t.add_argument("--steps", type=int, default=10, help="timed steps (after 1 warm-up step)")
    t.add_argument("--batch-size", type=int, default=16, help="global batch size")
    t.add_argument("--layers", type=int)
    t.add_argument("--hidden", type=int)
    t.add_argument("--limit", type=int, help="utterances per manifest")
    t.add_argument("--no-speed-perturb", action="store_true")
    t.add_argument("--procs", type=int, nargs="+", help="launch torchrun with each of these process counts")
    t.add_argument("--threads", type=int, help="torch threads per process")
    t.add_argument("--json", action="store_true")
