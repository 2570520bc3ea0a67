import json

import pytest
import torch

from musegen import Clip, ParameterError
from musegen.examples import example_path
from musegen.generate import draw, filters
from musegen.studio import Studio
from musegen.tokenizer import Tokenizer
from musegen.tokenizer.vocab import Vocab


@pytest.fixture(scope="module")
def studio(tiny_model_dir):
    return Studio(model=tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def folk():
    return Clip.load(example_path("folk"))


def _pitches(takes):
    return [n.pitch for t in takes for n in t.clip.all_notes()]


# ------------------------------------------------------------------ filters, alone
def test_temperature_and_top_p():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    assert torch.allclose(draw.scale(logits, 2.0), logits / 2)
    with pytest.raises(ValueError, match="temperature"):
        draw.scale(logits, 0)
    with pytest.raises(ValueError, match="top_p.*1.5"):
        draw.check(1.0, 1.5)
    kept = draw.nucleus(logits, 0.7)
    # probabilities 0.64, 0.24, 0.09, 0.03: the nucleus for 0.7 is the first two tokens
    assert torch.isfinite(kept[0, :2]).all() and torch.isinf(kept[0, 2:]).all()
    assert torch.equal(draw.nucleus(logits, 1.0), logits)
    shuffled = logits[:, [2, 0, 3, 1]]  # the nucleus follows the tokens, not their places
    assert draw.outside_nucleus(shuffled.log_softmax(-1), 0.7).tolist() == [[True, False, True, False]]


def test_masks_key_and_range():
    v = Vocab()
    m = filters.pitch_class_mask(v, filters.scale_pitch_classes(2, "major"))  # D major
    allowed = {p % 12 for p in range(128) if m[v.id("pitch", p)]}
    assert allowed == {2, 4, 6, 7, 9, 11, 1}
    assert m[v.bar] and m[v.id("duration", 3)]  # other kinds untouched
    r = filters.pitch_range_mask(v, 60, 72)
    assert [p for p in range(128) if r[v.id("pitch", p)]] == list(range(60, 73))


def test_leap_mask():
    v = Vocab()
    m = filters.leap_mask(v, [60, None, 1], max_leap=2)
    assert [p for p in range(128) if m[0, v.id("pitch", p)]] == [58, 59, 60, 61, 62]
    assert m[1].all()  # no previous note: nothing cut
    assert [p for p in range(128) if m[2, v.id("pitch", p)]] == [0, 1, 2, 3]
    assert m[:, v.bar].all() and m[:, v.id("duration", 3)].all()  # other kinds untouched
    with pytest.raises(ValueError, match="-1"):
        filters.leap_mask(v, [60], -1)


def test_last_pitches_follow_tracks_and_skip_a_fill_suffix(studio):
    from musegen.generate.constraints import last_pitches

    tok = studio.tok
    v = tok.vocab
    tr, pi = (lambda i: v.id("track", i)), (lambda p: v.id("pitch", p))
    head = [v.bos, tr(0), v.id("program", 0), tr(1), v.id("program", 40)]
    ids = head + [v.bar, v.id("position", 0), pi(60), v.id("duration", 3), tr(1), pi(72),
                  v.id("duration", 3), v.bar, v.id("position", 0), pi(62), v.id("duration", 3)]
    assert last_pitches(tok, ids) == {0: 62, 1: 72}
    fim = ids + [v.fill, v.bar, v.id("position", 0), pi(40), v.id("duration", 3), v.fill_start]
    assert last_pitches(tok, fim) == {0: 62, 1: 72}  # the suffix's 40 does not count


def test_density_bias_and_avoid_tokens():
    v = Vocab()
    logits = torch.zeros(2, v.size)
    out = filters.density_bias(logits, v, torch.tensor([0, 8]), target=4)
    assert out[0, v.bar] < 0 and out[0, v.id("pitch", 60)] == 0  # too few notes: keep going
    assert out[1, v.id("pitch", 60)] < 0 and out[1, v.bar] == 0  # too many: close the bar
    av = filters.avoid_tokens(torch.zeros(2, 5), [[3], []], penalty=2.0)
    assert av[0, 3] == -2.0 and av[1].abs().sum() == 0


def test_draw_samples_the_top_p_nucleus_by_inverse_cdf():
    # probabilities 0.644, 0.237, 0.087, 0.032; the 0.7 nucleus is tokens 0 and 1: 0.731 / 0.269
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, float("-inf")]]).repeat(5, 1)
    u = torch.tensor([0.0, 0.72, 0.74, 0.999999, 1.0])
    assert draw.draw(logits, 1.0, 0.7, u).tolist() == [0, 0, 1, 1, 1]
    assert draw.draw(logits, 1.0, 1.0, u).tolist() == [0, 1, 1, 3, 3]  # never the -inf token
    # the empirical distribution is softmax(logits / t) cut to the nucleus
    g = torch.Generator().manual_seed(0)
    many = draw.draw(logits[:1].expand(20000, -1), 2.0, 0.9, torch.rand(20000, generator=g))
    p = torch.softmax(logits[0] / 2.0, -1)
    keep = (p.cumsum(-1) - p) < 0.9
    want = p * keep / (p * keep).sum()
    got = torch.bincount(many, minlength=5).float() / 20000
    assert (got - want).abs().max() < 0.015


