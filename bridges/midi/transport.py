"""Where we are in the music, in beats: from MIDI clock when a host sends it, else a set tempo.

MIDI clock is 24 `clock` messages per quarter note; `start` resets to beat 0, `stop` freezes,
`continue` resumes, `songpos` jumps (in sixteenths). While clock arrives the position follows it
tick by tick (interpolated between ticks, never running ahead of the next one) and the tempo is
the median of the last 24 tick intervals. When clock stops arriving for `timeout_s` (without a
`stop`), the transport runs free at the last tempo from where it was, without jumping. All times
are caller-given seconds (monotonic), so tests drive it with a fake clock.
"""

from __future__ import annotations

import statistics
from collections import deque

TICKS_PER_BEAT = 24


class Transport:
    def __init__(self, bpm: float = 120.0, timeout_s: float = 0.5) -> None:
        if not 20 <= bpm <= 400:
            raise ValueError(f"bpm must be in 20..400, got {bpm}")
        self.set_bpm = bpm
        self.bpm = bpm
        self.timeout_s = timeout_s
        self.running = True  # free-running until a host says otherwise
        self._anchor_beat = 0.0
        self._anchor_s = 0.0
        self._ticks = 0
        self._last_tick_s: float | None = None
        self._intervals: deque[float] = deque(maxlen=TICKS_PER_BEAT)

    # --------------------------------------------------------------- queries
    def following(self, now: float) -> bool:
        """True while MIDI clock is arriving."""
        return self._last_tick_s is not None and now - self._last_tick_s < self.timeout_s

    def beat(self, now: float) -> float:
        """The position at `now`, in quarter-note beats."""
        self._settle(now)
        if not self.running:
            return self._anchor_beat
        ahead = max(0.0, now - self._anchor_s) * self.bpm / 60.0
        if self._last_tick_s is not None:
            ahead = min(ahead, 1.0 / TICKS_PER_BEAT)  # wait for the next tick
        return self._anchor_beat + ahead

    def _settle(self, now: float) -> None:
        """Clock lost (nothing for `timeout_s`): run free from where it was, without a jump."""
        if self._last_tick_s is None or now - self._last_tick_s < self.timeout_s:
            return
        lost_s = self._last_tick_s + self.timeout_s
        if self.running:
            ahead = max(0.0, lost_s - self._anchor_s) * self.bpm / 60.0
            self._anchor_beat += min(ahead, 1.0 / TICKS_PER_BEAT)
        self._anchor_s = lost_s
        self._last_tick_s = None
        self._intervals.clear()

    def seconds_per_beat(self) -> float:
        return 60.0 / self.bpm

    # ----------------------------------------------------------- free running
    def reset(self, now: float, beat: float = 0.0) -> None:
        """Free-running mode: say that `now` is `beat` (used to put a phrase's first note at 0)."""
        self._anchor_beat, self._anchor_s = beat, now
        self._last_tick_s = None
        self.running = True

    # ------------------------------------------------------------- MIDI clock
    def on_message(self, kind: str, now: float, pos: int = 0) -> None:
        """Feed a realtime message type: clock, start, stop, continue, songpos."""
        if kind == "clock":
            self._tick(now)
        elif kind == "start":
            self._ticks = 0
            self._anchor_beat, self._anchor_s = 0.0, now
            self._last_tick_s, self.running = now, True
        elif kind == "stop":
            self._anchor_beat, self._anchor_s = self.beat(now), now
            self.running = False
        elif kind == "continue":
            self._anchor_s, self.running = now, True
            self._last_tick_s = now  # clock is expected to follow
        elif kind == "songpos":  # sixteenth notes
            self._ticks = pos * TICKS_PER_BEAT // 4
            self._anchor_beat, self._anchor_s = pos / 4.0, now

    def _tick(self, now: float) -> None:
        if not self.following(now):  # clock (re)appears: continue from where we are
            self._ticks = round(self.beat(now) * TICKS_PER_BEAT)
        elif self._last_tick_s is not None:
            self._intervals.append(now - self._last_tick_s)
        self._last_tick_s = now
        if self.running:
            self._ticks += 1
        if len(self._intervals) >= 6:
            interval = statistics.median(self._intervals)
            if interval > 0:
                self.bpm = min(400.0, max(20.0, 60.0 / (interval * TICKS_PER_BEAT)))
        self._anchor_beat, self._anchor_s = self._ticks / TICKS_PER_BEAT, now
