#!/usr/bin/env bash
# Create .venv/ and install optsearch with pinned dependencies (requirements.lock). Idempotent.
#
# torch: the CPU wheel by default (requirements.lock pins torch==2.13.0+cpu). A CUDA build:
#   OPTSEARCH_TORCH=cuda bash scripts/setup.sh     # torch 2.13.0 from PyPI, the CUDA wheel
#   OPTSEARCH_TORCH=auto (the default): cuda when `nvidia-smi` lists a GPU, else cpu
#   OPTSEARCH_TORCH=cpu: the CPU wheel even on a GPU machine
# OPTSEARCH_TORCH_INDEX (default https://pypi.org/simple) is where the CUDA wheel comes from.
# --dry-run prints the choice and the pip commands without installing anything.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
DRY_RUN=0
[ "${1:-}" = "--dry-run" ] && DRY_RUN=1

torch_version=$(sed -n 's/^torch==\([0-9.]*\).*/\1/p' requirements.lock)
mode=${OPTSEARCH_TORCH:-auto}
case "$mode" in
    auto) if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q GPU; then
              mode=cuda
          else
              mode=cpu
          fi ;;
    cpu|cuda) ;;
    *) echo "error: OPTSEARCH_TORCH must be cpu, cuda or auto, not '$mode'" >&2; exit 2 ;;
esac
torch_index=${OPTSEARCH_TORCH_INDEX:-https://pypi.org/simple}

run() {   # a command, or in a dry run its text
    if [ "$DRY_RUN" = 1 ]; then echo "+ $*"; else "$@"; fi
}

if [ "$DRY_RUN" = 1 ]; then
    echo "torch: $mode ($torch_version)"
elif [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.optsearch-installed
want=$( (cat pyproject.toml requirements.lock; [ "$mode" = cpu ] || echo "torch=$mode") \
       | sha256sum | cut -d' ' -f1)
if [ "$DRY_RUN" = 1 ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    run .venv/bin/python -m pip install -q --upgrade pip
    if [ "$mode" = cuda ]; then
        # PyPI's Linux torch wheel is the CUDA build; the rest stays pinned by the lock file.
        run .venv/bin/python -m pip install -q --index-url "$torch_index" "torch==$torch_version"
        constraints=.venv/constraints-cuda.txt
        run sh -c "grep -v '^torch==' requirements.lock > $constraints"
        run .venv/bin/python -m pip install -q -c "$constraints" -e '.[dev,bench]'
        run .venv/bin/python -c "import sys, torch; sys.exit(torch.version.cuda is None and \
'error: a CPU torch was installed; the pip configuration offers it (find-links, extra \
indexes): point OPTSEARCH_TORCH_INDEX at an index with the CUDA wheel')"
    else
        # torch==2.13.0+cpu is pinned: an unpinned torch would pull a multi-GB CUDA build.
        run .venv/bin/python -m pip install -q -c requirements.lock -e '.[dev,bench]'
    fi
    [ "$DRY_RUN" = 1 ] || echo "$want" > "$stamp"
fi
[ "$DRY_RUN" = 1 ] && exit 0
echo "optsearch installed in .venv/ ($(.venv/bin/python -c 'import torch, ray
print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu", "ray", ray.__version__)'))"
