"""A melody for lyrics (musegen.lyrics.melody): the rhythm planner, one note per syllable from
the shipped model, lyrics in the MIDI file, determinism and parameter errors."""

from __future__ import annotations

import json

import mido
import pretty_midi
import pytest

from musegen.clip import PPQ, Clip
from musegen.errors import ParameterError
from musegen.lyrics import line_syllables, to_lyric_events
from musegen.lyrics.melody import (
    METRES,
    SINGABLE_KEYS,
    SLOT_TICKS,
    melody_figures,
    plan_line,
    plan_melody,
    rhythm_clip,
    split_lines,
)
from musegen.studio import Studio, Take

LYRIC = """Down by the river where the cold wind blows
The blorpington snurfles in the glorptastic night
Tonight, tonight, a wonderful melody"""


@pytest.fixture(scope="module")
def studio() -> Studio:
    return Studio(threads=1)


def _events(text: str) -> list[str]:
    return [e for line in split_lines(text) for e in to_lyric_events(line_syllables(line))]


# ------------------------------------------------------------------ lines and the planner
def test_split_lines():
    assert split_lines("one line") == ["one line"]
    assert split_lines("first line\n\n  second line  \n") == ["first line", "second line"]
    assert split_lines("first / second") == ["first", "second"]
    long = "Down by the river where the cold wind blows. The geese are flying over the hill tonight."
    assert split_lines(long) == ["Down by the river where the cold wind blows.",
                                 "The geese are flying over the hill tonight."]
    short = "I love you. You love me."  # a single short line stays one phrase
    assert split_lines(short) == [short]


@pytest.mark.parametrize("ts", list(METRES))
@pytest.mark.parametrize("line", [
    "Down by the river where the cold wind blows",
    "Tonight the wonderful melody of the river",
    "Twinkle twinkle little star",
    "Oh",
    "Remember remember the fifth of November",
])
def test_plan_puts_word_stress_on_beats(line, ts):
    weights = METRES[ts]
    p = plan_line(line, ts)
    syls = line_syllables(line)
    assert list(p.syllables) == syls
    assert len(p.onsets) == len(p.durations) == len(syls)
    spb = len(weights)
    assert p.bars * spb >= p.onsets[-1] + p.durations[-1]
    assert all(b - a == d for a, b, d in zip(p.onsets, p.onsets[1:], p.durations))  # legato, in order
    assert all(1 <= d <= 4 for d in p.durations[:-1])
    assert p.durations[-1] >= 2  # the line ends on a long note
    assert p.onsets[0] < spb  # it starts in its first bar
    # the primary stress of every word of two or more syllables is on a beat
    for s, on in zip(syls, p.onsets):
        if s.stress == 1 and not (s.is_first and s.is_last):
            assert weights[on % spb] >= 1, (s, on)


def test_plan_prefers_strong_beats_and_keeps_unstressed_off_them():
    p = plan_line("Remember remember the fifth of November", (4, 4))
    w = METRES[(4, 4)]
    on_strong = [w[on % 8] >= 2 for s, on in zip(p.syllables, p.onsets)]
    primaries = [st for s, st in zip(p.syllables, on_strong) if s.stress == 1 and not (s.is_first and s.is_last)]
    unstressed = [st for s, st in zip(p.syllables, on_strong) if s.stress == 0]
    assert sum(primaries) >= len(primaries) - 1
    assert sum(unstressed) <= 1


def test_phrase_lengths_grow_with_the_line():
    assert plan_line("Down by the river where the cold wind blows").bars == 2
    long = "It was the schooner Hesperus that sailed the wintry sea"  # 14 syllables
    assert plan_line(long, pickup=False).bars == 4
    assert plan_line(long).pickup == 3  # "It was the" before the bar line: the rest fits in 2 bars
    assert plan_line(long, bars=8).bars == 8
    with pytest.raises(ParameterError, match="does not fit"):
        plan_line(long, bars=1)


def test_plan_is_deterministic_and_seeds_vary_it():
    text = "Down by the river where the cold wind blows\nShall I compare thee to a summer's day"
    assert plan_melody(text) == plan_melody(text)
    assert plan_melody(text, seed=5) == plan_melody(text, seed=5)
    assert len({plan_melody(text, seed=s).lines for s in range(8)}) > 1


