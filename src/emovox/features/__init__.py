"""The feature layer: audio -> features, batched in torch. It knows nothing of encoders or
manifests; :mod:`emovox.featurize` runs it (and the encoders) over a manifest through the cache.

- :mod:`.base`: the :class:`~.base.Extractor` interface and the filterbank front ends.
- :mod:`.filterbank`: log mel filterbank energies (``lfbe``), ``mfcc``, per-utterance
  ``normalize``, ``stack_frames`` (padding-aware; lengths in, frame lengths out).
- :mod:`.descriptors`: frame-level acoustic descriptors (log mel, MFCC, log F0, voicing, energy,
  zero-crossing rate), normalised per utterance.
- :mod:`.egemaps`: openSMILE eGeMAPSv02 functionals and LLDs (audEERING research licence).
- :mod:`.normalize`: per-speaker (per-group) z-scores and standardise-and-clip.
- :mod:`.cache`: the on-disk :class:`~.cache.FeatureCache`.
- :mod:`.augment`: speed perturbation and SpecAugment for training.
"""
