#!/usr/bin/env bash
# The tests: set up .venv/ if needed, then run the whole suite.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
