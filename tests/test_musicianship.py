"""The musicianship figures on hand-made clips: each planted fault (or virtue) is counted, and
its absence is not."""

from __future__ import annotations

import numpy as np
import pytest

from musegen.clip import PPQ, Clip, Note, TimeSignature, Track
from musegen.evaluation import musicianship as m

Q = PPQ  # a quarter note
BAR = 4 * Q


def line(pitches: list[int | None], dur: int = Q, start: int = 0) -> Track:
    """A voice of equal notes; None is a rest."""
    notes = [Note(p, 80, start + i * dur, dur) for i, p in enumerate(pitches) if p is not None]
    return Track(tuple(notes))


def clip(*tracks: Track, bars: int | None = None, key: str = "C major",
         ts: tuple[int, int] = (4, 4)) -> Clip:
    length = bars * PPQ * 4 * ts[0] // ts[1] if bars else 0
    return Clip(tracks=tuple(tracks), key=key, length_ticks=length,
                time_signatures=(TimeSignature(0, *ts),))


# ------------------------------------------------------------------ parallels
def test_a_planted_parallel_fifth_is_counted_and_contrary_motion_is_not():
    upper = line([67, 69])  # G4 -> A4
    lower = line([60, 62])  # C4 -> D4: fifth to fifth, both up
    assert m.parallels(clip(upper, lower, bars=1)) == (1, 0)
    assert m.parallels(clip(line([67, 62]), line([60, 55]), bars=1)) == (1, 0)  # both down: counted
    assert m.parallels(clip(line([67, 74]), line([60, 55]), bars=1)) == (0, 0)  # contrary 5th->12th
    assert m.parallel_fifths_per_bar(clip(upper, lower, bars=2)) == 0.5


def test_parallel_octaves_and_a_held_voice():
    assert m.parallels(clip(line([72, 74, 76, 79, 77]), line([60, 62, 64, 53, 57]), bars=1)) == (0, 2)
    # one voice holds while the other moves: not a parallel
    held = Track((Note(60, 80, 0, 2 * Q),))
    assert m.parallels(clip(line([67, 69]), held, bars=1)) == (0, 0)
    assert m.parallel_octaves_per_bar(clip(line([72, 74, 76, 79, 77]), line([60, 62, 64, 53, 57]), bars=2)) == 1.0


def test_a_voice_doubled_throughout_is_a_doubling_not_parallels():
    soprano = line([72, 74, 76, 77])
    doubling = line([60, 62, 64, 65])  # an instrument an octave below, colla parte
    assert m.doubles(soprano, doubling, BAR)
    assert m.parallels(clip(soprano, doubling, line([55, 57, 55, 53]), bars=1)) == (0, 0)
    assert not m.doubles(soprano, line([55, 57, 55, 53]), BAR)


def test_a_fifth_to_a_different_interval_is_not_parallel():
    assert m.parallels(clip(line([67, 71]), line([60, 62]), bars=1)) == (0, 0)  # fifth -> sixth


# ------------------------------------------------------------------ crossings, ranges
def test_a_crossing_is_counted():
    soprano = line([72, 72, 60, 72])  # dips under the alto in beat 3
    alto = line([64, 64, 64, 64])
    share = m.voice_crossing_share(clip(soprano, alto, bars=1), order=[0, 1])
    assert share == pytest.approx(2 / 8)  # beat 3 = two eighth-note moments of eight
    assert m.voice_crossing_share(clip(line([72] * 4), alto, bars=1), order=[0, 1]) == 0.0


def test_crossing_uses_the_given_order():
    # a take whose track 1 (the prompt's bass) sits above track 0 the whole time
    c = clip(line([50] * 4), line([62] * 4), bars=1)
    assert m.voice_crossing_share(c) == 0.0  # its own order: no crossing
    assert m.voice_crossing_share(c, order=[0, 1]) == 1.0
    assert m.voice_crossing_share(clip(line([60] * 4), bars=1)) is None  # one voice


def test_bass_below_tenor_and_satb_ranges():
    s, a, t, b = line([72] * 4), line([67] * 4), line([60] * 4), line([48] * 4)
    c = clip(s, a, t, b, bars=1)
    assert m.bass_below_tenor_share(c, order=[0, 1, 2, 3]) == 1.0
    assert m.satb_range_share(c) == 1.0
    swapped = clip(s, a, line([48] * 4), line([60] * 4), bars=1)
    assert m.bass_below_tenor_share(swapped, order=[0, 1, 2, 3]) == 0.0
    high_bass = clip(s, a, t, line([58, 58, 64, 64]), bars=1)  # E4 is above the bass range
    assert m.satb_range_share(high_bass, order=[0, 1, 2, 3]) == pytest.approx(14 / 16)
    assert m.satb_range_share(clip(s, a, t, bars=1)) is None  # three voices