def test_gumbel_noise_and_gumbel_max():
    """`draw.gumbel` is the lyric writer's noise bit for bit (same generator, same numbers), and
    `gumbel_max` draws from softmax(scores)."""
    scores = torch.randn(2, 7, generator=torch.Generator().manual_seed(1))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    u = torch.rand((2, 7), generator=g1).clamp_(1e-12, 1 - 1e-12)
    assert torch.equal(scores - torch.log(-torch.log(u)), scores + draw.gumbel((2, 7), g2))
    g = torch.Generator().manual_seed(0)
    sc = torch.tensor([1.0, 0.0, -1.0])
    got = torch.bincount(torch.tensor([draw.gumbel_max(sc, g) for _ in range(10000)]), minlength=3)
    assert (got / 10000 - sc.softmax(-1)).abs().max() < 0.02


def test_cached_masks_equal_fresh_ones(studio, folk):
    """The sampler memoises the grammar and the state constraints on a state key: walk real
    takes under constraints and compare every state's cached mask with a freshly built one."""
    from musegen.generate.constraints import Request, Row, SampleParams, StateMasks

    tok = studio.tok
    takes = studio.continue_(folk, bars=3, variations=3, seed=5)
    prompt = tok.encode(folk, eos=False)
    params = SampleParams(pitch_range=(55, 80), tracks=frozenset({0}), max_tokens_per_bar=6,
                          free_first_bar=True)
    masks = StateMasks.build(Request(tok, params, prompt))
    assert len(masks.rules) == 4  # key/range, meter, tracks, runaway bar
    everything = torch.ones(1, tok.vocab.size, dtype=torch.bool)
    n = 0
    for t in takes:
        row = Row(0, tok.validate(prompt), [])
        row.state.bars_left = 3
        for x in t.tokens:
            again = Row(1, row.state.copy(), [], row.bar_tokens, row.bar_notes)
            for r in (row, again):  # the second look-up is a cache hit
                assert torch.equal(masks.mask([r], everything)[0], masks.fresh(r))
            row.push(tok.grammar, int(x))
            n += 1
    assert n > 30 and 0 < len(masks.cache) < n


# ------------------------------------------------------------------ the engine
def test_continue_exact_bars_valid_and_seeded(studio, folk, tmp_path):
    takes = studio.continue_(folk, bars=4, variations=3, style="alpha", seed=11)
    again = studio.continue_(folk, bars=4, variations=3, style="alpha", seed=11)
    other = studio.continue_(folk, bars=4, variations=3, style="alpha", seed=12)
    assert [t.tokens for t in takes] == [t.tokens for t in again]
    assert [t.tokens for t in takes] != [t.tokens for t in other]
    tok = studio.tok
    for t in takes:
        assert t.clip.n_bars == 4 and t.seed >= 11 and t.model_id == studio.model_id
        ids = tok.encode(folk, eos=False).tolist() + list(t.tokens) + [tok.vocab.eos]
        tok.validate(ids)
    p = takes[0].save(tmp_path / "t.mid")
    side = json.loads(p.with_suffix(".json").read_text())
    assert side["seed"] == takes[0].seed and side["operation"] == "continue"
    assert Clip.load(p).n_bars == 4


