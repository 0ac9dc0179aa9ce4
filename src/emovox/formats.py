"""Writers for prediction results: JSON lines, CSV and a readable table.

Each writer takes an iterable of :class:`~emovox.records.FileResult` or
:class:`~emovox.records.SegmentRecord` and yields text pieces as results arrive, so output
streams while a batch is still running. :data:`FORMATS` maps the ``--format`` names to them.

A file that failed is in the output too: a ``{"file", "error"}`` line in JSON lines, a row
with only ``file`` and ``error`` filled in CSV (whose last column is ``error``), an
``error:`` line in the table. Each file's text is yielded in one piece, so a reader (or an
interrupted run) never sees half of a file's records.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from .records import FileResult, SegmentRecord

__all__ = ["format_jsonl", "format_csv", "format_table", "FORMATS"]


def _groups(results: Iterable[FileResult | SegmentRecord]) -> Iterator[tuple[list[SegmentRecord], str | None, str]]:
    """(records, error, file) per file result, or per bare record."""
    for r in results:
        if isinstance(r, FileResult):
            yield r.segments, r.error, r.file
        else:
            yield [r], None, r.file


def format_jsonl(results: Iterable[FileResult | SegmentRecord]) -> Iterator[str]:
    """One JSON object per segment (``SegmentRecord.to_dict``), one per line; a failed file is
    one ``{"file": ..., "error": ...}`` line."""
    from .utils import json_dumps

    for records, error, file in _groups(results):
        if error is not None:
            yield json_dumps({"file": file, "error": error}) + "\n"
        else:
            yield "".join(json_dumps(r.to_dict()) + "\n" for r in records)


_BASE_COLUMNS = ("file", "start", "end", "transcript", "language", "sentiment", "valence", "arousal", "dominance",
                 "emotion", "model")


def format_csv(results: Iterable[FileResult | SegmentRecord]) -> Iterator[str]:
    """CSV with the columns of ``SegmentRecord.to_row`` (taken from the first record) and a
    last column ``error``; a failed file is a row with ``file`` and ``error`` only. Failures
    before the first record wait for it (its columns are the header)."""
    import csv
    import io

    writer, buf, waiting = None, io.StringIO(), []

    def text() -> str:
        out = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return out

    for records, error, file in _groups(results):
        if error is not None:
            if writer is None:
                waiting.append({"file": file, "error": error})
                continue
            writer.writerow({"file": file, "error": error})
        elif records:
            rows = [r.to_row() for r in records]
            if writer is None:
                writer = csv.DictWriter(buf, fieldnames=[*rows[0], "error"], extrasaction="ignore")
                writer.writeheader()
                writer.writerows(waiting)
                waiting = []
            writer.writerows(rows)
        yield text()
    if writer is None and waiting:
        writer = csv.DictWriter(buf, fieldnames=[*_BASE_COLUMNS, "error"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(waiting)
        yield text()


def format_table(results: Iterable[FileResult | SegmentRecord], width: int = 60) -> Iterator[str]:
    """A readable fixed-width table, one row per segment; files with no segments or errors
    get a one-line note."""
    head = f"{'start':>8} {'end':>8}  {'emotion':<16} {'val':>5} {'aro':>5} {'dom':>5}  {'sentiment':<12} transcript"
    current = None
    for r in results:
        if isinstance(r, FileResult):
            top = f"\n{r.file}" + (f"  ({r.duration:.1f} s)" if r.duration is not None else "") + "\n"
            if r.error:
                yield top + f"  error: {r.error}\n"
            elif not r.segments:
                yield top + f"  {r.note or 'no segments'}\n"
            else:
                yield top + head + "\n" + "".join(_table_row(s, width) for s in r.segments)
        else:
            if r.file != current:
                current = r.file
                yield f"\n{r.file}\n{head}\n"
            yield _table_row(r, width)


def _table_row(s: SegmentRecord, width: int) -> str:
    emo = f"{s.emotion.label} {s.emotion.probs.get(s.emotion.label, 0):.2f}"
    sen = f"{s.sentiment.label} {s.sentiment.probs.get(s.sentiment.label, 0):.2f}" if s.sentiment else "-"
    text = s.transcript if len(s.transcript) <= width else s.transcript[: width - 3] + "..."
    v, a, d = (f"{x:>5.2f}" if x is not None else f"{'-':>5}" for x in (s.valence, s.arousal, s.dominance))
    return f"{_clock(s.start):>8} {_clock(s.end):>8}  {emo:<16} {v} {a} {d}  {sen:<12} {text}\n"


def _clock(t: float) -> str:
    m, s = divmod(t, 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


FORMATS = {"jsonl": format_jsonl, "csv": format_csv, "table": format_table}
