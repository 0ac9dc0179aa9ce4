"""Training: one :class:`Trainer` for every recipe, its config, batching helpers and losses.

See :mod:`emovox.train.trainer` for the API and an example.
"""

from .data import BatchPlan, lengths_to_mask, masked_mean, pad_collate, pad_sequence, to_device  # noqa: F401
from .losses import ccc, ccc_loss, class_weights, cross_entropy, ctc_loss, weighted_sum  # noqa: F401
from .trainer import TrainConfig, Trainer, TrainResult, seed_everything  # noqa: F401
