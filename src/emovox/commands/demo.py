"""``emovox demo``: the bundled default model on an example recording (the README's main job)."""

from __future__ import annotations

import sys
from pathlib import Path

from ._common import add_command


def register(sub) -> None:
    p = add_command(sub, "demo", "run the bundled model on an example recording and print its segments",
                    "emovox demo --format jsonl", run)
    p.add_argument("--audio", default=None,
                   help="where the example recording is written (default: the emovox cache directory)")
    p.add_argument("--format", choices=("table", "jsonl", "csv"), default="table", help="output format")
    p.add_argument("--plot", default=None, metavar="PNG", help="also draw the valence/arousal timeline here")


def run(args) -> int:
    from ..cli import main
    from ..text.synth import demo_recording
    from ..utils import cache_dir

    path = Path(args.audio) if args.audio else cache_dir("demo") / "emovox-demo.wav"
    if not path.exists():
        print(f"emovox demo: synthesising an example recording with espeak-ng -> {path}", file=sys.stderr)
        demo_recording(path)
    print(f"emovox demo: emovox predict {path}", file=sys.stderr)
    argv = ["predict", str(path), "--format", args.format]
    if args.plot:
        argv += ["--plot", args.plot]
    return main(argv)
