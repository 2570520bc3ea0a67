"""A model told the key (issue 16): every generation path passes each row's key vector."""

import numpy as np
import pytest
import torch

from musegen import Clip, Studio
from musegen.model import key_row
from musegen.tokenizer import Tokenizer
from musegen.train import TrainConfig, export, new_model, train

from .conftest import REALWORLD


@pytest.fixture(scope="module")
def keyed_dir(tmp_path_factory):
    tok = Tokenizer()
    pieces = [(i % 2, tok.encode(Clip.load(p))) for i, p in enumerate(REALWORLD)
              if len(Clip.load(p).tracks) <= 16]
    torch.manual_seed(0)
    model = new_model(tok, ["alpha", "beta"], d_model=32, n_layers=2, n_heads=2, d_ff=64,
                      context=256, n_keys=24)
    out = tmp_path_factory.mktemp("keyed")
    train(model, tok, pieces, [], TrainConfig(steps=6, batch_size=4, context=256, warmup=1),
          out / "run", device="cpu")
    return export(model, out / "model", tok, [{"name": "alpha"}, {"name": "beta"}])


def test_each_row_gets_its_key_vector(keyed_dir, monkeypatch):
    studio = Studio(keyed_dir, device="cpu", threads=1)
    engine = studio.engine
    seen = []
    real = engine.keyed

    def spy(vecs, sp, n):
        out = real(vecs, sp, n)
        seen.append((vecs.clone(), out.clone(), sp.phrase))
        return out

    monkeypatch.setattr(engine, "keyed", spy)
    clip = Clip.load(REALWORLD[0])
    takes = studio.continue_(clip, bars=1, variations=2, seed=3, style="alpha", key="D minor")
    assert len(takes) == 2 and all(t.clip.n_bars >= 1 for t in takes)
    vecs, out, phrase = seen[-1]
    table = engine.model.keys.weight.detach()
    row = key_row((2, "minor"))
    assert phrase.key == (2, "minor")
    assert torch.allclose(out - vecs, table[row].expand_as(vecs), atol=1e-6)


def test_from_nothing_each_row_is_told_the_key_it_drew(keyed_dir, monkeypatch):
    studio = Studio(keyed_dir, device="cpu", threads=1)
    engine = studio.engine
    seen = []
    real = engine.keyed
    monkeypatch.setattr(engine, "keyed", lambda v, sp, n: seen.append((v, sp)) or real(v, sp, n))
    takes = studio.continue_(None, bars=1, variations=3, seed=5, style="alpha")
    assert len(takes) == 3
    vecs, sp = seen[-1]
    out = real(vecs, sp, 3)
    table = engine.model.keys.weight.detach()
    for i in range(3):
        want = key_row(sp.phrase.key_of(i) if sp.phrase is not None else None)
        assert torch.allclose(out[i] - vecs[i], table[want], atol=1e-6)


def test_a_model_not_told_the_key_is_left_alone(tiny_model_dir):
    engine = Studio(tiny_model_dir, device="cpu", threads=1).engine
    assert engine.model.keys is None
    vecs = torch.randn(2, engine.model.cfg.d_model)
    from musegen.generate.sampler import SampleParams

    assert engine.keyed(vecs, SampleParams(), 2) is vecs
    assert np.isfinite(vecs.numpy()).all()
