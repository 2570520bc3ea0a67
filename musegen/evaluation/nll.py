"""Held-out per-token NLL per style: the transformer against the n-gram baseline.

Protocol (shared by both models, so the figures compare): every piece of the split is cut to
its first `context` tokens (the model's training window); the NLL of tokens 1.. of that window
is averaged per style, token-weighted. The model sees each piece under its own style vector
and, for a model told the key (`n_keys`), its key (the Krumhansl estimate of the whole piece,
as in training); such a model is also measured with the key unknown (`model_no_key`).
The baseline is interpolated modified Kneser-Ney (musegen.baseline) fitted on the *whole*
training pieces, its order chosen on the validation windows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musegen.baseline import choose_order
from musegen.model import MusegenLM
from musegen.train import Piece, heldout_windows, nll_by_style, token_nll


@dataclass
class NLLReport:
    split: str
    styles: list[str]
    model: dict[str, float]  # style -> mean NLL (nats/token)
    baseline: dict[str, float]
    tokens: dict[str, int]
    pieces: dict[str, int]
    baseline_order: int
    baseline_valid: dict[int, float]
    seconds: dict[str, float] = field(default_factory=dict)
    model_no_key: dict[str, float] | None = None  # a model told the key, with the key unknown
    context: int = 0  # tokens per window

    @property
    def model_mean(self) -> float:
        return _weighted(self.model, self.tokens)

    @property
    def baseline_mean(self) -> float:
        return _weighted(self.baseline, self.tokens)

    def improvement(self, style: str) -> float:
        """Relative NLL reduction of the model over the baseline (0.25 = 25 % lower)."""
        return 1.0 - self.model[style] / self.baseline[style]

    @property
    def mean_improvement(self) -> float:
        """The per-style improvements averaged over styles (each style counts once)."""
        imps = [self.improvement(s) for s in self.model]
        return float(np.mean(imps)) if imps else 0.0

    def to_dict(self) -> dict:
        return {"split": self.split, "model": self.model, "baseline": self.baseline,
                "tokens": self.tokens, "pieces": self.pieces,
                "baseline_order": self.baseline_order,
                "baseline_valid_nll_by_order": {str(k): v for k, v in self.baseline_valid.items()},
                "model_no_key": self.model_no_key, "context": self.context,
                "model_mean": self.model_mean, "baseline_mean": self.baseline_mean,
                "improvement": {s: self.improvement(s) for s in self.model},
                "mean_improvement": self.mean_improvement, "seconds": self.seconds}

    def markdown(self) -> str:
        nk = self.model_no_key
        lines = ["| style | pieces | tokens | model NLL | n-gram NLL | model better by |"
                 + (" model NLL, key unknown |" if nk else ""),
                 "|---|---:|---:|---:|---:|---:|" + ("---:|" if nk else "")]
        for s in self.model:
            lines.append(f"| {s} | {self.pieces[s]} | {self.tokens[s]:,} | {self.model[s]:.4f} | "
                         f"{self.baseline[s]:.4f} | {100 * self.improvement(s):.1f} % |"
                         + (f" {nk[s]:.4f} |" if nk else ""))
        lines.append(f"| **all (token-weighted)** | {sum(self.pieces.values())} | "
                     f"{sum(self.tokens.values()):,} | {self.model_mean:.4f} | "
                     f"{self.baseline_mean:.4f} | {100 * (1 - self.model_mean / self.baseline_mean):.1f} % |"
                     + (f" {_weighted(nk, self.tokens):.4f} |" if nk else ""))
        lines.append(f"\nMean of the per-style improvements: {100 * self.mean_improvement:.1f} %. "
                     f"n-gram order {self.baseline_order} (chosen on the validation split).")
        return "\n".join(lines)


def _weighted(values: dict[str, float], tokens: dict[str, int]) -> float:
    total = sum(tokens[s] for s in values)
    return sum(values[s] * tokens[s] for s in values) / max(total, 1)


def evaluate_nll(model: MusegenLM, style_names: Sequence[str], train: Sequence[Piece],
                 valid: Sequence[Piece], held: Sequence[Piece], *, split: str = "test",
                 context: int | None = None, orders: Sequence[int] = range(2, 9),
                 on_stage: Callable[[str], None] | None = None) -> NLLReport:
    ctx = context or model.cfg.context
    windows = heldout_windows(held, ctx)
    t0 = time.perf_counter()
    if on_stage:
        on_stage("model NLL")
    no_key = None
    if model.cfg.n_keys:
        from musegen.tokenizer import Tokenizer
        from musegen.train import piece_key_rows

        # each window under its piece's key (estimated from the whole piece, as in training)
        keys = piece_key_rows(Tokenizer(), held)
        model_nll = nll_by_style(windows, token_nll(model, windows, key_rows=keys))
        no_key = {style_names[s]: v for s, v in nll_by_style(windows, token_nll(model, windows)).items()}
    else:
        model_nll = nll_by_style(windows, token_nll(model, windows))
    t1 = time.perf_counter()
    if on_stage:
        on_stage("fitting the n-gram baseline")
    vocab = model.cfg.vocab_size
    ngram, by_order = choose_order([p for _, p in train],
                                   [w for _, w in heldout_windows(valid, ctx)], vocab,
                                   orders=orders)
    t2 = time.perf_counter()
    if on_stage:
        on_stage("n-gram NLL")
    base_nll = nll_by_style(windows, [ngram.token_nll(w) for _, w in windows])
    t3 = time.perf_counter()
    tokens: dict[str, int] = {}
    pieces: dict[str, int] = {}
    for s, w in windows:
        name = style_names[s]
        tokens[name] = tokens.get(name, 0) + len(w) - 1
        pieces[name] = pieces.get(name, 0) + 1
    return NLLReport(
        split=split, styles=list(style_names),
        model={style_names[s]: v for s, v in model_nll.items()},
        baseline={style_names[s]: v for s, v in base_nll.items()},
        tokens=tokens, pieces=pieces, baseline_order=ngram.order,
        baseline_valid={int(k): float(v) for k, v in by_order.items()},
        seconds={"model": t1 - t0, "baseline_fit": t2 - t1, "baseline_eval": t3 - t2},
        model_no_key=no_key, context=ctx)


def evaluate_model_dir(model_dir: Path, corpus_dir: Path, *, split: str = "test",
                       on_stage: Callable[[str], None] | None = None,
                       context: int | None = None) -> NLLReport:
    from musegen.corpus.dataset import Corpus
    from musegen.model import load_checkpoint

    model, _ = load_checkpoint(model_dir)
    corpus = Corpus.open(corpus_dir)
    names = list(model.cfg.style_names)
    if names[: len(corpus.style_names)] != list(corpus.style_names):
        raise ValueError(f"corpus styles {corpus.style_names} do not match the model's {names}")
    return evaluate_nll(model, names, corpus.split("train"), corpus.split("valid"),
                        corpus.split(split), split=split, on_stage=on_stage, context=context)
