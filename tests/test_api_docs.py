"""docs/API.md is executable: every ``>>>`` example runs against the real models.

Whisper's transcript of the demo recording is not compared verbatim: CTranslate2's int8 kernels
differ between CPUs, which changes punctuation or a word here and there. The document checks it
by word error rate on normalised text (``emovox.evaluate.wer``, ``normalize_english``) with a
bound of 0.2: three wrong words of the sentence's 15 pass, a segment holding another sentence or
missing half of its words (WER 0.5 or more) fails.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "API.md"


@pytest.mark.slow
def test_api_examples_run(tmp_path):
    result = doctest.testfile(str(DOC), module_relative=False, globs={"tmp": tmp_path},
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted >= 20
    assert result.failed == 0, f"{result.failed} example(s) in {DOC} failed (see the output above)"
