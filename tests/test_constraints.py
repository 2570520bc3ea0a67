"""Each sampling constraint alone (`musegen/generate/constraints.py`), the grammar's unchecked
step, and the pipeline: one more constraint is one class and one entry in `CONSTRAINTS`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musegen import Clip
from musegen.errors import TokenizeError
from musegen.examples import example_path
from musegen.generate import constraints as C
from musegen.generate.constraints import Request, Row, SampleParams
from musegen.tokenizer import Tokenizer
from musegen.tokenizer.grammar import AFTER_PITCH, DONE


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


@pytest.fixture(scope="module")
def prompt(tok):
    """Track 0 a piano, track 1 drums; one bar so far whose last note is a C4 (60)."""
    v = tok.vocab
    head = [v.bos, v.id("track", 0), v.id("program", 0), v.id("track", 1), v.id("program", 128)]
    bar = [v.bar, v.id("timesig", v.time_signatures.index((4, 4))), v.id("tempo", 10),
           v.id("position", 0), v.id("pitch", 60), v.id("duration", 3)]
    return np.array(head + bar, dtype=np.int64)


def row(tok, prompt, extra=(), *, index=0, bars_left=4, bar_tokens=0, bar_notes=0) -> Row:
    """A row after `prompt` (then counting `bars_left` bars) and the drawn tokens `extra`."""
    s = tok.validate(prompt)
    s.bars_left = bars_left
    for t in extra:
        tok.grammar.step(s, t)
    return Row(index, s, list(extra), bar_tokens, bar_notes)


def everything(tok, n=1) -> torch.Tensor:
    return torch.ones(n, tok.vocab.size, dtype=torch.bool)


def grammar(tok, *rows) -> torch.Tensor:
    return torch.stack([torch.from_numpy(tok.grammar.allowed(r.state)) for r in rows])


def pitches(tok, m) -> list[int]:
    p = tok.vocab.ranges["pitch"]
    return [i for i in range(tok.vocab.n_pitches) if m[p.start + i]]


# ------------------------------------------------------------------ the grammar
def test_advance_is_step_without_the_check(tok):
    ids = tok.encode(Clip.load(example_path("chorale")))
    a, b = tok.grammar.initial(), tok.grammar.initial()
    for t in ids:
        tok.grammar.step(a, int(t))
        tok.grammar.advance(b, int(t))
    assert a == b and a.phase == DONE
    v = tok.vocab
    s = tok.validate([v.bos, v.id("track", 0), v.id("program", 0), v.bar])
    pitch = v.id("pitch", 60)  # a note needs its POSITION first: step refuses, advance takes it
    with pytest.raises(TokenizeError, match="may not follow"):
        tok.grammar.step(s.copy(), pitch)
    tok.grammar.advance(s, pitch)
    assert s.phase == AFTER_PITCH


# ------------------------------------------------------------------ state constraints
def test_key_and_range_spare_drum_tracks(tok, prompt):
    v = tok.vocab
    c_major = frozenset({0, 2, 4, 5, 7, 9, 11})
    c = C.KeyAndRange.build(Request(tok, SampleParams(pitch_classes=c_major, pitch_range=(60, 72)),
                                    prompt))
    piano, drums = row(tok, prompt), row(tok, prompt, [v.id("track", 1)])
    m = c.mask([piano, drums], everything(tok, 2))
    assert pitches(tok, m[0]) == [60, 62, 64, 65, 67, 69, 71, 72]
    assert pitches(tok, m[1]) == list(range(128))
    assert m[:, v.bar].all() and m[:, v.id("duration", 3)].all()  # other kinds untouched
    assert c.key(piano) != c.key(drums)
    assert C.KeyAndRange.build(Request(tok, SampleParams(), prompt)) is None


def test_meter_lock_frees_only_the_first_bar_when_asked(tok, prompt):
    v = tok.vocab
    meter = [v.id("timesig", 0), v.id("tempo", 3)]
    first, second = row(tok, prompt), row(tok, prompt, [v.bar])  # in bar 1 / at bar 2's head
    free = C.MeterLock.build(Request(tok, SampleParams(free_first_bar=True), prompt))
    locked = C.MeterLock.build(Request(tok, SampleParams(), prompt))
    m = free.mask([first, second], everything(tok, 2))
    assert m[0, meter].all() and not m[1, meter].any()
    assert not locked.mask([first], everything(tok))[0, meter].any()
    assert C.MeterLock.build(Request(tok, SampleParams(lock_meter=False), prompt)) is None


def test_tracks_make_a_row_switch_before_its_notes(tok, prompt):
    v = tok.vocab
    c = C.Tracks.build(Request(tok, SampleParams(tracks=frozenset({1})), prompt))
    on0, on1 = row(tok, prompt), row(tok, prompt, [v.id("track", 1)])
    m = c.mask([on0, on1], everything(tok, 2))
    assert not pitches(tok, m[0]) and not m[0, v.id("velocity", 2)]  # track 0: no note here
    assert m[0, v.id("track", 1)] and not m[0, v.id("track", 0)] and not m[0, v.id("track", 2)]
    assert pitches(tok, m[1]) == list(range(128))
    assert C.Tracks.build(Request(tok, SampleParams(), prompt)) is None


def test_runaway_bar_leaves_only_the_close(tok, prompt):
    v = tok.vocab
    c = C.RunawayBar.build(Request(tok, SampleParams(max_tokens_per_bar=5), prompt))
    long, short = row(tok, prompt, bar_tokens=5), row(tok, prompt, bar_tokens=4)
    last = row(tok, prompt, bars_left=0, bar_tokens=5)  # the last bar: EOS closes it too
    m = c.mask([long, short, last], grammar(tok, long, short, last))
    assert m[0].nonzero().flatten().tolist() == [v.bar]
    assert torch.equal(m[1], grammar(tok, short)[0])
    assert m[2].nonzero().flatten().tolist() == sorted([v.bar, v.eos])
    mid_note = row(tok, prompt, [v.id("position", 6), v.id("pitch", 62)], bar_tokens=9)
    g = grammar(tok, mid_note)  # only a duration may follow a pitch: nothing to close yet
    assert torch.equal(c.mask([mid_note], g), g)


def test_state_masks_fall_back_to_the_grammar_and_pad_when_done(tok, prompt):
    v = tok.vocab
    # tracks {5}: a row on track 0 may neither play nor switch (track 5 is not declared)
    sm = C.StateMasks.build(Request(tok, SampleParams(tracks=frozenset({5})), prompt))
    stuck = row(tok, prompt, [v.id("position", 6)])
    assert torch.equal(sm.mask([stuck], everything(tok))[0], grammar(tok, stuck)[0])
    done = row(tok, prompt)
    done.state.phase = DONE
    assert sm.fresh(done).nonzero().flatten().tolist() == [v.pad]


# ------------------------------------------------------------------ constraints with memory
def test_keep_rhythm_copies_all_but_the_pitches(tok, prompt):
    v = tok.vocab
    template = [v.id("position", 6), v.id("pitch", 64), v.id("duration", 3)]
    c = C.KeepRhythm.build(Request(tok, SampleParams(), prompt, template=template))
    at_start, at_pitch = row(tok, prompt), row(tok, prompt, template[:1])
    past = row(tok, prompt, template)
    low = grammar(tok, at_pitch)
    low[0, v.id("pitch", 66):] = False  # what the constraints before it left
    assert c.mask([at_start], grammar(tok, at_start))[0].nonzero().flatten().tolist() == [template[0]]
    assert pitches(tok, c.mask([at_pitch], low)[0]) == list(range(66))
    assert c.mask([past], grammar(tok, past))[0].nonzero().flatten().tolist() == [v.bar]
    assert C.KeepRhythm.build(Request(tok, SampleParams(), prompt)) is None


def test_max_leap_follows_each_row_and_spares_drums(tok, prompt):
    v = tok.vocab
    c = C.MaxLeap.build(Request(tok, SampleParams(max_leap=3), prompt))
    a, b = row(tok, prompt, index=0), row(tok, prompt, index=1)
    drums = row(tok, prompt, [v.id("track", 1)], index=2)
    m = c.mask([a, b, drums], everything(tok, 3))
    assert pitches(tok, m[0]) == pitches(tok, m[1]) == list(range(57, 64))  # from the prompt's 60
    assert pitches(tok, m[2]) == list(range(128))
    c.advance([a], [v.id("pitch", 70)])  # row 0 played a 70 (b did not)
    m = c.mask([a, b], everything(tok, 2))
    assert pitches(tok, m[0]) == list(range(67, 74)) and pitches(tok, m[1]) == list(range(57, 64))
    high = everything(tok)
    high[0, v.ranges["pitch"].start:v.id("pitch", 80)] = False  # nothing within reach is left
    assert torch.equal(c.mask([b], high), high)  # the other masks win, not a track change
    assert C.MaxLeap.build(Request(tok, SampleParams(), prompt)) is None


def test_density_biases_toward_its_target(tok, prompt):
    v = tok.vocab
    c = C.Density.build(Request(tok, SampleParams(density=4), prompt))
    few, many = row(tok, prompt, bar_notes=0), row(tok, prompt, bar_notes=8)
    out = c.bias([few, many], torch.zeros(2, v.size))
    assert out[0, v.bar] < 0 and out[0, v.id("pitch", 60)] == 0  # too few notes: keep going
    assert out[1, v.id("pitch", 60)] < 0 and out[1, v.bar] == 0  # too many: close the bar
    assert c.mask([few], everything(tok)).all()  # a bias, no mask
    assert C.Density.build(Request(tok, SampleParams(), prompt)) is None


def test_avoid_earlier_penalises_an_old_path_while_a_row_follows_it(tok, prompt):
    v = tok.vocab
    old = [v.id("position", 6), v.id("pitch", 64), v.id("duration", 3)]
    c = C.AvoidEarlier.build(Request(tok, SampleParams(avoid_penalty=2.0), prompt, earlier=[old]))
    r, other = row(tok, prompt, index=0), row(tok, prompt, index=1)

    def penalised(x: Row) -> list[int]:
        return (c.bias([x], torch.zeros(1, v.size))[0] < 0).nonzero().flatten().tolist()

    assert penalised(r) == [old[0]]
    r.push(tok.grammar, old[0])
    c.advance([r], [old[0]])
    assert penalised(r) == [old[1]]  # still on the old path
    r.push(tok.grammar, v.id("pitch", 65))
    c.advance([r], [v.id("pitch", 65)])
    assert penalised(r) == []  # left it: free
    assert penalised(other) == [old[0]]  # per row
    assert C.AvoidEarlier.build(Request(tok, SampleParams(), prompt)) is None


# ------------------------------------------------------------------ the pipeline
def test_pipeline_skips_a_constraint_that_would_leave_a_row_nothing(tok, prompt, monkeypatch):
    class Nothing(C.Constraint):
        @classmethod
        def build(cls, req: Request) -> C.Constraint:
            return cls()

        def mask(self, rows, allowed):
            return torch.zeros_like(allowed)

    monkeypatch.setattr(C, "CONSTRAINTS", (*C.CONSTRAINTS, Nothing))
    pipe = C.Pipeline(Request(tok, SampleParams(), prompt))
    assert isinstance(pipe.constraints[-1], Nothing)
    r = row(tok, prompt)
    _, allowed = pipe.apply([r], torch.zeros(1, tok.vocab.size))
    assert torch.equal(allowed[0], grammar(tok, r)[0])


def test_pipeline_masks_then_biases(tok, prompt):
    v = tok.vocab
    pipe = C.Pipeline(Request(tok, SampleParams(pitch_range=(60, 72), density=4), prompt))
    assert [type(c).__name__ for c in pipe.constraints] == ["StateMasks", "Density"]
    r = row(tok, prompt)
    logits, allowed = pipe.apply([r], torch.zeros(1, v.size))
    g = grammar(tok, r)[0]
    assert not (allowed[0] & ~g).any()  # never outside the grammar
    assert pitches(tok, allowed[0]) == list(range(60, 73))
    assert torch.isinf(logits[0, ~allowed[0]]).all() and torch.isfinite(logits[0, allowed[0]]).all()
    assert logits[0, v.bar] < 0  # the density bias, on an allowed token


def test_a_new_constraint_is_one_class_and_one_line(tiny_model_dir, monkeypatch):
    from musegen.studio import Studio

    class NoPitchAbove66(C.Constraint):
        @classmethod
        def build(cls, req: Request) -> C.Constraint:
            return cls()

        def mask(self, rows, allowed):
            out = allowed.clone()
            out[:, self.high] = False
            return out

        high = slice(Tokenizer().vocab.id("pitch", 67), Tokenizer().vocab.ranges["pitch"].stop)

    studio = Studio(model=tiny_model_dir, device="cpu")
    folk = Clip.load(example_path("folk"))
    kw = dict(bars=3, variations=3, seed=4, temperature=1.5)
    free = [n.pitch for t in studio.continue_(folk, **kw) for n in t.clip.all_notes()]
    monkeypatch.setattr(C, "CONSTRAINTS", (*C.CONSTRAINTS, NoPitchAbove66))
    capped = [n.pitch for t in studio.continue_(folk, **kw) for n in t.clip.all_notes()]
    assert max(free) > 66 and capped and max(capped) <= 66
