"""emovox: speech emotion recognition that knows what is said as well as how it is said."""

__version__ = "0.1.0"

from .audio import AudioError, load_audio  # noqa: E402,F401
from .manifest import Manifest, Utterance  # noqa: E402,F401


def load(path=None, **kwargs):
    """Load an emotion model: the bundled default when ``path`` is None, else a saved model file."""
    from .predict import load as _load

    return _load(path, **kwargs)
