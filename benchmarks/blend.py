"""Blend control: as a style weight moves 0 -> 1 (and 1.25, extrapolated), do the takes'
statistics move from one style's real pieces toward the other's?

For a pair (A, B), each take's descriptor vector (musegen.evaluation.descriptors) is
projected onto the line from A's real centroid (0) to B's (1), in standardised units. We
report the mean projection per weight, the Spearman correlation of weight vs projection over
all takes, and a plot.

    python -m benchmarks.blend --model default --corpus data/corpus-default --png docs/blend.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from musegen.corpus.dataset import Corpus
from musegen.evaluation.blend import WEIGHTS, projection, spearman
from musegen.evaluation.descriptors import centroids, describe
from musegen.studio import Studio

PAIRS = [("chinese-folk", "bach-chorale"), ("german-folk", "irish-dance"),
         ("scottish-air", "renaissance-mass")]
__all__ = ["PAIRS", "WEIGHTS", "spearman", "main"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus-default"))
    ap.add_argument("--takes", type=int, default=8)
    ap.add_argument("--bars", type=int, default=4)
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    studio = Studio(model=args.model)
    corpus = Corpus.open(args.corpus)
    tok = corpus.tokenizer()
    names = studio.style_names
    real: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for s, ids in corpus.split("test"):
        c = tok.decode(ids)
        real[names[s]].append(describe(c.slice_bars(0, min(args.bars, c.n_bars))))
    snames, cents, mu, sd = centroids(real)
    t0 = time.perf_counter()
    results = []
    for a, b in PAIRS:
        ca, cb = cents[snames.index(a)], cents[snames.index(b)]
        xs, ys, means = [], [], []
        for k, w in enumerate(WEIGHTS):
            takes = studio.blend(None, styles={a: 1 - w, b: w}, bars=args.bars,
                                 variations=args.takes, seed=1000 + k)
            proj = projection(np.stack([describe(t.clip) for t in takes]), ca, cb, mu, sd).tolist()
            xs += [w] * len(proj)
            ys += proj
            means.append(float(np.mean(proj)))
        inside = [i for i, w in enumerate(xs) if w <= 1.0]
        results.append({"pair": [a, b], "weights": WEIGHTS, "mean_projection": means,
                        "spearman_0_1": spearman(np.array(xs)[inside], np.array(ys)[inside]),
                        "spearman_means_0_1": spearman(np.array(WEIGHTS[:5]), np.array(means[:5]))})
    wall = time.perf_counter() - t0
    lines = ["# Blend control", "",
             f"`python -m benchmarks.blend --model {args.model}`; model {studio.model_id}; "
             f"{args.takes} takes of {args.bars} bars per weight, started from nothing; {wall:.0f} s.",
             "", "Mean projection of the takes onto the line from style A's real pieces (0) to "
             "style B's (1), per weight of B:", "",
             "| A -> B | " + " | ".join(f"w={w}" for w in WEIGHTS) + " | Spearman (takes, w<=1) "
             "| Spearman (means, w<=1) |",
             "|---|" + "---:|" * (len(WEIGHTS) + 2)]
    for r in results:
        lines.append(f"| {r['pair'][0]} -> {r['pair'][1]} | "
                     + " | ".join(f"{m:.2f}" for m in r["mean_projection"])
                     + f" | {r['spearman_0_1']:.2f} | {r['spearman_means_0_1']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for r in results:
            ax.plot(WEIGHTS, r["mean_projection"], marker="o", label=f"{r['pair'][0]} -> {r['pair'][1]}")
        ax.axhline(0, color="grey", lw=0.5)
        ax.axhline(1, color="grey", lw=0.5)
        ax.axvline(1, color="grey", lw=0.5, ls=":")
        ax.set_xlabel("weight of style B (1.25 extrapolates)")
        ax.set_ylabel("takes' position between A's (0) and B's (1) real pieces")
        ax.legend(fontsize=8)
        args.png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.png, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main()
