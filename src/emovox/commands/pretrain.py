"""``emovox pretrain sa2sr``: pre-train an encoder for emotion recognition (one subcommand per
method)."""

from __future__ import annotations

import sys

from ._common import add_command, add_group


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as e:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from e


def run_sa2sr(args) -> int:
    import torch

    from ..manifest import Manifest
    from ..recipes.sa2sr import PretrainConfig, load_config, pretrain
    from ..utils import json_dumps

    if args.threads:
        torch.set_num_threads(args.threads)
    weight = 0.0 if args.asr_only else args.sentiment_weight
    speeds = (1.0,) if args.no_speed_perturb else (_floats(args.speeds) if args.speeds else None)
    cfg = load_config(PretrainConfig, args.config, {
        "encoder": args.encoder, "sentiment_weight": weight, "speeds": speeds, "lr": args.lr,
        "batch_size": args.batch_size, "max_epochs": args.epochs, "max_steps": args.max_steps,
        "patience": args.patience, "vocab": args.vocab, "limit": args.limit, "seed": args.seed,
        "max_seconds": args.max_seconds, "validation_fraction": args.validation_fraction,
        "save_every": args.save_every, "grad_clip": args.grad_clip, "ctc_reduction": args.ctc_reduction,
        "bilstm.layers": args.layers, "bilstm.hidden": args.hidden,
    })
    manifests = [Manifest.load(p) for p in args.manifests]
    validation = [Manifest.load(p) for p in (args.validation or [])]
    result = pretrain(manifests, args.output, cfg, resume=not args.restart, validation=validation)
    from .. import distributed as D

    D.destroy_process_group()
    if not D.is_main():  # under torchrun, rank 0 reports
        return 0
    if args.json:
        print(json_dumps({k: v for k, v in result.items() if k != "history"}))
    else:
        best = result["best"]
        print(f"pre-trained {cfg.encoder} for {result['epochs']} epoch(s), {result['steps']} step(s); best "
              + " ".join(f"{k}={v:.4f}" for k, v in best.items()) + f"; model in {args.output}/sa2sr.pt")
    if result["failed"]:
        print(f"{len(result['failed'])} file(s) skipped (see result.json)", file=sys.stderr)
    return 0


def register(sub) -> None:
    inner = add_group(sub, "pretrain", "pre-train an encoder (sa2sr)", "METHOD",
                      "Pre-train an encoder for emotion recognition. Methods: sa2sr.")

    s = add_command(
        inner, "sa2sr",
        "sentiment-aware ASR pre-training (Ghriss et al. 2022): CTC + 200 x sentiment cross entropy",
        "emovox pretrain sa2sr an4.jsonl ljspeech.jsonl ravdess.labelled.jsonl -o runs/sa2sr --epochs 5\n"
        "  torchrun --nproc_per_node 2 -m emovox pretrain sa2sr an4.jsonl -o runs/sa2sr   # 2 processes\n"
        "  emovox pretrain sa2sr an4.jsonl -o runs/asr --asr-only                        # baseline\n"
        "Manifests need transcripts; proxy sentiment comes from 'emovox label'. Re-running the same\n"
        "command resumes from OUTPUT/last.pt (use --restart to start over).",
        run_sa2sr)
    s.add_argument("manifests", nargs="+", help="training manifests (JSONL) with transcripts")
    s.add_argument("-o", "--output", required=True, help="output folder (checkpoints, sa2sr.pt, curves)")
    s.add_argument("--validation", nargs="*", help="validation manifests (default: hold out a fraction)")
    s.add_argument("--config", help="JSON file of PretrainConfig values (the command line wins)")
    s.add_argument("--encoder", help="bilstm (default) or an encoder name, e.g. whisper-tiny.en")
    s.add_argument("--lambda", dest="sentiment_weight", type=float, help="sentiment loss weight (200)")
    s.add_argument("--asr-only", action="store_true", help="lambda = 0, select on CER (baseline)")
    s.add_argument("--speeds", help="speed perturbation factors (0.9,1.0,1.1)")
    s.add_argument("--no-speed-perturb", action="store_true", help="train on the original speed only")
    s.add_argument("--lr", type=float, help="Adam learning rate (5e-5)")
    s.add_argument("--batch-size", type=int, help="global batch size (32)")
    s.add_argument("--epochs", type=int, help="maximum epochs (200)")
    s.add_argument("--max-steps", type=int, help="stop after this many steps")
    s.add_argument("--patience", type=int, help="epochs without improvement of M (25)")
    s.add_argument("--layers", type=int, help="BiLSTM layers (5)")
    s.add_argument("--hidden", type=int, help="BiLSTM units per direction (192)")
    s.add_argument("--vocab", choices=["english", "auto"], help="english (29 characters) or auto")
    s.add_argument("--limit", type=int, help="at most N utterances per manifest (reduced budgets)")
    s.add_argument("--max-seconds", type=float, help="skip longer clips (30)")
    s.add_argument("--validation-fraction", type=float, help="held-out fraction per manifest (0.1)")
    s.add_argument("--save-every", type=int, help="steps between resumable checkpoints (200)")
    s.add_argument("--grad-clip", type=float, help="clip the gradient norm (off)")
    s.add_argument("--ctc-reduction", choices=["utterance", "character"],
                   help="L_CTC per utterance (default; the scale lambda = 200 is set against) or per character")
    s.add_argument("--seed", type=int)
    s.add_argument("--threads", type=int, help="torch CPU threads per process")
    s.add_argument("--restart", action="store_true", help="ignore OUTPUT/last.pt and start over")
    s.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