def test_rhythm_clip_encodes_exactly():
    from musegen.tokenizer import Tokenizer

    plan = plan_melody(LYRIC, "6/8")
    clip = rhythm_clip(plan)
    tok = Tokenizer()
    back = tok.decode(tok.encode(clip))
    assert [(n.start_tick, n.duration_ticks) for n in back.tracks[0].notes] == \
        [(n.start_tick, n.duration_ticks) for n in clip.tracks[0].notes]
    assert back.n_bars == plan.bars
    assert clip.lyrics == _events(LYRIC)
    f = melody_figures(clip, plan)
    assert f["one_note_per_syllable"] and f["melismas"] == 0 and f["phrase_ends_at_line_ends"]


# ------------------------------------------------------------------ with the shipped model
def test_one_note_per_syllable(studio):
    takes = studio.melody_for(LYRIC, style="irish-dance", variations=2, seed=11)
    events = _events(LYRIC)
    assert len(takes) == 2
    for t in takes:
        assert isinstance(t, Take) and t.operation == "melody_for"
        notes = sorted((n for tr in t.clip.tracks for n in tr.notes), key=lambda n: n.start_tick)
        assert len(notes) == len(events)
        assert [n.lyric for n in notes] == events
        assert len({n.start_tick for n in notes}) == len(notes)
        f = t.params["figures"]
        assert f["syllables"] == f["notes"] == len(events)
        assert f["melismas"] == 0 and f["one_note_per_syllable"] and f["phrase_ends_at_line_ends"]
        assert f["word_stress_on_beat"] == 1.0
        assert f["stress_on_beat"] >= 0.8
        assert 60 <= f["lowest"] <= f["highest"] <= 74 and f["in_range"]  # C4-D5: an unspecified voice
        assert f["ends_on_tonic"] == 1.0 and f["line_ends_on_tonic_or_dominant"] == 1.0
        assert f["final_note_long"] and f["pickups"] == f["pickup_lines"]
        assert t.params["key"] in SINGABLE_KEYS
        assert f["max_leap"] <= 12 and t.params["max_leap"] == 12  # no leap past an octave
        plan = t.params["plan"]
        assert plan["time_signature"] == "4/4" and len(plan["lines"]) == 3
        assert t.clip.n_bars == plan["bars"] == t.params["bars"]
        # each line's first stress starts a bar of its own; an unstressed opening is a pickup
        bar0, k = plan["lead_in_bars"], 0
        for line in plan["lines"]:
            first = notes[k + line["pickup"]].start_tick
            assert first == bar0 * 8 * SLOT_TICKS
            assert all(n.start_tick < first for n in notes[k: k + line["pickup"]])
            k += len(line["syllables"])
            bar0 += line["bars"]
    assert takes[0].params["plan"] == plan_melody(LYRIC).to_dict()  # variation 1: the best plan


def test_a_voice_sets_the_range_and_a_pickup_opens_an_unstressed_line(studio):
    text = "When the cold wind blows across the sea\nI wandered lonely as a cloud"
    (t,) = studio.melody_for(text, variations=1, seed=3, voice="bass")
    f = t.params["figures"]
    assert 41 <= f["lowest"] <= f["highest"] <= 62 and f["in_range"]
    assert f["pickup_lines"] == 2 and f["pickups"] == 2 and t.params["plan"]["lead_in_bars"] == 1
    assert f["ends_on_tonic"] == 1.0
    (t,) = studio.melody_for(text, variations=1, seed=3, voice="50-60", key="F# major")
    assert 50 <= t.params["figures"]["lowest"] <= t.params["figures"]["highest"] <= 60
    assert t.params["key"] == "F# major"  # asked for: six sharps are allowed
    with pytest.raises(ParameterError, match="voice"):
        studio.melody_for(text, voice="castrato")


def test_max_leap_is_a_parameter(studio):
    takes = studio.melody_for(LYRIC, variations=2, seed=11, max_leap=2)
    assert all(t.params["figures"]["max_leap"] <= 2 and t.params["max_leap"] == 2 for t in takes)
    assert all(t.params["figures"]["one_note_per_syllable"] for t in takes)


@pytest.mark.parametrize("ts", ["3/4", "6/8"])
def test_other_metres(studio, ts):
    (t,) = studio.melody_for("The woods are lovely, dark and deep", variations=1, seed=2,
                             time_signature=ts)
    num, den = (int(x) for x in ts.split("/"))
    assert (t.clip.time_signatures[0].numerator, t.clip.time_signatures[0].denominator) == (num, den)
    assert t.params["figures"]["one_note_per_syllable"]
    assert t.params["figures"]["word_stress_on_beat"] == 1.0


