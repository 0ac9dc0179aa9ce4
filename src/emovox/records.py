"""What ``emovox.load().predict`` returns: :class:`SegmentRecord` per speech segment,
:class:`FileResult` per file of a batch, and :class:`Scores` (a label with every label's
probability) inside them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

SENTIMENT_LABELS = ("negative", "neutral", "positive")
"""The text sentiment classes, in the order of every sentiment probability in emovox."""


@dataclass
class Scores:
    """A label with the probability of every label (``probs`` sums to 1)."""

    label: str
    probs: dict[str, float]

    @classmethod
    def from_probs(cls, labels: Sequence[str], probs: Sequence[float]) -> "Scores":
        p = [float(x) for x in probs]
        if len(p) != len(labels):
            raise ValueError(f"{len(p)} probabilities for {len(labels)} labels")
        return cls(label=labels[int(np.argmax(p))], probs={str(k): round(v, 4) for k, v in zip(labels, p)})


@dataclass
class SegmentRecord:
    """What emovox says about one speech segment of a recording.

    ``start``/``end`` in seconds from the start of the file; ``valence``, ``arousal`` and
    ``dominance`` on the model's unit scale (-1 negative/calm/submissive .. +1
    positive/excited/dominant; None when the model has no such output); ``sentiment`` is the
    text sentiment of ``transcript`` (negative/neutral/positive), or None when there is no text
    to judge (an empty transcript, or no transcriber); ``emotion`` the category from the voice;
    ``model`` the model version that produced the record.
    """

    file: str
    start: float
    end: float
    transcript: str
    sentiment: Scores | None
    valence: float | None
    arousal: float | None
    dominance: float | None
    emotion: Scores
    language: str | None = None
    model: str = ""

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """Nested, JSON-ready."""
        return asdict(self)

    def to_row(self) -> dict[str, Any]:
        """Flat, for CSV: one column per probability (``sentiment_negative``, ``emotion_angry`` ...)."""
        row: dict[str, Any] = {"file": self.file, "start": self.start, "end": self.end,
                               "transcript": self.transcript, "language": self.language or "",
                               "sentiment": self.sentiment.label if self.sentiment else ""}
        probs = self.sentiment.probs if self.sentiment else {}
        row.update({f"sentiment_{k}": probs.get(k) for k in (*SENTIMENT_LABELS, *(k for k in probs
                                                                                 if k not in SENTIMENT_LABELS))})
        row.update(valence=self.valence, arousal=self.arousal, dominance=self.dominance,
                   emotion=self.emotion.label)
        row.update({f"emotion_{k}": v for k, v in self.emotion.probs.items()})
        row["model"] = self.model
        return row

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SegmentRecord":
        d = dict(d)
        d["sentiment"] = Scores(**d["sentiment"]) if d.get("sentiment") is not None else None
        d["emotion"] = Scores(**d["emotion"])
        return cls(**d)


@dataclass
class FileResult:
    """All segments of one file, or the reason it could not be read (``error``).

    ``note`` explains an empty result (e.g. no speech found in a silent file)."""

    file: str
    segments: list[SegmentRecord] = field(default_factory=list)
    duration: float | None = None
    error: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "duration": self.duration, "error": self.error, "note": self.note,
                "segments": [s.to_dict() for s in self.segments]}

    def error_record(self) -> dict[str, Any]:
        """The line that stands for a failed file in JSON lines output: ``{"file", "error"}``."""
        return {"file": self.file, "error": self.error}


def failures_summary(results: Sequence[FileResult]) -> str:
    """Lines for stderr: one per failed file, then a count."""
    bad = [r for r in results if not r.ok]
    if not bad:
        return ""
    lines = [f"  {r.file}: {r.error}" for r in bad]
    return f"{len(bad)} of {len(results)} file(s) failed:\n" + "\n".join(lines) + "\n"
