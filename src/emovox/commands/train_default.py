"""``emovox train-default``: train the bundled default emotion model (the probe on Whisper tiny.en,
RAVDESS, emotion category + valence/arousal/dominance) from one command. The recipe is
:mod:`emovox.recipes.default_model`."""

from __future__ import annotations

from ._common import add_command

EXAMPLE = ("emovox train-default --root ../shared/data/ravdess -o src/emovox/assets/emotion-whisper-tiny.en.pt\n\n"
           "RAVDESS is CC BY-NC-SA 4.0: weights trained on it are for non-commercial use.")


def register(sub) -> None:
    from ..emotion_model import default_model_path

    p = add_command(sub, "train-default", "train the default emotion model (probe on Whisper tiny.en, RAVDESS)",
                    EXAMPLE, _run)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--root", help="RAVDESS folder (Actor_XX/...)")
    src.add_argument("--manifest", metavar="M.jsonl", help="a RAVDESS manifest made by 'emovox corpus import'")
    p.add_argument("-o", "--output", default=str(default_model_path()),
                   help="model file to write (default: the package's bundled model)")
    p.add_argument("--encoder", default="whisper-tiny.en", help="encoder (default whisper-tiny.en)")
    p.add_argument("--cv-folds", type=int, default=6,
                   help="actor folds for the measured accuracy and the epoch count (0 skips; default 6)")
    p.add_argument("--epochs", type=int, default=None, help="final training epochs (default: from cross-validation)")
    p.add_argument("--no-speech-copies", action="store_true",
                   help="train on whole clips only (default: whole clips plus copies cut to their speech by "
                        "the VAD, matching how the predictor segments recordings)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--version", default=None, help="version string stored in the model (default: date)")
    p.add_argument("--jobs", type=int, default=1, help="feature extraction worker processes (default 1)")
    p.add_argument("--cache-dir", default=None, help="feature cache folder (default: the user cache)")
    p.add_argument("--report", metavar="FILE.json", help="also write the training report here")
    p.add_argument("--json", action="store_true", help="print the training report JSON on stdout")


def _run(args) -> int:
    import logging

    from ..recipes.default_model import train_default_model
    from ..utils import json_dumps, write_json

    path, report = train_default_model(args.output, root=args.root, manifest_path=args.manifest,
                                       encoder=args.encoder, cv_folds=args.cv_folds, epochs=args.epochs,
                                       speech_copies=not args.no_speech_copies, seed=args.seed,
                                       version=args.version, jobs=args.jobs, cache_dir=args.cache_dir)
    cv = report.get("cross_validation", {}).get("probe", {})
    logging.getLogger("emovox.train_default").info(
        "wrote %s (%d epochs); cross-validated %s", path, report["final_epochs"],
        ", ".join(f"{k}={v['mean']:.3f}±{v['std']:.3f}" for k, v in cv.items()))
    if args.report:
        write_json(args.report, report)
    if args.json:
        print(json_dumps(report))
    return 0
