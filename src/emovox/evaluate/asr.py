"""Transcriber accuracy and speed on a transcribed manifest (``emovox evaluate asr``).

Word and character error rates are corpus-level (edits summed over utterances / reference
tokens), after :func:`emovox.text.normalize.normalize_english` on both sides. Speed is the
real-time factor: seconds spent transcribing / seconds of audio, measured as wall clock and as
this process' CPU time (the latter is robust to other jobs sharing the machine); model loading
and audio decoding are excluded and reported apart.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..audio import AudioError, load_audio
from ..manifest import Manifest
from ..text.normalize import normalize_english
from ..utils import progress
from .wer import ErrorCounts, align


@dataclass
class AsrReport:
    transcriber: str
    corpus: str
    utterances: int
    audio_seconds: float
    wer: float
    cer: float
    rtf_wall: float  # transcription wall seconds / audio seconds
    rtf_cpu: float  # process CPU seconds / audio seconds (all threads)
    load_seconds: float
    threads: int
    word_counts: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    hypotheses: list[dict[str, str]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The table row (no per-utterance data)."""
        return {"transcriber": self.transcriber, "corpus": self.corpus, "utterances": self.utterances,
                "audio (s)": round(self.audio_seconds, 1), "WER %": round(100 * self.wer, 2),
                "CER %": round(100 * self.cer, 2), "RTF wall": round(self.rtf_wall, 3),
                "RTF cpu": round(self.rtf_cpu, 3), "load (s)": round(self.load_seconds, 1),
                "failed": len(self.failed)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_transcriber(manifest: Manifest, name: str = "whisper-tiny.en", threads: int = 2, beam_size: int = 5,
                         language: str | None = "en", keep_hypotheses: bool = True) -> AsrReport:
    """Transcribe every utterance with a transcript and score it. Unreadable files are
    reported in ``failed`` and left out of the rates."""
    from ..text.transcribe import get_transcriber

    records = [r for r in manifest if r.transcript]
    if not records:
        raise ValueError(f"{manifest.corpus or 'manifest'}: no utterance has a reference transcript")
    t0 = time.perf_counter()
    t = get_transcriber(name, threads=threads, beam_size=beam_size, cache=False)
    lang = None if t.english_only else language
    load = time.perf_counter() - t0
    words, chars = ErrorCounts(), ErrorCounts()
    wall = cpu = audio_s = 0.0
    failed: dict[str, str] = {}
    hyps: list[dict[str, str]] = []
    for r in progress(records, desc=f"asr {t.name}", unit="utt"):
        try:
            audio = load_audio(manifest.audio_path(r), start=r.start, end=r.end)
            w0, c0 = time.perf_counter(), time.process_time()
            out = t.transcribe(audio, lang)
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
        except (AudioError, ValueError) as e:
            failed[r.id] = str(e)
            continue
        audio_s += len(audio) / 16000
        ref, hyp = normalize_english(r.transcript), normalize_english(out.text)
        words = words + align(ref.split(), hyp.split())
        chars = chars + align(ref, hyp)
        if keep_hypotheses:
            hyps.append({"id": r.id, "reference": r.transcript, "hypothesis": out.text})
    return AsrReport(t.name, manifest.corpus, len(records) - len(failed), audio_s, words.rate, chars.rate,
                     wall / audio_s if audio_s else float("nan"), cpu / audio_s if audio_s else float("nan"),
                     load, threads, words.as_dict(), failed, hyps)
