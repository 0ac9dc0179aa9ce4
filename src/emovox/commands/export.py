"""``emovox export onnx``: the emotion model's encoder and heads as ONNX files; ``emovox export
care``: a CARE checkpoint's trained weights alone."""

from __future__ import annotations

import sys

from ._common import add_command, add_group


def register(sub) -> None:
    inner = add_group(sub, "export", "export models (onnx, care)", "TARGET", "Export models for other runtimes.")
    o = add_command(inner, "onnx", "export the Whisper encoder and the emotion heads to ONNX (for "
                                   "'emovox predict --backend onnx' or other runtimes)",
                    "emovox export onnx -o model-onnx/ --check && emovox predict call.wav --backend onnx "
                    "--onnx-dir model-onnx/", run_onnx)
    o.add_argument("--model", default=None, help="emotion model file (default: the bundled model)")
    o.add_argument("-o", "--output", required=True, help="folder for encoder.onnx, heads.onnx, meta.json")
    o.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    o.add_argument("--quantize", choices=("int8",), default=None,
                   help="dynamic int8 quantisation of the encoder (faster on CPU, slightly different numbers)")
    o.add_argument("--check", action="store_true",
                   help="compare ONNX Runtime with PyTorch on generated audio and print the largest differences")
    o.add_argument("--tolerance", type=float, default=1e-3,
                   help="with --check: exit 1 when a probability or attribute differs by more (default 1e-3)")
    o.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    c = add_command(inner, "care", "write the weights a CARE pre-training trained, without the frozen Whisper "
                                   "front end and text layers (rebuilt from the pretrained models on load)",
                    "emovox export care runs/care -o care-trained.pt && emovox probe ravdess.jsonl "
                    "--encoder care-trained.pt", run_care)
    c.add_argument("checkpoint", help="care.pt, or the 'emovox pretrain care' folder holding one")
    c.add_argument("-o", "--output", required=True, help="the smaller care.pt to write")


def run_care(args) -> int:
    from ..encoders.care import care_checkpoint_path, load_care, save_care
    from ..utils import read_torch

    src = care_checkpoint_path(args.checkpoint)
    model = load_care(src)
    blob = read_torch(src, "a CARE checkpoint")
    extra = {k: blob[k] for k in ("metrics", "step", "source") if k in blob}
    out = save_care(model, args.output, trainable_only=True, **extra)
    print(f"emovox export: wrote {out} ({out.stat().st_size / 2**20:.1f} MiB; {src} is "
          f"{src.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    return 0


def run_onnx(args) -> int:
    import numpy as np

    from ..export import export_onnx
    from ..scoring import compare
    from ..utils import json_dumps

    res = export_onnx(args.model, args.output, opset=args.opset, quantize=args.quantize)
    out = {"encoder": str(res.encoder), "heads": str(res.heads), "meta": str(res.out_dir / "meta.json")}
    print(f"emovox export: wrote {res.encoder}, {res.heads}", file=sys.stderr)
    status = 0
    if args.check:
        rng = np.random.default_rng(0)
        t = np.arange(16000 * 4) / 16000
        audios = [(0.3 * np.sin(2 * np.pi * 180 * t * (1 + 0.1 * np.sin(3 * t)))).astype(np.float32),
                  (0.05 * rng.standard_normal(16000 * 2)).astype(np.float32)]
        diff = compare(args.model, args.output, audios)
        out["max_abs_diff"] = diff
        print(f"emovox export: ONNX Runtime vs PyTorch, largest |difference|: pooled {diff['pooled']:.2e}, "
              f"probs {diff['probs']:.2e}, dims {diff['dims']:.2e}", file=sys.stderr)
        if max(diff["probs"], diff["dims"]) > args.tolerance:
            print(f"emovox export: difference above tolerance {args.tolerance}", file=sys.stderr)
            status = 1
    if args.json:
        print(json_dumps(out))
    return status
