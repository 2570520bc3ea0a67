"""What the sampler may draw: the grammar and every musical constraint, one class each.

Per step the sampler hands the rows still generating to `Pipeline.apply`, which starts from
each row's grammar mask (narrowed by the state constraints, `StateMasks`), narrows that
(rows, vocab) mask through each other constraint's `mask`, sets the logits outside it to
-inf, adds each constraint's `bias`, and after the draw tells each constraint the drawn tokens
(`advance`). The grammar comes first and is the floor: every constraint narrows inside it, so
no constraint can make an undecodable sequence possible; a constraint that would leave a row
nothing is skipped for that row.

Where do I add a constraint? Here: one class with `build` (None when the request does not ask
for it) and `mask` and/or `bias`, plus one line in `CONSTRAINTS`. A constraint that reads only
a row's grammar state and bar counters subclasses `StateConstraint` and says what it reads in
`key`; it is then memoised with the grammar (a request meets a few hundred distinct states, so
after the first bars its masks are dictionary look-ups) and, like the grammar, it may leave a
row nothing only to fall back to the grammar alone. Any other constraint sees every step.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from musegen.generate import filters
from musegen.generate import voices as vl
from musegen.generate.draw import NEG_INF
from musegen.tokenizer import Tokenizer
from musegen.tokenizer.grammar import (
    AFTER_DURATION,
    AFTER_PITCH,
    AFTER_POSITION,
    AFTER_TEMPO,
    AFTER_TIMESIG,
    AFTER_TRACK,
    AFTER_VELOCITY,
    BAR_HEAD,
    DONE,
    HEAD_DONE,
    HEAD_PROGRAM,
    Grammar,
    GrammarState,
)
from musegen.tokenizer.vocab import DRUM_PROGRAM, TICKS_PER_QUARTER, Vocab


@dataclass(frozen=True)
class SampleParams:
    """A request's sampling knobs: the draw's (temperature, top_p, style_strength) and the
    constraints' below."""

    temperature: float = 1.0
    top_p: float = 0.95
    style_strength: float = 1.0
    pitch_classes: frozenset[int] | None = None  # key/scale lock
    pitch_range: tuple[int, int] | None = None
    density: float | None = None  # target notes per bar
    lock_meter: bool = True  # generated bars keep the prompt's time signature and tempo
    free_first_bar: bool = False  # ...except the first bar (starting from nothing)
    tracks: frozenset[int] | None = None  # only these tracks may receive notes
    max_leap: int | None = None  # semitones from the track's previous note (drums exempt)
    seam_leap: int | None = None  # an infill's leaps into and out of the region (`Seams`)
    max_tokens_per_bar: int = 320
    avoid_penalty: float = 4.0
    phrase: PhraseParams | None = None  # cadences, motif reuse, a start's key and tempo
    voices: vl.VoicePlan | None = None  # voice leading (`musegen.generate.voices.plan`)


@dataclass(frozen=True)
class PhraseParams:
    """What the phrase constraints (`Cadence`, `Motif`, `Opening`, `KeyPrior`) read. Bars
    count from 1 at the first generated bar; `bar_offset` bars of the piece come before it."""

    bars: int = 8  # bars the request generates (the last one is the final bar)
    cadence: str = "none"  # "auto", "tonic", "half" or "none"
    phrase_bars: int = 0  # 4: cadences at every phrase end too (folk); 0: the final bar only
    bar_offset: int = 0
    final: bool = True  # the last generated bar ends the piece (a regenerated middle: not)
    key: tuple[int, str] | None = None  # (tonic pitch class, "major"/"minor"): every row's
    row_keys: tuple[tuple[int, str], ...] | None = None  # ...or one per row (from nothing)
    motif: float = 0.0  # 0..1: bias toward the prompt's interval and rhythm patterns
    row_tempos: tuple[int, ...] | None = None  # from nothing: each row's TEMPO bin for bar 1
    key_prior: bool = False  # from nothing: lean toward each row's key (`row_keys`)

    def key_of(self, row: int) -> tuple[int, str] | None:
        if self.row_keys is not None and row < len(self.row_keys):
            return self.row_keys[row]
        return self.key


@dataclass(frozen=True)
class KeptVoices:
    """Arrange: the region's tokens holding only the kept tracks' notes (as `Tokenizer.bar_tokens`
    gives them after the forced BAR), and which tracks those are. Every other track is the
    model's to write."""

    tokens: tuple[int, ...]
    tracks: frozenset[int]


@dataclass(frozen=True)
class Request:
    """What a constraint is built from: the request, before any row is drawn."""

    tok: Tokenizer
    params: SampleParams
    prompt: np.ndarray
    forced: Sequence[int] = ()  # drawn for every row before sampling starts (they count as output)
    earlier: Sequence[Sequence[int]] = ()  # earlier takes of the same request, to avoid
    template: Sequence[int] | None = None  # keep-rhythm: the tokens to copy but for pitches
    kept: KeptVoices | None = None  # arrange: the kept tracks' notes, forced where they lie
    programs: tuple[int, ...] = field(init=False)  # each track's program, from the header

    def __post_init__(self) -> None:
        prog = self.tok.vocab.ranges["program"]
        head = self.tok.header(self.prompt)
        object.__setattr__(self, "programs", tuple(int(x) - prog.start for x in head if int(x) in prog))

    @property
    def before(self) -> list[int]:
        """Every token before the first drawn one."""
        return [*(int(x) for x in self.prompt), *self.forced]

    def is_drum(self, track: int) -> bool:
        return track < len(self.programs) and self.programs[track] == DRUM_PROGRAM

    def is_free(self, track: int) -> bool:
        """Pitch rules (key, range, leap) do not bind this track: drums, and arrange's kept voices."""
        return self.is_drum(track) or (self.kept is not None and track in self.kept.tracks)


@dataclass
class Row:
    """One variation as the constraints see it."""

    index: int  # its place in the request (seed, style, per-row memory of a constraint)
    state: GrammarState  # after its tokens so far
    tokens: list[int]  # drawn so far, the forced ones first
    bar_tokens: int = 0  # tokens since its last BAR
    bar_notes: int = 0  # notes since its last BAR
    done: bool = field(init=False)  # its segment is closed

    def __post_init__(self) -> None:
        self.done = self.state.phase == DONE

    def push(self, grammar: Grammar, token: int) -> None:
        """Take a drawn token (from inside the row's mask, so inside the grammar)."""
        grammar.advance(self.state, token)
        if self.state.phase == DONE:
            self.done = True
            return
        v = grammar.v
        self.tokens.append(token)
        self.bar_tokens = 0 if token == v.bar else self.bar_tokens + 1
        self.bar_notes = 0 if token == v.bar else self.bar_notes + (token in v.ranges["pitch"])


class Constraint:
    """One rule of the pipeline. Override `mask` and/or `bias`; `advance` if it remembers
    what rows drew. `build` returns None when the request does not ask for the rule."""

    @classmethod
    def build(cls, req: Request) -> Constraint | None:
        raise NotImplementedError

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        """(R, V) bool, True where allowed: return it narrowed (a new tensor) or unchanged."""
        return allowed

    def bias(self, rows: Sequence[Row], logits: torch.Tensor) -> torch.Tensor:
        """(R, V) float: return it shifted (a new tensor) or unchanged."""
        return logits

    def advance(self, rows: Sequence[Row], tokens: Sequence[int]) -> None:
        """The rows have taken `tokens` (one each)."""


