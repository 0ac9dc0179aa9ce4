"""``emovox probe``: the SUPERB-style probe (frozen encoder, softmax-weighted layers, mean over
time, 2-layer head) cross-validated over speaker folds, beside a linear model on the same
features."""

from __future__ import annotations

import sys

from ._common import add_command

EXAMPLE = ("emovox probe ravdess.jsonl --features whisper-tiny.en --target emotion --folds 6 -o runs/probe-ravdess\n"
           "  emovox probe baved.jsonl --features egemaps --target level --folds 5 -o runs/probe-baved\n"
           "  emovox probe va47.jsonl --target none --attributes valence,arousal --folds 5 -o runs/probe-va47\n"
           "  torchrun --nproc_per_node 2 -m emovox.cli probe ravdess.jsonl -o runs/p   # folds split over ranks\n\n"
           "eGeMAPS features come from openSMILE (audEERING research / non-commercial licence).")


def register(sub) -> None:
    from ..recipes.probe import SPEAKER_NORM, ProbeRecipeConfig

    d = ProbeRecipeConfig()
    p = add_command(sub, "probe", "SUPERB-style probe on any encoder's layers (or eGeMAPS), cross-validated "
                    "over speaker folds, with a linear baseline", EXAMPLE, _run)
    p.add_argument("manifest", metavar="M.jsonl", help="manifest with the targets")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="folder for results.json, results.md and the confusion / layer-weight PNGs")
    p.add_argument("--features", default=d.features,
                   help=f"encoder name (whisper-tiny.en, whisper-base, HF id or path) or egemaps (default {d.features})")
    p.add_argument("--pad-to-30s", action="store_true", help="Whisper on 30 s padded windows (default: unpadded)")
    p.add_argument("--target", default=d.target,
                   help=f"categorical label to classify (emotion, level, ...) or 'none' (default {d.target})")
    p.add_argument("--attributes", default="",
                   help="comma-separated attributes to regress with 1 - CCC, e.g. valence,arousal,dominance")
    p.add_argument("--speaker-norm", choices=SPEAKER_NORM, default=d.speaker_norm,
                   help=f"per-speaker feature z-scores: off, on, or both (report each; default {d.speaker_norm})")
    p.add_argument("--protocol", default=d.protocol, choices=["loso", "kfold", "official", "loo"],
                   help=f"speaker-independent fold protocol (default {d.protocol})")
    p.add_argument("--folds", type=int, default=d.folds, help=f"k of speaker k-fold (default {d.folds})")
    p.add_argument("--epochs", type=int, default=d.max_epochs, help=f"max epochs (default {d.max_epochs})")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs (default: none)")
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    p.add_argument("--hidden", type=int, default=d.hidden, help=f"head width (default {d.hidden})")
    p.add_argument("--dropout", type=float, default=d.dropout, help=f"default {d.dropout}")
    p.add_argument("--class-weighted", action="store_true", help="balanced class weights in the cross entropy")
    p.add_argument("--clip-sigma", type=float, default=d.clip_sigma,
                   help=f"clip standardised features to +-this (default {d.clip_sigma}; 0 disables)")
    p.add_argument("--no-linear", action="store_true", help="skip the linear baseline")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--jobs", type=int, default=d.jobs, help="feature extraction worker processes (default 1)")
    p.add_argument("--threads", type=int, default=d.threads, help=f"torch threads for the head (default {d.threads})")
    p.add_argument("--device", default=d.device, help="cpu or cuda (default cpu)")
    p.add_argument("--cache-dir", default=None, help="feature cache folder (default: the user cache)")
    p.add_argument("--json", action="store_true", help="print the results JSON on stdout (else a markdown table)")


def _run(args) -> int:
    from .. import distributed
    from ..manifest import Manifest
    from ..recipes.probe import ProbeRecipeConfig, markdown, run_probe
    from ..report.tables import json_safe
    from ..utils import json_dumps, write_json, atomic_write_text

    attributes = [a.strip() for a in args.attributes.split(",") if a.strip()]
    target = None if str(args.target).lower() in ("none", "") else args.target
    cfg = ProbeRecipeConfig(
        features=args.features, feature_options={"pad_to_30s": True} if args.pad_to_30s else {},
        target=target, attributes=attributes, hidden=args.hidden, dropout=args.dropout, lr=args.lr,
        batch_size=args.batch_size, max_epochs=args.epochs, patience=args.patience,
        class_weighted=args.class_weighted, clip_sigma=args.clip_sigma or None, speaker_norm=args.speaker_norm,
        protocol=args.protocol, folds=args.folds, seed=args.seed, linear=not args.no_linear, jobs=args.jobs,
        threads=args.threads, cache_dir=args.cache_dir, device=args.device)
    manifest = Manifest.load(args.manifest)
    distributed.init_process_group()  # under torchrun: folds are split over ranks
    result = json_safe(run_probe(manifest, cfg, out_dir=args.output))
    if distributed.rank() != 0:
        return 0
    table = markdown(result)
    if args.output:
        from pathlib import Path

        out = Path(args.output)
        write_json(out / "results.json", result)
        atomic_write_text(out / "results.md", f"# emovox probe: {manifest.corpus} ({cfg.features})\n\n{table}\n")
    if args.json:
        print(json_dumps(result))
    else:
        sys.stdout.write(table + "\n")
    return 0
