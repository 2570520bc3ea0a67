#!/usr/bin/env bash
# Installs musegen and everything it needs. torch is pinned to 2.13.0 here: on a CPU-only
# machine whose pip is set up with the local CPU build this avoids several GB of CUDA
# packages. If you already have a torch you want to keep (CUDA, ROCm, MPS), set
# MUSEGEN_KEEP_TORCH=1 and it is left alone (musegen accepts any torch >= 2.2).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "${MUSEGEN_KEEP_TORCH:-0}" = "1" ] && "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install -q -e ".[dev,fast]"
else
  "$PY" -m pip install -q "torch==2.13.0" -e ".[dev,fast]"
fi
# abc2midi converts the folk collections ~300x faster than music21 (optional; used if found)
if ! command -v abc2midi >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -qq abcmidi >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq abcmidi >/dev/null 2>&1)) || echo "abc2midi not installed; the corpus build falls back to music21"
fi
