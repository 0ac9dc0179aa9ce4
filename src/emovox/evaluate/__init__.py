"""Evaluation: metrics (:mod:`.metrics`), cross-validation (:mod:`.crossval`), analysis tools
(:mod:`.analysis`: Fisher scores, layer-wise top-k selection, per-speaker correlations) and
word/character error rates (:mod:`.wer`)."""
