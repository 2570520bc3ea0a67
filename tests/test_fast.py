"""The fast CPU path (ONNX Runtime, `musegen.generate.fast`): the same logits as the reference
forward, the same take for the same seed, a graph built once per model, and a missing runtime
falling back to torch with one warning."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from musegen import Clip, ParameterError
from musegen.examples import example_path
from musegen.generate import fast
from tests.test_model import tiny

needs_ort = pytest.mark.skipif(not fast.available(), reason="onnxruntime not installed (musegen[fast])")


@pytest.fixture(scope="module")
def tok():
    from musegen.tokenizer import Tokenizer

    return Tokenizer()


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSEGEN_HOME", str(tmp_path))  # graphs cached here, not in ~/.cache


@needs_ort
@pytest.mark.parametrize("row_prefix", [[0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 1], [2, 0, 1, 2]])
def test_fast_step_matches_the_reference_forward(tok, row_prefix):
    """At every step, through rows leaving the batch and the own-slot buffer growing, the ONNX
    step's logits are `MusegenLM.forward`'s run uncached over each row's whole sequence."""
    from musegen.generate.decode import DecodeWeights

    m = tiny(tok).eval()
    w = DecodeWeights.of(m)
    rp = torch.tensor(row_prefix)
    U, P = int(rp.max()) + 1, 12
    pids = torch.randint(3, tok.vocab_size, (U, P))
    pst = m.style_vectors(torch.arange(U) % 3)
    dec = fast.OrtDecoder(w, fast.CHUNK + 20, fast.Runtime.of(w, 1))  # one growth on the way
    seqs, styles = pids[rp], pst[rp]
    with torch.no_grad():
        errs = [(dec.start(pids, pst, rp) - m(pids, pst)[:, -1][rp]).abs().max()]
        for t in range(fast.CHUNK + 8):
            if t in (6, fast.CHUNK + 2):  # rows 0 and 2 go on, then the second of them alone
                keep = torch.tensor([0, 2] if t == 6 else [1])
                dec.keep(keep)
                seqs, styles = seqs[keep], styles[keep]
            ids = torch.randint(3, tok.vocab_size, (len(seqs),))
            seqs = torch.cat([seqs, ids[:, None]], 1)
            if t % 9 == 0 or t >= fast.CHUNK - 1:  # the reference is uncached: check some steps
                errs.append((dec.step(ids) - m(seqs, styles)[:, -1]).abs().max())
            else:
                dec.step(ids)
    assert max(errs) < 1e-4
    assert dec.length == P + fast.CHUNK + 8


@needs_ort
def test_fast_path_same_seed_same_take_and_valid(tiny_model_dir):
    from musegen.studio import Studio

    s = Studio(model=tiny_model_dir, device="cpu", threads=1, backend="onnx")
    assert s.backend == "onnx"
    folk = Clip.load(example_path("folk"))
    a = s.continue_(folk, bars=2, variations=3, seed=5, style_strength=1.5)  # guided: 2 prefixes
    b = s.continue_(folk, bars=2, variations=3, seed=5, style_strength=1.5)
    assert [t.tokens for t in a] == [t.tokens for t in b]
    assert all(t.clip.n_bars == 2 for t in a)


@needs_ort
def test_graph_is_built_once_per_model_and_cached_by_hash(tok, monkeypatch, tmp_path):
    from musegen.generate.decode import DecodeWeights

    w = DecodeWeights.of(tiny(tok).eval())
    path = fast.graph_path(w)
    assert path.parent == tmp_path / "onnx" and path.exists() and fast.weights_digest(w) in path.name
    monkeypatch.setattr(fast, "step_graph", lambda w: pytest.fail("built again"))
    assert fast.graph_path(w) == path  # a second use reads the cache
    other = DecodeWeights.of(tiny(tok, seed=1).eval())
    assert fast.weights_digest(other) != fast.weights_digest(w)  # other weights, another graph


def test_missing_runtime_falls_back_to_torch_with_one_warning(monkeypatch):
    monkeypatch.setattr(fast, "available", lambda: False)
    monkeypatch.setattr(fast, "_warned", [])
    cpu = torch.device("cpu")
    with pytest.warns(UserWarning, match="onnxruntime is not installed: decoding with torch") as rec:
        assert fast.resolve("onnx", cpu) == "torch"
        assert fast.resolve("auto", cpu) == "torch"
    assert len(rec) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fast.resolve("torch", cpu) == "torch"


def test_backend_choice(monkeypatch):
    cpu = torch.device("cpu")
    with pytest.raises(ParameterError, match="backend must be one of auto, torch, onnx, got 'tpu'"):
        fast.resolve("tpu", cpu)
    monkeypatch.setenv(fast.BACKEND_ENV, "torch")
    assert fast.resolve(None, cpu) == "torch"
    monkeypatch.setattr(fast, "available", lambda: True)
    assert fast.resolve("auto", cpu) == "auto"  # settled by the probe (fast.choose)
    assert fast.resolve("onnx", cpu) == "onnx"
    assert fast.resolve("auto", torch.device("meta")) == "torch"  # off the CPU: torch


@needs_ort
def test_probe_times_both_paths_on_the_real_weights(tok):
    from musegen.generate.decode import DecodeWeights

    rec = fast.probe(DecodeWeights.of(tiny(tok).eval()), 1)
    assert rec["torch_ms"] > 0 and rec["onnx_ms"] > 0
    assert rec["backend"] == ("onnx" if rec["onnx_ms"] < rec["torch_ms"] else "torch")


@needs_ort
@pytest.mark.parametrize("faster", ["torch", "onnx"])
def test_auto_takes_the_faster_path_measured_once_and_cached(tok, monkeypatch, faster):
    from musegen.generate.decode import DecodeWeights

    calls = []

    def fake_probe(w, threads):
        calls.append(threads)
        times = {"torch": 2.0, "onnx": 5.0} if faster == "torch" else {"torch": 5.0, "onnx": 2.0}
        return {"torch_ms": times["torch"], "onnx_ms": times["onnx"], "backend": faster}

    monkeypatch.setattr(fast, "probe", fake_probe)
    w = DecodeWeights.of(tiny(tok).eval())
    assert fast.choose(w, 1) == faster
    assert fast.choose(w, 1) == faster and calls == [1]  # the second is read from disk
    rec = json.loads(fast.choice_path(w, 1).read_text())
    assert rec["backend"] == faster and rec["threads"] == 1
    assert fast.choose(w, 2) == faster and calls == [1, 2]  # other threads: measured again
    fast.choice_path(w, 1).write_text("{not json")
    assert fast.choose(w, 1) == faster and calls == [1, 2, 1]  # unreadable: measured again


@needs_ort
def test_studio_auto_reports_the_probed_backend(tiny_model_dir, monkeypatch):
    from musegen.studio import Studio

    monkeypatch.setattr(fast, "probe", lambda w, threads: {"torch_ms": 1.0, "onnx_ms": 3.0,
                                                           "backend": "torch"})
    s = Studio(model=tiny_model_dir, device="cpu", threads=1, backend="auto")
    assert s.backend == "torch"
    takes = s.continue_(Clip.load(example_path("folk")), bars=1, variations=2, seed=3)
    assert all(t.clip.n_bars == 1 for t in takes)


def test_cpu_id_names_this_cpu():
    assert fast.cpu_id().strip(" |")
