"""``emovox pretrain sa2sr`` and ``emovox pretrain care``: pre-train an encoder for emotion
recognition (one subcommand per method; the options every method has are declared once)."""

from __future__ import annotations

import sys

from ._common import add_command, add_group


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as e:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from e


def _shared_values(args) -> dict:
    """Config values of the options every method has (None: the config's default)."""
    return {"lr": args.lr, "batch_size": args.batch_size, "max_epochs": args.epochs, "max_steps": args.max_steps,
            "max_minutes": args.max_minutes, "patience": args.patience, "limit": args.limit, "seed": args.seed,
            "validation_fraction": args.validation_fraction, "save_every": args.save_every,
            "grad_clip": args.grad_clip}


def _pretrain(args, pretrain, cfg, describe, **kw) -> int:
    """Run ``pretrain`` on the command's manifests; rank 0 prints ``describe(result)`` (or JSON)."""
    from .. import distributed as D
    from ..manifest import Manifest
    from ..utils import json_dumps

    manifests = [Manifest.load(p) for p in args.manifests]
    validation = [Manifest.load(p) for p in (args.validation or [])]
    result = pretrain(manifests, args.output, cfg, resume=not args.restart, validation=validation, **kw)
    D.destroy_process_group()
    if not D.is_main():  # under torchrun, rank 0 reports
        return 0
    print(json_dumps({k: v for k, v in result.items() if k != "history"}) if args.json else describe(result))
    if result["failed"]:
        print(f"{len(result['failed'])} file(s) skipped (see result.json)", file=sys.stderr)
    return 0


def _best(result: dict) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in result["best"].items())


def run_sa2sr(args) -> int:
    import torch

    from ..recipes.sa2sr import PretrainConfig, load_config, pretrain

    if args.threads:
        torch.set_num_threads(args.threads)
    weight = 0.0 if args.asr_only else args.sentiment_weight
    speeds = (1.0,) if args.no_speed_perturb else (_floats(args.speeds) if args.speeds else None)
    cfg = load_config(PretrainConfig, args.config, {
        **_shared_values(args), "encoder": args.encoder, "sentiment_weight": weight, "speeds": speeds,
        "vocab": args.vocab, "max_seconds": args.max_seconds, "ctc_reduction": args.ctc_reduction,
        "bilstm.layers": args.layers, "bilstm.hidden": args.hidden,
    })
    return _pretrain(args, pretrain, cfg, lambda r: (
        f"pre-trained {cfg.encoder} for {r['epochs']} epoch(s), {r['steps']} step(s); best {_best(r)}; "
        f"model in {args.output}/sa2sr.pt"))


def run_care(args) -> int:
    import torch

    from ..recipes.care import CarePretrainConfig, pretrain
    from ..recipes.sa2sr.config import load_config

    if args.threads:
        torch.set_num_threads(args.threads)
    descriptors = tuple(c for c in args.descriptors.split(",") if c) if args.descriptors else None
    cfg = load_config(CarePretrainConfig, args.config, {
        **_shared_values(args), "speech": args.speech, "text": args.text, "text_layers": args.text_layers,
        "common_layers": args.common_layers, "branches": args.branches, "descriptors": descriptors,
        "crop_seconds": args.crop_seconds, "weight_decay": args.weight_decay, "eval_every": args.eval_every})
    return _pretrain(args, pretrain, cfg, lambda r: (
        f"pre-trained CARE ({cfg.branches}) for {r['steps']} step(s), {r['epochs']} epoch(s); best {_best(r)} "
        f"at step {r['best_step']}; model in {args.output}/care.pt"), device=args.device, num_workers=args.workers)


# the configs' defaults, for the help texts (not imported: that would load torch for every command;
# tests/test_care.py checks they agree with PretrainConfig and CarePretrainConfig)
SA2SR_DEFAULTS = {"lr": 5e-5, "batch_size": 32, "max_epochs": 200, "max_steps": None, "patience": 25,
                  "validation_fraction": 0.1, "save_every": 200}
CARE_DEFAULTS = {"lr": 1e-5, "batch_size": 128, "max_epochs": 100_000, "max_steps": 200_000, "patience": None,
                 "validation_fraction": 0.05, "save_every": 200}


