"""Where we are in the music, in beats: from MIDI clock when a host sends it, else a set tempo.

MIDI clock is 24 `clock` messages per quarter note; `start` resets to beat 0, `stop` freezes,
`continue` resumes, `songpos` jumps (in sixteenths). While clock arrives the position follows it
tick by tick (interpolated between ticks, never running ahead of the next one). When clock
stops arriving for `timeout_s` (without a `stop`), the transport runs free at the last tempo from
where it was, without jumping. All times are caller-given seconds (monotonic), so tests drive it
with a fake clock.

The tempo comes from how many ticks arrived over a window (the last 96 ticks, trimmed to the last
2 s but never under 24), as the slope of a least-squares line through (tick number, arrival
time). Single tick intervals are useless for this: ports deliver clock in batches (JACK once per
period, 5.3 ms at 256 frames / 48 kHz; the bridge's poll loop stamps a whole batch with one time),
so the intervals are whole periods (21.3 ms for a 20.8 ms tick at 120 bpm) and any per-interval
statistic is biased (their median read 100 bpm as 94 and 120 as 117). Over a window the
batching only moves the two ends by a period at most, and the fit spreads that over every tick.
The window starts afresh at `start` and `continue` (the gap before their first tick is not a
tick) and when clock is lost.
"""

from __future__ import annotations

import statistics
from collections import deque

TICKS_PER_BEAT = 24
WINDOW_TICKS = 4 * TICKS_PER_BEAT  # the most ticks the tempo is fitted over (a 4/4 bar)
MIN_WINDOW_TICKS = TICKS_PER_BEAT  # ...and the fewest, when the window is trimmed to WINDOW_S
WINDOW_S = 2.0  # ticks older than this leave the window (so a tempo change is followed in ~2 s)
MIN_FIT_TICKS = 12  # fewer ticks than this (just after a start): keep the previous tempo
CLIP_BPM_DECIMALS = 1  # the fit is good to ~0.1 bpm, so a 100 bpm host is written 100.0, not 99.97


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
        self._window: deque[tuple[int, float]] = deque(maxlen=WINDOW_TICKS)  # (clock count, time)
        self._clocks = 0  # clock messages received (the x of the tempo fit)
        self._bpm_from_clock = False

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
        self._window.clear()

    def seconds_per_beat(self) -> float:
        return 60.0 / self.bpm

    @property
    def clip_bpm(self) -> float:
        """The tempo to write into a clip of what was played: the set tempo exactly, or once
        MIDI clock has been heard, its estimate rounded to about what the fit resolves (0.1 bpm)."""
        return round(self.bpm, CLIP_BPM_DECIMALS) if self._bpm_from_clock else self.bpm

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
            self._window.clear()
            self._anchor_beat, self._anchor_s = 0.0, now
            self._last_tick_s, self.running = now, True
        elif kind == "stop":
            self._anchor_beat, self._anchor_s = self.beat(now), now
            self.running = False
        elif kind == "continue":
            self._anchor_s, self.running = now, True
            self._window.clear()
            self._last_tick_s = now  # clock is expected to follow
        elif kind == "songpos":  # sixteenth notes
            self._ticks = pos * TICKS_PER_BEAT // 4
            self._anchor_beat, self._anchor_s = pos / 4.0, now

    def _tick(self, now: float) -> None:
        if not self.following(now):  # clock (re)appears: continue from where we are
            self._ticks = round(self.beat(now) * TICKS_PER_BEAT)
        self._last_tick_s = now
        if self.running:
            self._ticks += 1
        self._clocks += 1
        self._window.append((self._clocks, now))
        while len(self._window) > MIN_WINDOW_TICKS and now - self._window[0][1] > WINDOW_S:
            self._window.popleft()
        if len(self._window) >= MIN_FIT_TICKS:
            counts, times = zip(*self._window)
            s_per_tick = statistics.linear_regression(counts, times).slope
            if s_per_tick > 0:
                self.bpm = min(400.0, max(20.0, 60.0 / (s_per_tick * TICKS_PER_BEAT)))
                self._bpm_from_clock = True
        self._anchor_beat, self._anchor_s = self._ticks / TICKS_PER_BEAT, now
