#!/usr/bin/env bash
# Reproduces the shipped default model (musegen/models/default) from scratch on a CPU.
# ~3 min corpus build + ~45-60 min training on 2 cores + ~3 min measuring.
set -euo pipefail
cd "$(dirname "$0")/.."
musegen corpus build --out data/corpus-default
musegen train --corpus data/corpus-default --run-dir runs/default --steps 1500 --batch-size 16 \
  --context 512 --d-model 256 --layers 4 --heads 4 --d-ff 768 --lr 2e-3 --warmup 100 \
  --eval-every 300 --ckpt-every 50 --threads 2
musegen model-card --model runs/default/model --corpus data/corpus-default
rm -rf musegen/models/default && mkdir -p musegen/models && cp -r runs/default/model musegen/models/default
