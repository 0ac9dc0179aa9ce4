"""``emovox train-default``: train the bundled default emotion model (the probe on Whisper tiny.en,
RAVDESS, emotion category + valence/arousal/dominance) from one command."""

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
    import datetime
    import logging

    from ..corpora import prepare
    from ..emotion_model import (ATTRIBUTE_NAMES, EMOTION_VAD, INTENSITY_SCALE, category_vad, speech_trimmed,
                                 train_emotion_model)
    from ..manifest import Manifest
    from ..recipes.probe import ProbeRecipeConfig, load_features
    from ..utils import json_safe
    from ..utils import json_dumps, write_json

    log = logging.getLogger("emovox.train_default")
    manifest = Manifest.load(args.manifest) if args.manifest else prepare("ravdess", args.root)
    if "emotion" not in manifest.labels:
        raise ValueError(f"{args.manifest or args.root}: the manifest has no emotion labels")
    cfg = ProbeRecipeConfig(features=args.encoder, target="emotion", attributes=list(ATTRIBUTE_NAMES),
                            speaker_norm="off", seed=args.seed, jobs=args.jobs, cache_dir=args.cache_dir,
                            linear=False)
    if not args.no_speech_copies:
        copies = speech_trimmed(manifest)
        log.info("%d of %d clips have a speech-trimmed copy", len(copies), len(manifest))
        manifest = manifest.replace(manifest.records + copies.records)
    features, failed = load_features(manifest, cfg)
    targets = category_vad(manifest)
    today = datetime.date.today().isoformat()
    meta = {"trained": today, "corpus": manifest.corpus, "licence": "CC BY-NC-SA 4.0 (RAVDESS): non-commercial use",
            "attribute_targets": "category prototype coordinates (Russell & Mehrabian-style table) x intensity",
            "vad_table": {k: list(v) for k, v in EMOTION_VAD.items()}, "intensity_scale": INTENSITY_SCALE,
            "speech_copies": not args.no_speech_copies, "failed": failed}
    model, report = train_emotion_model(manifest, features, targets, cfg, cv_folds=args.cv_folds,
                                        epochs=args.epochs, version=args.version or f"ravdess-probe-{today}",
                                        meta=meta)
    path = model.save(args.output)
    report = json_safe({**report, "output": str(path), "version": model.version, "failed": failed})
    cv = report.get("cross_validation", {}).get("probe", {})
    log.info("wrote %s (%d epochs); cross-validated %s", path, report["final_epochs"],
             ", ".join(f"{k}={v['mean']:.3f}±{v['std']:.3f}" for k, v in cv.items()))
    if args.report:
        write_json(args.report, report)
    if args.json:
        print(json_dumps(report))
    return 0
