#!/usr/bin/env bash
# The README's first command: install everything and run the main job on the shipped model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
musegen demo "$@"
