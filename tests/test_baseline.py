"""Tests of the interpolated modified Kneser-Ney n-gram baseline (musegen.baseline)."""

from collections import Counter, defaultdict

import numpy as np
import pytest

from musegen import baseline
from musegen.baseline import FALLBACK_DISCOUNTS, NGramModel, choose_order, kn_discounts, load
from musegen.errors import ParameterError


# ----------------------------------------------------------------------------- reference
def _ref_discounts(counts):
    n = Counter(min(c, 5) for c in counts if c > 0)
    n1, n2, n3, n4 = n[1], n[2], n[3], n[4]
    if min(n1, n2, n3, n4) == 0:
        return FALLBACK_DISCOUNTS
    y = n1 / (n1 + 2 * n2)
    d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if not (0 < d[0] <= 1 and 0 < d[1] <= 2 and 0 < d[2] <= 3):
        return FALLBACK_DISCOUNTS
    return d


class RefKN:
    """Textbook interpolated modified KN with plain dicts: each sequence padded with order-1
    PAD (= vocab_size) tokens, seq[0] never predicted, PAD-initial n-grams keep raw counts."""

    def __init__(self, seqs, order, vocab):
        self.order, self.vocab, pad = order, vocab, vocab
        raw = [Counter() for _ in range(order + 1)]
        for s in seqs:
            padded = [pad] * (order - 1) + [int(t) for t in s]
            for i in range(order, len(padded)):  # targets: s[1:]
                for k in range(1, order + 1):
                    raw[k][tuple(padded[i - k + 1:i + 1])] += 1
        self.c = [None] * (order + 1)
        self.c[order] = dict(raw[order])
        for k in range(1, order):
            left = defaultdict(set)
            for g in raw[k + 1]:
                left[g[1:]].add(g[0])
            self.c[k] = {g: (n if g[0] == pad else len(left[g])) for g, n in raw[k].items()}
        self.d, self.tot, self.gam = [None], [None], [None]
        for k in range(1, order + 1):
            d = _ref_discounts(list(self.c[k].values()))
            tot, gam = defaultdict(float), defaultdict(float)
            for g, n in self.c[k].items():
                tot[g[:-1]] += n
                gam[g[:-1]] += d[min(n, 3) - 1]
            self.d.append(d)
            self.tot.append(tot)
            self.gam.append(gam)

    def prob(self, w, context):
        hist = tuple([self.vocab] * (self.order - 1) + [int(t) for t in context])
        p = 1.0 / self.vocab
        for k in range(1, self.order + 1):
            h = hist[len(hist) - (k - 1):]
            tot = self.tot[k].get(h, 0.0)
            if tot > 0:
                n = self.c[k].get(h + (w,), 0)
                disc = self.d[k][min(n, 3) - 1] if n else 0.0
                p = (max(n - disc, 0.0) + self.gam[k][h] * p) / tot
        return p

    def token_nll(self, seq):
        return np.array([-np.log(self.prob(int(seq[i]), seq[:i])) for i in range(1, len(seq))])


# ----------------------------------------------------------------------------- data
def _markov_corpus(rng, n_seqs, vocab, bos=0, lo=3, hi=40):
    """Sequences from a sparse random 2nd-order chain: plenty of repeated n-grams."""
    nxt = rng.integers(1, vocab, size=(vocab, vocab, 3))
    out = []
    for _ in range(n_seqs):
        s = [bos, int(rng.integers(1, vocab))]
        for _ in range(int(rng.integers(lo, hi))):
            s.append(int(nxt[s[-2], s[-1], rng.integers(0, 3)]) if rng.random() < 0.9
                     else int(rng.integers(1, vocab)))
        out.append(np.array(s, dtype=np.int64))
    return out


