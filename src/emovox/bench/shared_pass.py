"""``emovox bench shared-pass``: should one Whisper encoder pass serve both the emotion heads and
the decoder?

``predict`` runs two encoder passes over each segment: the PyTorch encoder (fp32, every layer,
for the emotion heads) and CTranslate2's (int8, last layer, for the decoder;
``emovox.text.whisper_segments``). This benchmark takes the emotion pass to be the
transcriber's own Whisper encoder, all its blocks, as an emotion model sharing the backbone
would read it (the bundled model reads the first 3 blocks of Whisper base, which no default
transcriber shares). CTranslate2's ``generate`` also takes encoder output computed
elsewhere, so the PyTorch pass could feed the decoder. This benchmark measures, on the clips of
manifests with reference transcripts, the same segments decoded three ways:

* ``two passes`` (what ``predict`` does): PyTorch over the segment alone for the emotion heads,
  CTranslate2's encoder over the segment + its 1 s of silence for the decoder;
* ``shared, unpadded``: the decoder reads the emotion pass's last layer (features unchanged);
* ``shared, padded``: the emotion pass runs over the segment + 1 s of silence (as the decoder
  needs) and the heads' features are pooled over the segment's own frames (features change:
  the cosine to today's features is reported, and the bundled heads would need retraining).

Reported per way and manifest: normalised WER (``emovox.evaluate.wer``) and empty transcripts;
per way: wall seconds of the encoder passes + decoding. Clips are decoded in the same batches
in every way. The choice ``predict`` makes is recorded in docs/RESULTS.md with this command.
"""

from __future__ import annotations

import sys
import time


def register(sub) -> None:
    from ..commands._common import add_command

    p = add_command(sub, "shared-pass", "two encoder passes vs one shared pass for emotion + transcription: WER and time",
                    "emovox bench shared-pass an4.jsonl ljspeech.jsonl --clips 200", _run)
    p.add_argument("manifests", nargs="+", metavar="M.jsonl", help="manifests whose clips have transcripts")
    p.add_argument("--clips", type=int, default=200, metavar="N", help="clips per manifest, spread over its lengths (default 200)")
    p.add_argument("--transcriber", default="whisper-tiny.en",
                   help="faster-whisper model; its Whisper encoder is the emotion pass's (default whisper-tiny.en)")
    p.add_argument("--bucket-frames", type=int, metavar="N",
                   help="round CTranslate2's encoder inputs up to N mel frames (default: whisper_segments.BUCKET_FRAMES; 2: no rounding)")
    p.add_argument("--threads", type=int, default=2, metavar="N")
    p.add_argument("--json", action="store_true", help="JSON on stdout instead of a markdown table")


def _clips(path: str, n: int):
    """Up to ``n`` clips with transcripts, taken evenly over the manifest sorted by duration."""
    from ..audio import load_audio
    from ..manifest import Manifest

    m = Manifest.load(path)
    recs = sorted((r for r in m if r.transcript), key=lambda r: r.duration or 0.0)
    recs = recs[:: max(1, len(recs) // max(1, n))][:n]
    if not recs:
        raise ValueError(f"{path}: no clip has a transcript")
    return m.corpus or path, [load_audio(m.audio_path(r), start=r.start, end=r.end) for r in recs], [r.transcript for r in recs]


def measure(sets, transcriber: str = "whisper-tiny.en", threads: int = 2) -> list[dict]:
    """``sets``: [(name, audios, references)]. One row per (way, set), plus each way's seconds."""
    import numpy as np
    import torch

    from ..audio import SAMPLE_RATE
    from ..evaluate.wer import wer
    from ..encoders import load_encoder
    from ..text.transcribe import get_transcriber
    from ..text.whisper_segments import MEL_HOP, SegmentDecoder

    torch.set_num_threads(threads)
    tr = get_transcriber(transcriber, threads=threads)
    enc = load_encoder(transcriber).eval()  # every block, as an emotion model sharing the backbone reads it
    dec = SegmentDecoder(tr.model, beam_size=tr.config.beam_size)
    pad = np.zeros(dec.pad_frames * MEL_HOP, np.float32)

    def torch_pass(audio):
        x = torch.from_numpy(np.asarray(audio, np.float32))[None]
        with torch.inference_mode():
            return enc(x, torch.tensor([x.shape[1]]))

    def pooled_own(out, samples):  # per-layer means over the segment's own frames
        frames = int(np.ceil(samples / SAMPLE_RATE * out.frame_rate))
        return np.stack([h[0, :frames].mean(0).numpy() for h in out.hidden_states])

    if enc.dim != dec.fill().shape[1]:
        raise ValueError(f"the PyTorch encoder of {transcriber} ({enc.dim}-d) does not fit its decoder "
                         f"({dec.fill().shape[1]}-d)")
    rows, seconds, cosines, today = [], {}, [], {}  # today: each set's features as predict computes them
    for way in ("two passes", "shared, unpadded", "shared, padded"):
        total = 0.0
        for k, (name, audios, refs) in enumerate(sets):
            t0 = time.perf_counter()
            if way == "two passes":
                today[k] = [torch_pass(a).pooled()[0].numpy() for a in audios]
                texts = dec.transcribe(audios, "en")
            else:
                outs = [torch_pass(np.concatenate([a, pad]) if way == "shared, padded" else a) for a in audios]
                texts = dec.transcribe(audios, "en", encoded=[o.hidden_states[-1][0].numpy() for o in outs])
            total += time.perf_counter() - t0
            if way == "shared, padded":
                for x, a, o in zip(today[k], audios, outs):
                    y = pooled_own(o, len(a))
                    cosines.append(float(np.mean((x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1))))
            rates = [wer(r, t, normalize=True) for r, (t, _) in zip(refs, texts)]
            rows.append({"way": way, "clips": name, "n": len(audios), "WER": float(np.mean(rates)),
                         "empty": sum(not t for t, _ in texts)})
            print(f"bench shared-pass: {way} on {name}: WER {np.mean(rates):.3f}", file=sys.stderr)
        seconds[way] = total
    audio_s = sum(len(a) for _, audios, _ in sets for a in audios) / SAMPLE_RATE
    for r in rows:
        r["encode + decode (s)"] = seconds[r["way"]]
        r["audio (s)"] = audio_s
    if cosines:
        for r in rows:
            if r["way"] == "shared, padded":
                r["feature cosine (min)"] = min(cosines)
    return rows


def _run(args) -> int:
    from ..report.tables import markdown_table
    from ..utils import json_dumps

    if args.bucket_frames:
        from ..text import whisper_segments

        whisper_segments.BUCKET_FRAMES = max(2, args.bucket_frames + args.bucket_frames % 2)
    sets = [_clips(m, args.clips) for m in args.manifests]
    rows = measure(sets, args.transcriber, args.threads)
    print(json_dumps(rows) if args.json else markdown_table(rows, digits=3))
    return 0