def test_overlapping_notes_inside_a_voice_are_counted():
    assert m.overlap_share(clip(line([60, 62, 64, 65]), bars=1)) == 0.0
    over = Track((Note(60, 80, 0, 2 * Q), Note(62, 80, Q, Q), Note(64, 80, 2 * Q, Q)))
    assert m.overlap_share(clip(over, bars=1)) == pytest.approx(1 / 3)
    chord = Track((Note(60, 80, 0, Q), Note(64, 80, 0, Q)))  # two notes at one onset overlap
    assert m.overlap_share(clip(chord, bars=1)) == 0.5


def test_voice_count_and_voices_kept():
    prompt = clip(line([72]), line([60]), line([48]), bars=1)
    take = clip(line([72]), Track(()), line([48]), bars=1)
    assert m.voice_count(take) == 2
    assert m.voices_kept(prompt, take) == pytest.approx(2 / 3)
    assert m.voices_kept(prompt, prompt) == 1.0


# ------------------------------------------------------------------ harmony
def test_a_c_major_triad_on_a_beat_is_counted():
    triad = clip(line([72, 72]), line([67, 71]), line([64, 62]), line([48, 50]), bars=1)
    # beat 1: C G E C = C major; beat 2: C B D D = no plain chord
    # beats 3 and 4: nothing sounds
    assert m.chord_on_beat_share(triad) == 0.5
    dom7 = clip(line([65]), line([59]), line([55]), line([43]), bars=1)  # F B G G: G7 without D
    assert m.chord_on_beat_share(dom7) == 1.0
    two = clip(line([72]), line([60]), bars=1)
    assert m.chord_on_beat_share(two) is None  # fewer than three voices sound on any beat