def _periodic_corpus(rng, n_seqs, vocab=20, period=7, noise=0.1, length=200):
    """(train, held-out) noisy repetitions of one random motif, each at a random phase."""
    motif = rng.integers(1, vocab, size=period)
    return [_periodic(rng, motif, vocab, noise, length) for _ in range(n_seqs)], \
        [_periodic(rng, motif, vocab, noise, length) for _ in range(max(n_seqs // 4, 1))]


def _periodic(rng, motif, vocab, noise, length):
    period = len(motif)
    s = np.roll(np.tile(motif, length // period + 2), int(rng.integers(period)))[:length]
    flip = rng.random(length) < noise
    s[flip] = rng.integers(1, vocab, size=int(flip.sum()))
    return np.concatenate([[0], s]).astype(np.int64)


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    vocab = 9
    train = _markov_corpus(rng, 40, vocab)
    train += [np.array([0]), np.array([0, 5]), np.array([], dtype=np.int64)]  # edge lengths
    test = _markov_corpus(rng, 8, vocab)
    test.append(np.array([0, 8, 8, 8, 7, 1, 2]))
    return train, test, vocab


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_matches_bruteforce_reference(tiny, order):
    train, test, vocab = tiny
    model = NGramModel.fit(train, order=order, vocab_size=vocab)
    ref = RefKN([s for s in train if len(s)], order, vocab)
    for s in test:
        np.testing.assert_allclose(model.token_nll(s), ref.token_nll(s), rtol=0, atol=1e-9)
    rng = np.random.default_rng(order)
    for _ in range(10):
        ctx = rng.integers(0, vocab, size=int(rng.integers(1, 8)))
        want = np.array([ref.prob(w, ctx) for w in range(vocab)])
        np.testing.assert_allclose(model.next_token_probs(ctx), want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_probabilities_sum_to_one(tiny, order):
    train, test, vocab = tiny
    model = NGramModel.fit(train, order=order, vocab_size=vocab)
    rng = np.random.default_rng(10 + order)
    contexts = [np.array([], dtype=np.int64), np.array([0])]
    contexts += [s[:int(rng.integers(1, len(s) + 1))] for s in train[:20] if len(s)]  # seen
    contexts += [rng.integers(0, vocab, size=int(rng.integers(1, 12))) for _ in range(30)]
    for ctx in contexts:
        p = model.next_token_probs(ctx)
        assert p.shape == (vocab,)
        assert np.all(p > 0)
        assert abs(p.sum() - 1.0) < 1e-9


def test_normalisation_larger_vocab_with_unseen_tokens():
    rng = np.random.default_rng(1)
    train = _markov_corpus(rng, 60, 50)  # ids 0..49 only; vocab 500 leaves 450 unseen
    model = NGramModel.fit(train, order=4, vocab_size=500)
    for ctx in [train[0][:5], np.array([0, 499, 300]), np.array([499])]:
        assert abs(model.next_token_probs(ctx).sum() - 1.0) < 1e-9


def test_token_nll_agrees_with_next_token_probs(tiny):
    train, test, vocab = tiny
    model = NGramModel.fit(train, order=3, vocab_size=vocab)
    s = test[0]
    nll = model.token_nll(s)
    want = [-np.log(model.next_token_probs(s[:i])[s[i]]) for i in range(1, len(s))]
    np.testing.assert_allclose(nll, want, rtol=0, atol=1e-12)


def test_structure_higher_order_wins_on_held_out():
    rng = np.random.default_rng(2)
    train, valid = _periodic_corpus(rng, 60)
    nll1 = NGramModel.fit(train, order=1, vocab_size=20).mean_nll(valid)
    nll4 = NGramModel.fit(train, order=4, vocab_size=20).mean_nll(valid)
    assert nll4 < nll1 - 1.0, (nll1, nll4)


def test_choose_order_cuts_models_identical_to_separate_fits():
    rng = np.random.default_rng(3)
    train, valid = _periodic_corpus(rng, 40)
    best, scores = choose_order(train, valid, vocab_size=20, orders=range(1, 6))
    assert sorted(scores) == [1, 2, 3, 4, 5]
    assert best.order == min(scores, key=scores.get)
    for o, nll in scores.items():
        assert abs(NGramModel.fit(train, order=o, vocab_size=20).mean_nll(valid) - nll) < 1e-12
    assert scores[best.order] < scores[1]


def test_mean_nll_is_token_weighted(tiny, monkeypatch):
    train, test, vocab = tiny
    model = NGramModel.fit(train, order=3, vocab_size=vocab)
    per = np.concatenate([model.token_nll(s) for s in test])
    assert model.mean_nll(test) == pytest.approx(per.mean(), abs=1e-12)
    monkeypatch.setattr(baseline, "_EVAL_CHUNK_TOKENS", 30)  # many chunks, same answer
    assert model.total_nll(test) == pytest.approx((per.sum(), len(per)), abs=1e-9)


def test_save_load_roundtrip(tiny, tmp_path):
    train, test, vocab = tiny
    model = NGramModel.fit(train, order=4, vocab_size=vocab)
    path = model.save(tmp_path / "sub" / "kn4.npz")
    assert sorted(p.name for p in path.parent.iterdir()) == ["kn4.npz"]  # no temp left over
    for loaded in (load(path), NGramModel.load(path)):
        assert loaded.order == 4 and loaded.vocab_size == vocab
        for s in test:
            np.testing.assert_array_equal(loaded.token_nll(s), model.token_nll(s))


def test_unseen_tokens_get_finite_nll():
    train = [np.array([0, 1, 2, 1, 2, 1, 2])] * 5
    model = NGramModel.fit(train, order=3, vocab_size=500)
    nll = model.token_nll(np.array([0, 1, 2, 499, 300, 2, 1]))
    assert np.all(np.isfinite(nll)) and np.all(nll > 0)
    assert nll[2] > nll[0]  # the unseen token costs more than a well-seen one
    assert model.token_nll(np.array([7])).shape == (0,)  # BOS alone: nothing to predict


def test_invalid_input_is_rejected_with_the_bad_value():
    with pytest.raises(ParameterError, match="500"):
        NGramModel.fit([np.array([0, 500])], order=2, vocab_size=500)
    with pytest.raises(ParameterError, match="-1"):
        NGramModel.fit([np.array([0, -1])], order=2, vocab_size=500)
    with pytest.raises(ParameterError, match="order"):
        NGramModel.fit([np.array([0, 1])], order=0, vocab_size=500)
    with pytest.raises(ParameterError, match="predict"):
        NGramModel.fit([np.array([0])], order=2, vocab_size=500)
    model = NGramModel.fit([np.array([0, 1, 2])], order=2, vocab_size=3)
    with pytest.raises(ParameterError, match="3"):
        model.token_nll(np.array([0, 3]))


def test_kn_discounts():
    counts = np.array([1] * 10 + [2] * 5 + [3] * 3 + [4] * 2 + [9])
    y = 10 / (10 + 2 * 5)
    assert kn_discounts(counts) == pytest.approx(
        (1 - 2 * y * 5 / 10, 2 - 3 * y * 3 / 5, 3 - 4 * y * 2 / 3))
    assert kn_discounts(np.array([1, 1, 2])) == FALLBACK_DISCOUNTS  # n3 = n4 = 0
