import numpy as np
import pytest
import torch

from musegen import Clip
from musegen.model import MusegenLM, load_checkpoint
from musegen.tokenizer import Tokenizer
from musegen.train import TrainConfig, export, make_batch, make_window, new_model, train

from .conftest import REALWORLD

TINY = {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64}


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


@pytest.fixture(scope="module")
def pieces(tok):
    out = []
    for i, p in enumerate(REALWORLD):
        c = Clip.load(p)
        if len(c.tracks) <= 16:
            out.append((i % 2, tok.encode(c)))
    return out


def tiny(tok, seed=0):
    torch.manual_seed(seed)
    return new_model(tok, ["a", "b"], **TINY)


def test_windows_follow_the_grammar(tok, pieces):
    rng = np.random.default_rng(0)
    n_fim = 0
    for k in range(300):
        ids = pieces[k % len(pieces)][1]
        w = make_window(tok, ids, rng, 200, fim=k % 2 == 0, max_fim_bars=4)
        fim = tok.vocab.fill in w
        n_fim += fim
        tok.validate(w, fim=fim)
        assert len(w) <= 200
    assert n_fim > 100


def test_batches_are_a_function_of_seed_and_step(tok, pieces):
    cfg = TrainConfig(batch_size=4, context=128)
    a, sa = make_batch(tok, pieces, cfg, 7)
    b, sb = make_batch(tok, pieces, cfg, 7)
    c, _ = make_batch(tok, pieces, cfg, 8)
    assert torch.equal(a, b) and torch.equal(sa, sb) and not torch.equal(a, c)


def test_training_reduces_loss(tok, pieces, tmp_path):
    m = tiny(tok)
    cfg = TrainConfig(steps=40, batch_size=8, context=128, lr=3e-3, warmup=5, eval_every=40,
                      ckpt_every=40, transpose_range=(0, 0))
    st = train(m, tok, pieces, pieces[:2], cfg, tmp_path, device="cpu")
    first = np.mean([h["loss"] for h in st.history[:5]])
    last = np.mean([h["loss"] for h in st.history[-5:]])
    assert last < first - 0.5, (first, last)
    assert st.evals and set(st.evals[-1]["valid_nll"]) <= {0, 1}


def test_interrupt_and_resume_equals_uninterrupted(tok, pieces, tmp_path):
    cfg = TrainConfig(steps=6, batch_size=4, context=96, warmup=2, eval_every=100, ckpt_every=1)
    straight = tiny(tok)
    s1 = train(straight, tok, pieces, [], cfg, tmp_path / "a", device="cpu")
    killed = tiny(tok)
    train(killed, tok, pieces, [], cfg, tmp_path / "b", device="cpu", stop_after=3)
    resumed = tiny(tok, seed=123)  # fresh weights: everything must come from the checkpoint
    s2 = train(resumed, tok, pieces, [], cfg, tmp_path / "b", device="cpu")
    for (k, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), k
    assert [h["loss"] for h in s1.history] == pytest.approx([h["loss"] for h in s2.history])


def test_save_load_identical_logits_and_style_table(tok, tmp_path):
    m = tiny(tok).eval()
    export(m, tmp_path / "ck", tok, styles=[{"name": "a"}, {"name": "b"}])
    back, meta = load_checkpoint(tmp_path / "ck")
    assert back.cfg == m.cfg and meta["musegen_config"]["style_names"] == ["a", "b"]
    assert torch.equal(back.styles.weight, m.styles.weight)
    ids = torch.randint(3, tok.vocab_size, (2, 30))
    st = m.style_vectors(torch.tensor([1, 2]))
    with torch.no_grad():
        assert torch.equal(m(ids, st), back(ids, back.style_vectors(torch.tensor([1, 2]))))
    assert Tokenizer.load(tmp_path / "ck").vocab == tok.vocab


def test_hf_automodel_opens_the_lm_part(tok, tmp_path):
    from transformers import AutoModelForCausalLM

    m = tiny(tok).eval()
    export(m, tmp_path / "ck", tok, styles=[])
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "ck").eval()
    ids = torch.randint(3, tok.vocab_size, (2, 40))
    with torch.no_grad():
        ours = m(ids, torch.zeros(2, m.cfg.d_model))
        theirs = hf(ids).logits
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_style_mix_and_new_style(tok):
    m = tiny(tok)
    a, b = m.styles.weight[1], m.styles.weight[2]
    assert torch.allclose(m.styles.mix({0: 0.25, 1: 0.75}), 0.25 * a + 0.75 * b)
    assert torch.allclose(m.styles.mix({0: 1.0, 1: 0.0}, slerp=True), a, atol=1e-5)
    assert torch.allclose(m.styles.mix({0: 0.0, 1: 1.0}, slerp=True), b, atol=1e-5)
    idx = m.add_style("mine")
    assert idx == 2 and m.cfg.style_names == ("a", "b", "mine") and m.styles.weight.shape[0] == 4


