"""The common emotion vocabulary and each corpus' map onto it.

Every importer writes ``Utterance.emotion`` as a label of :data:`EMOTIONS`; a manifest's
``labels["emotion"]`` lists the labels its corpus uses, in the order of :data:`EMOTIONS`, so
that class indices mean the same thing across corpora. The corpus' own code is kept in
``Utterance.extra["emotion_code"]`` by the importers that have one.
"""

from __future__ import annotations

from typing import Iterable

EMOTIONS: tuple[str, ...] = (
    "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised",
    "excited", "frustrated", "contempt", "bored", "other",
)
"""The common emotion labels, in their fixed order."""

RAVDESS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
           "06": "fearful", "07": "disgust", "08": "surprised"}
"""RAVDESS file-name emotion codes."""

EMODB = {"N": "neutral", "F": "happy", "T": "sad", "W": "angry", "A": "fearful", "E": "disgust",
         "L": "bored"}
"""EmoDB letters (German: Freude, Trauer, Wut, Angst, Ekel, Langeweile)."""

CREMAD = {"NEU": "neutral", "HAP": "happy", "SAD": "sad", "ANG": "angry", "FEA": "fearful",
          "DIS": "disgust"}
"""CREMA-D file-name codes; the same letters' first character names the votes in
tabulatedVotes.csv (N, H, S, A, F, D)."""

TESS = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "fear": "fearful",
        "disgust": "disgust", "ps": "surprised", "pleasant_surprise": "surprised",
        "pleasant_surprised": "surprised"}
"""TESS file-name words."""

ASED = {"n": "neutral", "f": "fearful", "h": "happy", "s": "sad", "a": "angry"}
"""ASED (Amharic) file-name emotion letters; the folders are ``01Neutral 02Fearful 03Happy
04Sad 05Angry`` and each letter is followed by its folder's number (n1 f2 h3 s4 a5)."""

NEMO = {"neutral": "neutral", "happiness": "happy", "sadness": "sad", "anger": "angry", "fear": "fearful",
        "surprised": "surprised"}
"""nEMO (Polish) ``data.tsv`` emotion words, also the second field of its file names."""

TUREV = {"sk": "calm", "mt": "happy", "hl": "sad", "kz": "angry"}
"""TurEV-DB (Turkish) file-name codes (sakin, mutlu, hüzünlü, kızgın); calm stays ``calm``, as
RAVDESS's does. Folders: Calm, Happy, Sad, Angry."""

IEMOCAP = {"neu": "neutral", "hap": "happy", "sad": "sad", "ang": "angry", "fea": "fearful",
           "dis": "disgust", "sur": "surprised", "exc": "excited", "fru": "frustrated",
           "oth": "other"}
"""IEMOCAP EmoEvaluation codes; ``xxx`` (no majority) maps to None."""

MSP = {"N": "neutral", "H": "happy", "S": "sad", "A": "angry", "F": "fearful", "D": "disgust",
       "U": "surprised", "C": "contempt", "O": "other"}
"""MSP-Podcast EmoClass and MSP-IMPROV letters; ``X`` (no agreement) maps to None."""

MELD = {"neutral": "neutral", "joy": "happy", "sadness": "sad", "anger": "angry", "fear": "fearful",
        "disgust": "disgust", "surprise": "surprised"}
"""MELD emotion words."""

IEMOCAP_VIEWS: dict[str, dict[str, str]] = {
    "4class": {"neutral": "neutral", "happy": "happy", "excited": "happy", "sad": "sad", "angry": "angry"},
    "6class": {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
               "excited": "excited", "frustrated": "frustrated"},
}
"""Standard IEMOCAP subsets: 4 classes with excited merged into happy, and 6 classes."""

LEVELS = ("low", "neutral", "high")
"""BAVED levels 0, 1, 2 (arousal-like, ordinal)."""

SENTIMENT_GROUPS = {"neutral": "neutral", "calm": "neutral", "happy": "positive", "excited": "positive",
                    "surprised": "positive", "sad": "negative", "angry": "negative",
                    "fearful": "negative", "disgust": "negative", "frustrated": "negative",
                    "contempt": "negative", "bored": "negative"}
"""Emotions grouped into negative / neutral / positive (the SA2SR paper's analysis)."""


SYNONYMS = {"neu": "neutral", "anger": "angry", "ang": "angry", "mad": "angry", "happiness": "happy",
            "hap": "happy", "joy": "happy", "sadness": "sad", "fear": "fearful", "fea": "fearful",
            "afraid": "fearful", "disgusted": "disgust", "dis": "disgust", "surprise": "surprised",
            "sur": "surprised", "ps": "surprised", "exc": "excited", "excitement": "excited",
            "fru": "frustrated", "frustration": "frustrated", "boredom": "bored", "oth": "other"}
"""Common spellings of the labels, for tables whose vocabulary is not known in advance."""


def normalize_emotion(label: str | None) -> str | None:
    """A free-form emotion label onto :data:`EMOTIONS` where it is a known spelling, else lower-cased."""
    if label is None or not str(label).strip():
        return None
    x = str(label).strip().lower()
    return x if x in EMOTIONS else SYNONYMS.get(x, x)


def vocabulary(labels: Iterable[str | None]) -> list[str]:
    """The labels used, in :data:`EMOTIONS` order (unknown labels after, sorted)."""
    used = {x for x in labels if x is not None}
    return [e for e in EMOTIONS if e in used] + sorted(used - set(EMOTIONS))


MODEL_EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
"""The bundled model's categories: the emotions that at least two of its training corpora
annotate (RAVDESS, TESS, ASED, nEMO, TurEV-DB), in :data:`EMOTIONS` order."""

TO_MODEL: dict[str, str | None] = {
    **{e: e for e in MODEL_EMOTIONS},
    # calm (RAVDESS, TurEV-DB) is a low-arousal, non-emotional delivery: listeners confuse it
    # with neutral more than with anything else, and no corpus but those two has it, so a
    # separate class would be learnt from two corpora' idea of it. It counts as neutral.
    "calm": "neutral",
    # TESS's "pleasant surprise" is already read as surprised by the importer (vocab TESS).
    # Boredom (EmoDB), excitement, frustration, contempt and "other" have no model class: such
    # clips train only the valence/arousal/dominance head and are left out of category scores.
    "bored": None, "excited": None, "frustrated": None, "contempt": None, "other": None,
}
"""Common emotion label -> the model's category (None: no category)."""


def model_label(label: str | None) -> str | None:
    """A manifest's emotion label on the model's categories (:data:`TO_MODEL`), or None."""
    return TO_MODEL.get(label) if label is not None else None
