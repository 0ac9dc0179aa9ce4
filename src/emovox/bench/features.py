"""``emovox bench features``: seconds of audio processed per second of wall time, per feature.

The clips are loaded once (from a manifest, or generated), then each extractor runs over all of
them without the cache (audio decoding excluded; model loading excluded and reported apart;
one warm-up call first). The torch filterbank is timed next to librosa on the same clips in the
same run. openSMILE (eGeMAPS) is audEERING's research / non-commercial software.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from ..commands._common import add_command

DEFAULT = "lfbe,mfcc,librosa-lfbe,librosa-mfcc,descriptors,egemaps,whisper-tiny.en,whisper-base"


def register(sub) -> None:
    p = add_command(sub, "features", "audio seconds per wall second for filterbank (vs librosa), "
                                     "descriptors, eGeMAPS and encoder features",
                    "emovox bench features --manifest ravdess.jsonl --limit 100 --threads 2\n"
                    "  emovox bench features --files 20 --seconds 4 --features lfbe,librosa-lfbe --json\n\n"
                    "features: any of lfbe, mfcc, descriptors, egemaps, egemaps-lld, an encoder name, and\n"
                    "librosa-lfbe / librosa-mfcc (librosa on the same clips, one at a time).\n"
                    "eGeMAPS uses openSMILE (audEERING research / non-commercial licence).", _run)
    p.add_argument("--manifest", metavar="M.jsonl", help="take clips from this manifest (default: generated)")
    p.add_argument("--limit", type=int, default=100, metavar="N", help="at most N clips of the manifest "
                                                                        "(evenly spaced; default 100)")
    p.add_argument("--files", type=int, default=20, metavar="N", help="generated clips (default 20)")
    p.add_argument("--seconds", type=float, default=4.0, help="length of each generated clip (default 4)")
    p.add_argument("--features", default=DEFAULT, help=f"comma-separated (default {DEFAULT})")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--json", action="store_true", help="JSON rows on stdout instead of a markdown table")


def _clips(args) -> tuple[list[np.ndarray], str]:
    from ..audio import load_audio

    if args.manifest:
        from ..manifest import Manifest

        m = Manifest.load(args.manifest)
        idx = np.unique(np.linspace(0, len(m) - 1, min(args.limit, len(m))).round().astype(int)) if len(m) else []
        clips = []
        for i in idx:
            u = m[int(i)]
            try:
                clips.append(load_audio(m.audio_path(u), start=u.start, end=u.end))
            except Exception as e:  # a bad file does not stop a benchmark
                print(f"bench features: skipped {u.id}: {e}", file=sys.stderr)
        return clips, f"{len(clips)} clips of {args.manifest}"
    rng = np.random.default_rng(0)
    t = np.arange(int(args.seconds * 16000)) / 16000
    clips = []
    for i in range(args.files):
        f0 = 100 + 15 * i
        x = sum(0.3 / k * np.sin(2 * np.pi * f0 * k * t) for k in (1, 2, 3)) + 0.02 * rng.standard_normal(len(t))
        clips.append(x.astype(np.float32))
    return clips, f"{len(clips)} generated clips of {args.seconds:g} s"


def _librosa(kind: str):
    import librosa

    def run(x: np.ndarray) -> np.ndarray:
        m = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=512, win_length=400, hop_length=160,
                                           center=False, n_mels=40)
        if kind == "lfbe":
            return np.log(np.maximum(m, 1e-10))
        return librosa.feature.mfcc(S=librosa.power_to_db(m, top_db=None), n_mfcc=20)

    return run


def _time(name: str, impl: str, clips: list[np.ndarray], args) -> dict[str, Any]:
    from ..featurize import _batches, get_extractor

    t_load = time.perf_counter()
    if name.startswith("librosa-"):
        fn = _librosa(name.split("-", 1)[1])
        fn(clips[0][:16000])
        t0 = time.perf_counter()
        for x in clips:
            fn(x)
    else:
        options = {} if name.startswith("egemaps") else {"device": args.device}
        ex = get_extractor(name, **options)
        ex.config()  # loads an encoder's weights
        ex.extract_batch([clips[0][:16000]])  # warm-up
        load_s = time.perf_counter() - t_load
        t0 = time.perf_counter()
        for batch in _batches(clips, ex.sample_rate, ex.batch_seconds):
            ex.extract_batch([clips[i] for i in batch])
        if args.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    audio = sum(len(x) for x in clips) / 16000
    row = {"feature": name, "implementation": impl, "clips": len(clips), "audio_s": round(audio, 1),
           "wall_s": round(wall, 3), "audio_s_per_s": round(audio / wall, 1)}
    if not name.startswith("librosa-"):
        row["load_s"] = round(load_s, 2)
    return row


_IMPL = {"lfbe": "emovox torch, batched", "mfcc": "emovox torch, batched", "descriptors": "emovox torch, batched",
         "librosa-lfbe": "librosa 0.11, per clip", "librosa-mfcc": "librosa 0.11, per clip",
         "egemaps": "openSMILE, per clip", "egemaps-lld": "openSMILE, per clip"}


def _run(args) -> int:
    import torch

    from ..utils import json_dumps

    torch.set_num_threads(args.threads)
    clips, source = _clips(args)
    if not clips:
        print("bench features: no clips", file=sys.stderr)
        return 1
    rows = []
    for name in [n.strip() for n in args.features.split(",") if n.strip()]:
        impl = _IMPL.get(name, "encoder pooled per layer, batched")
        try:
            rows.append(_time(name, impl, clips, args))
        except Exception as e:  # e.g. an encoder whose weights are not installed
            print(f"bench features: {name}: {type(e).__name__}: {e}", file=sys.stderr)
            rows.append({"feature": name, "implementation": impl, "error": str(e)})
        print(f"bench features: {rows[-1]}", file=sys.stderr)
    if args.json:
        print(json_dumps({"source": source, "threads": args.threads, "device": args.device, "rows": rows}, indent=2))
        return 0
    print(f"{source}; {args.threads} torch threads; device {args.device}\n")
    print("| feature | implementation | clips | audio (s) | wall (s) | audio s / wall s | load (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['feature']} | {r['implementation']} | - | - | - | error: {r['error'][:60]} | - |")
        else:
            print(f"| {r['feature']} | {r['implementation']} | {r['clips']} | {r['audio_s']} | {r['wall_s']} | "
                  f"{r['audio_s_per_s']} | {r.get('load_s', '-')} |")
    return 0
