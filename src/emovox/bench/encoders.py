"""``emovox bench encoders``: encoder speed in audio seconds per wall second.

For each encoder, clip length and mode (unpadded, or padded to 30 s like Whisper's training),
generated clips are run through ``forward`` under ``no_grad`` in batches of ``--batch``; weight
loading (and the one-time conversion) is excluded and reported apart, one warm-up call first.
Process CPU time is reported beside wall time, with the 1-minute load average: on a shared
machine wall time measures the neighbours as much as the encoder.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np

from ..commands._common import add_command


def register(sub) -> None:
    p = add_command(sub, "encoders", "encoder speed (audio seconds per wall second) by clip length, "
                                     "unpadded vs padded to 30 s",
                    "emovox bench encoders --encoders whisper-tiny.en,whisper-base --seconds 1,10 --threads 2", _run)
    p.add_argument("--encoders", default="whisper-tiny.en,whisper-base", help="comma-separated encoder names")
    p.add_argument("--seconds", default="1,10", help="comma-separated clip lengths in seconds (default 1,10)")
    p.add_argument("--modes", default="unpadded,padded", help="unpadded and/or padded (Whisper encoders only)")
    p.add_argument("--audio", type=float, default=30.0, help="seconds of audio per measurement (default 30)")
    p.add_argument("--batch", type=int, default=1, help="clips per forward call (default 1)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--json", action="store_true", help="JSON rows on stdout instead of a markdown table")


def _clip(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    phase = 2 * np.pi * np.cumsum(140 + 30 * np.sin(2 * np.pi * 0.7 * t)) / 16000
    x = sum(np.sin(k * phase) / k for k in range(1, 10)) * np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    return (0.1 * x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _measure(name: str, mode: str, seconds: float, args) -> dict[str, Any]:
    import torch

    from ..encoders import load_encoder, pad_batch

    t0 = time.perf_counter()
    options = {"pad_to_30s": mode == "padded"} if mode == "padded" else {}
    enc = load_encoder(name, device=args.device, **options)
    load_s = time.perf_counter() - t0
    n = max(args.batch, int(round(args.audio / seconds)))
    clips = [_clip(seconds, i) for i in range(n)]
    with torch.no_grad():
        enc(*[t.to(args.device) for t in pad_batch(clips[:1])])  # warm-up
        start, cpu0 = time.perf_counter(), time.process_time()
        for i in range(0, n, args.batch):
            audio, lengths = pad_batch(clips[i:i + args.batch])
            enc(audio.to(args.device), lengths.to(args.device))
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    audio_s = n * seconds
    return {"encoder": name, "mode": mode, "clip_s": seconds, "batch": args.batch, "clips": n,
            "audio_s": round(audio_s, 1), "wall_s": round(wall, 3), "audio_s_per_s": round(audio_s / wall, 2),
            "cpu_s": round(cpu, 3), "audio_s_per_cpu_s": round(audio_s / max(cpu, 1e-9), 2), "load_s": round(load_s, 2),
            "load_avg_1min": round(os.getloadavg()[0], 1)}


def _run(args) -> int:
    import torch

    from ..utils import json_dumps

    torch.set_num_threads(args.threads)
    rows = []
    for name in [e for e in args.encoders.split(",") if e]:
        for mode in [m for m in args.modes.split(",") if m]:
            if mode not in ("unpadded", "padded"):
                print(f"bench encoders: unknown mode {mode!r}", file=sys.stderr)
                return 2
            if mode == "padded" and "whisper" not in name:
                continue
            for s in [float(x) for x in args.seconds.split(",") if x]:
                try:
                    row = _measure(name, mode, s, args)
                except Exception as e:  # one missing model does not stop the benchmark
                    print(f"bench encoders: {name} ({mode}, {s:g} s) failed: {e}", file=sys.stderr)
                    continue
                print(f"bench encoders: {row}", file=sys.stderr)
                rows.append(row)
    if args.json:
        print(json_dumps(rows))
    else:
        print("| encoder | mode | clip (s) | batch | audio (s) | wall (s) | audio s / wall s | CPU (s) | "
              "audio s / CPU s | load (s) |\n|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['encoder']} | {r['mode']} | {r['clip_s']:g} | {r['batch']} | {r['audio_s']:g} | "
                  f"{r['wall_s']:.2f} | {r['audio_s_per_s']:.2f} | {r['cpu_s']:.2f} | {r['audio_s_per_cpu_s']:.2f} | "
                  f"{r['load_s']:.2f} |")
    return 0 if rows else 1