def _add_shared(s, what: str, model_file: str, defaults: dict) -> None:
    """The options every method has; ``defaults`` are the config's values, for the help texts."""
    d = defaults
    s.add_argument("manifests", nargs="+", help=f"training manifests (JSONL){what}")
    s.add_argument("-o", "--output", required=True, help=f"output folder (checkpoints, {model_file}, curves)")
    s.add_argument("--validation", nargs="*", help="validation manifests (default: hold out speakers)")
    s.add_argument("--config", help="JSON file of the method's config values (the command line wins)")
    s.add_argument("--lr", type=float, help=f"learning rate ({d['lr']})")
    s.add_argument("--batch-size", type=int, help=f"global batch size ({d['batch_size']})")
    s.add_argument("--epochs", type=int, help=f"maximum epochs ({d['max_epochs']})")
    s.add_argument("--max-steps", type=int, help=f"stop after this many steps ({d['max_steps']})")
    s.add_argument("--max-minutes", type=float,
                   help="wall-clock budget of this run: then validate, save and stop; the same command resumes")
    s.add_argument("--patience", type=int, help=f"validations without improvement before stopping ({d['patience']})")
    s.add_argument("--limit", type=int, help="at most N utterances per manifest (reduced budgets)")
    s.add_argument("--validation-fraction", type=float,
                   help=f"speakers held out per manifest ({d['validation_fraction']})")
    s.add_argument("--save-every", type=int, help=f"steps between resumable checkpoints ({d['save_every']})")
    s.add_argument("--grad-clip", type=float, help="clip the gradient norm (off)")
    s.add_argument("--seed", type=int)
    s.add_argument("--threads", type=int, help="torch CPU threads per process")
    s.add_argument("--restart", action="store_true", help="ignore OUTPUT/last.pt and start over")
    s.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def register(sub) -> None:
    inner = add_group(sub, "pretrain", "pre-train an encoder (sa2sr, care)", "METHOD",
                      "Pre-train an encoder for emotion recognition. Methods: sa2sr, care.")

    s = add_command(
        inner, "sa2sr",
        "sentiment-aware ASR pre-training (Ghriss et al. 2022): CTC + 200 x sentiment cross entropy",
        "emovox pretrain sa2sr an4.jsonl ljspeech.jsonl ravdess.labelled.jsonl -o runs/sa2sr --epochs 5\n"
        "  torchrun --nproc_per_node 2 -m emovox pretrain sa2sr an4.jsonl -o runs/sa2sr   # 2 processes\n"
        "  emovox pretrain sa2sr an4.jsonl -o runs/asr --asr-only                        # baseline\n"
        "Manifests need transcripts; proxy sentiment comes from 'emovox label'. Re-running the same\n"
        "command resumes from OUTPUT/last.pt (use --restart to start over).",
        run_sa2sr)
    _add_shared(s, " with transcripts", "sa2sr.pt", SA2SR_DEFAULTS)
    s.add_argument("--encoder", help="bilstm (default) or an encoder name, e.g. whisper-tiny.en")
    s.add_argument("--lambda", dest="sentiment_weight", type=float, help="sentiment loss weight (200)")
    s.add_argument("--asr-only", action="store_true", help="lambda = 0, select on CER (baseline)")
    s.add_argument("--speeds", help="speed perturbation factors (0.9,1.0,1.1)")
    s.add_argument("--no-speed-perturb", action="store_true", help="train on the original speed only")
    s.add_argument("--layers", type=int, help="BiLSTM layers (5)")
    s.add_argument("--hidden", type=int, help="BiLSTM units per direction (192)")
    s.add_argument("--vocab", choices=["english", "auto"], help="english (29 characters) or auto")
    s.add_argument("--max-seconds", type=float, help="skip longer clips (30)")
    s.add_argument("--ctc-reduction", choices=["utterance", "character"],
                   help="L_CTC per utterance (default; the scale lambda = 200 is set against) or per character")

    s = add_command(
        inner, "care",
        "CARE (Dutta & Ganapathy 2024): common + acoustic (frame descriptors) + semantic (frozen text layers) "
        "encoder pre-training",
        "emovox pretrain care an4.jsonl ljspeech.jsonl ravdess.jsonl -o runs/care --batch-size 16 --max-steps 2000\n"
        "  emovox pretrain care an4.jsonl -o runs/care-acoustic --branches acoustic        # ablation\n"
        "  torchrun --nproc_per_node 2 -m emovox pretrain care an4.jsonl -o runs/care     # 2 processes (DDP)\n"
        "  emovox probe ravdess.jsonl --features runs/care/care.pt -o runs/probe-care    # probe it\n"
        "Transcripts (the manifest's own, or from 'emovox label') give the semantic targets; records\n"
        "without one train the acoustic branch only. Re-running the same command resumes from\n"
        "OUTPUT/last.pt (use --restart to start over).",
        run_care)
    _add_shared(s, "", "care.pt", CARE_DEFAULTS)
    s.add_argument("--speech", help="speech encoder: whisper-tiny.en (default), whisper-base, a Whisper folder/id")
    s.add_argument("--text", help="text transformer: minilm (default), a Hugging Face id or folder (roberta-base)")
    s.add_argument("--text-layers", type=int, help="last N text layers in the semantic branch (6)")
    s.add_argument("--common-layers", type=int, help="speech layers shared by both branches (default half)")
    s.add_argument("--branches", choices=["full", "acoustic", "semantic"],
                   help="full CARE (default) or an ablation: acoustic + common, semantic + common")
    s.add_argument("--descriptors", help="frame descriptor components (logmel,mfcc,log_f0,voicing,energy,zcr)")
    s.add_argument("--crop-seconds", type=float, help="random crop length (5)")
    s.add_argument("--weight-decay", type=float, help="AdamW weight decay (0.01)")
    s.add_argument("--eval-every", type=int, help="steps between validations (default: each epoch)")
    s.add_argument("--device", default="auto", help="auto (cuda:<local rank> when available), cpu or cuda")
    s.add_argument("--workers", type=int, default=0, help="data loading processes (0)")
