#!/usr/bin/env bash
# Create .venv/ and install optsearch with pinned dependencies (requirements.lock). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.optsearch-installed
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # torch==2.13.0 is pinned: an unpinned torch would pull a multi-GB CUDA build.
    .venv/bin/python -m pip install -q -c requirements.lock -e '.[dev,bench]'
    echo "$want" > "$stamp"
fi
echo "optsearch installed in .venv/ ($(.venv/bin/python -c 'import torch, ray; print("torch", torch.__version__, "ray", ray.__version__)'))"
