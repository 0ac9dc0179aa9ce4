"""Predictors that worker processes rebuild, for tests/test_hostile.py.

``make`` builds the fake predictor of ``conftest`` (real Silero VAD, fake emotion, transcript
and sentiment) whose ``spec`` names this function, so ``predict_batch(jobs=2)`` rebuilds it in
each spawned worker. Two behaviours stand in for what the hostile tests need:

* a file whose name contains ``kill-me`` makes the worker SIGKILL itself mid-file, as the OOM
  killer would;
* ``mode="slow"`` makes each file take ``delay`` seconds, so that a signal arrives mid-batch.

Each worker writes ``<pid>.<file name>.started`` into ``marker_dir`` when it starts a file, so a
test knows which processes are workers and how far the batch got, without timing anything.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def make(mode: str = "plain", marker_dir: str | None = None, delay: float = 0.0, **_ignored):
    from conftest import make_fake_predictor

    p = make_fake_predictor()
    original = p.predict_file

    def predict_file(path, on_progress=None):
        name = os.path.basename(str(path))
        if marker_dir:
            Path(marker_dir, f"{os.getpid()}.{name}.started").write_text("")
        if "kill-me" in name:
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "slow":
            time.sleep(delay)
        return original(path, on_progress=on_progress)

    p.predict_file = predict_file
    p.spec = {"factory": "hostile_workers:make", "mode": mode, "marker_dir": marker_dir, "delay": delay}
    return p
