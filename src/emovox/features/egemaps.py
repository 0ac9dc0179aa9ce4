"""openSMILE eGeMAPSv02 (Eyben et al. 2016): 88 functionals per utterance, or 25 low-level
descriptors (LLDs) per 10 ms frame. The baseline feature set of Tits et al. (2018).

Licence: openSMILE is audEERING's software, free for research and other non-commercial use
only (https://github.com/audeering/opensmile/blob/master/LICENSE); commercial use needs a licence
from audEERING. emovox only calls it when these features are asked for.

eGeMAPS functionals carry extreme outliers (``*_stddevNorm`` explodes when a mean is near zero);
clip standardised features (e.g. to +-5 sigma) before a linear model.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import numpy as np

from .base import Extractor

LEVELS = ("functionals", "lld")
MIN_SECONDS = 0.1
"""Shorter clips give all-NaN functionals in openSMILE; they are reported as failures."""


@lru_cache(maxsize=4)
def smile(level: str = "functionals"):
    """The (cached) ``opensmile.Smile`` for eGeMAPSv02 at ``level``."""
    if level not in LEVELS:
        raise ValueError(f"eGeMAPS level must be one of {LEVELS}, got {level!r}")
    try:
        import opensmile
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ImportError("eGeMAPS features need the opensmile package: pip install opensmile "
                          "(audEERING research / non-commercial licence)") from e
    feature_level = opensmile.FeatureLevel.Functionals if level == "functionals" \
        else opensmile.FeatureLevel.LowLevelDescriptors
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=feature_level)


def feature_names(level: str = "functionals") -> list[str]:
    """The 88 functional (or 25 LLD) names, in column order."""
    return list(smile(level).feature_names)


def egemaps(audio: np.ndarray, sample_rate: int = 16000, level: str = "functionals") -> np.ndarray:
    """eGeMAPSv02 of one mono clip: (88,) functionals or (frames, 25) LLDs at 100 Hz, float32.

    Raises ValueError when the clip is too short for openSMILE or the result is not finite.
    """
    audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
    if len(audio) < MIN_SECONDS * sample_rate:
        raise ValueError(f"too short for eGeMAPS: {len(audio) / sample_rate * 1000:.0f} ms "
                         f"(at least {MIN_SECONDS * 1000:.0f} ms)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        values = smile(level).process_signal(audio, sample_rate).to_numpy(dtype=np.float32)
    if level == "functionals":
        values = values.reshape(-1)
    if not np.isfinite(values).all():
        raise ValueError("openSMILE returned NaN or Inf (clip too short or empty?)")
    return values


class EgemapsExtractor(Extractor):
    """``"egemaps"`` / ``"egemaps-lld"`` in the feature registry (CPU only, one clip at a time)."""

    def __init__(self, level: str = "functionals", sample_rate: int = 16000):
        if level not in LEVELS:
            raise ValueError(f"eGeMAPS level must be one of {LEVELS}, got {level!r}")
        self.level, self.sample_rate = level, int(sample_rate)
        self.name = "egemaps" if level == "functionals" else "egemaps-lld"
        self.min_seconds = MIN_SECONDS

    def config(self) -> dict[str, Any]:
        import opensmile

        return {"name": self.name, "feature_set": "eGeMAPSv02", "level": self.level,
                "sample_rate": self.sample_rate, "opensmile": opensmile.__version__, "version": 1}

    def extract_one(self, audio: np.ndarray) -> np.ndarray:
        return egemaps(audio, self.sample_rate, self.level)
