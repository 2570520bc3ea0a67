"""Voice leading (`musegen.generate.voices` and the `VoiceLeading` constraint): each rule on a
small hand-made case, silent tracks kept in the prompt, and the shipped model on a real chorale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musegen import Clip
from musegen.clip import Track
from musegen.examples import example_path
from musegen.generate import constraints as C
from musegen.generate import voices as vl
from musegen.generate.constraints import Request, Row, SampleParams
from musegen.tokenizer import Tokenizer

TWO = vl.VoicePlan(frozenset({0, 1}), (0, 1), {})  # track 0 above track 1


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


def bar(v, *notes, sig=True):
    """One bar of (position, track, pitch, duration ticks), in stream order."""
    out = [v.bar] + ([v.id("timesig", v.time_signatures.index((4, 4))), v.id("tempo", 10)] if sig else [])
    pos, track = None, 0
    for p, t, pitch, d in notes:
        if p != pos:
            out.append(v.id("position", p))
            pos = p
        if t != track:
            out.append(v.id("track", t))
            track = t
        out += [v.id("pitch", pitch), v.id("duration", v.durations.index(d))]
    return out


def head(v, n=2):
    out = [v.bos]
    for i in range(n):
        out += [v.id("track", i), v.id("program", 0)]
    return out


def setup(tok, prompt, forced, plan=TWO, bars_left=2):
    """The constraint after `prompt` + `forced`, and a row standing there."""
    req = Request(tok, SampleParams(voices=plan), np.array(prompt, dtype=np.int64), forced)
    s = tok.validate(np.array(prompt + forced))
    s.bars_left = bars_left
    c = C.VoiceLeading.build(req)
    return c, Row(0, s, list(forced))


def allowed(tok, c, r):
    g = torch.from_numpy(tok.grammar.allowed(r.state))[None]
    return c.mask([r], g)[0]


def pitches(tok, m):
    p = tok.vocab.ranges["pitch"]
    return {i for i in range(128) if m[p.start + i]}


def test_a_parallel_fifth_cannot_be_drawn(tok):
    v = tok.vocab
    prompt = head(v) + bar(v, (0, 0, 67, 12), (0, 1, 60, 12))  # G over C: a fifth
    # the upper voice steps to A; the lower may not step to D (A over D: fifth again)
    c, r = setup(tok, prompt, bar(v, (12, 0, 69, 12), sig=False)[:-0 or None] + [v.id("track", 1)])
    got = pitches(tok, allowed(tok, c, r))
    assert 62 not in got and 50 not in got  # D, and D an octave down (a compound fifth)
    assert {60, 65, 64} <= got  # holding C, or moving to F or E, is fine


def test_consecutive_octaves_are_out_too(tok):
    v = tok.vocab
    prompt = head(v) + bar(v, (0, 0, 72, 12), (0, 1, 60, 12))  # C over C: an octave
    c, r = setup(tok, prompt, [v.bar, v.id("position", 12), v.id("pitch", 74),
                               v.id("duration", v.durations.index(12)), v.id("track", 1)])
    got = pitches(tok, allowed(tok, c, r))
    assert 62 not in got and 50 not in got and 60 in got


def test_a_crossing_cannot_be_drawn(tok):
    v = tok.vocab
    prompt = head(v) + bar(v, (0, 0, 67, 12), (0, 1, 60, 12))
    c, r = setup(tok, prompt, [v.bar, v.id("position", 0), v.id("pitch", 64),
                               v.id("duration", v.durations.index(12)), v.id("track", 1)])
    got = pitches(tok, allowed(tok, c, r))
    assert got and max(got) == 64  # the lower voice stays at or below the upper one's E


def test_the_upper_voice_stays_above_a_held_lower_note(tok):
    v = tok.vocab
    prompt = head(v) + bar(v, (0, 0, 67, 12), (0, 1, 60, 48))  # the lower voice holds C all bar
    c, r = setup(tok, prompt, [v.id("position", 12), v.id("track", 0)], bars_left=1)
    got = pitches(tok, allowed(tok, c, r))
    assert got and min(got) == 60


def test_an_overlap_inside_a_voice_cannot_be_drawn(tok):
    v = tok.vocab
    prompt = head(v) + bar(v, (0, 0, 67, 24), (0, 1, 60, 12))  # the upper voice holds to beat 3
    c, r = setup(tok, prompt, [v.bar, v.id("position", 0), v.id("pitch", 67),
                               v.id("duration", v.durations.index(24)), v.id("position", 12)],
                 bars_left=1)  # track 0 again holds E to beat 3; now at beat 2, on track 0
    m = allowed(tok, c, r)
    assert not pitches(tok, m)  # track 0 still sounds: no note for it here
    assert m[v.id("track", 1)]  # the lower voice, free, may play
    # and a second note for one voice at one onset (a chord inside a voice) is out
    c, r = setup(tok, prompt, [v.bar, v.id("position", 0), v.id("pitch", 67),
                               v.id("duration", v.durations.index(24)), v.id("position", 12),
                               v.id("track", 1), v.id("pitch", 62),
                               v.id("duration", v.durations.index(12))], bars_left=1)
    m = allowed(tok, c, r)
    assert not pitches(tok, m) and not m[v.id("track", 0)]
    # positions where every voice still holds are out
    c, r = setup(tok, head(v) + bar(v, (0, 0, 67, 24), (0, 1, 60, 36)), [], bars_left=1)
    c2, r2 = setup(tok, head(v) + bar(v, (0, 0, 67, 24), (0, 1, 60, 36)), [v.bar], bars_left=1)
    m = allowed(tok, c2, r2)
    assert all(m[v.id("position", p)] for p in range(0, 48))  # a new bar: both voices ended
    last = head(v) + bar(v, (0, 0, 67, 12), (0, 1, 60, 12)) + bar(v, (0, 0, 67, 24), (0, 1, 60, 36), sig=False)
    c, r = setup(tok, last, [], bars_left=0)
    m = allowed(tok, c, r)
    assert not any(m[v.id("position", p)] for p in range(1, 24)) and m[v.id("position", 24)]


def test_a_voice_keeps_its_range(tok):
    v = tok.vocab
    plan = vl.VoicePlan(frozenset({0, 1}), (0, 1), {0: (60, 72), 1: (40, 55)})
    prompt = head(v) + bar(v, (0, 0, 67, 12), (0, 1, 50, 12))
    c, r = setup(tok, prompt, [v.bar, v.id("position", 0)], plan)
    assert pitches(tok, allowed(tok, c, r)) == set(range(60, 73))


def test_a_silent_voice_must_enter_and_no_voice_is_dropped(tok):
    v = tok.vocab
    prompt = head(v) + bar(v, (0, 0, 67, 48))  # track 1 silent so far
    c, r = setup(tok, prompt, [v.bar, v.id("position", 0), v.id("pitch", 67),
                               v.id("duration", v.durations.index(48))], bars_left=1)
    m = allowed(tok, c, r)
    assert not m[v.bar] and m[v.id("track", 1)]  # closing would leave track 1 out two bars
    # the last bar of a take: every voice must have sounded in it
    prompt = head(v) + bar(v, (0, 0, 67, 48), (0, 1, 60, 48))
    c, r = setup(tok, prompt, [v.bar, v.id("position", 0), v.id("pitch", 67),
                               v.id("duration", v.durations.index(48))], bars_left=0)
    m = allowed(tok, c, r)
    assert not m[v.bar] and not m[v.eos]
    # ...which does not hold for a regenerated region (the voice sounds around it)
    c, r = setup(tok, prompt, [v.bar, v.id("position", 0), v.id("pitch", 67),
                               v.id("duration", v.durations.index(48))],
                 vl.VoicePlan(frozenset({0, 1}), (0, 1), {}, present=False), bars_left=0)
    assert allowed(tok, c, r)[v.eos]


def test_chord_tones_are_preferred_on_beats(tok):
    v = tok.vocab
    prompt = head(v, 3) + bar(v, (0, 0, 76, 12), (0, 1, 67, 12), (0, 2, 48, 12))
    plan = vl.VoicePlan(frozenset({0, 1, 2}), (0, 1, 2), {})
    forced = [v.bar, v.id("position", 0), v.id("pitch", 76), v.id("duration", v.durations.index(12)),
              v.id("track", 2), v.id("pitch", 48), v.id("duration", v.durations.index(12)),
              v.id("track", 1)]  # E over C; the middle voice is drawn last
    c, r = setup(tok, prompt, forced, plan)
    m = allowed(tok, c, r)
    logits = c.bias([r], torch.zeros(1, v.size))[0]
    p0 = v.ranges["pitch"].start
    # G makes C major, A A minor; B would fit (C maj7) without making a triad; D fits nothing
    assert logits[p0 + 67] == logits[p0 + 69] > logits[p0 + 71] > logits[p0 + 62] == 0
    assert m[p0 + 62]  # a bias, not a mask: D may still be drawn
    assert vl.is_plain_chord([60, 64, 67, 70]) and not vl.is_plain_chord([60, 62, 67])


def test_silent_tracks_are_kept_in_the_prompt_encoding(tok):
    c = Clip.load(example_path("chorale"))
    quiet = c.slice_bars(0, 4)
    quiet = Clip(tracks=(quiet.tracks[0], Track((), 0, False, "alto"), *quiet.tracks[2:]),
                 tempos=quiet.tempos, time_signatures=quiet.time_signatures,
                 length_ticks=quiet.length_ticks)
    ids, _ = tok.encode_tail(quiet, 512)
    assert len(tok.decode(ids).tracks) == 4  # the resting alto is still declared
    ids, lo, hi = tok.encode_around(quiet, 1, 2, 512)
    assert len(tok.decode(ids).tracks) == 4


def test_the_plan_reads_the_prompt_and_the_style(tok):
    c = Clip.load(example_path("chorale"))
    data = {"bach-chorale": {"voices": {"4": 90, "5": 5}, "ranges": {"4": [[60, 79], [55, 74], [48, 69], [36, 62]]}}}
    p = vl.plan("auto", "bach-chorale", c, data)
    assert p is not None and p.order == (0, 1, 2, 3) and p.voices == frozenset(range(4))
    assert p.ranges[3][0] <= 36 - vl.RANGE_MARGIN
    assert vl.plan("off", "bach-chorale", c, data) is None
    assert vl.plan("auto", "irish-dance", c.slice_bars(0, 2), data) is not None  # 4 voices
    assert vl.plan("auto", "irish-dance", None, data, from_nothing=True) is None
    nothing = vl.plan("auto", "bach-chorale", None, data, from_nothing=True)
    assert nothing.n_voices == (4, 4)
    assert nothing.for_header(4).ranges[0] == (60, 79)
    flipped = Clip(tracks=tuple(reversed(c.tracks)), tempos=c.tempos,
                   time_signatures=c.time_signatures, length_ticks=c.length_ticks)
    assert vl.plan("on", None, flipped, {}).order == (3, 2, 1, 0)  # bass written first


def test_a_colla_parte_track_is_found_and_left_out_of_the_order(tok):
    from dataclasses import replace

    c = Clip.load(example_path("chorale"))
    bass8 = Track(notes=tuple(replace(n, pitch=n.pitch - 12) for n in c.tracks[0].notes), program=32)
    doubled = replace(c, tracks=c.tracks + (bass8,))  # track 4: the soprano an octave down
    p = vl.plan("on", None, doubled, {})
    assert p.doubles == {4: (0, -12)}
    assert 4 not in p.order and p.order == (0, 1, 2, 3) and 4 in p.voices
    assert vl.plan("on", None, c, {}).doubles == {}  # four real voices double nothing


def test_a_doubler_follows_its_voice(tok):
    v = tok.vocab
    plan = vl.VoicePlan(frozenset({0, 1}), (0,), {}, doubles={1: (0, -12)})
    prompt = head(v) + bar(v, (0, 0, 67, 12), (0, 1, 55, 12))
    c, r = setup(tok, prompt, [v.bar, v.id("position", 0), v.id("pitch", 69),
                               v.id("duration", v.durations.index(12)), v.id("track", 1)], plan)
    assert pitches(tok, allowed(tok, c, r)) == {57}  # the A an octave down, and nothing else


def test_a_squeezed_voice_crosses_rather_than_moving_in_parallel(tok):
    v = tok.vocab
    three = vl.VoicePlan(frozenset({0, 1, 2}), (0, 1, 2), {})
    # an octave between soprano and alto; the bass holds A3 through beat 2
    prompt = head(v, 3) + bar(v, (0, 0, 74, 12), (0, 1, 62, 12), (0, 2, 57, 24))
    # the soprano falls onto the bass's A: between them only A is left, and the alto falling
    # onto it would be octave -> unison in parallel with the soprano
    forced = [v.id("position", 12), v.id("track", 0), v.id("pitch", 57), v.id("duration", v.durations.index(12)),
              v.id("track", 1)]
    c, r = setup(tok, prompt, forced, three, bars_left=1)
    got = pitches(tok, allowed(tok, c, r))
    assert got and 57 not in got and 45 not in got  # any pitch but a parallel one


def test_shipped_model_keeps_a_chorale_in_four_voices():
    from musegen.studio import Studio

    st = Studio()
    real = Clip.load(example_path("chorale")).slice_bars(0, 4)
    takes = st.continue_(real, bars=2, variations=2, style="bach-chorale", seed=5)
    for t in takes:
        assert t.params["voice_led"] and t.params["voice_leading"] == "auto"
        tracks = t.clip.tracks
        assert len(tracks) == 4 and all(tr.notes for tr in tracks)
        for tr in tracks:  # one note at a time in each voice
            assert all(b.start_tick >= a.end_tick for a, b in zip(tr.notes, tr.notes[1:]))
        for tick in range(0, t.clip.length_ticks, 120):
            sounding = [[n.pitch for n in tr.notes if n.start_tick <= tick < n.end_tick] for tr in tracks]
            ps = [s[0] for s in sounding if s]
            if len(ps) == 4:
                assert ps == sorted(ps, reverse=True)  # soprano over alto over tenor over bass
    off = st.continue_(real, bars=2, variations=1, style="bach-chorale", seed=5, voice_leading="off")
    assert off[0].params["voice_led"] is False


def test_a_blend_from_nothing_gets_the_weights_voice_count():
    """`blend_ensemble`: the weights' mean of the styles' commonest voice counts (a style
    with no measured ensemble counts one), half up; ranges from a style with that count, else
    spread over a larger count's (two voices: the outer ones)."""
    from musegen.generate.voices import blend_ensemble

    data = {"chorale": {"voices": {"4": 90, "5": 3}, "ranges": {"4": [[60, 79], [55, 74], [48, 67], [36, 60]]}},
            "mass": {"voices": {"3": 5, "5": 9}, "ranges": {"3": [[50, 70], [45, 65], [40, 60]]}}}
    counts = [blend_ensemble({"folk": 1 - w, "chorale": w}, data)[0] for w in (0.1, 0.25, 0.5, 0.75, 0.9)]
    assert counts == [1, 2, 3, 3, 4]
    assert blend_ensemble({"folk": 0.75, "chorale": 0.25}, data)[1] == ((60, 79), (36, 60))
    assert blend_ensemble({"folk": 0.5, "chorale": 0.5}, data)[1] == ((60, 79), (48, 67), (36, 60))
    # three voices measured in the mass: its own ranges, though the chorale weighs more
    assert blend_ensemble({"chorale": 0.6, "mass": 0.1, "folk": 0.3}, data) == (3, ((50, 70), (45, 65), (40, 60)))
    assert blend_ensemble({"folk": 0.5, "air": 0.5}, data) == (1, None)
