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
    a, sa, _ = make_batch(tok, pieces, cfg, 7)
    b, sb, _ = make_batch(tok, pieces, cfg, 7)
    c, _, _ = make_batch(tok, pieces, cfg, 8)
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


# ----------------------------------------------------------------------------- issue 16: balance, keys
def test_balanced_exposure_lifts_the_small_style(tok, pieces):
    from musegen.train import style_shares

    lopsided = [p for p in pieces if p[0] == 0] * 9 + [p for p in pieces if p[0] == 1]
    plain, balanced = style_shares(lopsided, None), style_shares(lopsided, 0.3)
    assert abs(sum(balanced.values()) - 1) < 1e-9
    assert balanced[1] > plain[1] * 1.5  # the small style: seen far more often
    flat = style_shares(lopsided, 0.0)
    assert abs(flat[0] - 0.5) < 1e-9  # alpha 0: every style alike
    cfg = TrainConfig(batch_size=64, context=64, style_alpha=0.0, style_dropout=0.0)
    _, styles, _ = make_batch(tok, lopsided, cfg, 3)
    assert 16 < int((styles == 2).sum()) < 48  # about half the rows from the small style


def test_key_rows_move_with_transposition():
    from musegen.model import key_row
    from musegen.train import shift_key_row

    c_major, a_minor = key_row((0, "major")), key_row((9, "minor"))
    assert (c_major, a_minor, key_row(None)) == (1, 22, 0)
    assert shift_key_row(c_major, 2) == key_row((2, "major"))
    assert shift_key_row(a_minor, 5) == key_row((2, "minor"))  # A minor up a fourth: D minor
    assert shift_key_row(a_minor, -10) == key_row((11, "minor"))
    assert shift_key_row(0, 3) == 0


def test_a_batch_carries_each_windows_key(tok, pieces):
    from musegen.clip import estimate_key, parse_key
    from musegen.model import key_row
    from musegen.train import piece_key_rows

    rows = piece_key_rows(tok, pieces)
    assert rows[0] == key_row(parse_key(estimate_key(tok.decode(pieces[0][1]).pitched_notes())))
    cfg = TrainConfig(batch_size=8, context=256, key_dropout=0.0, transpose_range=(0, 0))
    ids, _, keys = make_batch(tok, pieces, cfg, 1, key_rows=rows)
    assert keys.shape == ids.shape
    bos = tok.vocab.bos
    for r in range(len(ids)):
        starts = (ids[r] == bos).nonzero().flatten().tolist()
        for a, b in zip(starts, starts[1:] + [len(ids[r])]):
            assert len(set(keys[r, a:b].tolist())) == 1  # one key per packed window
    assert set(keys.unique().tolist()) <= set(rows.tolist())
    # transposed windows carry the moved key; with dropout 1 every window is "unknown"
    moved = TrainConfig(batch_size=8, context=256, key_dropout=0.0, transpose_range=(3, 4))
    _, _, k3 = make_batch(tok, pieces, moved, 1, key_rows=rows)
    assert not torch.equal(k3, keys)
    none = TrainConfig(batch_size=8, context=256, key_dropout=1.0)
    assert int(make_batch(tok, pieces, none, 1, key_rows=rows)[2].max()) == 0


def test_a_model_told_the_key_learns_saves_and_loads_it(tok, pieces, tmp_path):
    torch.manual_seed(0)
    m = new_model(tok, ["a", "b"], n_keys=24, **TINY)
    cfg = TrainConfig(steps=4, batch_size=4, context=96, warmup=1, eval_every=4, ckpt_every=4)
    before = m.keys.weight.detach().clone()
    st = train(m, tok, pieces, pieces[:2], cfg, tmp_path / "run", device="cpu")
    assert st.evals and not torch.equal(before, m.keys.weight.detach())  # the table learned
    export(m, tmp_path / "model", tok, [{"name": "a"}, {"name": "b"}])
    back, _ = load_checkpoint(tmp_path / "model")
    assert back.cfg.n_keys == 24 and torch.equal(back.keys.weight, m.keys.weight.detach())
    ids = torch.from_numpy(pieces[0][1][:64].astype(np.int64))[None]
    style = back.style_vectors(torch.tensor([1]))
    told = back(ids, style + back.key_vectors(torch.tensor([5])))
    assert not torch.allclose(told, back(ids, style))  # the key changes what it predicts
    # the language-model file stays a plain Llama: no key table in it
    from safetensors.torch import load_file

    assert not any(k.startswith("keys.") for k in load_file(str(tmp_path / "model" / "model.safetensors")))
