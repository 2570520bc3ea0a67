"""Syllables, stress, hyphenation and lyrics on notes (musegen.lyrics.syllables)."""

from __future__ import annotations

from pathlib import Path

import mido
import pretty_midi
import pytest

import musegen
from musegen.clip import PPQ, Clip
from musegen.errors import ParameterError
from musegen.lyrics import (
    Syllable,
    attach_lyrics,
    line_syllables,
    stress_pattern,
    syllables,
    to_lyric_events,
    words,
)

FOLK = Path(musegen.__file__).parent / "data" / "examples" / "folk.mid"


def _split(word):
    return "-".join(s.text for s in syllables(word))


def _stress(word):
    return "".join(str(s.stress) for s in syllables(word))


@pytest.mark.parametrize(
    ("word", "hyphenated", "stress"),
    [
        ("tonight", "to-night", "01"),
        ("wonderful", "won-der-ful", "100"),
        ("river", "riv-er", "10"),
        ("summer", "sum-mer", "10"),
        ("little", "lit-tle", "10"),
        ("candle", "can-dle", "10"),
        ("table", "ta-ble", "10"),
        ("beyond", "be-yond", "01"),
        ("poem", "po-em", "10"),
        ("melody", "mel-o-dy", "100"),
        ("beautiful", "beau-ti-ful", "100"),
        ("love", "love", "1"),
        ("walked", "walked", "1"),
        ("the", "the", "0"),
    ],
)
def test_known_words_from_cmudict(word, hyphenated, stress):
    assert _split(word) == hyphenated
    assert _stress(word) == stress


def test_syllable_flags_and_case_kept():
    syls = syllables("Tonight")
    assert syls == [Syllable("To", 0, True, False), Syllable("night", 1, False, True)]
    assert syllables("love") == [Syllable("love", 1, True, True)]


@pytest.mark.parametrize(
    ("word", "count"),
    [
        ("blorpington", 3),
        ("snurfle", 2),
        ("zindle", 2),
        ("glorptastic", 3),
        ("quibbleton", 3),
        ("flimbered", 2),
        ("zoke", 1),
        ("strandiferous", 4),
    ],
)
def test_unknown_words_get_a_plausible_count(word, count):
    syls = syllables(word)
    assert len(syls) == count
    assert "".join(s.text for s in syls) == word
    assert sum(s.stress == 1 for s in syls) == 1


def test_every_word_gets_an_answer():
    for w in ["hmm", "w", "rhythm", "o'er", "don't", "x", "zzz", "café"]:
        syls = syllables(w)
        assert syls and all(s.text for s in syls)
        assert "".join(s.text for s in syls) == w
        assert syls[0].is_first and syls[-1].is_last


def test_bad_word_is_rejected():
    with pytest.raises(ParameterError, match="word"):
        syllables("two words")
    with pytest.raises(ParameterError):
        syllables("")


def test_line_words_and_stress_pattern():
    assert words("Down by the river, where the cold wind blows!") == [
        "Down",
        "by",
        "the",
        "river",
        "where",
        "the",
        "cold",
        "wind",
        "blows",
    ]
    assert words("Don't you know it’s late?") == ["Don't", "you", "know", "it's", "late"]
    syls = line_syllables("Down by the river, where the cold wind blows")
    assert len(syls) == 10
    assert stress_pattern("the river") == "010"
    assert stress_pattern("tonight, tonight") == "0101"
    assert stress_pattern("understand") == "201"
    assert stress_pattern("understand", binary=True) == "101"


def test_lyric_event_strings():
    assert to_lyric_events(syllables("wonderful")) == ["won-", "der-", "ful"]
    assert to_lyric_events(line_syllables("a wonderful night")) == ["a", "won-", "der-", "ful", "night"]
    assert to_lyric_events([]) == []


def test_attach_lyrics_errors():
    clip = Clip.load(FOLK)
    with pytest.raises(ParameterError, match="track"):
        attach_lyrics(clip, "hello", track=5)
    long_line = " ".join(["la"] * (len(clip.tracks[0].notes) + 1))
    with pytest.raises(ParameterError, match=r"has \d+ syllables but track 0 has only \d+ note onsets"):
        attach_lyrics(clip, long_line)


def test_lyrics_round_trip_through_a_midi_file(tmp_path):
    line = "Down by the river where the cold wind blows, a wonderful night tonight"
    events = to_lyric_events(line_syllables(line))
    clip = attach_lyrics(Clip.load(FOLK), line)
    notes = clip.tracks[0].notes
    assert [n.lyric for n in notes[: len(events)]] == events
    assert all(n.lyric is None for n in notes[len(events) :])
    out = clip.save(tmp_path / "folk_lyrics.mid")

    back = Clip.load(out)
    got = [(n.start_tick, n.pitch, n.lyric) for n in back.tracks[0].notes if n.lyric]
    want = [(n.start_tick, n.pitch, n.lyric) for n in notes if n.lyric]
    assert got == want

    pm = pretty_midi.PrettyMIDI(str(out))
    onsets = sorted({round(n.start, 4) for i in pm.instruments for n in i.notes})
    assert [ly.text for ly in pm.lyrics] == events
    assert [round(ly.time, 4) for ly in pm.lyrics] == onsets[: len(events)]

    mid = mido.MidiFile(str(out))
    texts = []
    for tr in mid.tracks:
        tick, on = 0, set()
        for m in tr:
            tick += m.time
            if m.type == "note_on" and m.velocity > 0:
                on.add(tick)
            if m.type == "lyrics":
                texts.append((tick, m.text))
    assert [t for _, t in texts] == events
    scale = mid.ticks_per_beat / PPQ
    assert [tick for tick, _ in texts] == [round(n.start_tick * scale) for n in notes[: len(events)]]