class StateConstraint(Constraint):
    """A constraint whose mask depends on nothing but `key(row)` (a hashable) and the fields of
    `Grammar.mask_key`: memoised with the grammar."""

    def key(self, row: Row) -> Hashable:
        raise NotImplementedError


# ------------------------------------------------------------------ state constraints
class KeyAndRange(StateConstraint):
    """Key/scale lock and pitch range: pitches outside them are out (drum tracks and arrange's
    kept voices exempt)."""

    def __init__(self, req: Request, allowed: torch.Tensor) -> None:
        self.req, self.allowed = req, allowed

    @classmethod
    def build(cls, req: Request) -> KeyAndRange | None:
        p, v = req.params, req.tok.vocab
        if p.pitch_classes is None and p.pitch_range is None:
            return None
        m = torch.ones(v.size, dtype=torch.bool)
        if p.pitch_classes is not None:
            m &= filters.pitch_class_mask(v, set(p.pitch_classes))
        if p.pitch_range is not None:
            m &= filters.pitch_range_mask(v, *p.pitch_range)
        return cls(req, m)

    def key(self, row: Row) -> Hashable:
        return row.state.track

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        keep = torch.tensor([self.req.is_free(r.state.track) for r in rows])[:, None]
        return allowed & (self.allowed | keep)


class MeterLock(StateConstraint):
    """Generated bars keep the prompt's time signature and tempo (from nothing: but the first)."""

    def __init__(self, vocab: Vocab, free_first_bar: bool) -> None:
        self.free_first_bar = free_first_bar
        self.meter = slice(vocab.ranges["timesig"].start, vocab.ranges["tempo"].stop)

    @classmethod
    def build(cls, req: Request) -> MeterLock | None:
        return cls(req.tok.vocab, req.params.free_first_bar) if req.params.lock_meter else None

    def key(self, row: Row) -> Hashable:
        return self.free_first_bar and row.state.bars <= 1

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        out = allowed.clone()
        for i, r in enumerate(rows):
            if not (self.free_first_bar and r.state.bars <= 1):
                out[i, self.meter] = False
        return out


class Tracks(StateConstraint):
    """Only the given tracks receive notes: a row on another track must switch first."""

    def __init__(self, vocab: Vocab, tracks: frozenset[int]) -> None:
        self.tracks = tracks
        r = vocab.ranges
        self.notes = [slice(r["pitch"].start, r["pitch"].stop),
                      slice(r["velocity"].start, r["velocity"].stop)]
        self.others = [r["track"].start + t for t in range(vocab.n_tracks) if t not in tracks]

    @classmethod
    def build(cls, req: Request) -> Tracks | None:
        t = req.params.tracks
        return cls(req.tok.vocab, t) if t is not None else None

    def key(self, row: Row) -> Hashable:
        return row.state.phase, row.state.track

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        out = allowed.clone()
        for i, r in enumerate(rows):
            if r.state.phase in (AFTER_POSITION, AFTER_DURATION, AFTER_TRACK):
                if r.state.track not in self.tracks:
                    for s in self.notes:
                        out[i, s] = False
                out[i, self.others] = False
        return out


class RunawayBar(StateConstraint):
    """A bar past `max_tokens_per_bar` tokens may only close (if the rows' masks allow it)."""

    def __init__(self, grammar: Grammar, limit: int) -> None:
        self.grammar, self.limit = grammar, limit

    @classmethod
    def build(cls, req: Request) -> RunawayBar:
        return cls(req.tok.grammar, req.params.max_tokens_per_bar)

    def key(self, row: Row) -> Hashable:
        return row.bar_tokens >= self.limit

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        out = allowed.clone()
        for i, r in enumerate(rows):
            if r.bar_tokens >= self.limit:
                close = torch.zeros_like(out[i])
                close[[self.grammar.v.bar, *self.grammar.end_tokens(r.state)]] = True
                if (out[i] & close).any():
                    out[i] &= close
        return out


# ------------------------------------------------------------------ constraints with memory
class KeepRhythm(Constraint):
    """Keep-rhythm: at step k a row must emit template[k] unless that is a PITCH, in which
    case any pitch the other masks allow, or a tuple of tokens (a melody's cadence: the
    pitches it may end a line on), any of those the other masks allow (when they allow none
    of them, a stated limit such as max_leap wins: any pitch, as for a PITCH); past the
    template only closing the segment is left."""

    def __init__(self, req: Request, template: Sequence[int]) -> None:
        self.grammar, self.template, self.n_forced = req.tok.grammar, template, len(req.forced)
        self.pitch = req.tok.vocab.ranges["pitch"]

    @classmethod
    def build(cls, req: Request) -> KeepRhythm | None:
        return cls(req, req.template) if req.template is not None else None

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        g, pitch, template = self.grammar, self.pitch, self.template
        out = allowed.clone()
        for i, r in enumerate(rows):
            if r.done:
                continue
            k = len(r.tokens) - self.n_forced
            grammar = torch.from_numpy(g.allowed(r.state))
            only = torch.zeros_like(grammar)
            if k >= len(template):
                only[[g.v.bar, *g.end_tokens(r.state)]] = True
            elif isinstance(template[k], tuple) or template[k] in pitch:
                only = self._pitches(template[k], out[i])
            else:
                only[template[k]] = True
            only &= grammar
            if only.any():
                out[i] = only
        return out

    def _pitches(self, entry: int | tuple[int, ...], allowed: torch.Tensor) -> torch.Tensor:
        """A template pitch step: a cadence's pitches (a tuple) the other masks allow, else
        any pitch they allow, else any pitch."""
        only = torch.zeros_like(allowed)
        if isinstance(entry, tuple):
            only[list(entry)] = True
            only &= allowed
            if only.any():
                return only
        only[self.pitch.start:self.pitch.stop] = True
        only &= allowed
        if not only.any():
            only[self.pitch.start:self.pitch.stop] = True
        return only


