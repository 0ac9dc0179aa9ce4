"""``emovox asr-features``: the Tits et al. (2018) recipe (pretrained ASR encoder layers as emotion
features, Fisher selection, linear models, speaker-independent folds, eGeMAPS baseline)."""

from __future__ import annotations

import sys

from ._common import add_command

EXAMPLE = ("emovox asr-features ravdess.jsonl --target emotion --protocol kfold --folds 6 -o runs/ravdess\n"
           "  emovox asr-features baved.jsonl --target level --task regression --protocol kfold -o runs/baved\n"
           "  emovox asr-features va47.jsonl --target arousal --protocol loo -o runs/va47-arousal\n\n"
           "eGeMAPS features come from openSMILE (audEERING research / non-commercial licence).")


def register(sub) -> None:
    from ..recipes.asr_features import ASRFeaturesConfig, TASKS

    d = ASRFeaturesConfig()
    p = add_command(sub, "asr-features",
                    "Tits et al. (2018): pooled ASR-encoder layer outputs as emotion features vs eGeMAPS",
                    EXAMPLE, _run)
    p.add_argument("manifest", metavar="M.jsonl", help="manifest with the target labels")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="folder for results.md, results.json, predictions.csv and plots/")
    p.add_argument("--target", default=d.target,
                   help=f"numeric attribute (valence, arousal, ...) or categorical label (emotion, level); "
                        f"default {d.target}")
    p.add_argument("--task", choices=TASKS, default=d.task,
                   help="regression (categorical targets become ordinal codes in vocabulary order), "
                        "classification, or auto by the target's type (default auto)")
    p.add_argument("--encoder", action="append", dest="encoders", metavar="NAME",
                   help=f"encoder for the neural features; repeatable (default {d.encoders[0]})")
    p.add_argument("--pad-to-30s", action="store_true",
                   help="run Whisper on 30 s padded windows as in its training (default: unpadded)")
    p.add_argument("--baseline", default=d.baseline,
                   help=f"hand-crafted baseline features, 'none' to skip (default {d.baseline})")
    p.add_argument("-k", "--k", type=int, default=d.k, help=f"units kept by Fisher selection (default {d.k})")
    p.add_argument("--protocol", default=d.protocol, choices=["loso", "kfold", "official", "loo"],
                   help=f"speaker-independent fold protocol (default {d.protocol})")
    p.add_argument("--folds", type=int, default=d.folds, help=f"k of speaker k-fold (default {d.folds})")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--layers", nargs="+", default=list(d.layer_sets), metavar="SPEC",
                   help="layer sets to compare: all, firstN, lastN, middle, N, A-B, or comma lists "
                        "(default first3 last3 all)")
    p.add_argument("--no-single-layers", action="store_true", help="skip evaluating every layer on its own")
    p.add_argument("--clip-sigma", type=float, default=d.clip_sigma,
                   help=f"clip standardised features to +-this (default {d.clip_sigma}; 0 disables)")
    p.add_argument("--fisher-bins", type=int, default=d.fisher_bins,
                   help=f"quantile classes of a numeric target for the Fisher score (default {d.fisher_bins})")
    p.add_argument("--speaker-norm", action="store_true", help="z-normalise features per speaker first")
    p.add_argument("--C", type=float, default=d.C, dest="C",
                   help=f"inverse L2 strength of the logistic regression (default {d.C})")
    p.add_argument("--ridge", type=float, default=d.ridge, help="L2 strength of the linear regression (default 0)")
    p.add_argument("--unit-scale", action="store_true", help="map the attribute to [-1, 1] with the manifest's scale")
    p.add_argument("--heatmap-speakers", type=int, default=d.heatmap_speakers,
                   help=f"per-speaker correlation heatmaps to draw (default {d.heatmap_speakers})")
    p.add_argument("--jobs", type=int, default=d.jobs, help="feature extraction worker processes (default 1)")
    p.add_argument("--cache-dir", default=None, help="feature cache folder (default: the user cache)")
    p.add_argument("--json", action="store_true", help="print the results JSON on stdout")


def _run(args) -> int:
    from ..distributed import is_main
    from ..manifest import Manifest
    from ..recipes.asr_features import ASRFeaturesConfig, results_table, run
    from ..utils import json_dumps

    cfg = ASRFeaturesConfig(
        target=args.target, task=args.task, encoders=tuple(args.encoders or ASRFeaturesConfig().encoders),
        encoder_options={"pad_to_30s": True} if args.pad_to_30s else {},
        baseline=None if str(args.baseline).lower() in ("none", "") else args.baseline,
        k=args.k, protocol=args.protocol, folds=args.folds, seed=args.seed, layer_sets=tuple(args.layers),
        single_layers=not args.no_single_layers, clip_sigma=args.clip_sigma or None,
        fisher_bins=args.fisher_bins, speaker_norm=args.speaker_norm, C=args.C, ridge=args.ridge,
        unit_scale=args.unit_scale, heatmap_speakers=args.heatmap_speakers, jobs=args.jobs,
        cache_dir=args.cache_dir)
    manifest = Manifest.load(args.manifest)
    report = run(manifest, cfg, args.output)
    if not is_main():  # under torchrun, rank 0 reports
        return 0
    if args.json:
        from ..report.tables import json_safe

        print(json_dumps(json_safe(report), indent=2))
    else:
        print(results_table(report), file=sys.stderr)
    print(f"wrote {args.output}/results.md, results.json, predictions.csv, plots/", file=sys.stderr)
    return 0