def test_lyrics_readable_by_pretty_midi_and_mido(studio, tmp_path):
    (t,) = studio.melody_for(LYRIC, variations=1, seed=4, key="D major")
    out = t.save(tmp_path / "song.mid")
    events = _events(LYRIC)
    notes = sorted(t.clip.tracks[0].notes, key=lambda n: n.start_tick)

    pm = pretty_midi.PrettyMIDI(str(out))
    assert [ly.text for ly in pm.lyrics] == events
    onsets = sorted(round(n.start, 4) for i in pm.instruments for n in i.notes)
    assert [round(ly.time, 4) for ly in pm.lyrics] == onsets

    mid = mido.MidiFile(str(out))
    texts = []
    for tr in mid.tracks:
        tick = 0
        for m in tr:
            tick += m.time
            if m.type == "lyrics":
                texts.append((tick, m.text))
    assert [x for _, x in texts] == events
    scale = mid.ticks_per_beat / PPQ
    assert [tick for tick, _ in texts] == [round(n.start_tick * scale) for n in notes]

    side = json.loads(out.with_suffix(".json").read_text())
    assert side["operation"] == "melody_for" and side["params"]["text"] == LYRIC
    assert side["params"]["figures"]["one_note_per_syllable"] is True
    assert side["params"]["key"] == "D major"
    assert {n.pitch % 12 for n in notes} <= {2, 4, 6, 7, 9, 11, 1}  # the key lock held


def test_clip_load_round_trip_keeps_every_syllable_on_its_note(studio, tmp_path):
    (t,) = studio.melody_for(LYRIC, variations=1, seed=6, time_signature=(6, 8))
    out = t.save(tmp_path / "round.mid")
    back = Clip.load(out)
    want = [(n.start_tick, n.pitch, n.duration_ticks, n.lyric) for n in t.clip.tracks[0].notes]
    got = [(n.start_tick, n.pitch, n.duration_ticks, n.lyric) for tr in back.tracks for n in tr.notes]
    assert got == want
    assert back.lyrics == _events(LYRIC)


def test_same_seed_same_take(studio):
    a = studio.melody_for("Shall I compare thee to a summer's day", variations=2, seed=21)
    b = studio.melody_for("Shall I compare thee to a summer's day", variations=2, seed=21)
    assert [x.tokens for x in a] == [x.tokens for x in b]
    assert [x.id for x in a] == [x.id for x in b]
    assert [x.clip.tracks for x in a] == [x.clip.tracks for x in b]
    c = studio.melody_for("Shall I compare thee to a summer's day", variations=1, seed=22)
    assert c[0].tokens != a[0].tokens
    same = studio.melody_for("Shall I compare thee to a summer's day", variations=2, seed=21,
                             vary_rhythm=False)
    assert same[0].params["plan"] == same[1].params["plan"]


def test_progress_covers_the_whole_request(studio):
    seen = []
    takes = studio.melody_for(LYRIC, variations=2, seed=1, on_progress=seen.append)
    assert seen and seen == sorted(seen) and 0 <= seen[0] < 0.5 and seen[-1] <= 1  # bars finished
    assert any(x > 0.5 for x in seen)  # the second variation reports its half
    assert takes[0].seconds == takes[1].seconds > 0  # the whole request's time, as elsewhere


@pytest.mark.parametrize(("text", "kw", "match"), [
    ("", {}, "no words"),
    ("  ,;  \n / ", {}, "no words"),
    (None, {}, "text must be a string"),
    ("\n".join(["la la la"] * 65), {}, "65 lines"),
    (" ".join(["wonderful"] * 11), {}, "33 syllables"),
    ("hello there", {"time_signature": (5, 4)}, "5/4"),
    ("hello there", {"time_signature": "fast"}, "'fast'"),
    ("hello there", {"variations": 0}, "variations"),
    ("hello there", {"temperature": -1}, "temperature"),
    ("hello there", {"tempo": 1000}, "tempo"),
    ("hello there", {"program": 200}, "program"),
    ("hello there", {"bars_per_line": 0}, "bars_per_line"),
    ("hello there", {"keep_rhythm": True}, "keep_rhythm"),
    ("hello there", {"style": "no-such-style"}, "no-such-style"),
    ("hello there", {"pitch_range": (80, 20)}, "pitch_range"),
    ("hello there", {"colour": "blue"}, "colour"),
    ("hello there", {"style": ["irish-dance"]}, "style must be"),
    ("hello there", {"vary_rhythm": "yes"}, "vary_rhythm"),
])
def test_bad_input_is_a_parameter_error(studio, text, kw, match):
    with pytest.raises(ParameterError, match=match):
        studio.melody_for(text, **{"variations": 1, **kw})
