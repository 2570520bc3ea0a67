"""The token grammar: which token may follow which.

One state machine feeds both validation (`Grammar.validate`) and constrained sampling
(`Grammar.allowed`), so sampling can never emit an undecodable sequence.

`GrammarState.bars_left` turns the grammar into a bar counter for generation: a BAR may open
a new bar only while `bars_left > 0`; once it reaches 0, the end tokens (EOS, FILL,
FILL_START, FILL_END, whichever closes the current segment) and a closing BAR are the only
ways out, so every generated segment has exactly the requested number of bars.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from musegen.errors import TokenizeError
from musegen.tokenizer.vocab import DEFAULT_VELOCITY_BIN, TICKS_PER_QUARTER, Vocab

# phases
START, HEAD_TRACK, HEAD_PROGRAM, HEAD_DONE = "start", "head_track", "head_program", "head_done"
BAR_HEAD, AFTER_TIMESIG, AFTER_TEMPO = "bar_head", "after_timesig", "after_tempo"
AFTER_POSITION, AFTER_TRACK, AFTER_VELOCITY = "after_position", "after_track", "after_velocity"
AFTER_PITCH, AFTER_DURATION, AFTER_FILL, AFTER_FILL_START = (
    "after_pitch", "after_duration", "after_fill", "after_fill_start")
DONE = "done"

# the phase after a token of each kind inside a bar
_PHASE_AFTER = {"timesig": AFTER_TIMESIG, "tempo": AFTER_TEMPO, "position": AFTER_POSITION,
                "track": AFTER_TRACK, "velocity": AFTER_VELOCITY, "pitch": AFTER_PITCH,
                "duration": AFTER_DURATION}

CHECK_EVERY = 4096  # tokens between two calls of validate's `cancelled`

# segments of a sequence: plain, or the three parts of a fill-in-the-middle example
PLAIN, PREFIX, SUFFIX, MIDDLE = "plain", "prefix", "suffix", "middle"


@dataclass(slots=True)
class GrammarState:
    phase: str = START
    segment: str = PLAIN
    n_tracks: int = 0
    track: int = 0
    velocity_bin: int = DEFAULT_VELOCITY_BIN
    position: int = -1
    bar_positions: int = 4 * TICKS_PER_QUARTER
    prefix_bar_positions: int = 4 * TICKS_PER_QUARTER
    bars: int = 0
    bars_left: int | None = None  # None: unlimited
    fim: bool = False  # True: this sequence is a fill-in-the-middle example

    def copy(self) -> GrammarState:
        return replace(self)


class Grammar:
    def __init__(self, vocab: Vocab) -> None:
        self.v = vocab
        v = vocab
        self._bar_len = np.array(
            [TICKS_PER_QUARTER * 4 * n // d for n, d in v.time_signatures], dtype=np.int64
        )
        self._kind_mask = {}
        for name, r in v.ranges.items():
            m = np.zeros(v.size, dtype=bool)
            m[r.start:r.stop] = True
            self._kind_mask[name] = m
        self._note_start = self._kind_mask["pitch"]
        self._allow = {
            START: self._allow_start, HEAD_TRACK: self._allow_head_track,
            HEAD_PROGRAM: self._allow_program, HEAD_DONE: self._allow_head_done,
            AFTER_FILL: self._allow_after_fill, AFTER_FILL_START: self._allow_after_fill,
            **dict.fromkeys((BAR_HEAD, AFTER_TIMESIG, AFTER_TEMPO, AFTER_DURATION),
                            self._allow_in_bar),
            **dict.fromkeys((AFTER_POSITION, AFTER_TRACK, AFTER_VELOCITY), self._allow_note_head),
            AFTER_PITCH: self._allow_duration,
        }

    # ----------------------------------------------------------- transitions
    def end_tokens(self, s: GrammarState) -> list[int]:
        v = self.v
        if s.bars_left not in (None, 0):
            return []
        if s.segment == PLAIN:
            return [v.eos]
        if s.segment == PREFIX:
            return [v.fill]
        if s.segment == SUFFIX:
            return [v.fill_start]
        return [v.fill_end]

    @staticmethod
    def mask_key(s: GrammarState) -> tuple:
        """The fields of `s` that `allowed` and `end_tokens` read: two states with the same key
        allow the same tokens (the sampler memoises masks on it)."""
        return (s.phase, s.segment, s.n_tracks, s.track, s.velocity_bin, s.position,
                s.bar_positions, s.bars_left is None, s.bars_left == 0)

    def allowed(self, s: GrammarState) -> np.ndarray:
        """Boolean mask over the vocabulary of the tokens that may come next."""
        m = np.zeros(self.v.size, dtype=bool)
        fill = self._allow.get(s.phase)
        if fill is not None:  # DONE: nothing
            fill(s, m)
        return m

    # one filler per phase (`_allow`): sets in `m` the tokens allowed after it
    def _allow_start(self, s: GrammarState, m: np.ndarray) -> None:
        m[self.v.bos] = True

    def _allow_head_track(self, s: GrammarState, m: np.ndarray) -> None:
        m[self.v.id("track", s.n_tracks)] = True

    def _allow_program(self, s: GrammarState, m: np.ndarray) -> None:
        m |= self._kind_mask["program"]

    def _allow_head_done(self, s: GrammarState, m: np.ndarray) -> None:
        v = self.v
        if s.n_tracks < v.n_tracks:
            m[v.id("track", s.n_tracks)] = True
        m[v.bar] = True
        if s.segment == PREFIX:  # infilling from the very first bar: empty prefix
            m[v.fill] = True

    def _allow_after_fill(self, s: GrammarState, m: np.ndarray) -> None:
        m[self.v.bar] = True
        if s.phase == AFTER_FILL:
            m[self.v.fill_start] = True

    def _allow_in_bar(self, s: GrammarState, m: np.ndarray) -> None:
        """After BAR, TIMESIG, TEMPO or a note's DURATION: what the bar may hold next, or
        its end."""
        v, km, p = self.v, self._kind_mask, s.phase
        if p == BAR_HEAD:
            m |= km["timesig"]
        if p in (BAR_HEAD, AFTER_TIMESIG):
            m |= km["tempo"]
        lo = s.position + 1
        if lo < s.bar_positions:
            start = v.ranges["position"].start
            m[start + lo:start + s.bar_positions] = True
        if p == AFTER_DURATION:
            self._note_heads(s, m)
        m[v.bar] = True  # closes this bar; opens another only while bars_left allows
        for t in self.end_tokens(s):
            m[t] = True

    def _allow_note_head(self, s: GrammarState, m: np.ndarray) -> None:
        self._note_heads(s, m, after=s.phase)

    def _allow_duration(self, s: GrammarState, m: np.ndarray) -> None:
        m |= self._kind_mask["duration"]

    def _note_heads(self, s: GrammarState, m: np.ndarray, after: str = AFTER_POSITION) -> None:
        v = self.v
        m |= self._note_start
        if after in (AFTER_POSITION, AFTER_DURATION, AFTER_TRACK):
            vs = v.ranges["velocity"].start
            m[vs:vs + v.n_velocities] = True
            m[vs + s.velocity_bin] = False
        if after in (AFTER_POSITION, AFTER_DURATION):
            ts = v.ranges["track"].start
            m[ts:ts + s.n_tracks] = True
            m[ts + s.track] = False

    def step(self, s: GrammarState, token: int) -> GrammarState:
        """Advance `s` in place by `token`; raises TokenizeError if it is not allowed."""
        token = int(token)
        if not 0 <= token < self.v.size or not self.allowed(s)[token]:
            what = self.v.describe(token) if 0 <= token < self.v.size else str(token)
            raise TokenizeError(f"token {what} may not follow state {s.phase!r}")
        return self.advance(s, token)

    def advance(self, s: GrammarState, token: int) -> GrammarState:
        """Advance `s` in place by `token` without checking that it is allowed: for a caller
        that drew `token` from inside `allowed(s)` (the sampler checks its whole batch at once).
        `step` is this plus the check."""
        token = int(token)
        v = self.v
        kind = v.kind(token)
        if s.phase in (START, HEAD_PROGRAM) or (s.phase in (HEAD_TRACK, HEAD_DONE) and kind == "track"):
            self._advance_head(s)
        elif token == v.bar:
            self._advance_bar(s)
        elif kind in _PHASE_AFTER:  # inside a bar
            s.phase = _PHASE_AFTER[kind]
            i = token - v.ranges[kind].start
            if kind == "timesig":
                s.bar_positions = int(self._bar_len[i])
            elif kind == "position":
                s.position = i
            elif kind == "track":
                s.track = i
            elif kind == "velocity":
                s.velocity_bin = i
        else:
            self._advance_special(s, token)
        return s

    @staticmethod
    def _advance_head(s: GrammarState) -> None:
        """BOS, then a TRACK and a PROGRAM per track."""
        if s.phase == START:
            s.phase = HEAD_TRACK
        elif s.phase == HEAD_PROGRAM:
            s.n_tracks += 1
            s.phase = HEAD_DONE
        else:
            s.phase = HEAD_PROGRAM

    def _advance_bar(self, s: GrammarState) -> None:
        if s.bars_left == 0:
            s.phase = DONE  # the closing BAR of a counted segment
            return
        s.bars += 1
        if s.bars_left is not None:
            s.bars_left -= 1
        s.phase, s.position, s.track = BAR_HEAD, -1, 0
        s.velocity_bin = self.v.default_velocity_bin

    def _advance_special(self, s: GrammarState, token: int) -> None:
        v = self.v
        if token == v.eos or token == v.fill_end:
            s.phase = DONE
        elif token == v.fill:
            s.prefix_bar_positions = s.bar_positions
            s.segment, s.phase, s.position = SUFFIX, AFTER_FILL, -1
        elif token == v.fill_start:
            s.bar_positions = s.prefix_bar_positions
            s.segment, s.phase, s.position = MIDDLE, AFTER_FILL_START, -1

    def initial(self, *, fim: bool = False) -> GrammarState:
        return GrammarState(fim=fim, segment=PREFIX if fim else PLAIN,
                            velocity_bin=self.v.default_velocity_bin)

    def validate(self, ids: np.ndarray | list[int], *, fim: bool = False,
                 cancelled: Callable[[], bool] | None = None) -> GrammarState:
        """Walk a whole sequence; raises TokenizeError at the first bad token.
        `cancelled()` true (asked every CHECK_EVERY tokens) stops with InterruptedError."""
        s = self.initial(fim=fim)
        for k, t in enumerate(ids):
            if cancelled is not None and k % CHECK_EVERY == CHECK_EVERY - 1 and cancelled():
                raise InterruptedError("cancelled while checking the prompt")
            if s.phase == DONE:
                raise TokenizeError(f"token {k} ({self.v.describe(int(t))}) after the end")
            try:
                self.step(s, int(t))
            except TokenizeError as e:
                raise TokenizeError(f"at token {k}: {e}") from None
        return s
