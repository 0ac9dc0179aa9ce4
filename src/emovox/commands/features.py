"""``emovox features NAME M.jsonl -o DIR``: fill the feature cache for a manifest."""

from __future__ import annotations

import logging
import sys

from ._common import add_command, parse_options

log = logging.getLogger(__name__)

_NAMES = """features:
  lfbe          log mel filterbank energies, (frames, 40) at 100 Hz (-O n_mels=80, -O normalize=true)
  mfcc          MFCC, (frames, 20) at 100 Hz (-O n_mfcc=13)
  descriptors   frame-level log mel, MFCC, log F0, voicing, energy, ZCR at 50 Hz, normalised per
                utterance as (x - mean) / (std + 1) (-O frame_rate=100)
  egemaps       openSMILE eGeMAPSv02 functionals, (88,)
  egemaps-lld   openSMILE eGeMAPSv02 low-level descriptors, (frames, 25) at 100 Hz
  ENCODER       any encoder name (whisper-tiny.en, whisper-base, wavenet, a Hugging Face id or a
                local model folder): per-layer mean over time, (layers, dim) (-O pad_to_30s=true)

openSMILE (egemaps, egemaps-lld) is audEERING's software under a research / non-commercial
licence; commercial use needs a licence from audEERING.
Under torchrun each rank extracts its own shard of the manifest into the shared cache."""


def register(sub) -> None:
    p = add_command(sub, "features", "extract features for a manifest into the on-disk cache",
                    "emovox features whisper-tiny.en ravdess.jsonl -o cache/ --json\n"
                    "  emovox features lfbe ravdess.jsonl -o cache/ --jobs 2 -O normalize=true\n"
                    "  torchrun --nproc-per-node 4 -m emovox.cli features whisper-base m.jsonl -o cache/ "
                    "-O device=cuda\n\n" + _NAMES, _run)
    p.add_argument("name", metavar="NAME", help="feature or encoder name (see below)")
    p.add_argument("manifest", metavar="M.jsonl", help="manifest of the utterances")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="feature cache directory (created)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes (default 1)")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="torch threads per process (default: CPU cores / jobs)")
    p.add_argument("--device", default="cpu", help="torch device for filterbank, descriptors and encoders "
                                                   "(default cpu; e.g. cuda)")
    p.add_argument("--strict", action="store_true", help="exit with an error if any file cannot be extracted")
    p.add_argument("--export", metavar="FILE.npz", help="also write ids and features to one .npz file")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="an extractor option (e.g. n_mels=80, pad_to_30s=true); repeatable")


def _run(args) -> int:
    import numpy as np

    from .. import distributed
    from ..featurize import ExtractionError, extract_manifest
    from ..manifest import Manifest
    from ..utils import atomic_open, json_dumps

    options = parse_options(args.option)
    if args.name not in ("egemaps", "egemaps-lld"):  # openSMILE runs on the CPU only
        options.setdefault("device", args.device)
    manifest = Manifest.load(args.manifest)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        table = extract_manifest(manifest, args.name, jobs=args.jobs, cache_dir=args.output, strict=args.strict,
                                 threads=args.threads, **options)
    except ExtractionError as e:
        print(f"emovox features: error: {e}", file=sys.stderr)
        return 1
    finally:
        distributed.destroy_process_group()  # started by extract_manifest under torchrun
    if not distributed.is_main():
        return 0
    for f in table.failed:
        print(f"emovox features: skipped {f}", file=sys.stderr)
    if args.export:
        with atomic_open(args.export, "wb") as fh:
            if isinstance(table.features, np.ndarray):
                np.savez(fh, ids=np.array(table.ids), features=table.features)
            else:  # frame-level: concatenate, with per-item frame counts
                sizes = np.array([len(a) for a in table.features], dtype=np.int64)
                np.savez(fh, ids=np.array(table.ids), features=np.concatenate(table.features), frames=sizes)
    summary = {**table.summary(), "manifest": args.manifest, "config": table.config}
    if args.json:
        print(json_dumps(summary, indent=2))
    else:
        s = table.stats
        print(f"{args.name}: {len(table)} item(s) ({s['computed']} computed, {s['cached']} from the cache), "
              f"{len(table.failed)} failed, shape {summary['shape']}, cache {s['cache_dir']}", file=sys.stderr)
    return 0
