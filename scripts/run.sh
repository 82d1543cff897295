#!/usr/bin/env bash
# The README's first command: set up .venv/ and run the main job (search -> funnel ->
# simplify -> recognise -> export) on the embedded defaults. Extra flags go to the main job,
# e.g. `bash scripts/run.sh --minutes 60`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/optsearch run "$@"
