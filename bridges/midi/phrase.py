"""Capturing what the musician plays as a phrase, and deciding when the phrase is over.

A phrase starts at its first note and ends when
- no note is held and nothing has been played for `silence_s` seconds, or
- the chosen controller (`end_cc`, e.g. a footswitch) is pressed (value >= 64); notes still
  held are cut there.
Positions are in beats from the `Transport`; the clip starts on the bar line at or before the
first note (so the phrase keeps its place in the bar) and is rounded up to whole bars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from musegen.clip import PPQ, Clip, Note, TempoChange, TimeSignature, Track


@dataclass(frozen=True)
class Phrase:
    clip: Clip
    origin_beat: float  # transport beat of the clip's tick 0 (a bar line)
    end_beat: float  # transport beat where the clip's last bar ends

    @property
    def n_bars(self) -> int:
        return self.clip.n_bars


@dataclass
class _Held:
    velocity: int
    start_beat: float


@dataclass
class PhraseCapture:
    silence_s: float = 2.0
    end_cc: int | None = None
    beats_per_bar: int = 4
    max_notes: int = 4096
    _held: dict[int, _Held] = field(default_factory=dict)
    _notes: list[tuple[int, int, float, float]] = field(default_factory=list)  # pitch vel on off
    _last_event_s: float = 0.0
    _cc_end: bool = False

    @property
    def active(self) -> bool:
        """Something has been played since the last phrase was taken."""
        return bool(self._notes or self._held)

    def note_on(self, pitch: int, velocity: int, beat: float, now: float) -> None:
        if velocity == 0:
            self.note_off(pitch, beat, now)
            return
        if pitch in self._held:  # re-struck without a note-off: end the first one here
            self.note_off(pitch, beat, now)
        if len(self._notes) + len(self._held) >= self.max_notes:
            self._cc_end = True  # a runaway phrase: end it rather than grow without bound
            return
        self._held[pitch] = _Held(velocity, beat)
        self._last_event_s = now

    def note_off(self, pitch: int, beat: float, now: float) -> None:
        held = self._held.pop(pitch, None)
        if held is not None:
            self._notes.append((pitch, held.velocity, held.start_beat, max(beat, held.start_beat)))
            self._last_event_s = now

    def control(self, number: int, value: int, beat: float, now: float) -> None:
        if self.end_cc is not None and number == self.end_cc and value >= 64 and self.active:
            for pitch in list(self._held):
                self.note_off(pitch, beat, now)
            self._cc_end = True

    def ended(self, now: float) -> bool:
        if not self.active:
            return False
        if self._cc_end:
            return True
        return not self._held and now - self._last_event_s >= self.silence_s

    def take(self, bpm: float, *, free_origin: bool) -> Phrase:
        """The phrase as a clip (and forget it). `free_origin`: no clock, so the first note
        starts bar 1; else the clip starts on the bar line before the first note."""
        notes, self._notes, self._cc_end = self._notes, [], False
        self._held.clear()
        first = min(n[2] for n in notes)
        bpb = self.beats_per_bar
        origin = first if free_origin else math.floor(first / bpb + 1e-9) * bpb
        last = max(n[3] for n in notes)
        n_bars = max(1, math.ceil((last - origin) / bpb - 1e-9))
        length = n_bars * bpb * PPQ
        out = []
        for pitch, vel, on, off in sorted(notes, key=lambda n: (n[2], n[0])):
            start = min(length - 1, max(0, round((on - origin) * PPQ)))
            dur = min(length - start, max(1, round((off - on) * PPQ)))
            out.append(Note(pitch, vel, start, dur))
        clip = Clip(tracks=(Track(tuple(out)),), tempos=(TempoChange(0, round(bpm, 2)),),
                    time_signatures=(TimeSignature(0, bpb, 4),), length_ticks=length,
                    name="played")
        return Phrase(clip, origin, origin + clip.n_bars * bpb)
