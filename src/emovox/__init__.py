"""emovox: speech emotion recognition that knows what is said as well as how it is said.

The product API: :func:`load` builds a :class:`Predictor` (``emovox.predict``) whose
``predict`` returns :class:`SegmentRecord` s (``emovox.records``). Those names are imported on
first use, so ``import emovox`` stays light.
"""

from .audio import AudioError, load_audio  # noqa: E402,F401
from .manifest import Manifest, Utterance  # noqa: E402,F401
from .version import __version__  # noqa: F401

_LAZY = {"Predictor": "predict", "PredictConfig": "predict", "SegmentRecord": "records",
         "FileResult": "records", "Scores": "records"}

__all__ = ["__version__", "load", "AudioError", "load_audio", "Manifest", "Utterance", *_LAZY]


def load(path=None, **kwargs):
    """Load an emotion model: the bundled default when ``path`` is None, else a saved model file
    (``emovox.predict.load``: options, backends and the returned :class:`Predictor`)."""
    from .predict import load as _load

    return _load(path, **kwargs)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
