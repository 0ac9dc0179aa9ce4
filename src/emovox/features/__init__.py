"""The feature layer: audio -> features, batched in torch, cached on disk.

- :mod:`.filterbank`: log mel filterbank energies (``lfbe``), ``mfcc``, per-utterance
  ``normalize``, ``stack_frames`` (padding-aware; lengths in, frame lengths out).
- :mod:`.descriptors`: frame-level acoustic descriptors (log mel, MFCC, log F0, voicing, energy,
  zero-crossing rate), normalised per utterance; the targets of CARE's acoustic branch.
- :mod:`.egemaps`: openSMILE eGeMAPSv02 functionals and LLDs (audEERING research licence).
- :mod:`.cache`: the on-disk :class:`~.cache.FeatureCache`.
- :mod:`.extract`: ``get_extractor(name, **options)`` and ``extract_manifest(manifest, name, ...)``
  for every feature above and for any encoder name.
- :mod:`.augment`: speed perturbation and SpecAugment for training.
"""

from __future__ import annotations

from typing import Any

__all__ = ["lfbe", "mfcc", "normalize", "stack_frames", "FeatureCache", "FeatureTable", "get_extractor",
           "extract_manifest"]

_LAZY = {"lfbe": "filterbank", "mfcc": "filterbank", "normalize": "filterbank", "stack_frames": "filterbank",
         "FeatureCache": "cache", "FeatureTable": "extract", "get_extractor": "extract",
         "extract_manifest": "extract"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
