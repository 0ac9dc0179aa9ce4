"""docs/API.md is executable: every ``>>>`` example runs against the real models."""

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
