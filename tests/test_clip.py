import random
from dataclasses import replace
from pathlib import Path

import mido
import pretty_midi
import pytest

from musegen import Clip, MidiFileError, Note, TimeSignature, Track
from musegen.clip import PPQ, estimate_key, parse_key
from musegen.examples import example_path

from .conftest import REALWORLD


def _notes(c: Clip):
    return sorted((i, n.pitch, n.start_tick, n.duration_ticks, n.velocity, n.lyric)
                  for i, t in enumerate(c.tracks) for n in t.notes)


@pytest.mark.parametrize("path", REALWORLD, ids=lambda p: p.stem)
def test_load_save_roundtrip_real_files(path, tmp_path):
    c = Clip.load(path)
    assert c.n_notes > 0 and c.n_bars >= 1
    out = c.save(tmp_path / "x.mid")
    d = Clip.load(out)
    assert _notes(d) == _notes(c)
    assert d.n_bars == c.n_bars
    assert [(t.program, t.is_drum) for t in d.tracks] == [(t.program, t.is_drum) for t in c.tracks]
    assert [(t.tick, round(t.qpm, 3)) for t in d.tempos] == [(t.tick, round(t.qpm, 3)) for t in c.tempos]
    assert d.time_signatures == c.time_signatures
    # other programs read what we wrote, at our fixed resolution
    assert mido.MidiFile(out).ticks_per_beat == PPQ
    pm = pretty_midi.PrettyMIDI(str(out))
    assert sum(len(i.notes) for i in pm.instruments) == c.n_notes


def test_any_ppq_in_fixed_ppq_out():
    odd = Clip.load(REALWORLD[0].parent / "odd_ppq_383.mid")
    assert mido.MidiFile(REALWORLD[0].parent / "odd_ppq_383.mid").ticks_per_beat == 383
    import music21

    orig = Clip.load(Path(music21.__file__).parent / "omr" / "k525short.mid")
    # the same music at 383 ppq reads back at PPQ within rounding of one source tick
    a = [(n.pitch, n.start_tick) for n in odd.all_notes()]
    b = [(n.pitch, n.start_tick) for n in orig.all_notes()]
    assert [p for p, _ in a] == [p for p, _ in b]
    assert max(abs(x - y) for (_, x), (_, y) in zip(a, b)) <= 2


def test_format0_and_drums_and_lyrics():
    d = REALWORLD[0].parent
    assert mido.MidiFile(d / "format0.mid").type == 0
    assert len(Clip.load(d / "format0.mid").tracks) == 2  # channels become tracks
    drums = Clip.load(d / "drums.mid")
    assert [t.is_drum for t in drums.tracks] == [False, True]
    lyr = Clip.load(d / "lyrics_chorale.mid")
    assert lyr.lyrics[:4] == ["Aus", "mei", "nes", "Her"]
    pm_lyrics = [x.text for x in pretty_midi.PrettyMIDI(str(d / "lyrics_chorale.mid")).lyrics]
    assert lyr.lyrics == pm_lyrics


def test_trailing_silent_bars_survive_save(tmp_path):
    c = Clip((Track((Note(60, 90, 0, PPQ),)),), length_ticks=4 * 4 * PPQ)
    assert c.n_bars == 4
    assert Clip.load(c.save(tmp_path / "s.mid")).n_bars == 4


def test_slice_and_concat():
    c = Clip.load(example_path("folk"))
    a, b = c.slice_bars(0, 4), c.slice_bars(4, c.n_bars)
    assert a.n_bars == 4 and b.n_bars == c.n_bars - 4
    joined = a.concat(b)
    assert joined.n_bars == c.n_bars
    # notes that end inside their bar range survive slicing + concatenation unchanged
    inside = [n for n in c.all_notes() if n.end_tick <= c.bar_starts[4] or n.start_tick >= c.bar_starts[4]]
    assert [(n.pitch, n.start_tick, n.duration_ticks) for n in joined.all_notes()] == \
        [(n.pitch, n.start_tick, n.duration_ticks) for n in inside]
    with pytest.raises(ValueError, match="outside"):
        c.slice_bars(3, 999)