class KeepVoices(Constraint):
    """Arrange: every note of the kept tracks is written exactly where the musician put it,
    while the model writes the other tracks around them. Per row it knows the next kept note
    (bar, position, track, velocity, pitch, duration): a row may not move past that note's
    position, nor close the bar, before writing it; at its position it may first write notes
    of added tracks ordered before it (token order is by track), then the note itself, token
    by token. Kept tracks get no other notes; the bars' time signatures and tempi are the
    template's. Near `max_tokens_per_bar` added notes stop, so the kept ones always fit. A
    bar closes only once every added track has a note in it (an added voice is never left
    silent for a bar), and where the kept voices strike, every added voice sounds: it holds a
    note through that onset or strikes one there (the texture is a harmonization, not a
    melody over rests)."""

    def __init__(self, req: Request, kept: KeptVoices) -> None:
        v = req.tok.vocab
        self.v, self.kept_tracks, self.limit = v, kept.tracks, req.params.max_tokens_per_bar
        self.added = [t for t in range(len(req.programs)) if t not in kept.tracks]
        self.bars = template_bars(v, kept.tokens)  # per bar: (head tokens, notes)
        self.onsets = [frozenset(n[0] for n in notes) for _, notes in self.bars]  # kept onsets per bar
        self.duration0 = v.ranges["duration"].start
        r = v.ranges
        self.track0, self.position0 = r["track"].start, r["position"].start
        self.notes_slice = slice(r["velocity"].start, r["pitch"].stop)  # velocity + pitch
        self.meter = slice(r["timesig"].start, r["tempo"].stop)
        self.specials = slice(r["special"].start, r["special"].stop)
        self.at: dict[int, list] = {}  # row index -> `_at`
        self.cache: dict[tuple, torch.Tensor] = {}

    @classmethod
    def build(cls, req: Request) -> KeepVoices | None:
        return cls(req, req.kept) if req.kept is not None else None

    def _rule(self, r: Row) -> tuple:
        """What the row may write next, as a hashable rule (`_mask` makes it a mask)."""
        bar, k, head_done, silent, bar_start, _, ends = self._at(r)
        heads, notes = self.bars[min(bar, len(self.bars) - 1)]
        g = r.state
        if g.phase == BAR_HEAD and head_done < len(heads):
            return ("only", heads[head_done])
        while k < len(notes) and notes[k][0] < g.position:  # passed (a skipped mask): lost
            k = self.at[r.index][1] = k + 1  # type: ignore[operator]
        nxt = notes[k] if k < len(notes) else None
        on_kept = g.track in self.kept_tracks
        if on_kept and g.phase in (AFTER_TRACK, AFTER_VELOCITY, AFTER_PITCH) and nxt is not None:
            return ("only", self._next_token(g, nxt))  # inside a kept note
        if g.phase not in (BAR_HEAD, AFTER_TIMESIG, AFTER_TEMPO, AFTER_DURATION, AFTER_POSITION):
            return ("free",)  # inside an added track's note: the grammar decides
        here = nxt is not None and g.position == nxt[0]
        pos_hi = nxt[0] if nxt is not None else self.v.n_positions - 1
        # near the bar's token limit (RunawayBar would close it) only the kept notes are left
        # (a row that has just written a POSITION of its own places one note there)
        room = r.bar_tokens + 5 * (len(notes) - k + len(silent)) + 8 < self.limit or \
            (g.phase == AFTER_POSITION and not here)
        tracks = tuple(t for t in self.added if room and (not here or t < nxt[1]))
        notes_ok = room and not on_kept and (not here or g.track < nxt[1])
        start = self._next_token(g, nxt) if here else None
        pos_lo = 0 if room else (nxt[0] if nxt is not None else pos_hi + 1)
        bar_ok = nxt is None and not silent
        if room and not here and g.phase == AFTER_DURATION and \
                g.position in self.onsets[min(bar, len(self.bars) - 1)]:
            # the kept voices struck here: an added voice that would rest now strikes too
            owed = tuple(t for t in self.added if ends.get(t, -1) <= bar_start + g.position)
            if owed:
                return ("bar", 0, g.position, owed, False, None, False)
        return ("bar", pos_lo, pos_hi, tracks, notes_ok, start, bar_ok)

    def _next_token(self, g: GrammarState, note: tuple[int, ...]) -> int:
        pos, track, vel, pitch, dur = note
        if g.phase == AFTER_PITCH:
            return dur
        if g.track != track:
            return self.track0 + track
        if g.velocity_bin != vel:
            return self.v.ranges["velocity"].start + vel
        return pitch

    def _mask(self, rule: tuple) -> torch.Tensor:
        m = self.cache.get(rule)
        if m is not None:
            return m
        v = self.v
        if rule[0] == "only":
            m = torch.zeros(v.size, dtype=torch.bool)
            m[rule[1]] = True
        elif rule[0] == "free":
            m = torch.ones(v.size, dtype=torch.bool)
            m[self.meter] = False
        else:
            _, pos_lo, pos_hi, tracks, notes_ok, start, bar_ok = rule
            m = torch.ones(v.size, dtype=torch.bool)
            m[self.meter] = False
            m[self.position0:self.position0 + pos_lo] = False
            m[self.position0 + pos_hi + 1:self.position0 + v.n_positions] = False
            m[self.track0:self.track0 + v.n_tracks] = False
            m[[self.track0 + t for t in tracks]] = True
            if not notes_ok:
                m[self.notes_slice] = False
            if not bar_ok:
                m[self.specials] = False
            if start is not None:
                m[start] = True
        self.cache[rule] = m
        return m

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        return allowed & torch.stack([self._mask(self._rule(r)) for r in rows])

    def _at(self, r: Row) -> list:
        """[bar, next kept note, head tokens done, added tracks without a note in this bar,
        the bar's start and length in grid ticks, each added track's last note's end]."""
        at = self.at.get(r.index)
        if at is None:
            at = self.at[r.index] = [0, 0, 0, frozenset(self.added), 0, r.state.bar_positions, {}]
        return at

    def advance(self, rows: Sequence[Row], tokens: Sequence[int]) -> None:
        v = self.v
        for r, t in zip(rows, tokens):
            at = self._at(r)
            kind = v.kind(t)
            if t == v.bar:
                at[4] += at[5]
                # a voice holding its note over the bar line sounds in the new bar already
                at[:4] = [at[0] + 1, 0, 0, frozenset(u for u in self.added if at[6].get(u, -1) <= at[4])]
                at[5] = r.state.bar_positions
            elif kind in ("timesig", "tempo"):
                at[2] += 1
                at[5] = r.state.bar_positions
            elif kind == "duration" and r.state.track in self.kept_tracks:
                at[1] += 1
            elif kind == "duration":
                at[6][r.state.track] = at[4] + r.state.position + v.durations[t - self.duration0]
            elif kind == "pitch" and r.state.track in at[3]:
                at[3] = at[3] - {r.state.track}


def template_bars(v: Vocab, tokens: Sequence[int]) -> list[tuple[list[int], list[tuple[int, ...]]]]:
    """A region's tokens (after its first BAR and head) as bars of (head tokens, notes), each
    note (position, track, velocity bin, PITCH token, DURATION token)."""
    bars: list[tuple[list[int], list[tuple[int, ...]]]] = [([], [])]
    pos, track, vel, pitch = -1, 0, v.default_velocity_bin, 0
    for t in (int(x) for x in tokens):
        kind = v.kind(t)
        if t == v.bar:
            bars.append(([], []))
            pos, track, vel = -1, 0, v.default_velocity_bin
        elif kind in ("timesig", "tempo"):
            bars[-1][0].append(t)
        elif kind == "position":
            pos = t - v.ranges["position"].start
        elif kind == "track":
            track = t - v.ranges["track"].start
        elif kind == "velocity":
            vel = t - v.ranges["velocity"].start
        elif kind == "pitch":
            pitch = t
        elif kind == "duration":
            bars[-1][1].append((pos, track, vel, pitch, t))
    return bars


def template_notes(v: Vocab, tokens: Sequence[int]) -> list[tuple[int, ...]]:
    """The notes of `template_bars` as (bar, position, track, velocity bin, PITCH, DURATION)."""
    return [(b, *n) for b, (_, notes) in enumerate(template_bars(v, tokens)) for n in notes]


