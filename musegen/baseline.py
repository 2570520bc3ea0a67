"""A smoothed n-gram language model over token ids: the baseline the transformer must beat.

`NGramModel` is interpolated **modified** Kneser-Ney (Chen & Goodman 1998, the variant KenLM
and SRILM's ``-kndiscount -interpolate`` build): every level ``k`` has three absolute
discounts ``D1, D2, D3+`` estimated from that level's count-of-counts,

    Y = n1 / (n1 + 2 n2),  D1 = 1 - 2Y n2/n1,  D2 = 2 - 3Y n3/n2,  D3+ = 3 - 4Y n4/n3,

lower levels use continuation counts (the number of distinct tokens seen to the left), and
the unigram level is interpolated with the uniform distribution over ``vocab_size``, so every
token, seen or not, gets a non-zero probability.  Where a level's count-of-counts make the
estimate undefined or out of range (``D_k`` outside ``(0, k]``, as in tiny corpora) it falls
back to KenLM's ``--discount_fallback`` values ``0.5, 1.0, 1.5``.

    P_k(w | h) = (max(c(h w) - D(c(h w)), 0) + (D1 N1(h) + D2 N2(h) + D3 N3+(h)) P_{k-1}(w | h'))
                 / sum_w c(h w)

with ``h'`` the context ``h`` less its oldest token, and ``P_k = P_{k-1}`` when ``h`` was never
seen as a context.  ``P_0(w) = 1 / vocab_size``.

Sequence boundaries.  Each sequence is read as if preceded by infinitely many ``PAD`` tokens
(id ``vocab_size``, never predicted, never given probability); n-grams therefore never cross
sequence boundaries and the first tokens of a sequence are predicted from a context that
says "start of sequence".  The first token (BOS) is context only: it is never predicted.
n-grams that start with ``PAD`` cannot be extended to the left, so - like KenLM's ``<s>``
n-grams - they keep their raw counts at lower levels instead of continuation counts.

Storage.  An n-gram of length ``k`` is identified by a dense id: ``key = id(prefix) * (V+1) +
last token`` where ``id(prefix)`` is the rank of the ``k-1``-token prefix among the sorted keys
of length ``k-1``.  The same sorted ``int64`` key array per length therefore serves as the
n-gram table of level ``k`` and the context table of level ``k+1``; counting is ``np.unique``
and lookup is ``np.searchsorted``, so any order fits in ``int64`` (no 9-bits-per-token limit).

Measured speed (``python -m benchmarks.baseline_speed``: Intel Xeon, 2 cores, Python 3.11,
numpy 2.4; 15.0M training tokens in 11,997 sequences from a random sparse 3rd-order Markov
chain over vocab 499, held-out 1.0M tokens in 802 sequences; fit is one run in a fresh
process, eval is ``mean_nll`` over the 1.0M tokens, median / p95 of 5 after a warm-up):

    order  fit s  eval s (p95)  valid NLL  top n-grams  .npz MB  peak RSS GB
      4     22.9   1.05 (1.62)   1.4234     1,076,310      32       1.30
      5     23.1   2.60 (2.94)   1.4674     1,958,479      71       1.33
      6     35.2   2.21 (2.46)   1.5092     3,443,639     141       1.36
      7     40.9   3.36 (3.41)   1.5491     5,489,270     256       1.48
      8     44.0   3.72 (5.43)   1.5816     7,795,884     429       1.61
    choose_order(orders 4..8): 73.1 s in all (one count at order 8), picks 4, 1.61 GB

Worst case (15M uniform random tokens, every n-gram of length >= 4 unique, ~15M per level):
order 8 fits in 86 s at 2.8 GB peak RSS and evaluates 1M tokens in 2.9 s.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from musegen.atomic import atomic_path
from musegen.errors import ParameterError

FORMAT = "musegen.ngram/1"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
"""KenLM's ``--discount_fallback`` defaults for ``D1, D2, D3+``."""
_EVAL_CHUNK_TOKENS = 2_000_000  # positions evaluated at once (bounds eval memory)