@pytest.mark.parametrize("threads", [1, 2])
def test_decode_step_layouts_agree(studio, threads):
    """The decode step reads down_proj (out, in) with 2+ threads and 2+ rows, (in, out)
    otherwise; both give the same logits, and a given thread count the same bits each time."""
    from musegen.generate.decode import Decoder, DecodeWeights

    w = DecodeWeights.of(studio.model)
    before = torch.get_num_threads()
    torch.manual_seed(0)
    P, B = 10, 4
    ids = torch.randint(3, studio.tok.vocab.size, (1, P))
    sty = torch.randn(1, w.d) * 0.01
    steps = torch.randint(3, studio.tok.vocab.size, (6, B))

    def run(n: int) -> list[torch.Tensor]:
        torch.set_num_threads(n)
        dec = Decoder(w, 16)
        outs = [dec.start(ids, sty, torch.zeros(B, dtype=torch.long))]
        for t, col in enumerate(steps):
            if t == 4:
                dec.keep(torch.tensor([1]))  # one row: the (in, out) layout again
            outs.append(dec.step(col[1:2] if t >= 4 else col))
        return outs

    try:
        ref, got, again = run(1), run(threads), run(threads)
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(got, again))
    assert max((a - b).abs().max() for a, b in zip(ref, got)) < 1e-4


def test_constraints_are_respected(studio, folk):
    takes = studio.continue_(folk, bars=4, variations=4, seed=3, key="F major",
                             pitch_range=(60, 76), temperature=1.5)
    ps = _pitches(takes)
    assert ps and all(60 <= p <= 76 for p in ps)
    assert {p % 12 for p in ps} <= {5, 7, 9, 10, 0, 2, 4}


def test_scale_locks_to_the_scale_on_the_keys_tonic(studio, folk):
    """scale minor with key D: D minor (with both forms of its 6th and 7th: never Eb, F# or
    Ab); scale alone: C minor (never C#, E or F#)."""
    d_minor = _pitches(studio.continue_(folk, bars=2, variations=2, seed=3, key="D", scale="minor",
                                        temperature=1.5))
    assert d_minor and not {p % 12 for p in d_minor} & {3, 6, 8}
    [take] = studio.continue_(folk, bars=2, variations=1, seed=3, scale="minor", temperature=1.5)
    assert not {p % 12 for p in _pitches([take])} & {1, 4, 6} and take.params["scale"] == "minor"
    with pytest.raises(ParameterError, match="scale must be 'major' or 'minor', got 'dorian'"):
        studio.continue_(folk, bars=1, variations=1, scale="dorian")


def _largest_leap(studio, prompt, takes):
    """Largest step between consecutive notes of a one-track clip's takes, in the order they
    were drawn (a clip sorts a chord's notes by pitch), from the prompt's last note on."""
    pitch = studio.tok.vocab.ranges["pitch"]
    out = 0
    for t in takes:
        ps = [prompt.tracks[0].notes[-1].pitch] + [x - pitch.start for x in t.tokens if x in pitch]
        out = max([out] + [abs(a - b) for a, b in zip(ps, ps[1:])])
    return out


def test_max_leap_bounds_every_step_of_a_track(studio, folk):
    free = studio.continue_(folk, bars=4, variations=4, seed=5, temperature=1.5)
    tight = studio.continue_(folk, bars=4, variations=4, seed=5, temperature=1.5, max_leap=3)
    assert _largest_leap(studio, folk, free) > 3  # the tiny model leaps freely...
    assert _largest_leap(studio, folk, tight) <= 3  # ...and not at all past the bound, from the prompt on
    assert all(t.params["max_leap"] == 3 and t.clip.n_bars == 4 for t in tight)
    # with a key lock and range that leave no pitch within reach, the lock wins, not a crash
    odd = studio.continue_(folk, bars=2, variations=2, seed=1, max_leap=0, key="C major",
                           pitch_range=(60, 72))
    assert all(60 <= p <= 72 and p % 12 in (0, 2, 4, 5, 7, 9, 11) for p in _pitches(odd))


def test_density_moves_note_counts(studio, folk):
    sparse = studio.continue_(folk, bars=4, variations=4, seed=5, density=1)
    dense = studio.continue_(folk, bars=4, variations=4, seed=5, density=12)
    assert sum(t.clip.n_notes for t in dense) > sum(t.clip.n_notes for t in sparse)