def pitch_events(tok: Tokenizer, ids: Sequence[int]) -> Iterator[tuple[int, int, bool]]:
    """(track, pitch, first note of its onset) for each note of a token sequence (the track
    resets to 0 at every BAR). In a fill-in-the-middle prompt the bars after FILL (the suffix)
    are skipped: the middle follows the prefix."""
    v = tok.vocab
    pitch, track, pos = v.ranges["pitch"], v.ranges["track"], v.ranges["position"]
    cur, in_head, suffix, fresh = 0, True, False, False
    for t in (int(x) for x in ids):
        if t == v.fill or t == v.fill_start:
            suffix = t == v.fill
        elif suffix:
            continue
        elif t == v.bar:
            cur, in_head = 0, False
        elif t in track and not in_head:
            cur, fresh = t - track.start, True
        elif t in pos:
            fresh = True
        elif t in pitch:
            yield cur, t - pitch.start, fresh
            fresh = False


def _narrow_pitches(allowed: torch.Tensor, keep: torch.Tensor, pitches: slice) -> torch.Tensor:
    """`allowed & keep`, except for a row that this leaves no PITCH token where `allowed` had
    some: that row keeps `allowed` (a pitch rule must not push a row into a track or velocity
    change instead)."""
    cut = allowed & keep
    lost = allowed[:, pitches].any(1) & ~cut[:, pitches].any(1)
    return torch.where(lost[:, None], allowed, cut)


def last_pitches(tok: Tokenizer, ids: Sequence[int]) -> dict[int, int]:
    """The last pitch of each track in a token sequence (`pitch_events`)."""
    return {track: p for track, p, _ in pitch_events(tok, ids)}


class MaxLeap(Constraint):
    """No pitch more than `max_leap` semitones from its track's previous note (drums exempt;
    from the prompt's last notes on). A row whose leap window holds no pitch the other masks
    allow keeps its pitches: it is not pushed into a track or velocity change instead."""

    def __init__(self, req: Request, max_leap: int) -> None:
        self.req, self.vocab, self.max_leap = req, req.tok.vocab, max_leap
        self.pitch = req.tok.vocab.ranges["pitch"]
        self.pitches = slice(self.pitch.start, self.pitch.stop)
        self.start = last_pitches(req.tok, req.before)
        self.last: dict[int, dict[int, int]] = {}  # row index -> track -> previous pitch
        self.masks: dict[int | None, torch.Tensor] = {}  # previous pitch -> its leap mask

    @classmethod
    def build(cls, req: Request) -> MaxLeap | None:
        leap = req.params.max_leap
        return cls(req, leap) if leap is not None else None

    def _previous(self, row: Row) -> int | None:
        track = row.state.track
        if self.req.is_free(track):
            return None
        return self.last.get(row.index, self.start).get(track)

    def _leap_mask(self, previous: int | None) -> torch.Tensor:
        m = self.masks.get(previous)
        if m is None:
            m = self.masks[previous] = filters.leap_mask(self.vocab, [previous], self.max_leap)[0]
        return m

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        return _narrow_pitches(allowed, torch.stack([self._leap_mask(self._previous(r)) for r in rows]),
                               self.pitches)

    def advance(self, rows: Sequence[Row], tokens: Sequence[int]) -> None:
        for r, t in zip(rows, tokens):
            if t in self.pitch:
                self.last.setdefault(r.index, dict(self.start))[r.state.track] = t - self.pitch.start


def suffix_first_pitches(tok: Tokenizer, ids: Sequence[int]) -> dict[int, int]:
    """The first pitch of each track in a fill-in-the-middle prompt's suffix (the bars after
    the region: between FILL and FILL_START; the track resets to 0 at every BAR)."""
    v = tok.vocab
    pitch, track = v.ranges["pitch"], v.ranges["track"]
    out: dict[int, int] = {}
    cur, inside = 0, False
    for t in (int(x) for x in ids):
        if t == v.fill:
            inside = True
        elif t == v.fill_start:
            break
        elif not inside:
            continue
        elif t == v.bar:
            cur = 0
        elif t in track:
            cur = t - track.start
        elif t in pitch:
            out.setdefault(cur, t - pitch.start)
    return out


class Seams(Constraint):
    """Regenerated bars join what is around them: in a fill-in-the-middle request, each
    track's first notes of the region (its first onset) are at most `seam_leap` semitones from its last note
    before the region, and its notes in the region's last bar at most `seam_leap` from its
    first note after it (drums exempt): the whole bar, because the region's last note may
    start early (a long note ending a phrase) and is not known to be the last when its pitch
    is drawn; only the second half was held before, and folk regenerates leapt out of the
    region by more than 7 semitones at 9 % of seams. As with `MaxLeap`, a row the window
    leaves no pitch keeps its pitches."""

    def __init__(self, req: Request, leap: int) -> None:
        self.req, self.vocab, self.leap = req, req.tok.vocab, leap
        self.pitch = req.tok.vocab.ranges["pitch"]
        self.pitches = slice(self.pitch.start, self.pitch.stop)
        self.before = last_pitches(req.tok, req.before)  # the prefix's (the suffix is skipped)
        self.after = suffix_first_pitches(req.tok, req.prompt)
        # row index -> track -> its first onset in the region, as (bars left, position)
        self.started: dict[int, dict[int, tuple[int | None, int]]] = {}
        self.masks: dict[tuple[int, ...], torch.Tensor] = {}

    @classmethod
    def build(cls, req: Request) -> Seams | None:
        leap = req.params.seam_leap
        if leap is None or req.tok.vocab.fill not in {int(x) for x in req.prompt}:
            return None
        return cls(req, leap)

    def _targets(self, r: Row) -> tuple[int, ...]:
        s = r.state
        if self.req.is_drum(s.track):
            return ()
        out = []
        first = self.started.get(r.index, {}).get(s.track)
        if (first is None or first == (s.bars_left, s.position)) and s.track in self.before:
            out.append(self.before[s.track])  # every note of the track's first onset
        if s.bars_left == 0 and s.track in self.after:
            out.append(self.after[s.track])
        return tuple(out)

    def _mask(self, targets: tuple[int, ...]) -> torch.Tensor:
        m = self.masks.get(targets)
        if m is None:
            m = filters.leap_mask(self.vocab, list(targets), self.leap).all(0)
            self.masks[targets] = m
        return m

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        targets = [self._targets(r) for r in rows]
        if not any(targets):
            return allowed
        return _narrow_pitches(allowed, torch.stack([self._mask(t) for t in targets]), self.pitches)

    def advance(self, rows: Sequence[Row], tokens: Sequence[int]) -> None:
        for r, t in zip(rows, tokens):
            if t in self.pitch:
                self.started.setdefault(r.index, {}).setdefault(r.state.track,
                                                                (r.state.bars_left, r.state.position))


class Density(Constraint):
    """Steer notes per bar toward `density`: a bias, no mask (`filters.density_bias`)."""

    def __init__(self, vocab: Vocab, target: float) -> None:
        self.vocab, self.target = vocab, target

    @classmethod
    def build(cls, req: Request) -> Density | None:
        d = req.params.density
        return cls(req.tok.vocab, d) if d is not None else None

    def bias(self, rows: Sequence[Row], logits: torch.Tensor) -> torch.Tensor:
        notes = torch.tensor([r.bar_notes for r in rows])
        return filters.density_bias(logits, self.vocab, notes, self.target)


