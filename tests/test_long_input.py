"""Long inputs (issue 12, section 4): only what the model can see is encoded, so a 10^6-note file
continues in seconds with the same take its last bars give, and a cancel stops it at once.
The tokenizer's bar-range encoding is checked against the whole sequence on real files."""

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from symusic import Score

from musegen import Clip, Note, Track
from musegen.examples import example_path
from musegen.generate.sampler import SampleParams, sample
from musegen.studio import Studio
from musegen.tokenizer import Tokenizer, codec
from musegen.tokenizer.grammar import Grammar
from tests.conftest import REALWORLD
from tests.test_osc import Client, done_of, error_of, make_server

FILES = [*REALWORLD, example_path("folk"), example_path("chorale")]


@pytest.fixture(scope="module")
def studio(tiny_model_dir):
    return Studio(model=tiny_model_dir, device="cpu", threads=1)


def million_note_midi(path: Path) -> Path:
    """10^6 notes, 7,813 bars of 4/4: 16 chords of 8 notes a bar (written with symusic's
    numpy interface, in a fraction of a second)."""
    from symusic import Note as SNote
    from symusic import Tempo, TimeSignature
    from symusic import Track as STrack

    i = np.arange(10**6)
    bar, k = i // 128, i % 128
    times = (bar * 1920 + (k // 8) * 120).astype(np.int32)
    pitches = (48 + (k % 8) * 5 + bar % 7).astype(np.int8)
    score = Score(480)
    track = STrack("long", 0, False)
    track.notes = SNote.from_numpy(times, np.full(len(i), 100, np.int32), pitches,
                                   np.full(len(i), 80, np.int8), "tick")
    score.tracks.append(track)
    score.tempos.append(Tempo(0, 120.0))
    score.time_signatures.append(TimeSignature(0, 4, 4))
    path.write_bytes(bytes(score.dumps_midi()))
    return path


# ----------------------------------------------------------------- the tokenizer
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_encoding_bars_equals_the_whole_sequence_restarted_there(path):
    tok = Tokenizer()
    clip = Clip.load(path)
    whole = tok.encode(clip, eos=False)
    offs = tok.bar_offsets(whole)
    n = clip.n_bars
    for first in sorted({0, 1, n // 3, n - 1}):
        for end in sorted({first + 1, (first + n) // 2 + 1, n}):
            got = tok.encode(clip, eos=False, bars=(first, end))
            cut = whole[:offs[end]] if end < len(offs) else whole
            assert np.array_equal(got, tok.restart_at_bar(cut, first)), (first, end)


def test_encode_and_validate_stop_when_cancelled():
    notes = tuple(Note(60 + i % 12, 80, i * 120, 100) for i in range(50_000))
    clip = Clip(tracks=(Track(notes),))
    tok = Tokenizer()
    calls = []

    def cancel_on_second_call() -> bool:
        calls.append(1)
        return len(calls) >= 2

    with pytest.raises(InterruptedError):
        tok.encode(clip, cancelled=cancel_on_second_call)
    assert len(calls) == 2  # asked every few thousand notes, stopped at once
    ids = tok.encode(clip)
    calls.clear()
    with pytest.raises(InterruptedError):
        tok.validate(ids, cancelled=cancel_on_second_call)
    assert len(calls) == 2


@pytest.mark.parametrize("max_leap", [None, 3])
@pytest.mark.parametrize("path", [example_path("folk"), REALWORLD[1], REALWORLD[5]],
                         ids=lambda p: getattr(p, "name", p))
def test_the_last_bars_give_the_same_take_as_the_whole_clip(studio, path, max_leap):
    """The model sees at most its context: a prompt of the last bars holding that many tokens
    gives exactly the take the whole clip gives (same seed, same tokens)."""
    tok, v = studio.tok, studio.tok.vocab
    clip = Clip.load(path)
    whole = tok.encode(clip, eos=False).astype(np.int64)
    latest = None
    if max_leap is not None:  # every track's last pitch must be in the prompt too
        latest = min(int(np.searchsorted(clip.bar_starts, t.notes[-1].start_tick, "right")) - 1
                     for t in clip.tracks if t.notes)
    tail, first = tok.encode_tail(clip, studio.model.cfg.context, eos=False, latest=latest)
    tail = tail.astype(np.int64)
    assert first > 0 and len(tail) < len(whole) / 2  # these clips are longer than the context
    styles = studio.style_vector("alpha").expand(3, -1)
    params = SampleParams(max_leap=max_leap)
    runs = [sample(studio.model, tok, p, tok.validate(p), styles, 2, [5, 6, 7], params,
                   forced=[v.bar]).tokens for p in (whole, tail)]
    assert [list(t) for t in runs[0]] == [list(t) for t in runs[1]]


def test_the_bars_around_a_region_fit_the_budget(studio):
    tok = studio.tok
    folk = Clip.load(example_path("folk"))
    short = folk.slice_bars(0, 4)
    ids, lo, hi = tok.encode_around(short, 1, 3, 1000)  # fits: the whole clip
    assert (lo, hi) == (0, 4) and np.array_equal(ids, tok.encode(short, eos=False))
    ids, lo, hi = tok.encode_around(folk, 20, 22, 128)
    assert 0 < lo < 20 and 22 < hi < folk.n_bars  # bars on both sides of 21-22
    assert np.array_equal(ids, tok.encode(folk, eos=False, bars=(lo, hi)))
    takes = studio.regenerate(folk, bars=(21, 22), variations=1, seed=3)
    assert takes[0].bars == (20, 22) and takes[0].clip.n_bars == folk.n_bars


# ------------------------------------------------------- 10^6 notes over OSC
def test_a_million_note_file_continues_in_seconds_and_cancels_at_once(tmp_path, studio,
                                                                       monkeypatch):
    inbox = tmp_path / "in"
    inbox.mkdir()
    million_note_midi(inbox / "long.mid")
    encoded = []  # bars of each encode, tokens of each prompt checked
    quantize, validate = codec.quantize, Grammar.validate

    def counting_quantize(clip, v, **kw):
        q = quantize(clip, v, **kw)
        encoded.append(len(q.bar_sigs))
        return q

    def counting_validate(self, ids, **kw):
        encoded.append(-len(ids))
        return validate(self, ids, **kw)

    monkeypatch.setattr(codec, "quantize", counting_quantize)
    monkeypatch.setattr(Grammar, "validate", counting_validate)
    server, session = make_server(tmp_path, inbox, studio)
    c = Client(server.address)
    try:
        t0 = time.monotonic()
        msgs = c.request("/musegen/continue", 1, "path", "long.mid", "bars", 1, "variations", 1,
                         "seed", 3, timeout=120)
        took = time.monotonic() - t0
        _, tid, path = done_of(msgs)
        assert Clip.load(path).n_bars == 1 and session.take(session.take(tid).parent).n_notes == 10**6
        assert took < 15, f"a 1-bar continuation of 10^6 notes took {took:.1f} s"
        # what was encoded: a few of the 7,813 bars, and prompts of about the model's context
        assert encoded and max(encoded) <= 16 and -min(encoded) <= 4 * studio.model.cfg.context, encoded
        # the same take as from its last 8 bars alone (the model sees no more than those)
        score = Score(str(inbox / "long.mid"))
        last8 = score.clip(7805 * 1920, 7813 * 1920, clip_end=False).shift_time(-7805 * 1920)
        again = studio.continue_(Clip.from_symusic(last8), bars=1, variations=1, seed=3)
        def notes(c):  # as a multiset: the file's order of equal onsets and pitches may differ
            return sorted((n.start_tick, n.pitch, n.duration_ticks, n.velocity) for n in c.all_notes())
        assert notes(Clip.load(path)) == notes(again[0].clip)

        # cancelled while reading the file, while parsing it, and while generating
        for rid, when in ((2, 0.3), (3, 1.5), (4, "generating")):
            c.send("/musegen/continue", rid, "path", "long.mid", "bars", 64, "variations", 8)
            if when == "generating":
                deadline = time.monotonic() + 60
                while not any(a == "/musegen/progress" and args[0] == rid and args[1] > 0
                              for a, args in c.inbox):
                    c.pump()
                    assert time.monotonic() < deadline
            else:
                time.sleep(when)
            c.send("/musegen/cancel", 100 + rid, "request", rid)
            t0 = time.monotonic()
            assert error_of(c.wait(rid, timeout=10)) == "cancelled while generating"
            assert done_of(c.wait(100 + rid, timeout=10)) == [100 + rid, rid]
            assert time.monotonic() - t0 < 2, f"cancel {rid} took {time.monotonic() - t0:.1f} s"
        assert len(done_of(c.request("/musegen/continue", 5, "bars", 1, "variations", 1,
                                     timeout=60))) == 3
        imports = [t for t in session.takes() if t.operation == "import"]
        assert len(imports) == 1
    finally:
        c.close()
        server.stop()
        session.close()
    shutil.rmtree(inbox)
