"""``python -m emovox`` (and ``torchrun -m emovox``) run the command line."""

import sys

from .cli import main

sys.exit(main())
