"""The evaluation report's style classifier on real pieces, without a model: the same pieces,
excerpts, features and classifier as section 2 of `musegen eval` (`real_excerpts` +
`classify_real` of :mod:`musegen.evaluation.report`, with `EvalConfig`'s defaults), so a
change to the features or the classifier is measured before and after by one command.

    python -m benchmarks.classifier --corpus data/corpus-default
    python -m benchmarks.classifier --corpus data/corpus-default --out benchmarks/results/x.md

Prints accuracy, balanced accuracy and per-style accuracy on the held-out real pieces, and the
seconds spent decoding, extracting features and fitting. Single process.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import emit  # noqa: E402
from musegen.corpus.dataset import Corpus  # noqa: E402
from musegen.evaluation.report import EvalConfig, classify_real, real_excerpts  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "data" / "corpus-default")
    ap.add_argument("--split", default="test", help="held-out split to test on (the report's default)")
    ap.add_argument("--quick", action="store_true", help="EvalConfig.quick_config()'s sizes")
    ap.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    a = ap.parse_args(argv)

    cfg = EvalConfig.quick_config() if a.quick else EvalConfig()
    cfg = replace(cfg, split=a.split)
    corpus = Corpus.open(a.corpus)
    names = corpus.style_names
    t0 = time.perf_counter()
    train_clips, test_clips = real_excerpts(corpus.tokenizer(), corpus.split("train"),
                                            corpus.split(cfg.split), cfg)
    t1 = time.perf_counter()
    _, c = classify_real(train_clips, test_clips, names)
    t2 = time.perf_counter()

    n_test = np.bincount([s for s, _ in test_clips], minlength=len(names))
    n_train = np.bincount([s for s, _ in train_clips], minlength=len(names))
    lines = [f"Corpus `{a.corpus}`, split `{cfg.split}`; {c['train_excerpts']} train excerpts, "
             f"{c['test_pieces']} held-out pieces, {len(c['features'])} features, "
             f"{cfg.bars}-bar excerpts.", "",
             f"**accuracy {100 * c['accuracy']:.1f} %, balanced accuracy "
             f"{100 * c['balanced_accuracy']:.1f} %** (chance {100 / len(names):.1f} %; "
             f"against a wrong label {100 * c['wrong_label_accuracy']:.1f} %)", "",
             "| style | train excerpts | test pieces | accuracy |", "|---|---:|---:|---:|"]
    for i, n in enumerate(names):
        v = c["per_style"][i]
        lines.append(f"| {n} | {n_train[i]} | {n_test[i]} | {'-' if v is None else f'{100 * v:.1f} %'} |")
    lines += ["", f"Seconds: decode + excerpts {t1 - t0:.1f}, features + fit + test {t2 - t1:.1f}. "
              f"Python {platform.python_version()}, numpy {np.__version__}."]
    emit(lines, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