def test_bar_grid_follows_time_signature_changes():
    sigs = (TimeSignature(0, 4, 4), TimeSignature(2 * 4 * PPQ, 3, 4))
    c = Clip((Track((Note(60, 90, 0, 11 * PPQ),)),), time_signatures=sigs)
    assert c.bar_starts == (0, 1920, 3840, 5280)
    assert c.time_signature_at(4000).numerator == 3


def test_key_estimation():
    c_major = [Note(p, 90, i * PPQ, PPQ) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60])]
    assert estimate_key(c_major) == "C major"
    a_minor = [Note(p, 90, i * PPQ, PPQ) for i, p in enumerate([57, 60, 64, 57, 59, 60, 62, 64, 57, 56, 57])]
    assert estimate_key(a_minor) == "A minor"
    # every one of the 24 keys is found from its own scale (tonic weighted), E minor and Bb major too
    for tonic in range(12):
        for mode, steps in (("major", (0, 2, 4, 5, 7, 9, 11)), ("minor", (0, 2, 3, 5, 7, 8, 11))):
            notes = [Note(48 + tonic + s, 90, i * PPQ, (4 if s == 0 else 1) * PPQ) for i, s in enumerate(steps)]
            assert parse_key(estimate_key(notes)) == (tonic, mode)
    assert estimate_key([Note(60 + i, 90, 0, PPQ) for i in range(12)]) == "C major"  # flat: the first
    assert parse_key("Ebm") == (3, "minor") and parse_key("F# major") == (6, "major")
    with pytest.raises(ValueError, match="H major"):
        parse_key("H major")


def test_transpose_keeps_drums():
    c = Clip.load(REALWORLD[0].parent / "drums.mid")
    t = c.transpose(3)
    assert [n.pitch for n in t.tracks[1].notes] == [n.pitch for n in c.tracks[1].notes]
    assert [n.pitch for n in t.tracks[0].notes] == [n.pitch + 3 for n in c.tracks[0].notes]


# ----------------------------------------------------------------- bad input
def test_200_random_byte_strings_raise_the_one_error(tmp_path):
    rng = random.Random(1234)
    header = mido.MidiFile(example_path("folk")).tracks and example_path("folk").read_bytes()[:14]
    for i in range(200):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 400)))
        data = (header + body) if i % 2 else body  # half look like MIDI at first glance
        p = tmp_path / f"r{i}.mid"
        p.write_bytes(data)
        with pytest.raises(MidiFileError) as e:
            Clip.load(p)
        assert str(p) in str(e.value)


@pytest.mark.parametrize("cut", [1, 14, 22, 100, 500])
def test_truncated_files(tmp_path, cut):
    data = example_path("chorale").read_bytes()[:cut]
    p = tmp_path / "t.mid"
    p.write_bytes(data)
    try:
        c = Clip.load(p)
    except MidiFileError as e:
        assert "t.mid" in str(e)
    else:  # a cut that falls on an event boundary may leave a readable prefix
        assert c.n_notes > 0


def test_empty_text_missing_absurd(tmp_path):
    cases = {
        "empty.mid": b"",
        "text.mid": b"this is not a MIDI file, just some text\n" * 3,
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    for name, reason in [("empty.mid", "empty"), ("text.mid", "MThd"), ("missing.mid", "cannot open")]:
        with pytest.raises(MidiFileError, match=reason) as e:
            Clip.load(tmp_path / name)
        assert name in str(e.value)
    # a valid header with an absurd resolution and no notes
    m = mido.MidiFile(ticks_per_beat=96)
    m.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    m.save(tmp_path / "nonotes.mid")
    with pytest.raises(MidiFileError, match="no notes"):
        Clip.load(tmp_path / "nonotes.mid")


def test_clip_is_immutable():
    c = Clip.load(example_path("folk"))
    with pytest.raises(AttributeError):
        c.tracks = ()  # type: ignore[misc]
    n = c.tracks[0].notes[0]
    with pytest.raises(AttributeError):
        n.pitch = 1  # type: ignore[misc]
    assert replace(n, pitch=1).pitch == 1


def test_a_take_of_silent_bars_round_trips(tmp_path):
    from musegen.tokenizer import Tokenizer

    c = Clip((Track((), program=5),), length_ticks=2 * 4 * PPQ)
    back = Clip.load(c.save(tmp_path / "rest.mid"))
    assert back.n_bars == 2 and back.n_notes == 0
    tok = Tokenizer()
    assert tok.decode(tok.encode(back)).n_bars == 2