def kn_discounts(counts: np.ndarray) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts ``(D1, D2, D3+)`` from one level's n-gram counts.

    Chen & Goodman's estimate from the count-of-counts ``n1..n4``; falls back to
    `FALLBACK_DISCOUNTS` when a ``n_i`` is zero or a discount leaves ``(0, i]``.
    """
    c = np.asarray(counts)
    n1, n2, n3, n4 = (int(x) for x in np.bincount(np.clip(c, 0, 5), minlength=6)[1:5])
    if min(n1, n2, n3, n4) == 0:
        return FALLBACK_DISCOUNTS
    y = n1 / (n1 + 2 * n2)
    d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if not all(0 < di <= i + 1 for i, di in enumerate(d)):
        return FALLBACK_DISCOUNTS
    return d


def _check_tokens(seq: np.ndarray, vocab_size: int, where: str) -> np.ndarray:
    a = np.asarray(seq)
    if a.ndim != 1:
        raise ParameterError(f"{where}: a token sequence must be 1-D, got shape {a.shape}")
    if a.size == 0:
        return a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        raise ParameterError(f"{where}: token ids must be integers, got dtype {a.dtype}")
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= vocab_size:
        bad = lo if lo < 0 else hi
        raise ParameterError(f"{where}: token id {bad} is outside range(vocab_size={vocab_size})")
    return a.astype(np.int64, copy=False)


def _concat(seqs: Sequence[np.ndarray], vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Lay sequences out as ``[PAD, s0..., PAD, s1..., ...]``.

    Returns ``(tok (T,) int64, pos (T,) int32)``: ``pos`` is the index inside the sequence,
    ``-1`` on the PAD separators.
    """
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    total = int(lengths.sum()) + len(seqs)
    tok = np.full(total, vocab_size, dtype=np.int64)
    pos = np.full(total, -1, dtype=np.int32)
    if total == len(seqs):
        return tok, pos
    starts = np.cumsum(lengths + 1) - lengths  # index of each sequence's first token
    real = np.ones(total, dtype=bool)
    real[starts - 1] = False
    tok[real] = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs])
    nz = lengths > 0
    pos[real] = np.arange(int(lengths.sum())) - np.repeat(
        np.cumsum(lengths)[nz] - lengths[nz], lengths[nz])
    return tok, pos


