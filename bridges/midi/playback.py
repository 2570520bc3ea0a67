"""Playing a take on the output port in tempo: notes become (beat, message) events, sent when
the transport reaches their beat — so playback follows the host's clock, tempo changes included.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field

import mido

from bridges.midi.ports import OutputPort
from musegen.clip import PPQ, Clip

DRUM_CHANNEL = 9


@dataclass(order=True, frozen=True)
class Event:
    beat: float
    order: int  # note-offs (0) before note-ons (1) on the same beat, then arrival order
    seq: int
    msg: mido.Message = field(compare=False)


def channel_for(track_index: int, is_drum: bool, base: int = 0) -> int:
    """Drums on channel 10 (index 9); other tracks on base, base+1... skipping the drum channel."""
    if is_drum:
        return DRUM_CHANNEL
    ch = (base + track_index) % 15
    return ch + 1 if ch >= DRUM_CHANNEL else ch


def schedule(clip: Clip, start_beat: float, base_channel: int = 0) -> list[Event]:
    """Every note of `clip` as note-on/note-off events from `start_beat` on."""
    out = []
    for ti, t in enumerate(clip.tracks):
        ch = channel_for(ti, t.is_drum, base_channel)
        for n in t.notes:
            on = start_beat + n.start_tick / PPQ
            off = start_beat + n.end_tick / PPQ
            out.append((on, 1, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity)))
            out.append((off, 0, mido.Message("note_off", channel=ch, note=n.pitch, velocity=0)))
    out.sort(key=lambda e: (e[0], e[1]))
    return [Event(b, o, i, m) for i, (b, o, m) in enumerate(out)]


class Player:
    """Sends scheduled events whose beat has come; remembers what sounds, for `panic`."""

    def __init__(self, out: OutputPort) -> None:
        self.out = out
        self._queue: list[Event] = []
        self._seq = 0
        self._sounding: Counter[tuple[int, int]] = Counter()

    @property
    def busy(self) -> bool:
        return bool(self._queue or self._sounding)

    @property
    def last_beat(self) -> float:
        return max((e.beat for e in self._queue), default=0.0)

    def play(self, events: list[Event]) -> None:
        for e in events:
            self._seq += 1
            heapq.heappush(self._queue, Event(e.beat, e.order, self._seq, e.msg))

    def tick(self, beat: float) -> int:
        """Send everything due at `beat`; returns how many messages went out. A pitch struck
        again while it sounds is re-triggered and sounds until its last note-off."""
        n = 0
        while self._queue and self._queue[0].beat <= beat + 1e-9:
            msg = heapq.heappop(self._queue).msg
            key = (msg.channel, msg.note)
            if msg.type == "note_on":
                if self._sounding[key]:
                    self.out.send(mido.Message("note_off", channel=msg.channel, note=msg.note))
                    n += 1
                self._sounding[key] += 1
            else:
                self._sounding[key] -= 1
                if self._sounding[key] > 0:
                    continue
                del self._sounding[key]
            self.out.send(msg)
            n += 1
        return n

    def panic(self) -> None:
        """Silence: note-off for every sounding note, and drop what was still to come."""
        self._queue.clear()
        for ch, note in sorted(self._sounding):
            self.out.send(mido.Message("note_off", channel=ch, note=note, velocity=0))
        self._sounding.clear()