class AvoidEarlier(Constraint):
    """No-repeat: while a row follows the path of an earlier take of the same request, that
    take's next token costs `avoid_penalty`, so a new take leaves the old path."""

    def __init__(self, earlier: Sequence[Sequence[int]], penalty: float) -> None:
        self.earlier, self.penalty = [list(e) for e in earlier], penalty
        self.follow: dict[int, list[list[int]]] = {}  # row index -> earlier takes it still follows

    @classmethod
    def build(cls, req: Request) -> AvoidEarlier | None:
        return cls(req.earlier, req.params.avoid_penalty) if req.earlier else None

    def _follows(self, row: Row) -> list[list[int]]:
        return self.follow.get(row.index, self.earlier)

    def bias(self, rows: Sequence[Row], logits: torch.Tensor) -> torch.Tensor:
        nxt = [[e[len(r.tokens)] for e in self._follows(r) if len(e) > len(r.tokens)] for r in rows]
        return filters.avoid_tokens(logits, nxt, self.penalty)

    def advance(self, rows: Sequence[Row], tokens: Sequence[int]) -> None:
        for r, t in zip(rows, tokens):
            k = len(r.tokens) - 1
            self.follow[r.index] = [e for e in self._follows(r) if len(e) > k and e[k] == t]


# ------------------------------------------------------------------ phrases
CADENCE_PITCH = 5.0  # logit bonus of the cadence's goal (tonic, or the dominant of a half cadence)
CADENCE_CHORD = 0.8  # ...of the other notes of its triad
CADENCE_EARLY = 0.4  # both scaled by this in the cadence bar's first half (1.0 struck the goal all bar long)
CADENCE_LONG = 1.5  # ...of a note that lasts to the end of the cadence bar (from its 2nd half)
KEY_PRIOR = 4.0  # from nothing: logit cost of a pitch outside the row's drawn key
MOTIF_INTERVAL = 3.0  # at motif=1: bonus of a pitch that restates an interval 3-gram of the prompt
MOTIF_STEP = 1.0  # ...that restates an interval 2-gram
MOTIF_RHYTHM = 1.5  # ...of an onset that keeps the bar on one of the prompt's bar rhythms


