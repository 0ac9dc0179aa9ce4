#!/usr/bin/env bash
# The main job: set up .venv/ if needed, then run emovox's demo.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec "$VENV/bin/emovox" demo "$@"
