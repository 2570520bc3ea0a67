#!/usr/bin/env bash
# Reproduces the shipped default model (musegen/models/default) from scratch on a CPU, in two
# stages: stage 1 is the first default model (1,500 steps x 16 x 512 tokens, styles as they
# come); stage 2 continues it with balanced exposure (--style-alpha 0.4), the key told to the
# model (--keys) and 1024-token windows. On 2 cores: ~8 min corpus build, ~45-60 min stage 1,
# ~100 min stage 2, ~10 min measuring.
set -euo pipefail
cd "$(dirname "$0")/.."
musegen corpus build --out data/corpus-default
musegen train --corpus data/corpus-default --run-dir runs/default-v1 --out runs/default-v1/model \
  --steps 1500 --batch-size 16 --context 512 --d-model 256 --layers 4 --heads 4 --d-ff 768 \
  --lr 2e-3 --warmup 100 --eval-every 300 --ckpt-every 50 --threads 2
musegen train --corpus data/corpus-default --init-from runs/default-v1/model --keys --style-alpha 0.4 \
  --steps 1600 --batch-size 8 --context 1024 --lr 8e-4 --warmup 100 --eval-every 400 --ckpt-every 50 \
  --run-dir runs/default --out runs/default/model --threads 2
python -m musegen.corpus.priors runs/default/model
python -m musegen.corpus.voices runs/default/model
musegen model-card --model runs/default/model --corpus data/corpus-default --musicianship
rm -rf musegen/models/default && mkdir -p musegen/models && cp -r runs/default/model musegen/models/default
