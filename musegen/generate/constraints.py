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

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from musegen.generate import filters
from musegen.generate.draw import NEG_INF
from musegen.tokenizer import Tokenizer
from musegen.tokenizer.grammar import AFTER_DURATION, AFTER_POSITION, AFTER_TRACK, DONE, Grammar, GrammarState
from musegen.tokenizer.vocab import DRUM_PROGRAM, Vocab


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
    max_tokens_per_bar: int = 320
    avoid_penalty: float = 4.0


@dataclass(frozen=True)
class Request:
    """What a constraint is built from: the request, before any row is drawn."""

    tok: Tokenizer
    params: SampleParams
    prompt: np.ndarray
    forced: Sequence[int] = ()  # drawn for every row before sampling starts (they count as output)
    earlier: Sequence[Sequence[int]] = ()  # earlier takes of the same request, to avoid
    template: Sequence[int] | None = None  # keep-rhythm: the tokens to copy but for pitches
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
    """Key/scale lock and pitch range: pitches outside them are out (drum tracks exempt)."""

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
        keep = torch.tensor([self.req.is_drum(r.state.track) for r in rows])[:, None]
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


def last_pitches(tok: Tokenizer, ids: Sequence[int]) -> dict[int, int]:
    """The last pitch of each track in a token sequence (the track resets to 0 at every BAR).
    In a fill-in-the-middle prompt the bars after FILL (the suffix) are skipped: the middle
    follows the prefix."""
    v = tok.vocab
    pitch, track = v.ranges["pitch"], v.ranges["track"]
    last: dict[int, int] = {}
    cur, in_head, suffix = 0, True, False
    for t in (int(x) for x in ids):
        if t == v.fill or t == v.fill_start:
            suffix = t == v.fill
        elif suffix:
            continue
        elif t == v.bar:
            cur, in_head = 0, False
        elif t in track and not in_head:
            cur = t - track.start
        elif t in pitch:
            last[cur] = t - pitch.start
    return last


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
        if self.req.is_drum(track):
            return None
        return self.last.get(row.index, self.start).get(track)

    def _leap_mask(self, previous: int | None) -> torch.Tensor:
        m = self.masks.get(previous)
        if m is None:
            m = self.masks[previous] = filters.leap_mask(self.vocab, [previous], self.max_leap)[0]
        return m

    def mask(self, rows: Sequence[Row], allowed: torch.Tensor) -> torch.Tensor:
        cut = allowed & torch.stack([self._leap_mask(self._previous(r)) for r in rows])
        lost = allowed[:, self.pitches].any(1) & ~cut[:, self.pitches].any(1)
        return torch.where(lost[:, None], allowed, cut)

    def advance(self, rows: Sequence[Row], tokens: Sequence[int]) -> None:
        for r, t in zip(rows, tokens):
            if t in self.pitch:
                self.last.setdefault(r.index, dict(self.start))[r.state.track] = t - self.pitch.start


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


# In this order: state constraints first (memoised with the grammar, in one mask), then the
# others, each narrowing what the ones before it left. Add a constraint here.
CONSTRAINTS: tuple[type[Constraint], ...] = (
    KeyAndRange, MeterLock, Tracks, RunawayBar,
    KeepRhythm, MaxLeap, Density, AvoidEarlier,
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
