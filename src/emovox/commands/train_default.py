"""``emovox train-default``: train the bundled default emotion model from the corpora in one
command (the recipe :mod:`emovox.recipes.default_model`; the choice of head and training is
``emovox bench generalization``'s)."""

from __future__ import annotations

from ._common import add_command

EXAMPLE = ("emovox train-default --shared ../shared/data --corpora ../corpora "
           "-o src/emovox/assets/emotion-whisper-base.pt\n\n"
           "The corpora's licences (several non-commercial or no-derivatives) make the weights research-only.")


def register(sub) -> None:
    from ..emotion_model import default_model_path

    p = add_command(sub, "train-default",
                    "train the default emotion model on every corpus it may use (RAVDESS, TESS, ASED, nEMO, "
                    "TurEV-DB, BAVED, va47)", EXAMPLE, _run)
    p.add_argument("--shared", metavar="DIR", help="../shared/data (RAVDESS, BAVED, va47); default $EMOVOX_SHARED or ../shared/data")
    p.add_argument("--corpora", metavar="DIR", help="TESS, ASED, nEMO, TurEV-DB; default $EMOVOX_CORPORA or ../corpora")
    p.add_argument("-o", "--output", default=str(default_model_path()),
                   help="model file to write (default: the package's bundled model)")
    p.add_argument("--encoder", help="encoder (default: the shipped recipe's)")
    p.add_argument("--layers", type=int, metavar="K",
                   help="run only the encoder's first K transformer blocks (default: the shipped recipe's)")
    p.add_argument("--per-corpus", type=int, default=700, metavar="N",
                   help="clips per corpus, balanced over speakers and classes (default 700, as benchmarked; 0 = all)")
    p.add_argument("--candidate", help="recipe of emovox bench generalization (default: the shipped one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--version", default=None, help="version string stored in the model (default: recipe and date)")
    p.add_argument("--jobs", type=int, default=1, help="feature extraction worker processes (default 1)")
    p.add_argument("--cache-dir", default=None, help="feature cache folder (default: the user cache)")
    p.add_argument("--report", metavar="FILE.json", help="also write the training report here")
    p.add_argument("--json", action="store_true", help="print the training report JSON on stdout")


def _run(args) -> int:
    from ..recipes.default_model import train_default_model
    from ..utils import json_dumps, write_json

    _, report = train_default_model(args.output, shared=args.shared, corpora=args.corpora, encoder=args.encoder,
                                    layers=args.layers, per_corpus=args.per_corpus, candidate=args.candidate, seed=args.seed,
                                    version=args.version, jobs=args.jobs, cache_dir=args.cache_dir)
    if args.report:
        write_json(args.report, report)
    if args.json:
        print(json_dumps(report))
    return 0
