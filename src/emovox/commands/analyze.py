"""``emovox analyze ...``: analyses of labelled manifests (sentiment-vs-emotion, ...)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ._common import add_command, add_group


def register(sub) -> None:
    inner = add_group(sub, "analyze", "analyses of labelled manifests (sentiment-vs-emotion)", "ANALYSIS",
                      "Analyses of labelled manifests.")
    q = add_command(
        inner, "sentiment-vs-emotion",
        "confusion counts of text sentiment x a categorical speech label and their Spearman correlation after "
        "grouping the label into negative/neutral/positive (SA2SR paper, Table 1); markdown on stdout, plus "
        "JSON and a heatmap PNG with -o",
        "emovox analyze sentiment-vs-emotion ravdess.labelled.jsonl -o results/ravdess\n"
        "  emovox analyze sentiment-vs-emotion baved.labelled.jsonl --label level --json\n"
        "  emovox analyze sentiment-vs-emotion iemocap.labelled.jsonl --group frustrated=negative --group other=",
        _sentiment_vs_emotion)
    q.add_argument("manifest", metavar="M2.jsonl", help="a manifest labelled by 'emovox label'")
    q.add_argument("--label", default="emotion", metavar="FIELD",
                   help="categorical label to compare with (default emotion; e.g. level for BAVED)")
    q.add_argument("--group", action="append", default=[], metavar="CLASS=GROUP",
                   help="put CLASS in negative/neutral/positive (empty GROUP: leave it out of the correlation); "
                        "repeatable, on top of the built-in map of common emotion names")
    q.add_argument("--groups-json", metavar="FILE", help="a JSON object {class: group} with more groupings")
    q.add_argument("-o", "--output", metavar="PREFIX",
                   help="write PREFIX.md, PREFIX.json and PREFIX.png (a folder path writes "
                        "sentiment_vs_<label>.* inside it)")
    q.add_argument("--title", help="heatmap title")
    q.add_argument("--json", action="store_true", help="print the table as JSON on stdout instead of markdown")


def _groups(args) -> dict[str, str]:
    groups: dict[str, str] = {}
    if args.groups_json:
        with open(args.groups_json, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError(f"{args.groups_json}: expected a JSON object mapping class to group")
        groups.update({str(k): (v or "") for k, v in data.items()})
    for item in args.group:
        if "=" not in item:
            raise ValueError(f"--group {item!r}: expected CLASS=GROUP")
        k, v = item.split("=", 1)
        groups[k.strip()] = v.strip()
    return groups


def _sentiment_vs_emotion(args) -> int:
    from ..evaluate.sentiment_emotion import sentiment_vs_label
    from ..manifest import Manifest
    from ..utils import atomic_write_text, json_dumps, json_safe, write_json

    table = sentiment_vs_label(Manifest.load(args.manifest), args.label, _groups(args))
    md = table.markdown()
    data = json_safe(table.to_dict())
    if args.output:
        out = Path(args.output)
        prefix = out / f"sentiment_vs_{args.label}" if (out.is_dir() or args.output.endswith("/")) else out
        prefix.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(prefix.with_name(prefix.name + ".md"), md)
        write_json(prefix.with_name(prefix.name + ".json"), data)
        png = table.plot(prefix.with_name(prefix.name + ".png"), title=args.title)
        print(f"wrote {prefix}.md, {prefix}.json, {png}", file=sys.stderr)
    print(json_dumps(data) if args.json else md, end="\n" if args.json else "")
    return 0