def test_regenerate_keeps_the_outside_and_never_repeats(studio, folk):
    first = studio.regenerate(folk, bars=(3, 4), variations=2, seed=7)
    second = studio.regenerate(folk, bars=(3, 4), variations=2, seed=7)  # same seed again
    # folk is longer than the tiny model's context: the bars around 3-4 are its prompt, and
    # every note outside the region is the clip's own
    q = folk
    outside = [(n.pitch, n.start_tick, n.velocity, n.duration_ticks) for n in q.all_notes()
               if not q.bar_starts[2] <= n.start_tick < q.bar_starts[4]]
    for t in first + second:
        assert t.clip.n_bars == folk.n_bars and t.bars == (2, 4)
        kept = [(n.pitch, n.start_tick, n.velocity, n.duration_ticks) for n in t.clip.all_notes()
                if not q.bar_starts[2] <= n.start_tick < q.bar_starts[4]]
        assert kept == outside
    assert {t.tokens for t in second}.isdisjoint({t.tokens for t in first})


def test_blend_morph_and_flags(studio):
    b = studio.blend(None, styles={"alpha": 1.3, "beta": -0.3}, bars=2, variations=2, seed=1)
    assert all(t.params["extrapolated"] for t in b) and all(t.clip.n_bars == 2 for t in b)
    ok = studio.blend(None, styles={"alpha": 0.5, "beta": 0.5}, bars=2, variations=1, seed=1)
    assert not ok[0].params["extrapolated"]
    m = studio.morph(None, "alpha", "gamma", steps=3, bars=2, seed=4)
    assert [t.params["styles"]["gamma"] for t in m] == [0.0, 0.5, 1.0]
    s = studio.blend(None, styles={"alpha": 0.5, "beta": 0.5}, slerp=True, bars=1,
                     variations=1, seed=1)
    assert s[0].clip.n_bars == 1


@pytest.mark.parametrize("kw, match", [
    ({"bars": 0}, "bars"), ({"bars": 10**6}, "bars"), ({"variations": 0}, "variations"),
    ({"temperature": -1}, "temperature"), ({"temperature": float("nan")}, "temperature"),
    ({"style": "nope"}, "unknown style"), ({"key": "H major"}, "key"),
    ({"pitch_range": (80, 60)}, "pitch_range"), ({"colour": 3}, "unknown parameter"),
    ({"max_leap": -2}, "max_leap.*-2"), ({"max_leap": 2.5}, "max_leap.*2.5"),
])
def test_absurd_parameters_name_the_value(studio, folk, kw, match):
    args = {"bars": 2, "variations": 1, **kw}
    with pytest.raises(ParameterError, match=match):
        studio.continue_(folk, **args)


