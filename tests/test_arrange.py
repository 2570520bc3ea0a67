"""Arrange (issue 15): voices added around the musician's tracks, which stay note for note.

The pure parts (roles, plans, bad input) need no model; the rest runs the shipped model on
the bundled chorale's soprano, a few bars at a time, and the OSC address on the fake studio.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from musegen.arrange import added_roles, infer_roles, parse_add, plan, role_centres
from musegen.clip import Clip, Note, Track
from musegen.errors import ParameterError
from musegen.evaluation.musicianship import sounding
from musegen.examples import example_path
from musegen.generate.constraints import KeepVoices, KeptVoices, Request, SampleParams, template_notes
from musegen.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def chorale() -> Clip:
    return Clip.load(example_path("chorale"))


@pytest.fixture(scope="module")
def studio():
    from musegen.studio import Studio

    return Studio(device="cpu", threads=1)


def _melody(chorale: Clip) -> Clip:
    return replace(chorale, tracks=chorale.tracks[:1])


# ------------------------------------------------------------------ roles and plans
def test_roles_come_from_register(chorale):
    from musegen.generate.voices import load
    from musegen.studio import DEFAULT_MODEL_DIR

    centres = role_centres(load(DEFAULT_MODEL_DIR))
    assert infer_roles(chorale.tracks, centres) == ["soprano", "alto", "tenor", "bass"]
    assert infer_roles(chorale.tracks[3:], centres) == ["bass"]
    assert infer_roles(chorale.tracks[2:3], centres) == ["tenor"]
    assert infer_roles([chorale.tracks[0], chorale.tracks[3]], centres) == ["soprano", "bass"]


def test_satb_adds_what_is_missing_and_counts_pick_bass_first():
    assert added_roles(parse_add("satb"), ["soprano"]) == ["alto", "tenor", "bass"]
    assert added_roles(parse_add("satb"), ["soprano", "tenor", "bass"]) == ["alto"]
    assert added_roles(parse_add(1), ["soprano"]) == ["bass"]
    assert added_roles(parse_add("2"), ["soprano"]) == ["bass", "alto"]
    assert added_roles(parse_add("bass, counter"), ["soprano"]) == ["bass", "counter"]


def test_plan_orders_voices_high_to_low(chorale):
    voices = plan(chorale, "alto", keep=[0, 2, 3], roles=None, n_tracks=16)
    assert [(v.role, v.source) for v in voices] == [("soprano", 0), ("alto", None), ("tenor", 2), ("bass", 3)]


@pytest.mark.parametrize("clip_of, kw, message", [
    (lambda c: replace(c, tracks=(Track(()),)), {"add": "satb"}, "the clip has no notes"),
    (lambda c: c, {"add": "alto", "keep": [0, 1]}, "already has its alto"),
    (lambda c: c, {"add": 13}, "4 kept + 13 added = 17 tracks; the tokenizer holds at most 16"),
    (lambda c: replace(c, tracks=(replace(c.tracks[0], is_drum=True),)), {"add": "bass"}, "drum track"),
    (lambda c: c, {"add": "satb"}, "already hold soprano, alto, tenor and bass"),
    (lambda c: c, {"add": "bass", "keep": [7]}, "track 7 is not in the clip"),
    (lambda c: c, {"add": "bass", "keep": [0], "roles": ["bass"]}, "already has its bass"),
])
def test_bad_input_is_one_clear_error(chorale, clip_of, kw, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        plan(clip_of(chorale), kw["add"], kw.get("keep"), kw.get("roles"), n_tracks=16)


def test_bad_voice_names_are_refused_by_the_table():
    from musegen.params import check

    with pytest.raises(ParameterError, match="unknown voice 'bariton'"):
        check("arrange", {"add": "bariton"})
    with pytest.raises(ParameterError, match="unknown role 'boy'"):
        check("arrange", {"roles": "boy"})


# ------------------------------------------------------------------ the constraint
def test_keep_voices_forces_every_kept_note_on_any_logits(chorale):
    """With random logits (no model), the constraint alone puts every kept note in place."""
    from musegen.generate.constraints import Pipeline, Row

    tok = Tokenizer()
    v = tok.vocab
    layout = replace(chorale, tracks=(chorale.tracks[0], Track((), name="Alto"), chorale.tracks[2]))
    ids = tok.encode(layout, eos=False, bars=(0, 3)).astype(np.int64)
    prompt = tok.header(ids)
    forced, middle = tok.bar_tokens(ids, 0, 3)
    kept = KeptVoices(tuple(middle), frozenset({0, 2}))
    req = Request(tok, SampleParams(lock_meter=False), prompt, forced, kept=kept)
    pipe = Pipeline(req)
    assert any(isinstance(c, KeepVoices) for c in pipe.constraints)
    state = tok.grammar.validate(prompt)
    rows = [Row(i, state.copy(), list(forced)) for i in range(3)]
    for r in rows:
        r.state.bars_left = 3
        for t in forced:
            tok.grammar.step(r.state, t)
    gen = torch_random_walk(pipe, rows, tok, seed=5)
    for r in gen:
        toks = r.tokens[len(forced):]
        got = [n for n in template_notes(v, toks) if n[2] in (0, 2)]
        assert got == template_notes(v, middle)
        assert any(n[2] == 1 for n in template_notes(v, toks))  # the alto got notes
        tok.decode(np.concatenate([prompt, r.tokens, [v.eos]]))  # decodes


@pytest.mark.parametrize("foresight", [True, False])
def test_a_filled_alto_hears_the_kept_voices_it_is_written_before(chorale, monkeypatch, foresight):
    """Filling the alto of a chorale with random logits (no model): at an onset the token
    order writes the alto before the kept tenor and bass, yet it never crosses them or the
    soprano (nor holds a note across one that moves) and makes no parallel with them. Without
    the kept notes heard ahead (`foresight=False`: the arrangement before) it does."""
    from musegen.arrange import SATB_RANGES
    from musegen.evaluation import musicianship as M
    from musegen.generate.constraints import Pipeline, Row, VoiceLeading
    from musegen.generate.voices import VoicePlan

    if not foresight:
        monkeypatch.setattr(VoiceLeading, "_foreseen", lambda self, vs, at: vs)
        monkeypatch.setattr(VoiceLeading, "_held", lambda self, *a: None)
    tok = Tokenizer()
    v = tok.vocab
    bars = 4
    tracks = list(chorale.tracks[:4])
    layout = replace(chorale, tracks=(tracks[0], Track((), name="Alto"), tracks[2], tracks[3]))
    ids = tok.encode(layout, eos=False, bars=(0, bars)).astype(np.int64)
    prompt = tok.header(ids)
    forced, middle = tok.bar_tokens(ids, 0, bars)
    plan = VoicePlan(frozenset(range(4)), (0, 1, 2, 3), {1: SATB_RANGES["alto"]}, present=False)
    req = Request(tok, SampleParams(lock_meter=False, voices=plan), prompt, forced,
                  kept=KeptVoices(tuple(middle), frozenset({0, 2, 3})))
    pipe = Pipeline(req)
    state = tok.grammar.validate(prompt)
    rows = [Row(i, state.copy(), list(forced)) for i in range(4)]
    for r in rows:
        r.state.bars_left = bars
        for t in forced:
            tok.grammar.step(r.state, t)
    crossed = parallels = 0
    for r in torch_random_walk(pipe, rows, tok, seed=11):
        clip = tok.decode(np.concatenate([prompt, r.tokens, [v.eos]]))
        assert clip.tracks[1].notes
        pair = replace(clip, tracks=clip.tracks[:3])  # soprano, alto, tenor
        crossed += M.voice_crossing_share(pair, [0, 1, 2]) > 0
        parallels += M.parallel_fifths_per_bar(clip) + M.parallel_octaves_per_bar(clip) > 0
    if foresight:
        assert crossed == 0 and parallels == 0
    else:
        assert crossed + parallels > 0


def torch_random_walk(pipe, rows, tok, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    active = list(rows)
    for _ in range(5000):
        logits = torch.randn(len(active), tok.vocab.size, generator=g)
        logits[:, tok.vocab.ranges["pitch"]] += 2.0  # plenty of added notes
        masked, allowed = pipe.apply(active, logits)
        nxt = masked.argmax(1).tolist()
        for r, t in zip(active, nxt):
            assert allowed[active.index(r), t]
            r.push(tok.grammar, t)
        pipe.advance(active, nxt)
        active = [r for r in active if not r.done]
        if not active:
            break
    assert not active
    return rows


# ------------------------------------------------------------------ with the shipped model
def test_arrange_a_melody_keeps_it_note_for_note(studio, chorale):
    melody = _melody(chorale)
    takes = studio.arrange(melody, add="satb", style="bach-chorale", bars=(1, 3), variations=2, seed=3)
    assert len(takes) == 2
    for t in takes:
        assert [tr.name for tr in t.clip.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
        assert t.clip.tracks[0].notes == melody.tracks[0].notes
        assert "kept_tokens_lost" not in t.params
        end = chorale.bar_starts[3]
        for tr in t.clip.tracks[1:]:
            assert tr.notes and all(n.start_tick < end and n.end_tick <= end for n in tr.notes)
        assert t.operation == "arrange" and t.params["add"] == ["alto", "tenor", "bass"]
        assert t.bars == (0, 3) and t.sidecar()["params"]["roles"] == ["soprano", "alto", "tenor", "bass"]
        # where the melody strikes, every added voice sounds (holds or strikes): no melody over rests
        for n in melody.tracks[0].notes:
            if n.start_tick < end:
                assert all(sounding(tr, n.start_tick) is not None for tr in t.clip.tracks[1:]), n
    again = studio.arrange(melody, add="satb", style="bach-chorale", bars=(1, 3), variations=2, seed=3)
    assert [t.tokens for t in again] == [t.tokens for t in takes]


def test_fill_one_inner_voice_of_a_later_bar_range(studio, chorale):
    takes = studio.arrange(chorale, keep=[0, 2, 3], add="alto", bars=(3, 4), variations=1, seed=1,
                           style="bach-chorale")
    t = takes[0]
    assert [tr.notes for i, tr in enumerate(t.clip.tracks) if i != 1] == \
        [chorale.tracks[i].notes for i in (0, 2, 3)]
    lo, hi = chorale.bar_starts[2], chorale.bar_starts[4]
    assert t.clip.tracks[1].notes and all(lo <= n.start_tick < hi for n in t.clip.tracks[1].notes)


@pytest.fixture(scope="module")
def palestrina(tmp_path_factory) -> Clip:
    """Bars 5-8 of Palestrina's Agnus Dei (music21's corpus), its voices high to low."""
    import music21

    from musegen.evaluation.musicianship import voice_order

    music21.defaults.ticksPerQuarter = 480
    path = tmp_path_factory.mktemp("palestrina") / "agnus_02.mid"
    mf = music21.midi.translate.streamToMidiFile(music21.corpus.parse("palestrina/agnus_02"))
    mf.open(str(path), "wb")
    mf.write()
    mf.close()
    clip = Tokenizer().quantize(Clip.load(path)).slice_bars(4, 8)
    return replace(clip, tracks=tuple(clip.tracks[i] for i in voice_order(clip)))


def test_a_renaissance_texture_missing_a_voice_is_filled(studio, palestrina):
    """A Palestrina texture with its second voice removed: the others stay note for note,
    the filled voice sounds in every bar, between its neighbours (benchmark: section 6 of
    benchmarks/results/arrange.md)."""
    from benchmarks.arrange import filled_crossings

    n = len(palestrina.tracks)
    assert n >= 4 and all(t.notes for t in palestrina.tracks)
    keep = [i for i in range(n) if i != 1]
    t = studio.arrange(palestrina, keep=keep, add=1, style="renaissance-mass", variations=1, seed=4)[0]
    added = t.params["roles"].index(t.params["add"][0])
    kept = [tr.notes for i, tr in enumerate(t.clip.tracks) if i != added]
    first = lambda ns: (ns[0].start_tick, ns[0].pitch)  # noqa: E731 - the tracks' order may differ
    assert sorted(kept, key=first) == sorted((palestrina.tracks[i].notes for i in keep), key=first)
    filled = t.clip.tracks[added].notes
    starts = palestrina.bar_starts
    assert all(any(starts[b] <= x.start_tick < starts[b + 1] or x.start_tick < starts[b] < x.end_tick
                   for x in filled) for b in range(palestrina.n_bars))
    assert filled_crossings(t.clip, added) <= 0.05


def test_an_arrangement_of_a_take_has_it_as_parent(studio, chorale):
    base = studio.continue_(_melody(chorale), bars=2, variations=1, seed=2)[0]
    take = studio.arrange(base, add="bass", variations=1, seed=2)[0]
    assert take.parent == base.id
    assert take.clip.tracks[0].notes == base.clip.tracks[0].notes
    assert [tr.name for tr in take.clip.tracks][-1] == "Bass"


def test_studio_refuses_bad_input_with_one_error(studio, chorale):
    with pytest.raises(ParameterError, match="no notes"):
        studio.arrange(replace(chorale, tracks=(Track(()),)), add="bass")
    with pytest.raises(ParameterError, match="already has its soprano"):
        studio.arrange(_melody(chorale), add="soprano")
    with pytest.raises(ParameterError, match="at most 16"):
        studio.arrange(_melody(chorale), add=16)
    drums = replace(chorale, tracks=(Track((Note(36, 90, 0, 240),), is_drum=True),))
    with pytest.raises(ParameterError, match="drum track"):
        studio.arrange(drums, add="satb")
    with pytest.raises(ParameterError, match="bars 9..12 outside the clip's bars 1..9"):
        studio.arrange(_melody(chorale), bars=(9, 12))


# ------------------------------------------------------------------ CLI and OSC
def test_cli_arrange_writes_takes(tmp_path, chorale):
    from bridges.cli import main

    src = tmp_path / "mel.mid"
    _melody(chorale).save(src)
    out = tmp_path / "out"
    rc = main(["arrange", str(src), "--add", "bass", "--bars", "1-2", "--variations", "1", "--seed", "4",
               "--threads", "1", "--out", str(out)])
    assert rc == 0
    got = Clip.load(out / "mel-arrange-1.mid")
    assert len(got.tracks) == 2 and got.tracks[0].notes == Clip.load(src).tracks[0].notes


def test_osc_arrange_replies_like_the_other_generating_addresses(tmp_path):
    from tests.fakes import FakeStudio, fake_clip
    from tests.test_osc import Client, done_of, error_of, make_server

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    fake_clip(4, 0, pitch=70, velocity=90, duration=240).save(inbox / "mel.mid")
    studio = FakeStudio()
    server, session = make_server(tmp_path, inbox, studio)
    c = Client(server.address)
    try:
        msgs = c.request("/musegen/arrange", 1, "path", str(inbox / "mel.mid"), "add", "satb",
                         "style", "alpha", "variations", 2, "bars", "1-2")
        _, first, *paths = done_of(msgs)
        assert len(paths) == 2 and sum(a == "/musegen/take" for a, _ in msgs) == 2
        rec = session.take(first)
        assert rec.operation == "arrange" and session.take(rec.parent).operation == "import"
        clip, bars, style, kw = studio.calls[-1]
        assert bars == (1, 2) and style == "alpha" and kw["add"] == "satb"
        assert "missing parameter 'take or path'" in error_of(c.request("/musegen/arrange", 2, "add", "bass"))
        assert "unknown voice" in error_of(c.request("/musegen/arrange", 3, "take", first, "add", "x"))
    finally:
        c.close()
        server.stop()
        session.close()
