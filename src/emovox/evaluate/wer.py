"""Word and character error rates, with our own Levenshtein alignment.

Corpus-level rates, as jiwer and the literature compute them: the edits summed over all
utterance pairs divided by the reference tokens summed over all pairs (not a mean of per-
utterance rates). By default both sides go through :func:`normalize_english` first; pass
``normalize=False`` to score raw strings (whitespace is still collapsed), or a callable of your
own. CER counts characters of the normalised text including the single spaces between words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ..text.normalize import normalize_basic, normalize_english

__all__ = ["ErrorCounts", "align", "measure", "wer", "cer", "normalize_english", "normalize_basic"]

Normalizer = Callable[[str], str]


@dataclass
class ErrorCounts:
    """Edit counts summed over utterances; ``reference`` is the number of reference tokens."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0
    reference: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """errors / reference tokens (inf when there are errors but no reference tokens)."""
        if self.reference == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.reference

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(self.substitutions + other.substitutions, self.deletions + other.deletions,
                           self.insertions + other.insertions, self.hits + other.hits,
                           self.reference + other.reference)

    def as_dict(self) -> dict[str, float]:
        return {"rate": self.rate, "substitutions": self.substitutions, "deletions": self.deletions,
                "insertions": self.insertions, "hits": self.hits, "reference": self.reference}


def align(ref: Sequence, hyp: Sequence) -> ErrorCounts:
    """Minimum edit alignment of two token sequences (unit costs), O(len(ref) * len(hyp)) time,
    O(len(hyp)) memory. Among alignments with the fewest edits, prefers more hits, then
    substitutions over deletion+insertion pairs."""
    n, m = len(ref), len(hyp)
    # each cell: (edits, -hits, substitutions, deletions, insertions); tuples compare lexicographically
    prev = [(j, 0, 0, 0, j) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [(i, 0, 0, i, 0)]
        r = ref[i - 1]
        for j in range(1, m + 1):
            d = prev[j - 1]
            if r == hyp[j - 1]:
                diag = (d[0], d[1] - 1, d[2], d[3], d[4])
            else:
                diag = (d[0] + 1, d[1], d[2] + 1, d[3], d[4])
            u, lft = prev[j], cur[j - 1]
            dele = (u[0] + 1, u[1], u[2], u[3] + 1, u[4])
            ins = (lft[0] + 1, lft[1], lft[2], lft[3], lft[4] + 1)
            cur.append(min(diag, dele, ins))
        prev = cur
    e, neg_hits, s, dl, ins_ = prev[m]
    return ErrorCounts(s, dl, ins_, -neg_hits, n)


def _as_list(x: str | Sequence[str]) -> list[str]:
    return [x] if isinstance(x, str) else list(x)


def _normalizer(normalize: bool | Normalizer) -> Normalizer:
    if callable(normalize):
        return normalize
    return normalize_english if normalize else (lambda t: " ".join((t or "").split()))


def measure(references: str | Sequence[str], hypotheses: str | Sequence[str], unit: str = "word",
            normalize: bool | Normalizer = True) -> ErrorCounts:
    """Summed edit counts over aligned pairs; ``unit`` is "word" or "char"."""
    refs, hyps = _as_list(references), _as_list(hypotheses)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if unit not in ("word", "char"):
        raise ValueError(f"unit must be 'word' or 'char', not {unit!r}")
    norm = _normalizer(normalize)
    total = ErrorCounts()
    for r, h in zip(refs, hyps):
        r, h = norm(r or ""), norm(h or "")
        total = total + (align(r.split(), h.split()) if unit == "word" else align(r, h))
    return total


def wer(references: str | Sequence[str], hypotheses: str | Sequence[str],
        normalize: bool | Normalizer = True) -> float:
    """Word error rate over all pairs (0.0 = perfect; can exceed 1 with many insertions)."""
    return measure(references, hypotheses, "word", normalize).rate


def cer(references: str | Sequence[str], hypotheses: str | Sequence[str],
        normalize: bool | Normalizer = True) -> float:
    """Character error rate over all pairs (spaces between words count as characters)."""
    return measure(references, hypotheses, "char", normalize).rate