def test_styles_listing_and_map(studio, tmp_path):
    names = [s.name for s in studio.styles]
    assert names == ["alpha", "beta", "gamma"]
    assert studio.styles[0].vector.shape == (studio.model.cfg.d_model,)
    png = studio.style_map(tmp_path / "map.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tokenizer_grammar_holds_for_many_takes(studio, folk):
    """A sweep over styles and parameters: every take decodes to exactly the bars asked."""
    tok: Tokenizer = studio.tok
    n = 0
    for seed, style in enumerate(["alpha", "beta", "gamma", None]):
        for temp in (0.7, 1.3):
            takes = studio.continue_(folk, bars=3, variations=4, seed=seed, style=style,
                                     temperature=temp)
            for t in takes:
                assert t.clip.n_bars == 3
                n += 1
    assert n == 32
    assert tok.vocab.size == studio.model.cfg.vocab_size


def test_keep_rhythm_changes_only_pitches(studio, folk):
    q = studio.tok.quantize(folk)
    lo, hi = q.bar_starts[2], q.bar_starts[4]
    orig = [(n.start_tick, n.duration_ticks) for n in q.all_notes() if lo <= n.start_tick < hi]
    takes = studio.regenerate(folk, bars=(3, 4), variations=3, seed=9, keep_rhythm=True)
    for t in takes:
        assert [(n.start_tick, n.duration_ticks) for n in t.clip.all_notes()
                if lo <= n.start_tick < hi] == orig
    assert len({tuple(n.pitch for n in t.clip.all_notes()) for t in takes}) == 3


def test_every_take_reports_novelty(studio, folk):
    takes = studio.continue_(folk, bars=4, variations=2, seed=2)
    for t in takes:
        assert t.novelty is not None and t.novelty.longest_run >= 0
        assert t.sidecar()["novelty"]["longest_run"] == t.novelty.longest_run


def test_max_copy_resamples_takes_that_copy(studio, folk, monkeypatch):
    from dataclasses import replace

    real_check = studio.novelty_index.check
    calls = {"n": 0}

    def check(clip):  # the first two takes checked look like copies of a training piece
        calls["n"] += 1
        nov = real_check(clip)
        return replace(nov, longest_run=40, piece="planted") if calls["n"] <= 2 else nov

    monkeypatch.setattr(studio.novelty_index, "check", check)
    takes = studio.continue_(folk, bars=2, variations=2, seed=1, max_copy=12)
    assert all(t.params.get("resampled") == 1 for t in takes)
    assert all(t.novelty.longest_run <= 12 for t in takes) and calls["n"] == 4


def test_takes_copying_12_notes_are_drawn_again_by_default(studio, folk, monkeypatch):
    from dataclasses import replace

    real_check = studio.novelty_index.check
    calls = {"n": 0}

    def check(clip):  # the first take checked copies exactly 12 notes of a training piece
        calls["n"] += 1
        nov = real_check(clip)
        return replace(nov, longest_run=12, piece="planted") if calls["n"] == 1 else nov

    monkeypatch.setattr(studio.novelty_index, "check", check)
    takes = studio.continue_(folk, bars=2, variations=2, seed=1)
    assert takes[0].params["max_copy"] == 11 and takes[0].params.get("resampled") == 1
    assert "resampled" not in takes[1].params and calls["n"] == 3
    calls["n"] = 0  # asked to keep every draw: the copy is kept (and reported)
    kept = studio.continue_(folk, bars=2, variations=2, seed=1, max_copy=10_000)
    assert kept[0].novelty.longest_run == 12 and "resampled" not in kept[0].params


def test_planted_copy_is_reported(studio):
    # a training piece itself, checked as if it were a take: the index names it
    from musegen.examples import example_path

    clip = Clip.load(example_path("chorale")).slice_bars(0, 8)
    nov = studio.novelty_index.check(clip)
    assert nov.longest_run >= 12 and nov.piece == "chorale"


def test_guidance_and_a_sliding_window_stay_valid_and_seeded(studio, folk):
    """style_strength != 1 decodes conditional and unconditional rows side by side; takes
    longer than half the context slide the cache window. Both keep the grammar, the bar
    count and the seed's take."""
    kw = dict(bars=6, variations=3, style="alpha", seed=21, style_strength=2.5)
    takes = studio.continue_(folk, **kw)
    assert [t.tokens for t in takes] == [t.tokens for t in studio.continue_(folk, **kw)]
    tok = studio.tok
    prompt = tok.encode(folk, eos=False).tolist()
    for t in takes:
        assert t.clip.n_bars == 6
        tok.validate(prompt + list(t.tokens) + [tok.vocab.eos])
    assert max(len(t.tokens) for t in takes) > studio.model.cfg.context // 2  # it slid


def test_regenerated_bars_join_their_neighbours_within_the_seam_leap(studio, folk):
    takes = studio.regenerate(folk, bars=(3, 4), variations=4, seed=2)
    lo, hi, last_bar = folk.bar_starts[2], folk.bar_starts[4], folk.bar_starts[3]
    for t in takes:
        assert t.params["seam_leap"] == 7
        for tr in t.clip.tracks:
            before = [n for n in tr.notes if n.start_tick < lo]
            inside = [n for n in tr.notes if lo <= n.start_tick < hi]
            after = [n for n in tr.notes if n.start_tick >= hi]
            if before and inside:
                assert abs(inside[0].pitch - before[-1].pitch) <= 7
            for n in (n for n in inside if n.start_tick >= last_bar):
                assert not after or abs(n.pitch - after[0].pitch) <= 7
    wild = studio.regenerate(folk, bars=(3, 4), variations=4, seed=2, seam_leap=127)
    assert wild[0].params["seam_leap"] == 127
    assert [t.clip for t in wild] != [t.clip for t in takes]  # the tiny model leaps when let
