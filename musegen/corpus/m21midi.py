"""music21 score → standard MIDI file, written directly with mido.

music21's own MIDI writer is slow (about as slow as parsing) and trips over a few of its
parser's quirks (a TimeSignature shared by two measures, ``ExpanderException`` on repeats,
10,080 ticks per quarter). This writer reads only what the corpus needs from a parsed
score: per part, the sounding notes with ties merged, plus time signatures and tempo on a
conductor track. It writes 480 ticks per quarter and shifts a pickup bar so that bar lines
fall where the time signature puts them.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import mido

from musegen.atomic import atomic_path

TICKS_PER_QUARTER = 480
DEFAULT_VELOCITY = 80
DEFAULT_QPM = 120.0


def _ticks(quarters: float | Fraction) -> int:
    return round(float(quarters) * TICKS_PER_QUARTER)


def _expanded(score: object) -> object:
    """The score with repeats written out, or the score itself when music21 cannot.

    ``expandRepeats`` deep-copies the whole score, so it runs only when there are repeats.
    """
    marks = score.recurse().getElementsByClass(("Repeat", "RepeatExpression"))
    if not any(True for _ in marks):
        return score
    try:
        return score.expandRepeats()
    except Exception:  # noqa: BLE001 - music21 raises many kinds here; unexpanded is fine
        return score


def _pickup_shift(part: object) -> Fraction:
    """Quarter notes to add in front so that a pickup bar ends on a full-bar boundary."""
    measures = list(part.getElementsByClass("Measure"))
    if not measures:
        return Fraction(0)
    return Fraction(measures[0].paddingLeft or 0).limit_denominator(10_000)


def _part_notes(part: object) -> list[tuple[int, int, int, int]]:
    """(start_tick, end_tick, pitch, velocity) of one part, ties merged, graces dropped."""
    notes: list[list[int]] = []
    open_ties: dict[int, int] = {}  # pitch -> index in notes of the note a tie continues
    for element in part.flatten().notes:
        if element.duration.isGrace or element.quarterLength <= 0:
            continue
        pitches = getattr(element, "pitches", ())
        start = _ticks(element.offset)
        end = start + max(1, _ticks(element.quarterLength))
        velocity = DEFAULT_VELOCITY
        volume = getattr(element, "volume", None)
        if volume is not None and volume.velocity:
            velocity = int(volume.velocity)
        for p in pitches:
            midi = int(p.midi)
            if not 0 <= midi <= 127:
                continue
            tie = getattr(element, "tie", None)
            tie_type = tie.type if tie is not None else None
            if tie_type in ("stop", "continue") and midi in open_ties:
                notes[open_ties[midi]][1] = end
                if tie_type == "stop":
                    del open_ties[midi]
                continue
            notes.append([start, end, midi, velocity])
            if tie_type in ("start", "continue"):
                open_ties[midi] = len(notes) - 1
            else:
                open_ties.pop(midi, None)
    return [tuple(n) for n in notes]


def _program(part: object) -> int:
    try:
        instrument = part.getInstrument(returnDefault=False)
    except Exception:  # noqa: BLE001
        instrument = None
    program = getattr(instrument, "midiProgram", None)
    return int(program) if program is not None and 0 <= program <= 127 else 0


def _delta_track(events: list[tuple[int, int, mido.Message]], name: str) -> mido.MidiTrack:
    track = mido.MidiTrack()
    if name:
        track.append(mido.MetaMessage("track_name", name=name[:60], time=0))
    now = 0
    for tick, _order, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def _conductor(flat: object, shift: int) -> mido.MidiTrack:
    """The conductor track: the score's time signatures and tempi (4/4 and DEFAULT_QPM at the
    start when it has none there), moved right by `shift` ticks like the notes."""
    return _delta_track(_time_signature_events(flat, shift) + _tempo_events(flat, shift), "")


_MIDI_DENOMINATORS = (1, 2, 4, 8, 16, 32, 64)


def _time_signature_events(flat: object, shift: int) -> list[tuple[int, int, mido.MetaMessage]]:
    """One time_signature per change that MIDI can hold (at most one per tick), 4/4 at tick 0
    when the score sets none there."""
    events: list[tuple[int, int, mido.MetaMessage]] = []
    seen_ts: set[int] = set()
    current = None
    for ts in flat.getElementsByClass("TimeSignature"):
        tick = 0 if not events and ts.offset == 0 else _ticks(ts.offset) + shift
        if tick in seen_ts or not (1 <= ts.numerator <= 255) or ts.denominator not in _MIDI_DENOMINATORS \
                or (ts.numerator, ts.denominator) == current:
            continue
        seen_ts.add(tick)
        current = (ts.numerator, ts.denominator)
        events.append((tick, 0, mido.MetaMessage(
            "time_signature", numerator=ts.numerator, denominator=ts.denominator, time=0)))
    if 0 not in seen_ts:
        events.append((0, 0, mido.MetaMessage("time_signature", numerator=4, denominator=4,
                                              time=0)))
    return events


def _tempo_events(flat: object, shift: int) -> list[tuple[int, int, mido.MetaMessage]]:
    """One set_tempo per metronome mark of 10..400 quarters a minute, DEFAULT_QPM at tick 0
    when the score sets none there."""
    tempos = []
    for mark in flat.getElementsByClass("MetronomeMark"):
        try:
            qpm = float(mark.getQuarterBPM())
        except Exception:  # noqa: BLE001
            continue
        if 10 <= qpm <= 400:
            tempos.append((0 if mark.offset == 0 else _ticks(mark.offset) + shift, qpm))
    if not tempos or tempos[0][0] != 0:
        tempos.insert(0, (0, DEFAULT_QPM))
    return [(tick, 1, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm), time=0))
            for tick, qpm in tempos]


def score_to_midifile(score: object) -> mido.MidiFile:
    """A type-1 MIDI file of a music21 Score (or a single-part stream)."""
    score = _expanded(score)
    parts = list(getattr(score, "parts", [])) or [score]
    # A pickup bar's paddingLeft is its silent part; music21 offsets start at the first
    # sounded note, so moving everything right by it puts bar lines on the grid.
    shift = _ticks(_pickup_shift(parts[0]))
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
    midi.tracks.append(_conductor(parts[0].flatten(), shift))
    channels = [c for c in range(16) if c != 9]
    for index, part in enumerate(parts):
        channel = channels[index % len(channels)]
        events: list[tuple[int, int, mido.Message]] = [
            (0, 0, mido.Message("program_change", program=_program(part), channel=channel))
        ]
        for start, end, pitch, velocity in _part_notes(part):
            events.append((start + shift, 2, mido.Message(
                "note_on", note=pitch, velocity=velocity, channel=channel)))
            events.append((end + shift, 1, mido.Message(
                "note_off", note=pitch, velocity=0, channel=channel)))
        midi.tracks.append(_delta_track(events, str(getattr(part, "partName", "") or "")))
    return midi


def write_score_midi(score: object, path: Path) -> int:
    """Atomically write ``score`` as MIDI to ``path``; returns the number of notes written."""
    midi = score_to_midifile(score)
    n_notes = sum(1 for t in midi.tracks for m in t if m.type == "note_on")
    with atomic_path(path, suffix=".mid") as tmp:
        midi.save(tmp)
    return n_notes
