"""SA2SR: sentiment-aware ASR pre-training, then emotion fine-tuning (Ghriss et al., ICASSP 2022).

- :mod:`.config`: :class:`PretrainConfig` and :class:`FinetuneConfig` (the paper's values as
  defaults), :func:`load_config`;
- :mod:`.model`: :class:`SA2SRModel` (encoder + CTC head + sentiment head),
  :class:`EmotionModel` (encoder + emotion regressor), :func:`load_sa2sr`,
  :func:`load_pretrained_encoder`;
- :mod:`.data`: the pre-training and fine-tuning datasets;
- :mod:`.pretraining`: :func:`pretrain` (L = L_CTC + 200 L_CE, early stopping on CER - AUC);
- :mod:`.finetuning`: :func:`finetune` (cross-validated over speaker folds);
- run folders that keep their settings, usable clips and the Trainer set up for both come
  from :mod:`emovox.train.runs` (shared with CARE).

Training goes through :class:`emovox.train.Trainer` (checkpoints, exact resume, early stopping,
torchrun).
"""

from ...heads.regressor import RegressorConfig
from ...train.runs import check_run_config
from .config import FinetuneConfig, PretrainConfig, load_config
from .data import Clip, EmotionSet, PretrainSet, finetune_collate, pretrain_collate, scan
from .finetuning import cache_states, evaluate_model, finetune, finetune_targets
from .model import (FINETUNED_KIND, KIND, EmotionModel, SA2SRModel, SA2SROutput, build_encoder,
                    load_pretrained_encoder, load_sa2sr, make_vocab, reinitialise)
from .pretraining import plot_curves, pretrain, pretrain_metrics, pretrain_step

__all__ = ["PretrainConfig", "FinetuneConfig", "RegressorConfig", "load_config", "Clip", "scan", "PretrainSet",
           "EmotionSet", "pretrain_collate", "finetune_collate", "SA2SRModel", "SA2SROutput", "EmotionModel",
           "build_encoder", "make_vocab", "load_sa2sr", "load_pretrained_encoder", "reinitialise", "KIND",
           "FINETUNED_KIND", "pretrain", "pretrain_step", "pretrain_metrics", "plot_curves", "finetune",
           "finetune_targets", "evaluate_model", "cache_states", "check_run_config"]
