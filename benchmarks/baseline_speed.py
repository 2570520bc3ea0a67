"""Fit / evaluation speed and peak memory of the Kneser-Ney n-gram baseline.

    python -m benchmarks.baseline_speed            # orders 4..8, 15M training tokens
    python -m benchmarks.baseline_speed --tokens 2e6 --orders 3 4   # quick look

Corpus: a random sparse 3rd-order Markov chain over vocab 499 (id 0 = BOS): the successors
of (a, b, c) are 8 fixed candidates of c (a grammar), weighted by a hash of (a, b, c); with
probability 0.02 the next token is uniform instead.  So order 4 is the true order, and
orders 5..8 see ever sparser contexts.  Sequence lengths are uniform in 250..2250.  Every
order is fitted in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own; a fit is one
run (they take tens of seconds), evaluation of the held-out set is timed after one warm-up
run, ``--repeats`` times, and reported as median and p95.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VOCAB = 499
_SUCC = 8


def markov3_corpus(n_tokens: int, seed: int, vocab: int = VOCAB) -> list[np.ndarray]:
    """Sequences from a sparse random 3rd-order chain, generated step-parallel.

    The successors of ``(a, b, c)`` are the ``_SUCC`` candidates of ``c`` (a fixed random
    table, like a grammar), weighted by ``(a, b, c)``: weights are squared unit exponentials
    drawn from a hash of the three tokens.  With probability 0.02 the next token is uniform.
    """
    rng = np.random.default_rng(seed)
    table = np.random.default_rng(12345).integers(1, vocab, size=(vocab, _SUCC))  # same chain
    lengths = []
    while sum(lengths) < n_tokens:
        lengths.append(int(rng.integers(250, 2251)))
    lengths[-1] -= sum(lengths) - n_tokens
    lengths = np.array([n for n in lengths if n >= 2])
    n, t_max = len(lengths), int(lengths.max())
    out = np.zeros((n, t_max), dtype=np.int64)
    out[:, 1:3] = rng.integers(1, vocab, size=(n, 2))
    mult, prime = np.uint64(0x9E3779B97F4A7C15), np.uint64(1_000_003)
    js = np.arange(1, _SUCC + 1, dtype=np.uint64)
    for t in range(3, t_max):
        a, b, c = (out[:, t - j].astype(np.uint64) for j in (3, 2, 1))
        h = ((a * prime + b) * prime + c)[:, None] * prime + js  # (n, _SUCC)
        u = (((h * mult) >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
        w = np.cumsum(np.log(u) ** 2, axis=1)
        j = (w < rng.random(n)[:, None] * w[:, -1:]).sum(axis=1)
        nxt = table[out[:, t - 1], j]
        noise = rng.random(n) < 0.02
        nxt[noise] = rng.integers(1, vocab, size=int(noise.sum()))
        out[:, t] = nxt
    return [out[i, :lengths[i]].copy() for i in range(n)]


def _save(path: Path, seqs: list[np.ndarray]) -> None:
    np.savez(path, tokens=np.concatenate(seqs), lengths=np.array([len(s) for s in seqs]))


def _read(path: Path) -> list[np.ndarray]:
    z = np.load(path)
    return np.split(z["tokens"], np.cumsum(z["lengths"])[:-1])


def _one_order(args: argparse.Namespace) -> None:
    from musegen.baseline import NGramModel

    train, valid = _read(Path(args.train)), _read(Path(args.valid))
    t0 = time.perf_counter()
    model = NGramModel.fit(train, order=args.one, vocab_size=VOCAB)
    fit_s = time.perf_counter() - t0
    del train
    model.mean_nll(valid)  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        nll = model.mean_nll(valid)
        times.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        size = model.save(Path(d) / "m.npz").stat().st_size
        save_s = time.perf_counter() - t0
    print(json.dumps({
        "order": args.one, "fit_s": fit_s, "valid_nll": nll,
        "eval_median_s": float(np.median(times)), "eval_p95_s": float(np.percentile(times, 95)),
        "ngrams": [len(k) for k in model.keys], "npz_mb": size / 2**20, "save_s": save_s,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }))


def _choose(args: argparse.Namespace) -> None:
    from musegen.baseline import choose_order

    train, valid = _read(Path(args.train)), _read(Path(args.valid))
    t0 = time.perf_counter()
    best, scores = choose_order(train, valid, VOCAB, orders=args.orders)
    print(json.dumps({"choose_order_s": time.perf_counter() - t0, "best": best.order,
                      "scores": scores,
                      "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=float, default=15e6)
    ap.add_argument("--valid-tokens", type=float, default=1e6)
    ap.add_argument("--orders", type=int, nargs="+", default=[4, 5, 6, 7, 8])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-choose", action="store_true", help="skip the choose_order run")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--choose", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--train", help=argparse.SUPPRESS)
    ap.add_argument("--valid", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return _one_order(args)
    if args.choose:
        return _choose(args)

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        train = markov3_corpus(int(args.tokens), seed=0)
        valid = markov3_corpus(int(args.valid_tokens), seed=1)
        gen_s = time.perf_counter() - t0
        tr, va = Path(d) / "train.npz", Path(d) / "valid.npz"
        _save(tr, train)
        _save(va, valid)
        print(f"# {platform.processor() or platform.machine()}, {_cpu_name()}, "
              f"python {platform.python_version()}, numpy {np.__version__}")
        print(f"# train {sum(map(len, train)):,} tokens in {len(train):,} sequences, valid "
              f"{sum(map(len, valid)):,} tokens in {len(valid):,} sequences, vocab {VOCAB} "
              f"(generated in {gen_s:.0f} s)")
        del train, valid
        print("| order | fit s | eval median s | eval p95 s | valid NLL | n-grams at top "
              "| .npz MB | peak RSS GB |")
        print("|---|---|---|---|---|---|---|---|")
        base = [sys.executable, "-m", "benchmarks.baseline_speed", "--train", str(tr),
                "--valid", str(va), "--repeats", str(args.repeats)]
        for order in args.orders:
            out = subprocess.run(base + ["--one", str(order)], check=True, capture_output=True,
                                 text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {order} | {r['fit_s']:.1f} | {r['eval_median_s']:.2f} | "
                  f"{r['eval_p95_s']:.2f} | {r['valid_nll']:.4f} | {r['ngrams'][-1]:,} | "
                  f"{r['npz_mb']:.0f} | {r['peak_rss_gb']:.2f} |", flush=True)
        if not args.no_choose:
            out = subprocess.run(base + ["--choose", "--orders", *map(str, args.orders)],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"# choose_order(orders={args.orders}): {r['choose_order_s']:.1f} s, best "
                  f"order {r['best']}, peak RSS {r['peak_rss_gb']:.2f} GB")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