class _Counts:
    """All n-gram tables up to ``max_order``, from which a model of any lower order is cut.

    ``keys[k]`` sorted int64 keys of the k-token tuples (``k = 0`` is the empty tuple),
    ``raw[k]`` how often each ends at a predicted position, ``adj[k]`` its count as a lower
    level (continuation count, or raw when it starts with PAD), ``allpad[k]`` the id of the
    all-PAD tuple of length ``k``.
    """

    def __init__(self, sequences: Sequence[np.ndarray], max_order: int, vocab_size: int):
        base = vocab_size + 1
        tok, pos = _concat(sequences, vocab_size)
        target = pos >= 1
        if not target.any():
            raise ParameterError("NGramModel.fit: no sequence has a token to predict "
                                 "(all are shorter than 2 tokens)")
        if int(target.sum()) >= 2**31:
            raise ParameterError(f"NGramModel.fit: {int(target.sum())} tokens exceed int32 counts")
        pad = pos < 0
        self.vocab_size = vocab_size
        self.max_order = max_order
        self.keys = [np.zeros(1, dtype=np.int64)]
        self.raw: list[np.ndarray] = [np.zeros(1, dtype=np.int32)]
        self.adj: list[np.ndarray] = [np.zeros(1, dtype=np.int32)]
        self.allpad = [0]
        ids_prev = np.zeros(len(tok), dtype=np.int64)  # id of the length-(k-1) tuple ending at p
        padstart_prev = np.zeros(1, dtype=bool)
        for k in range(1, max_order + 1):
            prev = np.empty_like(ids_prev)
            prev[1:] = ids_prev[:-1]
            prev[pad] = self.allpad[k - 1]  # PAD positions: context is all PAD (infinite padding)
            keys, ids = np.unique(prev * base + tok, return_inverse=True)
            del prev
            ids = ids.reshape(-1)
            raw = np.bincount(ids[target], minlength=len(keys)).astype(np.int32)
            rep = np.empty(len(keys), dtype=np.int64)  # one position where each tuple ends
            rep[ids] = np.arange(len(ids))
            if k >= 2:  # continuation counts of the (k-1)-tuples: distinct left extensions
                suffix = ids_prev[rep[raw > 0]]
                cont = np.bincount(suffix, minlength=len(self.keys[k - 1])).astype(np.int32)
                self.adj[k - 1] = np.where(padstart_prev, self.raw[k - 1], cont)
            padstart_prev = pos[rep] <= k - 2  # the tuple reaches back into the padding
            del rep
            self.keys.append(keys)
            self.raw.append(raw)
            self.adj.append(raw)  # replaced by continuation counts at the next k, if any
            self.allpad.append(int(ids[0]))  # position 0 is always a PAD
            ids_prev = ids
        self._lower: dict[int, tuple] = {}

    def level(self, k: int, top: bool) -> tuple:
        """``(counts, discounts, ctx_total, ctx_gamma_num)`` of level ``k`` as top or lower."""
        if not top and k in self._lower:
            return self._lower[k]
        counts = self.raw[k] if top else self.adj[k]
        d = kn_discounts(counts)
        ctx = self.keys[k] // (self.vocab_size + 1)
        n_ctx = len(self.keys[k - 1])
        total = np.bincount(ctx, weights=counts, minlength=n_ctx)
        gnum = np.zeros(n_ctx)
        for i, di in enumerate(d):
            sel = (counts == i + 1) if i < 2 else (counts >= 3)
            gnum += di * np.bincount(ctx[sel], minlength=n_ctx)
        out = (counts, d, total, gnum)
        if not top:
            self._lower[k] = out
        return out

    def model(self, order: int) -> NGramModel:
        if not 1 <= order <= self.max_order:
            raise ParameterError(f"order {order} is outside 1..{self.max_order}")
        levels = [self.level(k, top=(k == order)) for k in range(1, order + 1)]
        return NGramModel(
            vocab_size=self.vocab_size,
            keys=self.keys[1:order + 1],
            counts=[lv[0] for lv in levels],
            discounts=np.array([lv[1] for lv in levels], dtype=np.float64),
            ctx_total=[lv[2] for lv in levels],
            ctx_gamma_num=[lv[3] for lv in levels],
            allpad=self.allpad[:order + 1],
        )


