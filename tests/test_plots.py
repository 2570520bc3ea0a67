"""The piano roll (`musegen render --png`): pitch axis labelled by note name at integer pitches,
one legend entry per track with its name, each note's syllable printed, bar numbers along time.
Asserted on the matplotlib figure itself, and once through the CLI into a real PNG."""

import subprocess
import sys
from pathlib import Path

import pytest

from musegen import Clip, Note, Track
from musegen.clip import PPQ
from musegen.plots import piano_roll, piano_roll_figure, pitch_ticks, track_labels

ROOT = Path(__file__).resolve().parent.parent
CHORALE = ROOT / "musegen" / "data" / "examples" / "chorale.mid"
NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def midi_of(name):
    """'C4' -> 60, 'G#3' -> 56 (the scientific pitch names the roll is labelled with)."""
    base = NAMES[name[0]] + (1 if "#" in name else 0) - (1 if name[1:2] == "b" else 0)
    return base + 12 * (int(name.lstrip("ABCDEFG#b")) + 1)


def pitch_axis(fig):
    ax = fig.axes[0]
    return list(ax.get_yticks()), [t.get_text() for t in ax.get_yticklabels()], ax.get_ylim()


def legend_names(fig):
    [legend] = fig.legends
    return [t.get_text() for t in legend.get_texts()]


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_chorale_pitches_are_named_at_integer_pitches_and_tracks_in_the_legend():
    clip = Clip.load(CHORALE)
    fig = piano_roll_figure(clip)
    locs, labels, (lo, hi) = pitch_axis(fig)
    assert locs and all(float(p).is_integer() for p in locs), locs  # never 67.5
    assert [midi_of(lab) for lab in labels] == [int(p) for p in locs]
    assert "C4" in labels and all(lab[0] in "CEG" for lab in labels)  # C E G over 2.8 octaves
    pitches = [n.pitch for n in clip.all_notes()]
    assert lo < min(pitches) and hi > max(pitches)
    assert legend_names(fig) == ["Soprano", "Alto", "Tenor", "Bass"]
    # bars numbered along the time axis, every bar of the 9
    bars = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
    assert bars == [str(b) for b in range(1, clip.n_bars + 1)]
    assert fig.axes[0].get_xticks()[1] == clip.bar_starts[1] / PPQ


def test_lyrics_are_printed_on_their_notes_and_unnamed_tracks_get_a_program_name():
    words = ["Ky", "ri", "e", "e", "lei", "son"]
    melody = tuple(Note(67 + i % 3, 90, i * PPQ, PPQ, lyric=w) for i, w in enumerate(words))
    bass = (Note(43, 80, 0, 4 * PPQ), Note(48, 80, 4 * PPQ, 2 * PPQ))
    clip = Clip(tracks=(Track(melody, program=52), Track(bass, program=32, name="Bass")),
                length_ticks=8 * PPQ)
    fig = piano_roll_figure(clip)
    assert legend_names(fig) == ["Track 1 (Choir Aahs)", "Bass"]
    shown = [t for ax in fig.axes for t in ax.texts]
    assert [t.get_text() for t in shown] == words
    for note, t in zip(melody, shown):  # each just above its own note, at its onset
        x, y = t.get_position()
        assert x == pytest.approx(note.start_beats, abs=0.05) and note.pitch < y < note.pitch + 1
    locs, labels, _ = pitch_axis(fig)
    assert all(float(p).is_integer() for p in locs) and [midi_of(lab) for lab in labels] == [int(p) for p in locs]


def test_long_clips_wrap_into_rows_that_share_one_pitch_axis_and_scale():
    clip = Clip.load(ROOT / "tests" / "data" / "realworld" / "lyrics_chorale.mid")
    fig = piano_roll_figure(clip)
    assert len(fig.axes) == 3  # 28 bars of 3/4: rows of 10, 10, 8
    widths = {round(ax.get_xlim()[1] - ax.get_xlim()[0], 6) for ax in fig.axes}
    assert len(widths) == 1
    assert [ax.get_xticklabels()[0].get_text() for ax in fig.axes] == ["1", "11", "21"]
    assert sorted(texts(fig)) == sorted(clip.lyrics)
    assert legend_names(fig) == ["Soprano", "Alto", "Tenor", "Bass"]


def test_pitch_ticks_and_track_labels():
    assert pitch_ticks(60, 72) == [60, 62, 64, 65, 67, 69, 71, 72]
    assert pitch_ticks(40, 76) == [40, 43, 48, 52, 55, 60, 64, 67, 72, 76]
    assert pitch_ticks(36, 96) == [36, 43, 48, 55, 60, 67, 72, 79, 84, 91, 96]
    assert pitch_ticks(21, 108) == [24, 36, 48, 60, 72, 84, 96, 108]
    tracks = [Track(name=" Lead "), Track(name="Viola"), Track(name="Viola"), Track(program=40),
              Track(is_drum=True)]
    assert track_labels(tracks) == ["Lead", "Viola (track 2)", "Viola (track 3)", "Track 4 (Violin)",
                                    "Track 5 (drums)"]


def test_render_command_writes_a_png(tmp_path):
    out = tmp_path / "roll.png"
    r = subprocess.run([sys.executable, "-m", "musegen", "render", str(CHORALE), "--png", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(out) in r.stdout
    # the library writes where it is asked and nothing else
    lib = tmp_path / "lib.png"
    assert piano_roll(Clip.load(CHORALE), lib) == lib and lib.stat().st_size > 10_000
