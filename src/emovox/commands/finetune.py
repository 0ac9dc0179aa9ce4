"""``emovox finetune``: an (SA2SR) pre-trained encoder + the emotion regressor, cross-validated
over speaker folds."""

from __future__ import annotations

import sys

from ._common import add_command


def run(args) -> int:
    import torch

    from ..manifest import Manifest
    from ..recipes.sa2sr import FinetuneConfig, finetune, load_config
    from ..utils import json_dumps

    if args.threads:
        torch.set_num_threads(args.threads)
    attributes = tuple(a.strip() for a in args.attributes.split(",")) if args.attributes else None
    cfg = load_config(FinetuneConfig, args.config, {
        "encoder": args.encoder, "no_pretraining": args.no_pretraining or None,
        "freeze_encoder": args.freeze_encoder or None, "layer": args.layer, "task": args.task,
        "label": args.label, "attributes": attributes, "lr": args.lr, "batch_size": args.batch_size,
        "max_epochs": args.epochs, "max_steps": args.max_steps, "patience": args.patience,
        "protocol": args.protocol, "folds": args.folds, "run_folds": args.run_folds, "seed": args.seed,
        "max_seconds": args.max_seconds,
    })
    manifest = Manifest.load(args.manifest)
    result = finetune(manifest, args.output, cfg, resume=not args.restart)
    from .. import distributed as D

    D.destroy_process_group()
    if not D.is_main():  # under torchrun, rank 0 reports
        return 0
    if args.json:
        print(json_dumps(result))
    else:
        s = result["summary"]
        print(f"{len(result['folds'])} fold(s), test: " + ", ".join(
            f"{k} {v['mean']:.3f} +- {v['std']:.3f}" for k, v in s.items()) + f"; details in {args.output}/result.json")
    if result["failed"]:
        print(f"{len(result['failed'])} file(s) skipped (see result.json)", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = add_command(
        sub, "finetune",
        "fine-tune a pre-trained encoder + the SA2SR emotion regressor over speaker folds",
        "emovox finetune ravdess.jsonl --encoder runs/sa2sr -o runs/ft-ravdess --task categorical --label emotion\n"
        "  emovox finetune baved.jsonl --encoder runs/sa2sr -o runs/ft-baved --task ordinal --label level \\\n"
        "      --freeze-encoder\n"
        "  emovox finetune va47.jsonl --encoder runs/sa2sr -o runs/ft-va47 --no-pretraining --protocol loo\n"
        "Re-running the same command skips finished folds and resumes the current one (--restart to start over).",
        run)
    p.add_argument("manifest", help="emotion manifest (JSONL)")
    p.add_argument("-o", "--output", required=True, help="output folder (one sub-folder per fold)")
    p.add_argument("--encoder", help="pre-training output folder, sa2sr.pt/encoder.pt, or an encoder name "
                                     "(bilstm, whisper-tiny.en, ...)")
    p.add_argument("--no-pretraining", action="store_true", help="random initialisation (baseline)")
    p.add_argument("--freeze-encoder", action="store_true", help="train the regressor only")
    p.add_argument("--task", choices=["attributes", "ordinal", "categorical"],
                   help="attributes: CCC on A/V/D; ordinal: CCC on an ordered label; categorical: cross entropy")
    p.add_argument("--label", help="label for ordinal/categorical tasks (emotion, level, ...)")
    p.add_argument("--attributes", help="attributes to predict (arousal,valence,dominance)")
    p.add_argument("--layer", type=int, help="encoder hidden state for the regressor (-1 = last)")
    p.add_argument("--protocol", choices=["kfold", "loso", "official", "loo"], help="speaker folds (kfold)")
    p.add_argument("--folds", type=int, help="k for kfold (5)")
    p.add_argument("--run-folds", type=int, help="run only the first N folds (reduced budgets)")
    p.add_argument("--lr", type=float, help="Adam learning rate (1e-4)")
    p.add_argument("--batch-size", type=int, help="global batch size (32)")
    p.add_argument("--epochs", type=int, help="maximum epochs per fold (50)")
    p.add_argument("--max-steps", type=int, help="stop each fold after this many steps")
    p.add_argument("--patience", type=int, help="evaluations without improvement (10)")
    p.add_argument("--max-seconds", type=float, help="cut clips to this length (30)")
    p.add_argument("--config", help="JSON file of FinetuneConfig values (the command line wins)")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="torch CPU threads per process")
    p.add_argument("--restart", action="store_true", help="ignore finished folds and checkpoints")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
