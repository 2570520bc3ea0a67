"""Load time of the shipped checkpoint: musegen's loader (everything: LM, style table,
tokenizer, novelty index) and transformers' AutoModelForCausalLM (the LM part). Imports are
done before timing; each load is a fresh read of the folder.

    python -m benchmarks.load --runs 10 --out benchmarks/results/load.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM

from benchmarks._report import emit
from musegen.studio import DEFAULT_MODEL_DIR, Studio


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    Studio(device="cpu")  # warm the file cache and lazy imports once
    AutoModelForCausalLM.from_pretrained(DEFAULT_MODEL_DIR)
    rows = []
    for name, fn in [("musegen Studio() (everything)", lambda: Studio(device="cpu")),
                     ("AutoModelForCausalLM.from_pretrained (LM part)",
                      lambda: AutoModelForCausalLM.from_pretrained(DEFAULT_MODEL_DIR))]:
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        times.sort()
        rows.append((name, statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]))
    lines = ["# Loading the shipped model", "",
             f"{platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}, "
             f"transformers {transformers.__version__}; {args.runs} loads after one warm-up; "
             "`python -m benchmarks.load`.", "", "| loader | median s | p95 s |", "|---|---:|---:|"]
    lines += [f"| {n} | {m:.3f} | {p:.3f} |" for n, m, p in rows]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
