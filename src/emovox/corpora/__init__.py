"""Corpus importers: each parses an official release layout into a :class:`~emovox.manifest.Manifest`.

``prepare("ravdess", "/data/ravdess")`` dispatches to ``emovox.corpora.ravdess.prepare``. Every
importer accepts any audio extension, probes durations in parallel (``jobs``), skips and reports
bad files (``manifest.meta["skipped"]``; ``strict=True`` raises instead) and writes audio paths
relative to the root.
"""

from __future__ import annotations

import importlib
import inspect
import os

from ..manifest import Manifest
from .common import AUDIO_EXTENSIONS, CorpusError, Skipped, skipped_of

FORMATS: dict[str, str] = {
    "ravdess": "RAVDESS speech (Actor_XX/03-01-EE-II-SS-RR-AA): emotion, intensity, sentence, actor",
    "emodb": "Berlin EmoDB (wav/SSTTTEV): emotion letter, speaker, German sentence",
    "baved": "BAVED (<word>/<spk>-<sex>-<age>-<word>-<level>-<rec>): level low/neutral/high, word",
    "cremad": "CREMA-D (AudioWAV/AAAA_SSS_EMO_LVL; optional tabulatedVotes.csv, VideoDemographics.csv)",
    "tess": "Toronto emotional speech set (OAF_/YAF_ folders, <spk>_<word>_<emotion>)",
    "ased": "ASED Amharic (NNEmotion/xn-yy-aa-gg-bb): emotion letter, sentence, repetition, gender, speaker",
    "nemo": "nEMO Polish (samples/SPK_emotion_N + data.tsv): emotion, speaker, gender, age, transcript",
    "turev": "TurEV-DB Turkish (Sound Source/<Emotion>/SPK_code_word): angry/calm/happy/sad, word",
    "iemocap": "IEMOCAP Session1-5: categorical label, V/A/D 1-5, transcripts (classes=4|6 views)",
    "msppodcast": "MSP-Podcast (Labels/labels_consensus.csv, Audios/, Transcripts/): class, A/V/D 1-7, Split_Set",
    "mspimprov": "MSP-IMPROV (Evalution.txt + Audio/session*/...): class, A/V/D 1-5",
    "meld": "MELD ({train,dev,test}_sent_emo.csv + audio extracted to dia*_utt*.<wav/flac>)",
    "librispeech": "LibriSpeech (<subset>/<spk>/<chapter>/*.trans.txt)",
    "an4": "CMU AN4 (etc/an4_{train,test}.transcription, wav/an4_clstk, wav/an4test_clstk)",
    "ljspeech": "LJSpeech (metadata.csv + wavs/)",
    "va47": "va47 (NN.<audio> + arousal.csv, valence.csv 'file,value' in -1..1)",
    "csv": "generic table: --csv FILE with columns mapped by --map FIELD=COLUMN",
    "folder": "any audio files under ROOT; speaker = parent folder name (for unlabelled audio)",
}
"""Importer names and what each reads; ``emovox.corpora.<name>.prepare(root, **kw)`` imports."""


def prepare(format: str, root: str | os.PathLike, **kw) -> Manifest:
    """Import the corpus at ``root`` with the importer named ``format`` (see :data:`FORMATS`)."""
    name = format.lower().replace("-", "").replace("_", "")
    if name not in FORMATS:
        raise ValueError(f"unknown corpus format {format!r}; known: {', '.join(FORMATS)}")
    module = importlib.import_module(f"{__name__}.{name}")
    params = inspect.signature(module.prepare).parameters
    unknown = sorted(set(kw) - set(params))
    if unknown:
        accepted = [p for p in params if p != "root"]
        raise ValueError(f"the {name} importer does not take {unknown}; it takes {accepted}")
    return module.prepare(root, **kw)


__all__ = ["FORMATS", "prepare", "CorpusError", "Skipped", "skipped_of", "AUDIO_EXTENSIONS"]
