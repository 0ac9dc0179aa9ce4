"""English text normalisation for comparing transcripts (WER/CER) and for CTC targets.

:func:`normalize_english` is applied to references and hypotheses alike, so that formatting
choices of a transcriber (case, punctuation, digits, contractions, fillers) are not counted as
recognition errors. Steps, in order:

1. Unicode NFKC, typographic apostrophes and dashes to ASCII, lower case.
2. Bracketed annotations (``[noise]``, ``<unk>``, ``(laughs)``) removed.
3. Contractions expanded where unambiguous: ``won't`` -> ``will not``, ``can't`` -> ``can not``,
   ``n't`` -> `` not``, ``'re`` -> `` are``, ``'ll`` -> `` will``, ``'ve`` -> `` have``,
   ``'m`` -> `` am``, ``let's`` -> ``let us``; ``'s`` and ``'d`` are ambiguous (is/has/possessive,
   would/had) and stay attached (the apostrophe is dropped: ``john's`` -> ``johns``).
4. Numbers spelled out: ``%`` -> ``percent``, ``$5`` -> ``five dollars``, ordinals ``3rd`` ->
   ``third``, decimals ``2.5`` -> ``two point five``, years 1100-1999 and 2010-2099 read in pairs
   (``1984`` -> ``nineteen eighty four``), digit strings with a leading zero or of five or more
   digits read digit by digit (codes, phone numbers), other integers as cardinals
   (``1200`` -> ``one thousand two hundred``); ``,`` inside a number is a thousands separator.
5. Hyphens become spaces, ``&`` -> ``and``, all other punctuation removed.
6. Hesitations (``uh``, ``um``, ``hmm``, ``mm``, ``er``, ``ah``) removed, whitespace collapsed.
"""

from __future__ import annotations

import re
import unicodedata

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand")]
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}

FILLERS = frozenset({"uh", "um", "umm", "uhm", "hmm", "hm", "mm", "mmm", "er", "erm", "ah"})

_CONTRACTIONS = [
    (r"\bwon't\b", "will not"), (r"\bcan't\b", "can not"), (r"\bcannot\b", "can not"),
    (r"\bshan't\b", "shall not"), (r"\bain't\b", "is not"), (r"\blet's\b", "let us"),
    (r"n't\b", " not"), (r"'re\b", " are"), (r"'ll\b", " will"), (r"'ve\b", " have"), (r"\bi'm\b", "i am"),
]
_CONTRACTIONS_RE = [(re.compile(p), r) for p, r in _CONTRACTIONS]


def number_to_words(n: int) -> str:
    """Cardinal English words for a non-negative integer (``1234`` -> ``one thousand two hundred
    thirty four``; no "and", no hyphens)."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return _TENS[t] + ("" if o == 0 else " " + _ONES[o])
    if n < 1000:
        h, r = divmod(n, 100)
        return _ONES[h] + " hundred" + ("" if r == 0 else " " + number_to_words(r))
    for scale, name in _SCALES:
        if n >= scale:
            q, r = divmod(n, scale)
            return number_to_words(q) + " " + name + ("" if r == 0 else " " + number_to_words(r))
    raise AssertionError("unreachable")


def ordinal_words(n: int) -> str:
    """``3`` -> ``third``, ``21`` -> ``twenty first``, ``40`` -> ``fortieth``."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _year_words(n: int) -> str:
    hi, lo = divmod(n, 100)
    if lo == 0:
        return number_to_words(hi) + " hundred"
    if lo < 10:
        return number_to_words(hi) + " oh " + _ONES[lo]
    return number_to_words(hi) + " " + number_to_words(lo)


def integer_words(digits: str) -> str:
    """How a digit string is read: digit by digit for codes (leading zero, five or more digits),
    in pairs for years, else as a cardinal."""
    if len(digits) > 1 and digits.startswith("0") or len(digits) >= 5:
        return " ".join(_ONES[int(d)] for d in digits)
    n = int(digits)
    if len(digits) == 4 and (1100 <= n <= 1999 or 2010 <= n <= 2099) and n % 1000:
        return _year_words(n)
    return number_to_words(n)


_MONEY = re.compile(r"\$\s?(\d[\d,]*(?:\.\d+)?)")
_PERCENT = re.compile(r"(\d)\s?%")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_THOUSANDS = re.compile(r"\b(\d{1,3})((?:,\d{3})+)\b")
_DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
_INTEGER = re.compile(r"\d+")
_BRACKETS = re.compile(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)")
_PUNCT = re.compile(r"[^\w\s']|_")


def _spell_numbers(text: str) -> str:
    text = _MONEY.sub(lambda m: m.group(1) + " dollars", text)
    text = _PERCENT.sub(r"\1 percent", text)
    text = _THOUSANDS.sub(lambda m: " " + number_to_words(int(m.group(0).replace(",", ""))) + " ", text)
    text = _ORDINAL.sub(lambda m: " " + ordinal_words(int(m.group(1))) + " ", text)
    text = _DECIMAL.sub(lambda m: " " + number_to_words(int(m.group(1))) + " point "
                        + " ".join(_ONES[int(d)] for d in m.group(2)) + " ", text)
    return _INTEGER.sub(lambda m: " " + integer_words(m.group(0)) + " ", text)


def normalize_english(text: str | None) -> str:
    """Normalised lower-case words separated by single spaces (see the module docstring)."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    text = re.sub(r"[\u2010-\u2015]", "-", text).lower()
    text = _BRACKETS.sub(" ", text)
    for pattern, repl in _CONTRACTIONS_RE:
        text = pattern.sub(repl, text)
    text = text.replace("&", " and ")
    text = _spell_numbers(text)
    text = _PUNCT.sub(" ", text)
    text = text.replace("'", "")
    return " ".join(w for w in text.split() if w not in FILLERS)


def normalize_basic(text: str | None) -> str:
    """Language-neutral: NFKC, lower case, punctuation removed, whitespace collapsed (for
    non-English text, where the English rules above would be wrong)."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_PUNCT.sub(" ", text).replace("'", "").split())