def test_learning_a_style_changes_only_its_row(tok, pieces, tmp_path):
    m = tiny(tok)
    idx = m.add_style("mine")
    before = m.state_dict()
    before = {k: v.clone() for k, v in before.items()}
    cfg = TrainConfig(steps=3, batch_size=4, context=96, warmup=1, eval_every=100,
                      only_style=idx)
    train(m, tok, [(idx, p) for _, p in pieces], [], cfg, tmp_path, device="cpu")
    after = m.state_dict()
    for k in before:
        if k == "styles.weight":
            changed = (after[k] != before[k]).any(dim=1).tolist()
            assert changed == [False, False, False, True]
        else:
            assert torch.equal(after[k], before[k]), k


def test_model_is_a_plain_module():
    assert issubclass(MusegenLM, torch.nn.Module)


def test_fuse_is_kept_as_a_no_op_that_warns(tok):
    m = tiny(tok).eval()
    ids = torch.randint(3, tok.vocab_size, (2, 20))
    st = m.style_vectors(torch.tensor([1, 2]))
    with torch.no_grad():
        before = m(ids, st)
        with pytest.warns(DeprecationWarning, match="decode"):
            assert m.fuse() is m
        assert torch.equal(m(ids, st), before)


@pytest.mark.parametrize("row_prefix", [[0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 1], [2, 0, 1, 2]])
@pytest.mark.parametrize("lse_kernel", [True, False])
def test_cached_decoding_matches_the_reference_forward(tok, row_prefix, lse_kernel, monkeypatch):
    """The KV-cache equivalence test: the sampler's decode path (a prompt cache shared by rows
    or per-row caches, folded norms, interleaved rotary, rows leaving the batch) gives, at
    every step, the logits of `MusegenLM.forward` run uncached over each row's whole
    sequence so far; with the CPU flash kernel's log-sum-exp merge and with the plain-SDPA
    fallback other devices use."""
    from musegen.generate import decode
    from musegen.generate.decode import Decoder, DecodeWeights

    if not lse_kernel:
        monkeypatch.setattr(decode, "_flash", None)

    m = tiny(tok).eval()
    rp = torch.tensor(row_prefix)
    U, P = int(rp.max()) + 1, 12
    pids = torch.randint(3, tok.vocab_size, (U, P))
    pst = m.style_vectors(torch.arange(U) % 3)
    dec = Decoder(DecodeWeights.of(m), capacity=16)
    seqs, styles = pids[rp], pst[rp]  # each row's sequence so far and its style
    with torch.no_grad():
        errs = [(dec.start(pids, pst, rp) - m(pids, pst)[:, -1][rp]).abs().max()]
        for t in range(12):
            if t in (6, 9):  # rows 0 and 2 go on, then the second of them alone
                keep = torch.tensor([0, 2] if t == 6 else [1])
                dec.keep(keep)
                seqs, styles = seqs[keep], styles[keep]
            ids = torch.randint(3, tok.vocab_size, (len(seqs),))
            seqs = torch.cat([seqs, ids[:, None]], 1)
            errs.append((dec.step(ids) - m(seqs, styles)[:, -1]).abs().max())
    assert max(errs) < 1e-4
    assert dec.length == P + 12


def test_decode_weights_are_cached_for_the_model_not_in_it(tok):
    import gc
    import weakref

    from musegen.generate import decode

    m = tiny(tok).eval()
    w = decode.DecodeWeights.of(m)
    assert decode.DecodeWeights.of(m) is w and not any(isinstance(x, (tuple, decode.DecodeWeights))
                                                       for x in vars(m).values())
    gone = weakref.ref(w)
    del m, w
    gc.collect()
    assert gone() is None  # the cache does not keep a model's weights alive


def test_decode_weights_follow_the_parameters(tok):
    from musegen.generate.decode import DecodeWeights

    m = tiny(tok).eval()
    w = DecodeWeights.of(m)
    assert DecodeWeights.of(m) is w
    with torch.no_grad():
        m.model.layers[0].mlp.down_proj.weight.mul_(2)
    w2 = DecodeWeights.of(m)
    assert w2 is not w
    m.model.layers[0].mlp.down_proj.weight.data = torch.zeros_like(m.model.layers[0].mlp.down_proj.weight)
    assert DecodeWeights.of(m) is not w2
