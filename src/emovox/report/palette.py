"""The one set of emotion colours: every picture emovox draws of emotions uses it.

Colours people read at a glance: anger red, sadness blue, happiness amber, neutral grey, fear
purple, disgust green, surprise pink, calm teal; the other labels of the common vocabulary
(:data:`emovox.corpora.vocab.EMOTIONS`) have their own, and a label outside it gets a colour
chosen from its name (the same in every plot and every run, whatever else is drawn). Common
spellings (``anger``, ``joy``, ``sadness``, ``fear``, ...) share their label's colour.

The timeline PNG (:mod:`emovox.report.timeline`) reads :func:`emotion_colour`; the page at
``GET /`` (``emovox/assets/page.html``) holds :func:`page_palette_js`'s text between its
``palette`` markers, which ``tests/test_timeline.py`` checks against :data:`EMOTION_COLOURS`.
Nothing here imports from emovox, so any layer may use it.
"""

from __future__ import annotations

import json
from typing import Iterable

__all__ = ["EMOTION_COLOURS", "FALLBACK_COLOURS", "emotion_colour", "emotion_colours", "text_colour",
           "page_palette_js"]

EMOTION_COLOURS: dict[str, str] = {
    "neutral": "#9e9e9e",  # grey
    "calm": "#4fa3a5",  # teal
    "happy": "#f5b400",  # amber
    "sad": "#2a5caa",  # blue
    "angry": "#d62728",  # red
    "fearful": "#7b4fa0",  # purple
    "disgust": "#5e8c31",  # green
    "surprised": "#e377c2",  # pink
    "excited": "#ff7f0e",  # orange
    "frustrated": "#b5523b",  # brick
    "contempt": "#6d4c41",  # brown
    "bored": "#b8ad8f",  # khaki
    "other": "#cfcfcf",  # light grey
}
"""Label of the common emotion vocabulary -> ``#rrggbb``."""

SPELLINGS: dict[str, str] = {
    "neu": "neutral", "anger": "angry", "ang": "angry", "mad": "angry", "happiness": "happy", "hap": "happy",
    "joy": "happy", "sadness": "sad", "fear": "fearful", "fea": "fearful", "afraid": "fearful",
    "disgusted": "disgust", "dis": "disgust", "surprise": "surprised", "sur": "surprised", "exc": "excited",
    "excitement": "excited", "fru": "frustrated", "frustration": "frustrated", "boredom": "bored",
    "oth": "other",
}
"""Other spellings of those labels (a subset of ``corpora.vocab.SYNONYMS``, kept here so that
this module stays at the bottom of the layers)."""

FALLBACK_COLOURS: tuple[str, ...] = ("#17becf", "#8c6d31", "#393b79", "#bcbd22", "#843c39", "#637939",
                                     "#7b4173", "#3182bd")
"""For labels outside the vocabulary: number ``sum of the label's code points % 8`` (a rule the
page's script repeats exactly)."""


def emotion_colour(label: str | None) -> str:
    """``#rrggbb`` of an emotion label (any case, common spellings included; no label: the
    colour of ``other``)."""
    key = str(label or "").strip().lower()
    key = SPELLINGS.get(key, key or "other")
    if key in EMOTION_COLOURS:
        return EMOTION_COLOURS[key]
    return FALLBACK_COLOURS[sum(map(ord, key)) % len(FALLBACK_COLOURS)]


def emotion_colours(labels: Iterable[str]) -> dict[str, str]:
    """``{label: colour}`` for these labels, in their order."""
    return {str(label): emotion_colour(label) for label in labels}


def text_colour(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (``#rrggbb``)."""
    r, g, b = (int(background.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#ffffff"


def page_palette_js() -> str:
    """The palette as the page's script declares it (one line, between the page's markers)."""
    return (f"const EMOTION_COLOURS = {json.dumps(EMOTION_COLOURS)};\n"
            f"const EMOTION_SPELLINGS = {json.dumps(SPELLINGS)};\n"
            f"const FALLBACK_COLOURS = {json.dumps(list(FALLBACK_COLOURS))};\n")