def test_beats_follow_the_time_signature():
    c = clip(line([60] * 6, dur=Q // 2), bars=1, ts=(6, 8))
    assert m.beat_ticks(c) == [k * Q // 2 for k in range(6)]


# ------------------------------------------------------------------ melody and form
def test_a_restated_motif_is_counted():
    prompt = clip(line([60, 62, 64, 60, 67, 65, 64, 62]), bars=2)
    restated = clip(line([67, 69, 71, 67, 55, 53, 54, 50]), bars=2)  # the opening up a fifth
    other = clip(line([60, 61, 63, 66, 70, 75, 81, 88]), bars=2)
    assert m.motif_reuse(prompt, restated) == pytest.approx(1 / 5)
    assert m.motif_reuse(prompt, prompt) == 1.0
    assert m.motif_reuse(prompt, other) == 0.0


def test_bar_rhythm_reuse():
    prompt = clip(line([60, 62, 64, 65]), bars=1)
    same = clip(line([67, 65, 64, 62]), line([67, 65, 64, 62], dur=Q, start=BAR), bars=2)
    dotted = clip(Track((Note(60, 80, 0, 3 * Q // 2), Note(62, 80, 3 * Q // 2, Q // 2))), bars=1)
    assert m.rhythm_reuse(prompt, same) == 1.0
    assert m.rhythm_reuse(prompt, dotted) == 0.0


def test_repeated_notes_are_counted():
    tune = clip(line([62, 64, 66, 67, 69, 71, 69, 67]), bars=2)  # no pitch struck twice running
    stuck = clip(line([62, 64, 66, 67, 74, 74, 74, 74]), bars=2)  # the last bar on one pitch
    assert m.repeated_note_share(tune) == 0.0
    assert m.repeated_note_share(stuck) == pytest.approx(3 / 7)
    assert m.repeated_note_share(clip(line([60]), bars=1)) is None


def test_long_note_ending_a_bar():
    notes = [Note(60 + i, 80, i * Q // 2, Q // 2) for i in range(8 * 3)]  # bars 1-3 of eighths
    notes += [Note(60, 80, 3 * BAR, 3 * Q // 2), Note(62, 80, 3 * BAR + 3 * Q // 2, Q // 2),
              Note(64, 80, 3 * BAR + 2 * Q, 2 * Q)]  # bar 4 ends on a half note
    c = clip(Track(tuple(notes)), bars=4)
    assert m.long_note_ends_bar(c, 4) is True
    assert m.long_note_ends_bar(c, 3) is False
    assert m.long_note_ends_bar(c, 8) is None


def test_tonic_ending():
    assert m.ends_on_tonic(clip(line([64, 62, 60]), bars=1), "C major") is True
    assert m.ends_on_tonic(clip(line([64, 62, 60]), bars=1), "G major") is False
    # the bass of the last sonority decides: C over A is A minor's tonic, not C's
    c = clip(line([72]), line([57]), bars=1)
    assert m.ends_on_tonic(c, "A minor") is True
    assert m.ends_on_tonic(c, "C major") is False


def test_seam_leaps():
    c = clip(line([60, 62, 76, 74, 62, 60]), bars=2)  # region = beats 3..4 (ticks 2Q..4Q)
    assert m.seam_leaps(c, 2 * Q, 4 * Q) == (14, 12)
    assert m.seam_leaps(c, 0, 2 * Q) == (None, 14)


# ------------------------------------------------------------------ keys, tempi, blends
def test_key_idiomaticness():
    real = ["D major"] * 10 + ["G major"] * 9 + ["B major"]  # B major: 5 % exactly
    assert m.idiomatic_keys(real) == {"D major", "G major", "B major"}
    assert m.idiomatic_keys(real + ["C# major"] * 0 + ["D major"] * 2) == {"D major", "G major"}
    assert m.key_idiomatic_share(["D major", "F# major", "G major", "Eb minor"],
                                 ["D major"] * 19 + ["G major"]) == 0.5
    assert m.keys_in_share(["D major", "F# major", None, "A minor"], {"D major", "A minor"}) == 0.5
    assert m.keys_in_share([], {"D major"}) is None
    assert m.clip_key(clip(line([60]), key="Gb major")) == "F# major"


def test_tempo_figures():
    assert m.tempo(Clip(tracks=(line([60]),))) == 120.0
    assert m.tempo_in_style_share([100, 200], list(range(90, 131))) == 0.5
    assert m.modal_share([123] * 43 + [100] * 5) == pytest.approx(43 / 48)


def test_blend_positions_and_hybrid_share():
    # A: stepwise quarter notes; B: eighth notes leaping fifths
    style_a = [clip(line([60, 62, 64, 65] * 2), bars=2), clip(line([60, 62, 64, 62] * 2), bars=2)]
    style_b = [clip(line([60, 67] * 8, dur=Q // 2), bars=2), clip(line([62, 69] * 8, dur=Q // 2), bars=2)]
    bl = m.BlendLine.of(style_a, style_b)
    assert bl.position(style_a[0]) < 0.2 and bl.position(style_b[0]) > 0.8
    half = clip(Track(line([60, 62, 64, 65]).notes + line([60, 67] * 4, dur=Q // 2, start=BAR).notes),
                bars=2)  # a bar of A, then a bar of B
    assert 0.2 <= bl.position(half) <= 0.8
    assert m.hybrid_share([0.1, 0.5, 0.9, 0.3]) == 0.5
    assert m.weight_position_spearman([0, 0.5, 1], [0.1, 0.4, 0.9]) == pytest.approx(1.0)
    assert m.weight_position_spearman([0, 0.5, 1], [0.9, 0.4, 0.1]) == pytest.approx(-1.0)


def test_continuation_figures_of_a_real_chorale_like_phrase():
    prompt = clip(line([72, 74, 76, 77]), line([67, 67, 67, 69]), line([64, 65, 64, 65]),
                  line([48, 47, 48, 53]), bars=1)
    row = m.continuation_figures(prompt, prompt)
    assert set(row) == set(m.CONTINUATION_FIGURES)
    assert row["voices"] == 4.0 and row["voices_kept"] == 1.0 and row["overlap"] == 0.0
    assert row["voice_crossing"] == 0.0 and row["motif_reuse"] == 1.0
    assert np.isclose(row["rhythm_reuse"], 1.0)
    assert m.mean_of([row, {**row, "overlap": 1.0}], "overlap") == 0.5
    assert m.mean_of([{"x": None}], "x") is None


def test_tempo_in_style_weighs_the_real_tempi():
    from musegen.evaluation import musicianship as m

    # 80 % of the real pieces at 100 qpm, 10 % each at 60 and 180: p10..p90 is 60..100
    assert m.tempo_in_style_share([100, 180, 60, 120], [60, 100, 180], [0.1, 0.8, 0.1]) == 0.5
    # unweighted, the same three tempi span 84..164
    assert m.tempo_in_style_share([100, 180, 60, 120], [60, 100, 180]) == 0.5
    assert m.tempo_in_style_share([70], [60, 100, 180], [0.1, 0.8, 0.1]) == 1.0
