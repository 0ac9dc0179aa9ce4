"""Character vocabularies for CTC (the WaveNet ASR here and SA2SR's ASR head).

The English default has 29 symbols, as in SA2SR (Ghriss et al. 2022): index 0 the CTC blank,
1 space, 2 apostrophe, 3-28 ``a``-``z``. Text is normalised before encoding
(:func:`normalize_for_ctc`):

* Unicode NFKC, then accents stripped (``café`` -> ``cafe``), typographic apostrophes to ``'``,
  lower case;
* numbers are **spelled out**, not dropped (``42`` -> ``forty two``, ``3rd`` -> ``third``,
  ``1984`` -> ``nineteen eighty four``; the rules of :mod:`emovox.text.normalize`), because the
  audio says the words and dropping them would ask CTC to align speech to nothing;
* hyphens and other punctuation become spaces; apostrophes are kept inside words (``don't``,
  ``o'clock``) and dropped elsewhere (quotes); contractions are *not* expanded (the audio says
  ``don't``);
* whitespace collapsed; any character still outside the vocabulary is dropped.

Other languages: :meth:`CharVocab.from_transcripts` collects the characters of a training set
(after language-neutral normalisation: NFKC, lower case, punctuation except apostrophes removed).
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Sequence

BLANK = "<blank>"
ENGLISH_SYMBOLS: tuple[str, ...] = (BLANK, " ", "'", *string.ascii_lowercase)

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})
_NOT_WORD = re.compile(r"[^\w\s']|_")
_STRAY_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalize_for_ctc(text: str | None, language: str = "en") -> str:
    """Text as a CTC target: see the module docstring. ``language="en"`` spells numbers and
    strips accents; any other language only does the language-neutral steps."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    if language == "en":
        from .normalize import _spell_numbers  # the one English number speller

        text = _strip_accents(text.replace("&", " and "))
        text = _spell_numbers(text)
    text = _NOT_WORD.sub(" ", text)
    text = _STRAY_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class CharVocab:
    """An ordered character set with the CTC blank at index 0.

    ``encode(text) -> list[int]`` (normalised first; characters outside the set dropped),
    ``decode(ids) -> str`` (blanks skipped), ``ctc_collapse(ids)`` for best-path output.
    """

    symbols: tuple[str, ...] = ENGLISH_SYMBOLS
    language: str = "en"
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        symbols = tuple(self.symbols)
        if not symbols or symbols[0] != BLANK:
            raise ValueError(f"CharVocab: symbol 0 must be the blank {BLANK!r}")
        if len(set(symbols)) != len(symbols):
            raise ValueError("CharVocab: duplicate symbols")
        bad = [s for s in symbols[1:] if len(s) != 1]
        if bad:
            raise ValueError(f"CharVocab: symbols must be single characters, got {bad[:5]}")
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(self, "_index", {s: i for i, s in enumerate(symbols)})

    @property
    def blank(self) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.symbols)

    def normalize(self, text: str | None) -> str:
        return normalize_for_ctc(text, self.language)

    def encode(self, text: str | None, normalize: bool = True) -> list[int]:
        """Token ids of ``text`` (never the blank). Unknown characters are dropped."""
        t = self.normalize(text) if normalize else (text or "")
        ids = [self._index[c] for c in t if c in self._index and c != BLANK]
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Characters of ``ids``; blanks skipped, ids out of range raise ``IndexError``."""
        out = []
        for i in ids:
            i = int(i)
            if i < 0 or i >= len(self.symbols):
                raise IndexError(f"token id {i} outside the vocabulary of {len(self.symbols)}")
            if i != 0:
                out.append(self.symbols[i])
        return "".join(out)

    def ctc_collapse(self, ids: Sequence[int]) -> list[int]:
        """Best-path post-processing: merge repeats, then drop blanks."""
        out, prev = [], None
        for i in ids:
            i = int(i)
            if i != prev and i != 0:
                out.append(i)
            prev = i
        return out

    def to_dict(self) -> dict:
        return {"symbols": list(self.symbols), "language": self.language}

    @classmethod
    def from_dict(cls, d: dict) -> "CharVocab":
        return cls(tuple(d["symbols"]), d.get("language", "en"))

    @classmethod
    def english(cls) -> "CharVocab":
        """The 29-symbol default: blank, space, apostrophe, a-z."""
        return cls()

    @classmethod
    def from_transcripts(cls, texts: Iterable[str], language: str = "xx", min_count: int = 1) -> "CharVocab":
        """The characters of ``texts`` after normalisation (``language="en"``: the English
        rules), ordered blank, space, apostrophe (when present), then by code point. Characters
        seen fewer than ``min_count`` times are left out (their occurrences are dropped)."""
        counts: dict[str, int] = {}
        for t in texts:
            for c in normalize_for_ctc(t, language):
                counts[c] = counts.get(c, 0) + 1
        chars = {c for c, n in counts.items() if n >= min_count}
        head = [c for c in (" ", "'") if c in chars or c == " "]
        rest = sorted(chars - set(head))
        return cls((BLANK, *head, *rest), language)