class NGramModel:
    """Interpolated modified Kneser-Ney n-gram model over ``range(vocab_size)``.

    Build with `NGramModel.fit` (or `choose_order`); score with `token_nll`, `mean_nll`,
    `next_token_probs`.  Level ``k`` (``1..order``) holds the sorted keys of its k-grams, their
    counts, and, per (k-1)-token context id, the total count and the back-off mass numerator.
    """

    def __init__(self, *, vocab_size: int, keys: list[np.ndarray], counts: list[np.ndarray],
                 discounts: np.ndarray, ctx_total: list[np.ndarray],
                 ctx_gamma_num: list[np.ndarray], allpad: list[int]) -> None:
        self.vocab_size = int(vocab_size)
        self.order = len(keys)
        self.keys = keys
        self.counts = counts
        self.discounts = np.asarray(discounts, dtype=np.float64).reshape(self.order, 3)
        self.ctx_total = ctx_total
        self.ctx_gamma_num = ctx_gamma_num
        self.allpad = [int(a) for a in allpad]
        assert len(counts) == len(ctx_total) == len(ctx_gamma_num) == self.order
        assert len(self.allpad) == self.order + 1

    # ---------------------------------------------------------------- building
    @classmethod
    def fit(cls, sequences: Iterable[np.ndarray], order: int, vocab_size: int) -> NGramModel:
        """Count ``sequences`` (1-D integer arrays, first token = BOS) into an order-``order``
        model over ``range(vocab_size)``."""
        _check_order_vocab(order, vocab_size)
        seqs = [_check_tokens(s, vocab_size, "NGramModel.fit") for s in sequences]
        return _Counts(seqs, order, vocab_size).model(order)

    # ---------------------------------------------------------------- scoring
    def _level_prob(self, k: int, ctx: np.ndarray, cnt: np.ndarray,
                    lower: np.ndarray) -> np.ndarray:
        """P_k from the context ids ``ctx`` (-1 = unseen), the k-gram counts and P_{k-1}."""
        seen = ctx >= 0
        c = np.where(seen, ctx, 0)
        total = np.where(seen, self.ctx_total[k - 1][c], 0.0)
        gnum = self.ctx_gamma_num[k - 1][c]
        d = np.concatenate([[0.0], self.discounts[k - 1]])[np.minimum(cnt, 3)]
        has = total > 0
        num = np.maximum(cnt - d, 0.0) + gnum * lower
        return np.where(has, num / np.where(has, total, 1.0), lower)

    def _lookup(self, k: int, ctx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Index of the k-gram (context id ``ctx``, token ``w``) in level k, or -1."""
        keys = self.keys[k - 1]
        q = np.where(ctx >= 0, ctx, 0) * (self.vocab_size + 1) + w
        idx = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
        return np.where((ctx >= 0) & (keys[idx] == q), idx, -1)

    def _count(self, k: int, idx: np.ndarray) -> np.ndarray:
        return np.where(idx >= 0, self.counts[k - 1][np.maximum(idx, 0)], 0)

    def _nll_concat(self, tok: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """NLL of every position with ``pos >= 1`` in a `_concat` layout."""
        pad = pos < 0
        tgt = np.flatnonzero(pos >= 1)
        p = np.full(len(tgt), 1.0 / self.vocab_size)
        ids_prev = np.zeros(len(tok), dtype=np.int64)  # id of the length-(k-1) tuple ending at i
        for k in range(1, self.order + 1):
            prev = np.empty_like(ids_prev)
            prev[1:] = ids_prev[:-1]
            prev[pad] = self.allpad[k - 1]
            if k < self.order:  # ids of all k-tuples are the next level's contexts
                ids = self._lookup(k, prev, tok)
                ids[pad] = self.allpad[k]
                idx_t = ids[tgt]
            else:
                idx_t = self._lookup(k, prev[tgt], tok[tgt])
            p = self._level_prob(k, prev[tgt], self._count(k, idx_t), p)
            if k < self.order:
                ids_prev = ids
        return -np.log(p)

    def token_nll(self, seq: np.ndarray) -> np.ndarray:
        """NLL in nats of each of ``seq[1:]`` given the tokens before it (shape ``(len-1,)``)."""
        s = _check_tokens(seq, self.vocab_size, "NGramModel.token_nll")
        if len(s) < 2:
            return np.zeros(0)
        return self._nll_concat(*_concat([s], self.vocab_size))

    def _chunks(self, sequences: Iterable[np.ndarray]) -> Iterator[list[np.ndarray]]:
        chunk: list[np.ndarray] = []
        size = 0
        for s in sequences:
            chunk.append(_check_tokens(s, self.vocab_size, "NGramModel.mean_nll"))
            size += len(chunk[-1]) + 1
            if size >= _EVAL_CHUNK_TOKENS:
                yield chunk
                chunk, size = [], 0
        if chunk:
            yield chunk

    def total_nll(self, sequences: Iterable[np.ndarray]) -> tuple[float, int]:
        """``(sum of NLL in nats, number of predicted tokens)`` over ``sequences``."""
        total, n = 0.0, 0
        for chunk in self._chunks(sequences):
            nll = self._nll_concat(*_concat(chunk, self.vocab_size))
            total += float(nll.sum())
            n += len(nll)
        return total, n

    def mean_nll(self, sequences: Iterable[np.ndarray]) -> float:
        """Token-weighted mean NLL (nats) over every predicted token (each ``seq[1:]``)."""
        total, n = self.total_nll(sequences)
        if n == 0:
            raise ParameterError("NGramModel.mean_nll: no sequence has a token to predict")
        return total / n

    def next_token_probs(self, context: np.ndarray) -> np.ndarray:
        """``P(w | context)`` for every ``w`` in ``range(vocab_size)``; ``context`` starts with
        the sequence's first token (an empty context means "start of sequence")."""
        ctx_tok = _check_tokens(context, self.vocab_size, "NGramModel.next_token_probs")
        # ctx_ids[j]: id of the length-j tuple ending at the last context token (-1 unseen)
        ctx_ids = [self._tuple_id(ctx_tok, j) for j in range(self.order)]
        w = np.arange(self.vocab_size, dtype=np.int64)
        p = np.full(self.vocab_size, 1.0 / self.vocab_size)
        for k in range(1, self.order + 1):
            ctx = np.full(self.vocab_size, ctx_ids[k - 1], dtype=np.int64)
            p = self._level_prob(k, ctx, self._count(k, self._lookup(k, ctx, w)), p)
        return p

    def _tuple_id(self, toks: np.ndarray, j: int) -> int:
        """Id of the length-``j`` tuple ending at the end of ``toks`` (PAD-extended), or -1."""
        if j == 0:
            return 0
        if len(toks) == 0:
            return self.allpad[j]
        prefix = self._tuple_id(toks[:-1], j - 1)
        return int(self._lookup(j, np.array([prefix]), toks[-1:])[0])

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model to one uncompressed ``.npz`` atomically (temp, fsync, rename)."""
        p = Path(path)
        arrays: dict[str, np.ndarray] = {
            "format": np.array(FORMAT),
            "numpy_version": np.array(np.__version__),
            "vocab_size": np.array(self.vocab_size),
            "discounts": self.discounts,
            "allpad": np.array(self.allpad, dtype=np.int64),
        }
        for k in range(self.order):
            arrays[f"keys_{k + 1}"] = self.keys[k]
            arrays[f"counts_{k + 1}"] = self.counts[k]
            arrays[f"ctx_total_{k + 1}"] = self.ctx_total[k]
            arrays[f"ctx_gamma_num_{k + 1}"] = self.ctx_gamma_num[k]
        with atomic_path(p, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NGramModel:
        """Read a model written by `save`."""
        with np.load(path, allow_pickle=False) as z:
            fmt = str(z["format"]) if "format" in z else None
            if fmt != FORMAT:
                raise ParameterError(f"{path}: not a {FORMAT} file (format={fmt!r})")
            order = len(z["discounts"])
            return cls(
                vocab_size=int(z["vocab_size"]),
                keys=[z[f"keys_{k}"] for k in range(1, order + 1)],
                counts=[z[f"counts_{k}"] for k in range(1, order + 1)],
                discounts=z["discounts"],
                ctx_total=[z[f"ctx_total_{k}"] for k in range(1, order + 1)],
                ctx_gamma_num=[z[f"ctx_gamma_num_{k}"] for k in range(1, order + 1)],
                allpad=[int(a) for a in z["allpad"]],
            )


def load(path: str | os.PathLike[str]) -> NGramModel:
    """Read a model written by `NGramModel.save`."""
    return NGramModel.load(path)


def _check_order_vocab(order: int, vocab_size: int) -> None:
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise ParameterError(f"order must be an integer >= 1, got {order!r}")
    if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
        raise ParameterError(f"vocab_size must be an integer >= 1, got {vocab_size!r}")


def choose_order(train: Sequence[np.ndarray], valid: Sequence[np.ndarray], vocab_size: int,
                 orders: Iterable[int] = range(2, 9)) -> tuple[NGramModel, dict[int, float]]:
    """Fit every order in ``orders`` on ``train`` and return the one with the lowest mean NLL
    on ``valid``, with ``{order: valid NLL}``.  Counting is done once, at the highest order;
    each lower-order model is cut from those counts (identical to fitting it alone)."""
    orders = sorted(set(int(o) for o in orders))
    if not orders:
        raise ParameterError("choose_order: orders is empty")
    for o in orders:
        _check_order_vocab(o, vocab_size)
    seqs = [_check_tokens(s, vocab_size, "choose_order(train)") for s in train]
    valid = [_check_tokens(s, vocab_size, "choose_order(valid)") for s in valid]
    counts = _Counts(seqs, orders[-1], vocab_size)
    del seqs
    scores: dict[int, float] = {}
    best: NGramModel | None = None
    for o in orders:
        model = counts.model(o)
        scores[o] = model.mean_nll(valid)
        if best is None or scores[o] < scores[best.order]:
            best = model
    assert best is not None
    return best, scores