def cadence_goal(p: PhraseParams, bar: int) -> str | None:
    """In generated bar `bar` (1-based): "tonic", "half" (the dominant) or None (no cadence).
    The request's final bar ends as `cadence` says ("auto": on the tonic); with `phrase_bars`,
    every phrase end of the piece too: a half cadence mid-strain, the tonic at a strain end."""
    if p.cadence == "none" or not 1 <= bar <= p.bars:
        return None
    if bar == p.bars and p.final:
        return "half" if p.cadence == "half" else "tonic"
    if p.phrase_bars and p.cadence == "auto":
        m = p.bar_offset + bar
        if m % p.phrase_bars == 0:
            return "half" if (m // p.phrase_bars) % 2 else "tonic"
    return None


def _goal_root(goal: str, key: tuple[int, str]) -> int:
    """The pitch class a cadence to `goal` ("tonic" or "half") lands on in `key`."""
    return key[0] if goal == "tonic" else (key[0] + 7) % 12


class _Biases:
    """Per-row bias vectors memoised on a hashable key (a step is ~1 ms: no tensor work per
    step but one stack)."""

    def __init__(self, size: int) -> None:
        self.size, self.cache, self.zero = size, {}, torch.zeros(size)

    def apply(self, logits: torch.Tensor, keys: Sequence[Hashable | None],
              make: Callable[[Hashable], torch.Tensor]) -> torch.Tensor:
        if all(k is None for k in keys):
            return logits
        rows = []
        for k in keys:
            if k is None:
                rows.append(self.zero)
                continue
            b = self.cache.get(k)
            if b is None:
                b = self.cache[k] = make(k)
            rows.append(b)
        return logits + torch.stack(rows).to(logits.dtype)


class Cadence(Constraint):
    """Phrases that end: in a cadence bar (`cadence_goal`) each voice is drawn to the goal
    pitch class and its triad (weakly in the bar's first half), and from the second half a
    note lasting to the bar's end is favoured. The goal is not favoured straight after the
    voice struck it (a bar of one pitch struck again and again is not a cadence). A bias,
    never a mask; drum tracks exempt."""

    def __init__(self, req: Request, p: PhraseParams) -> None:
        self.req, self.p, v = req, p, req.tok.vocab
        self.pitch, self.dur = v.ranges["pitch"], v.ranges["duration"]
        self.pos, self.track = v.ranges["position"], v.ranges["track"]
        self.durations = torch.tensor(v.durations)
        self.biases = _Biases(v.size)

    @classmethod
    def build(cls, req: Request) -> Cadence | None:
        p = req.params.phrase
        if p is None or p.cadence == "none" or (p.key is None and p.row_keys is None):
            return None
        return cls(req, p)

    def _last_pc(self, r: Row, track: int, before: int) -> int | None:
        """The pitch class of the last note `track` struck in the row's current bar before
        position `before` (a cadence bar only: one scan of that bar's tokens)."""
        last, pos, cur = None, -1, 0
        for t in r.tokens[len(r.tokens) - r.bar_tokens:]:
            if t in self.pos:
                pos = t - self.pos.start
            elif t in self.track:
                cur = t - self.track.start
            elif t in self.pitch and cur == track and pos < before:
                last = (t - self.pitch.start) % 12
        return last

    def _key(self, r: Row) -> Hashable | None:
        s = r.state
        if s.bars_left is None or s.phase not in (AFTER_POSITION, AFTER_TRACK, AFTER_VELOCITY, AFTER_PITCH):
            return None
        goal = cadence_goal(self.p, self.p.bars - s.bars_left)
        key = self.p.key_of(r.index)
        if goal is None or key is None or self.req.is_drum(s.track):
            return None
        half = 2 * s.position >= s.bar_positions
        if s.phase == AFTER_PITCH:  # the duration: long from the second half on
            return ("dur", s.bar_positions - s.position) if half else None
        just_struck = self._last_pc(r, s.track, s.position) == _goal_root(goal, key)
        return ("pitch", goal, key, 1.0 if half else CADENCE_EARLY, just_struck)

    def _make(self, k: tuple) -> torch.Tensor:
        b = torch.zeros(self.biases.size)
        if k[0] == "dur":
            reach = self.durations >= k[1]
            b[self.dur.start:self.dur.stop][reach] = CADENCE_LONG
            return b
        _, goal, (tonic, mode), weight, just_struck = k
        root = _goal_root(goal, (tonic, mode))
        third = (root + (3 if goal == "tonic" and mode == "minor" else 4)) % 12
        for pitch in range(len(self.pitch)):
            pc = pitch % 12
            if pc == root:
                if not just_struck:
                    b[self.pitch.start + pitch] = weight * CADENCE_PITCH
            elif pc in (third, (root + 7) % 12):
                b[self.pitch.start + pitch] = weight * CADENCE_CHORD
        return b

    def bias(self, rows: Sequence[Row], logits: torch.Tensor) -> torch.Tensor:
        return self.biases.apply(logits, [self._key(r) for r in rows], self._make)


def recent_pitches(tok: Tokenizer, ids: Sequence[int], n: int = 3) -> dict[int, list[int]]:
    """The last `n` onset pitches of each track (one per onset: its first note), as
    `pitch_events` reads a sequence (the suffix of a fill-in-the-middle prompt skipped)."""
    out: dict[int, list[int]] = {}
    for track, p, first in pitch_events(tok, ids):
        if first:
            out[track] = (out.get(track, []) + [p])[-n:]
    return out


def prompt_patterns(tok: Tokenizer, ids: Sequence[int]) -> tuple[set, set, set]:
    """The prompt's interval 3-grams and 2-grams (per track, between onsets) and its bar
    rhythms (each bar's onset positions, every track together), for `Motif`."""
    v = tok.vocab
    pitch, track, pos = v.ranges["pitch"], v.ranges["track"], v.ranges["position"]
    seqs: dict[int, list[int]] = {}
    bars: list[list[int]] = []
    cur, in_head, fresh = 0, True, False
    for t in (int(x) for x in ids):
        if t == v.fill:
            break  # a fill-in-the-middle prompt: the prefix only
        if t == v.bar:
            cur, in_head = 0, False
            bars.append([])
        elif in_head:
            continue
        elif t in track:
            cur, fresh = t - track.start, True
        elif t in pos:
            fresh = True
            bars[-1].append(t - pos.start)
        elif t in pitch and fresh:
            seqs.setdefault(cur, []).append(t - pitch.start)
            fresh = False
    tri, bi = set(), set()
    for s in seqs.values():
        iv = [b - a for a, b in zip(s, s[1:])]
        tri |= {tuple(iv[i:i + 3]) for i in range(len(iv) - 2)}
        bi |= {tuple(iv[i:i + 2]) for i in range(len(iv) - 1)}
    return tri, bi, {tuple(b) for b in bars if b}


class Motif(Constraint):
    """Motif reuse: a bias (`motif` 0..1) toward a pitch whose interval from the track's last
    two restates an interval 3-gram (or 2-gram) of the prompt, and toward an onset that keeps
    the bar on one of the prompt's bar rhythms."""

    def __init__(self, req: Request, strength: float) -> None:
        tok, self.s, self.req = req.tok, strength, req
        v = tok.vocab
        self.pitch, self.pos, self.v = v.ranges["pitch"], v.ranges["position"], v
        tri, bi, self.rhythms = prompt_patterns(tok, req.prompt)
        self.after2: dict[tuple, set[int]] = {}
        for a, b, c in tri:
            self.after2.setdefault((a, b), set()).add(c)
        self.after1: dict[int, set[int]] = {}
        for a, b in bi:
            self.after1.setdefault(a, set()).add(b)
        self.start = recent_pitches(tok, req.before)
        self.recent: dict[int, dict[int, list[int]]] = {}  # row -> track -> last onset pitches
        self.onsets: dict[int, list[int]] = {}  # row -> this bar's onsets so far
        self.fresh: dict[int, bool] = {}
        self.biases = _Biases(v.size)

    @classmethod
    def build(cls, req: Request) -> Motif | None:
        p = req.params.phrase
        return cls(req, p.motif) if p is not None and p.motif > 0 else None

    def _key(self, r: Row) -> Hashable | None:
        s = r.state
        if s.phase in (AFTER_POSITION, AFTER_TRACK, AFTER_VELOCITY) and self.fresh.get(r.index, True):
            if self.req.is_drum(s.track) or self._cadencing(r):
                return None
            last = self.recent.get(r.index, self.start).get(s.track, [])
            if len(last) < 2:
                return None
            i1 = last[-1] - last[-2]
            i0 = last[-2] - last[-3] if len(last) >= 3 else None
            return ("pitch", last[-1], i0, i1)
        if s.phase in (BAR_HEAD, AFTER_TIMESIG, AFTER_TEMPO, AFTER_DURATION) and self.rhythms \
                and not self._cadencing(r):
            return ("pos", tuple(self.onsets.get(r.index, ())))
        return None

    def _cadencing(self, r: Row) -> bool:
        """A cadence bar belongs to the cadence, not the motif."""
        p, s = self.req.params.phrase, r.state
        return (p is not None and s.bars_left is not None
                and cadence_goal(p, p.bars - s.bars_left) is not None)

    def _make(self, k: tuple) -> torch.Tensor:
        b = torch.zeros(self.biases.size)
        if k[0] == "pitch":
            _, last, i0, i1 = k
            for step in self.after1.get(i1, ()):
                if 0 <= last + step < len(self.pitch):
                    b[self.pitch.start + last + step] = self.s * MOTIF_STEP
            for step in self.after2.get((i0, i1), ()) if i0 is not None else ():
                if 0 <= last + step < len(self.pitch):
                    b[self.pitch.start + last + step] = self.s * MOTIF_INTERVAL
            return b
        cur = k[1]
        n = len(cur)
        for rhythm in self.rhythms:
            if rhythm[:n] == cur and len(rhythm) > n:
                b[self.pos.start + rhythm[n]] = self.s * MOTIF_RHYTHM
        return b

    def bias(self, rows: Sequence[Row], logits: torch.Tensor) -> torch.Tensor:
        return self.biases.apply(logits, [self._key(r) for r in rows], self._make)

    def advance(self, rows: Sequence[Row], tokens: Sequence[int]) -> None:
        v = self.v
        for r, t in zip(rows, tokens):
            if t == v.bar:
                self.onsets[r.index] = []
            elif t in self.pos:
                self.onsets.setdefault(r.index, []).append(t - self.pos.start)
                self.fresh[r.index] = True
            elif t in v.ranges["track"]:
                self.fresh[r.index] = True
            elif t in self.pitch:
                if self.fresh.get(r.index, True):
                    mine = self.recent.setdefault(r.index, {k: list(x) for k, x in self.start.items()})
                    mine[r.state.track] = (mine.get(r.state.track, []) + [t - self.pitch.start])[-3:]
                self.fresh[r.index] = False


class KeyPrior(Constraint):
    """From nothing: each row leans toward the key drawn for it from its style's real pieces
    (pitches outside the key cost `KEY_PRIOR`); drum tracks exempt."""

    def __init__(self, req: Request, p: PhraseParams) -> None:
        self.req, self.p, v = req, p, req.tok.vocab
        self.pitch = v.ranges["pitch"]
        self.biases = _Biases(v.size)

    @classmethod
    def build(cls, req: Request) -> KeyPrior | None:
        p = req.params.phrase
        return cls(req, p) if p is not None and p.key_prior and p.row_keys else None

    def _make(self, key: tuple[int, str]) -> torch.Tensor:
        pcs = filters.scale_pitch_classes(*key)
        b = torch.zeros(self.biases.size)
        for pitch in range(len(self.pitch)):
            if pitch % 12 not in pcs:
                b[self.pitch.start + pitch] = -KEY_PRIOR
        return b

    def bias(self, rows: Sequence[Row], logits: torch.Tensor) -> torch.Tensor:
        keys = [None if self.req.is_drum(r.state.track) else self.p.key_of(r.index) for r in rows]
        return self.biases.apply(logits, keys, self._make)


class Opening(StateConstraint):
    """From nothing: the first bar states the tempo drawn for the row (its style's real
    tempi): a TEMPO token must come, and only that one."""

    def __init__(self, vocab: Vocab, tempos: tuple[int, ...]) -> None:
        self.v, self.tempos = vocab, tempos
        r = vocab.ranges
        self.timesig, self.tempo = r["timesig"], r["tempo"]

    @classmethod
    def build(cls, req: Request) -> Opening | None:
        p = req.params.phrase
        if p is None or not p.row_tempos or not req.params.free_first_bar:
            return None
        return cls(req.tok.vocab, p.row_tempos)

    def _tempo(self, row: Row) -> int | None:
        if row.state.bars > 1 or row.state.phase not in (BAR_HEAD, AFTER_TIMESIG):
            return None
        return self.tempos[row.index % len(self.tempos)]

    def key(self, row: Row) -> Hashable:
        return self._tempo(row)

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        out = allowed.clone()
        for i, r in enumerate(rows):
            t = self._tempo(r)
            if t is None:
                continue
            only = torch.zeros_like(out[i])
            if r.state.phase == BAR_HEAD:
                only[self.timesig.start:self.timesig.stop] = True
            only[self.tempo.start + t] = True
            if (out[i] & only).any():
                out[i] &= only
        return out

class VoiceLeading(Constraint):
    """Voice leading (`musegen.generate.voices`): each voice one note at a time, in its range,
    never crossing its neighbours, no consecutive perfect fifths or octaves, chord tones
    preferred on beats, and no voice left silent (two bars running, or through a take). From
    nothing it also fixes how many voices the header declares. Each rule narrows only inside
    what the masks before it left, and is dropped for a row where it would leave no pitch."""

    _PITCHED = (AFTER_POSITION, AFTER_TRACK, AFTER_VELOCITY, AFTER_DURATION)
    _IN_BAR = (BAR_HEAD, AFTER_TIMESIG, AFTER_TEMPO, AFTER_DURATION)

    def __init__(self, req: Request, plan: vl.VoicePlan) -> None:
        v = req.tok.vocab
        self.req, self.plan, self.v, self.grammar = req, plan, v, req.tok.grammar
        r = v.ranges
        self.pitch = slice(r["pitch"].start, r["pitch"].stop)
        self.vel = slice(r["velocity"].start, r["velocity"].stop)
        self.track0, self.pos0 = r["track"].start, r["position"].start
        self.tracks = slice(r["track"].start, r["track"].stop)
        self.drums = r["program"].start + DRUM_PROGRAM
        start = vl.Voices(v)
        for t in req.before:
            start.take(t)
        start.start_take()
        self.start = start
        # arrange: the kept voices' notes per region bar, position -> [(track, pitch, ticks)]:
        # at an onset the rules hear the kept notes struck there before the token order (track
        # by track) reaches them, so an alto written ahead of a kept tenor still avoids it
        self.ahead, self.ahead_at = self._kept_ahead(req, start.bar_len) if req.kept is not None else (None, [])
        self.bar0 = start.bars  # the region's first bar (its BAR is among the forced tokens)
        self.dur_ticks = np.asarray(v.durations)
        self.longest = int(self.dur_ticks.max())
        self.rows: dict[int, vl.Voices] = {}  # row index -> what it sounds
        self.plans: dict[int, vl.VoicePlan] = {}  # row index -> its plan (from nothing: per header)
        self.step_bias: dict[int, tuple[np.ndarray | None, list[int]]] = {}

    @classmethod
    def build(cls, req: Request) -> VoiceLeading | None:
        p = req.params.voices
        return cls(req, p) if p is not None else None

    @staticmethod
    def _kept_ahead(req: Request, first_bar: int) -> tuple[list[dict[int, list[tuple[int, int, int]]]], list[int]]:
        """Per region bar: position -> [(kept track, pitch, ticks)]; and each bar's start in
        grid ticks from the region's (`first_bar`: the first bar's length)."""
        v = req.tok.vocab
        p0, d0, s0 = v.ranges["pitch"].start, v.ranges["duration"].start, v.ranges["timesig"].start
        out, starts, at, length = [], [], 0, first_bar
        for k, (heads, notes) in enumerate(template_bars(v, req.kept.tokens)):  # type: ignore[union-attr]
            for t in heads:
                if k and v.kind(t) == "timesig":
                    num, den = v.time_signatures[t - s0]
                    length = TICKS_PER_QUARTER * 4 * num // den
            by: dict[int, list[tuple[int, int, int]]] = {}
            for pos, track, _vel, pitch, dur in notes:
                by.setdefault(pos, []).append((track, pitch - p0, v.durations[dur - d0]))
            out.append(by)
            starts.append(at)
            at += length
        return out, starts

    def _foreseen(self, vs: vl.Voices, at: int) -> vl.Voices:
        """`vs` with the kept notes struck at `at` that the row has not written yet."""
        bar = vs.bars - self.bar0
        if self.ahead is None or not 0 <= bar < len(self.ahead):
            return vs
        due = [(t, vl.Note(p, at, at + d)) for t, p, d in self.ahead[bar].get(at - vs.bar_start, ())
               if not (vs.notes.get(t) and vs.notes[t][-1].onset == at)]
        return vs.with_notes(due) if due else vs

    def _voices(self, row: Row) -> vl.Voices:
        vs = self.rows.get(row.index)
        if vs is None:
            vs = self.rows[row.index] = self.start.copy()
        return vs

    def _plan(self, row: Row) -> vl.VoicePlan | None:
        """The row's plan; None while its header is still being drawn."""
        p = self.plans.get(row.index)
        if p is None:
            if self.plan.voices is None and row.state.phase in (HEAD_DONE, HEAD_PROGRAM) \
                    or row.state.n_tracks == 0:
                return None
            tracks = self.req.programs or ()
            p = self.plan.for_header(row.state.n_tracks)
            drums = {i for i, prog in enumerate(tracks) if prog == DRUM_PROGRAM}
            if drums:
                p = replace(p, voices=p.voices - drums,
                            order=tuple(t for t in p.order if t not in drums))
            self.plans[row.index] = p
        return p

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        out = allowed.clone()
        arr = out.numpy()  # the same memory: numpy's indexing is cheaper per row than torch's
        self.step_bias = {}
        for i, r in enumerate(rows):
            if r.done:
                continue
            s, ph = r.state, r.state.phase
            if self.plan.n_voices is not None and ph in (HEAD_DONE, HEAD_PROGRAM):
                self._header(s, arr[i])
                continue
            p = self._plan(r)
            if p is None or not p.voices:
                continue
            vs = self._voices(r)
            at = vs.bar_start + max(0, s.position)
            if ph in self._IN_BAR:
                self._closing(p, vs, r, arr[i])
            if ph in self._PITCHED:
                self._note(p, vs, r, at, arr[i])
            elif ph == AFTER_PITCH and self.ahead is not None and s.track in p.order \
                    and s.track not in self.req.kept.tracks:  # type: ignore[union-attr]
                self._held(p, vs, s.track, at, arr[i])
        return out

    def _held(self, p: vl.VoicePlan, vs: vl.Voices, track: int, at: int, m: np.ndarray) -> None:
        """Arrange: an added note ends before a kept voice strikes a note across it (a kept
        voice above it in the order going below its pitch, or one below going above); when no
        duration is that short the others stand."""
        mine, rank = vs.pitch, p.order.index(track)
        if mine is None or self.ahead is None:
            return
        above, below = set(p.order[:rank]), set(p.order[rank + 1:])
        bar, limit = vs.bars - self.bar0, None
        if not 0 <= bar < len(self.ahead):
            return
        longest = at + self.longest
        for k in range(bar, len(self.ahead)):
            start = vs.bar_start + self.ahead_at[k] - self.ahead_at[bar]
            if start > longest:
                break
            for pos, notes in self.ahead[k].items():
                onset = start + pos
                if onset > at and (limit is None or onset - at < limit) and any(
                        (t in above and q < mine) or (t in below and q > mine) for t, q, _ in notes):
                    limit = onset - at
        if limit is None:
            return
        d0, ticks = self.v.ranges["duration"].start, self.dur_ticks
        ok = m[d0:d0 + len(ticks)] & (ticks <= limit)
        if ok.any():
            m[d0:d0 + len(ticks)] = ok

    def _header(self, s: GrammarState, m: np.ndarray) -> None:
        """From nothing: the header declares n_voices[0]..n_voices[1] tracks, none drums."""
        lo, hi = self.plan.n_voices  # type: ignore[misc]
        if s.phase == HEAD_PROGRAM:
            m[self.drums] = False
        elif s.n_tracks < lo:
            m[self.v.bar] = False
        elif s.n_tracks >= hi:
            m[self.tracks] = False

    def _closing(self, p: vl.VoicePlan, vs: vl.Voices, r: Row, m: np.ndarray) -> None:
        """Positions where every voice still holds are out (a new note there would overlap);
        closing the bar is out while a voice would stay silent too long."""
        s = r.state
        if len(p.voices) == s.n_tracks:  # every track a voice: a position must free one
            free = min((vs.notes[t][-1].end if vs.notes.get(t) else -1) for t in p.voices)
            first = vs.bar_start + s.position + 1
            if free > first:
                stop = min(s.bar_positions, free - vs.bar_start)
                m[self.pos0 + s.position + 1:self.pos0 + max(s.position + 1, stop)] = False
        last = s.bars_left == 0
        if any(vl.is_silent_too_long(p, vs, t, last) for t in p.voices):
            m[self.v.bar] = False
            for t in self.grammar.end_tokens(s):
                m[t] = False

    def _note(self, p: vl.VoicePlan, vs: vl.Voices, r: Row, at: int, m: np.ndarray) -> None:
        """The pitches the current track may take here, and the tracks a switch may go to."""
        s, ph = r.state, r.state.phase
        entries = []
        if ph in (AFTER_POSITION, AFTER_DURATION):
            for t in p.voices:
                if t < s.n_tracks and vs.busy(t, at):
                    m[self.track0 + t] = False
                elif t < s.n_tracks and (vs.heard.get(t, -1) <= vs.bar_start
                                         or vl.voice_struck(p, vs, t, at)):
                    entries.append(self.track0 + t)  # silent for a bar, or its voice just struck
        bias = None
        if s.track in p.voices:
            if vs.busy(s.track, at) and ph != AFTER_VELOCITY:
                m[self.pitch] = False  # the voice still sounds: another voice, or later
                m[self.vel] = False
            else:
                window, bias = vl.pitch_window(p, self._foreseen(vs, at), s.track, at)
                old = m[self.pitch]
                new = old & window
                if new.any() or not old.any():
                    m[self.pitch] = new
        if bias is not None or entries:
            self.step_bias[r.index] = (bias, entries)

    def bias(self, rows: Sequence[Row], logits: torch.Tensor) -> torch.Tensor:
        if not self.step_bias:
            return logits
        out = logits.clone()
        arr = out.numpy()
        for i, r in enumerate(rows):
            bias, entries = self.step_bias.get(r.index, (None, []))
            if bias is not None:
                arr[i, self.pitch] += bias
            if entries and self.plan.entry_bias:
                arr[i, entries] += self.plan.entry_bias
        return out

    def advance(self, rows: Sequence[Row], tokens: Sequence[int]) -> None:
        for r, t in zip(rows, tokens):
            self._voices(r).take(t)


# In this order: state constraints first (memoised with the grammar, in one mask), then the
# others, each narrowing what the ones before it left. Add a constraint here.
CONSTRAINTS: tuple[type[Constraint], ...] = (
    KeyAndRange, MeterLock, Tracks, RunawayBar, Opening,
    KeepRhythm, KeepVoices, MaxLeap, Seams, Density, AvoidEarlier, VoiceLeading,
    Cadence, Motif, KeyPrior,
)


# ------------------------------------------------------------------ the pipeline
class StateMasks(Constraint):
    """The grammar and the state constraints as one mask per row, memoised on the row's
    `Grammar.mask_key` and each state constraint's `key`. A DONE row may only pad; a row the
    state constraints leave nothing falls back to the grammar alone."""

    def __init__(self, grammar: Grammar, rules: Sequence[StateConstraint]) -> None:
        self.grammar, self.rules = grammar, list(rules)
        self._keys = [c.key for c in self.rules]
        self.cache: dict[tuple, torch.Tensor] = {}

    @classmethod
    def build(cls, req: Request) -> StateMasks:
        built = (c.build(req) for c in CONSTRAINTS if issubclass(c, StateConstraint))
        return cls(req.tok.grammar, [c for c in built if c is not None])

    def key(self, row: Row) -> tuple:
        return (Grammar.mask_key(row.state), *[k(row) for k in self._keys])

    def fresh(self, row: Row) -> torch.Tensor:
        """(V,) the row's mask, computed (what the cache holds for its key)."""
        grammar = torch.from_numpy(self.grammar.allowed(row.state))
        if row.state.phase == DONE:
            m = torch.zeros_like(grammar)
            m[self.grammar.v.pad] = True
            return m
        m = grammar[None]
        for c in self.rules:
            m = c.mask([row], m)
        return m[0] if m.any() else grammar

    def masks(self, rows: Sequence[Row]) -> torch.Tensor:
        """(R, V) each row's mask, from the cache."""
        out = []
        for r in rows:
            k = self.key(r)
            m = self.cache.get(k)
            if m is None:
                m = self.cache[k] = self.fresh(r)
            out.append(m)
        return torch.stack(out)

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        return allowed & self.masks(rows)


class Pipeline:
    """Every constraint of one request, in order: the grammar and state constraints
    (`StateMasks`), then the others from `CONSTRAINTS`."""

    def __init__(self, req: Request) -> None:
        self.state = StateMasks.build(req)
        others = (c.build(req) for c in CONSTRAINTS if not issubclass(c, StateConstraint))
        self.others: list[Constraint] = [c for c in others if c is not None]
        # per hook, only the constraints that override it (a step is ~1 ms: calls add up)
        self._masks = [c for c in self.others if type(c).mask is not Constraint.mask]
        self._biases = [c for c in self.others if type(c).bias is not Constraint.bias]
        self._advances = [c for c in self.others if type(c).advance is not Constraint.advance]

    @property
    def constraints(self) -> list[Constraint]:
        return [self.state, *self.others]

    def apply(self, rows: Sequence[Row], logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits with -inf outside the masks and every bias added, the masks), (R, V) each."""
        allowed = self.state.masks(rows)  # never empty: the grammar alone at worst
        for c in self._masks:
            narrowed = c.mask(rows, allowed)
            empty = ~narrowed.any(1)
            if empty.any():  # a constraint that would leave a row nothing is skipped for it
                narrowed = torch.where(empty[:, None], allowed, narrowed)
            allowed = narrowed
        logits = logits.masked_fill(~allowed, NEG_INF)
        for c in self._biases:
            logits = c.bias(rows, logits)
        return logits, allowed

    def advance(self, rows: Sequence[Row], tokens: Sequence[int]) -> None:
        for c in self._advances:
            c.advance(rows, tokens)
