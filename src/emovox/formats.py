"""Writers for prediction results: JSON lines, CSV and a readable table.

Each writer takes an iterable of :class:`~emovox.records.FileResult` or
:class:`~emovox.records.SegmentRecord` and yields text pieces as results arrive, so output
streams while a batch is still running. :data:`FORMATS` maps the ``--format`` names to them.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from .records import FileResult, SegmentRecord

__all__ = ["format_jsonl", "format_csv", "format_table", "FORMATS"]


def _records(results: Iterable[FileResult | SegmentRecord]) -> Iterator[SegmentRecord]:
    for r in results:
        if isinstance(r, FileResult):
            yield from r.segments
        else:
            yield r


def format_jsonl(results: Iterable[FileResult | SegmentRecord]) -> Iterator[str]:
    """One JSON object per segment (``SegmentRecord.to_dict``), one per line."""
    from .utils import json_dumps

    for r in _records(results):
        yield json_dumps(r.to_dict()) + "\n"


def format_csv(results: Iterable[FileResult | SegmentRecord]) -> Iterator[str]:
    """CSV with the columns of ``SegmentRecord.to_row`` (header from the first record)."""
    import csv
    import io

    writer, buf = None, io.StringIO()
    for r in _records(results):
        row = r.to_row()
        if writer is None:
            writer = csv.DictWriter(buf, fieldnames=list(row), extrasaction="ignore")
            writer.writeheader()
        writer.writerow(row)
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


def format_table(results: Iterable[FileResult | SegmentRecord], width: int = 60) -> Iterator[str]:
    """A readable fixed-width table, one row per segment; files with no segments or errors
    get a one-line note."""
    head = f"{'start':>8} {'end':>8}  {'emotion':<16} {'val':>5} {'aro':>5} {'dom':>5}  {'sentiment':<12} transcript"
    current = None
    for r in results:
        if isinstance(r, FileResult):
            yield f"\n{r.file}" + (f"  ({r.duration:.1f} s)" if r.duration is not None else "") + "\n"
            if r.error:
                yield f"  error: {r.error}\n"
                continue
            if not r.segments:
                yield f"  {r.note or 'no segments'}\n"
                continue
            yield head + "\n"
            for s in r.segments:
                yield _table_row(s, width)
        else:
            if r.file != current:
                current = r.file
                yield f"\n{r.file}\n{head}\n"
            yield _table_row(r, width)


def _table_row(s: SegmentRecord, width: int) -> str:
    emo = f"{s.emotion.label} {s.emotion.probs.get(s.emotion.label, 0):.2f}"
    sen = f"{s.sentiment.label} {s.sentiment.probs.get(s.sentiment.label, 0):.2f}"
    text = s.transcript if len(s.transcript) <= width else s.transcript[: width - 3] + "..."
    v, a, d = (f"{x:>5.2f}" if x is not None else f"{'-':>5}" for x in (s.valence, s.arousal, s.dominance))
    return f"{_clock(s.start):>8} {_clock(s.end):>8}  {emo:<16} {v} {a} {d}  {sen:<12} {text}\n"


def _clock(t: float) -> str:
    m, s = divmod(t, 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


FORMATS = {"jsonl": format_jsonl, "csv": format_csv, "table": format_table}
