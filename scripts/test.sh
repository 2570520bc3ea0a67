#!/usr/bin/env bash
# The README's test command: install everything, lint, run the fast tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
PY=${PYTHON:-python3}
"$PY" -m ruff check musegen bridges tests benchmarks
"$PY" -m pytest -q "$@"
