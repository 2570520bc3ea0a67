"""The seeded decode loop: every variation of a request in one batch, one cached step per token.

`sample()` continues a token prompt by exactly `bars` bars for each row. Per step it runs one
forward over the batch (two with guidance), then for each row the grammar mask, the
constraint masks (key, pitch range, meter lock, tracks), the biases (density, no-repeat),
temperature and top-p, and draws from the row's own seeded generator. Rows that finish keep
stepping with a dummy token until the whole batch is done (lockstep keeps every row the
same length, so the KV cache needs no padding).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from musegen.generate import filters
from musegen.generate.decode import Decoder, DecodeWeights
from musegen.model import MusegenLM, guided_logits
from musegen.tokenizer import Tokenizer
from musegen.tokenizer.grammar import (
    AFTER_DURATION,
    AFTER_POSITION,
    AFTER_TRACK,
    DONE,
    GrammarState,
)
from musegen.tokenizer.vocab import DRUM_PROGRAM, Vocab


@dataclass(frozen=True)
class SampleParams:
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


@dataclass
class SampleResult:
    tokens: list[np.ndarray]  # generated tokens per row, the forced ones first
    steps: int
    seconds: float
    first_bar_s: float  # time until every row had finished its first bar
    stats: dict = field(default_factory=dict)


def _row_masks(tok: Tokenizer, states: Sequence[GrammarState], params: SampleParams,
               programs: Sequence[int], bar_tokens: Sequence[int], static: torch.Tensor
               ) -> torch.Tensor:
    v, g = tok.vocab, tok.grammar
    rows = []
    for s, n_bar in zip(states, bar_tokens):
        m = torch.from_numpy(g.allowed(s))
        if s.phase == DONE:
            m = torch.zeros_like(m)
            m[v.pad] = True
            rows.append(m)
            continue
        drum = s.track < len(programs) and programs[s.track] == DRUM_PROGRAM
        if not drum:
            m &= static
        if params.lock_meter and not (params.free_first_bar and s.bars <= 1):
            m[v.ranges["timesig"].start:v.ranges["tempo"].stop] = False
        if params.tracks is not None and s.phase in (AFTER_POSITION, AFTER_DURATION, AFTER_TRACK):
            if s.track not in params.tracks:  # must switch to an allowed track first
                m[v.ranges["pitch"].start:v.ranges["pitch"].stop] = False
                m[v.ranges["velocity"].start:v.ranges["velocity"].stop] = False
            tr = v.ranges["track"]
            for t in range(v.n_tracks):
                if t not in params.tracks:
                    m[tr.start + t] = False
        if n_bar >= params.max_tokens_per_bar:  # runaway bar: only closing it remains
            close = torch.zeros_like(m)
            close[v.bar] = True
            for t in g.end_tokens(s):
                close[t] = True
            if (m & close).any():
                m &= close
        if not m.any():  # constraints left nothing: fall back to the grammar alone
            m = torch.from_numpy(g.allowed(s))
        rows.append(m)
    return torch.stack(rows)


class _MaskCache:
    """`_row_masks` memoised on everything it reads from a row's state.

    A request visits a few hundred distinct (phase, position, track, velocity...) states, so
    after the first bars every step's masks are dictionary look-ups. The key holds each
    `GrammarState` field that `Grammar.allowed`, `Grammar.end_tokens` or `_row_masks` reads,
    with `bars`/`bars_left` reduced to the flags they read (a test walks takes and compares
    every cached mask with a fresh `_row_masks`)."""

    def __init__(self, tok: Tokenizer, params: SampleParams, programs: Sequence[int],
                 static: torch.Tensor) -> None:
        self.tok, self.params, self.programs, self.static = tok, params, programs, static
        self.cache: dict[tuple, torch.Tensor] = {}

    def key(self, s: GrammarState, n_bar: int) -> tuple:
        p = self.params
        return (s.phase, s.segment, s.n_tracks, s.track, s.velocity_bin, s.position,
                s.bar_positions, s.prefix_bar_positions, s.fim, s.bars_left is None,
                s.bars_left == 0, p.free_first_bar and s.bars <= 1,
                n_bar >= p.max_tokens_per_bar)

    def __call__(self, states: Sequence[GrammarState], bar_tokens: Sequence[int]) -> torch.Tensor:
        rows = []
        for s, n in zip(states, bar_tokens):
            k = self.key(s, n)
            m = self.cache.get(k)
            if m is None:
                m = _row_masks(self.tok, [s], self.params, self.programs, [n], self.static)[0]
                self.cache[k] = m
            rows.append(m)
        return torch.stack(rows)


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


class _LeapMasks:
    """`filters.leap_mask` for one row, memoised on the previous pitch."""

    def __init__(self, vocab: Vocab, max_leap: int) -> None:
        self.vocab, self.max_leap = vocab, max_leap
        self.cache: dict[int | None, torch.Tensor] = {}
        self.pitches = slice(vocab.ranges["pitch"].start, vocab.ranges["pitch"].stop)

    def __call__(self, masks: torch.Tensor, last: Sequence[int | None]) -> torch.Tensor:
        rows = []
        for p in last:
            m = self.cache.get(p)
            if m is None:
                m = self.cache[p] = filters.leap_mask(self.vocab, [p], self.max_leap)[0]
            rows.append(m)
        cut = masks & torch.stack(rows)
        # a row whose leap window holds no allowed pitch keeps its pitches (key lock and range
        # come first); it is not pushed into a track or velocity change instead
        lost = masks[:, self.pitches].any(1) & ~cut[:, self.pitches].any(1)
        return torch.where(lost[:, None], masks, cut)


def _draw(logits: torch.Tensor, temperature: float, top_p: float, u: torch.Tensor) -> torch.Tensor:
    """One token per row from softmax(logits / temperature) cut to its top-p nucleus, by
    inverse CDF with the row's uniform `u` (R,): the distribution of `filters.top_p` +
    softmax + multinomial in one sort and two cumulative sums. Returns (R,) token ids."""
    lg = filters.temperature(logits, temperature) if temperature != 1.0 else logits
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    srt, order = lg.sort(dim=-1, descending=True)
    p = srt.softmax(-1)
    if top_p < 1:
        p = p.masked_fill((p.cumsum(-1) - p) >= top_p, 0.0)  # mass strictly before >= p: out
    cdf = p.cumsum(-1)
    idx = torch.searchsorted(cdf, (u.to(cdf.dtype) * cdf[:, -1])[:, None], right=True)
    idx = torch.minimum(idx, (p > 0).sum(-1, keepdim=True) - 1)  # rounding at the very top
    return order.gather(1, idx)[:, 0]


@torch.no_grad()
def sample(
    model: MusegenLM,
    tok: Tokenizer,
    prompt: np.ndarray,
    state: GrammarState,
    styles: torch.Tensor,
    bars: int,
    seeds: Sequence[int],
    params: SampleParams = SampleParams(),
    *,
    forced: Sequence[int] = (),
    earlier: Sequence[Sequence[int]] = (),
    template: Sequence[int] | None = None,
    on_progress: Callable[[float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> SampleResult:
    """Generate `bars` bars after `prompt` for each row of `styles` (B, d).

    `state` is the grammar state after `prompt` (the caller walked it). `forced` tokens are
    appended first (a BAR that opens the first new bar, for instance) and count as output.
    `earlier` are token lists of earlier takes of the same request, to be avoided.
    `template` (keep-rhythm) fixes every token after `forced` except the pitches: positions,
    tracks, velocities and durations are copied from it, pitches are sampled.
    """
    v = tok.vocab
    dev = next(model.parameters()).device
    B = styles.shape[0]
    if len(seeds) != B:
        raise ValueError(f"{len(seeds)} seeds for {B} rows")
    filters.temperature(torch.zeros(1), params.temperature)  # validate before any work
    filters.top_p(torch.zeros(1, 1), params.top_p)
    t0 = time.perf_counter()
    guided = params.style_strength != 1.0
    null = model.styles.null.expand(B, -1)
    style_all = torch.cat([styles, null]) if guided else styles

    states = [state.copy() for _ in range(B)]
    for s in states:
        s.bars_left = bars
    for t in forced:
        for s in states:
            tok.grammar.step(s, t)
    head = tok.header(prompt)
    programs = [int(x) - v.ranges["program"].start for x in head
                if int(x) in v.ranges["program"]]
    static = torch.ones(v.size, dtype=torch.bool)
    if params.pitch_classes is not None:
        static &= filters.pitch_class_mask(v, set(params.pitch_classes))
    if params.pitch_range is not None:
        static &= filters.pitch_range_mask(v, *params.pitch_range)
    row_masks = _MaskCache(tok, params, programs, static)
    leaps = _LeapMasks(v, params.max_leap) if params.max_leap is not None else None
    prompt_last = last_pitches(tok, [*prompt, *forced]) if leaps else {}
    last_pitch = [dict(prompt_last) for _ in range(B)]  # per row: track -> previous pitch
    drums = {i for i, p in enumerate(programs) if p == DRUM_PROGRAM}
    # every token is drawn from inside its row's mask, which lies inside the grammar (checked
    # per step below), so stepping the states can skip the grammar's own per-token check
    grammar = copy.copy(tok.grammar)
    everything = np.ones(v.size, dtype=bool)
    grammar.allowed = lambda _s: everything

    context = model.cfg.context
    budget = bars * params.max_tokens_per_bar + 8
    seq = np.concatenate([prompt, np.asarray(forced, dtype=prompt.dtype)]).astype(np.int64)
    keep = max(8, context // 2)

    def window(full_rows: np.ndarray) -> np.ndarray:  # (R, T) -> the last tokens + header
        if full_rows.shape[1] <= keep:
            return full_rows
        tail = full_rows[:, -(keep - len(head)):]
        return np.concatenate([np.broadcast_to(head, (full_rows.shape[0], len(head))), tail], 1)

    weights = DecodeWeights.of(model)

    def decoder(n_prompt: int) -> Decoder:  # a cache of at most `context` tokens, as trained
        return Decoder(weights, min(context, n_prompt + budget) + 1 - n_prompt)

    # prefill the shared prompt once per distinct style row; every row attends to that copy
    first = window(seq[None, :])
    uniq, inverse = torch.unique(style_all, dim=0, return_inverse=True)
    dec = decoder(first.shape[1])
    logits = dec.start(torch.from_numpy(first).to(dev).expand(uniq.shape[0], -1), uniq,
                       inverse.to(dev), style_all)

    pitch_ids = v.ranges["pitch"]
    start_bars = states[0].bars  # the forced BAR (if any) opened the first new bar
    rngs = [np.random.Generator(np.random.PCG64(int(sd))) for sd in seeds]
    out: list[list[int]] = [list(forced) for _ in range(B)]
    active = list(range(B))  # rows still generating; finished rows leave the batch
    # what each row's cache holds (for re-windowing): the prompt window, then its tokens
    held = np.zeros((B, first.shape[1] + budget + 1), dtype=np.int64)
    held[:, :first.shape[1]] = first
    n_held = first.shape[1]
    bar_tokens = [0] * B  # tokens since the row's last BAR (runaway guard)
    bar_notes = [0] * B  # notes since the row's last BAR (density control)
    follow = [[list(e) for e in earlier] for _ in range(B)]  # earlier takes still being followed
    first_bar_s = 0.0
    steps = 0
    for _ in range(budget):
        if not active:
            break
        A = len(active)
        lg = guided_logits(logits[:A], logits[A:], params.style_strength) if guided else logits
        lg = lg.float().cpu()
        act_states = [states[r] for r in active]
        masks = row_masks(act_states, [bar_tokens[r] for r in active])
        if template is not None:
            masks = _template_masks(tok, masks, act_states, [out[r] for r in active],
                                    len(forced), template)
        if leaps is not None:
            masks = leaps(masks, [None if states[r].track in drums else
                                  last_pitch[r].get(states[r].track) for r in active])
        lg = lg.masked_fill(~masks, filters.NEG_INF)  # no row's mask is empty
        if params.density is not None:
            lg = filters.density_bias(lg, v, torch.tensor([bar_notes[r] for r in active]),
                                      params.density)
            lg = filters.apply_mask(lg, masks)
        if earlier:
            lg = filters.avoid_tokens(lg, [[e[len(out[r])] for e in follow[r] if len(e) > len(out[r])]
                                           for r in active], params.avoid_penalty)
        u = torch.tensor([rngs[r].random() for r in active], dtype=torch.float64)
        drawn = _draw(lg, params.temperature, params.top_p, u)
        if not bool(masks.gather(1, drawn[:, None]).all()):
            raise RuntimeError("a drawn token lies outside its mask")  # cannot happen
        nxt = drawn.tolist()
        still = []
        for i, (r, t) in enumerate(zip(active, nxt)):
            grammar.step(states[r], t)
            if leaps is not None and t in pitch_ids:
                last_pitch[r][states[r].track] = t - pitch_ids.start
            if states[r].phase != DONE:
                out[r].append(t)
                bar_tokens[r] = 0 if t == v.bar else bar_tokens[r] + 1
                bar_notes[r] = 0 if t == v.bar else bar_notes[r] + (t in pitch_ids)
                still.append(i)
            if follow[r]:
                k = len(out[r]) - 1
                follow[r] = [e for e in follow[r] if len(e) > k and e[k] == t]
        steps += 1
        if not first_bar_s and all(s.bars - start_bars >= 1 or s.phase == DONE for s in states):
            first_bar_s = time.perf_counter() - t0
        if on_progress and steps % 16 == 0:
            # bars finished: a row still writing counts the bar it is in as not done yet
            done_bars = sum(bars if s.phase == DONE else max(0, bars - (s.bars_left or 0) - 1)
                            for s in states)
            on_progress(done_bars / (B * bars))
        if cancelled and cancelled():
            raise InterruptedError("generation cancelled")
        if len(still) < A:  # some rows are done: the batch goes on without them
            if not still:
                break
            idx = torch.tensor(still, device=dev)
            dec.keep(torch.cat([idx, idx + A]) if guided else idx)
            active = [active[i] for i in still]
            nxt = [nxt[i] for i in still]
        held[active, n_held] = nxt
        n_held += 1
        col = torch.tensor(nxt, dtype=torch.long, device=dev)
        if dec.S + 1 >= dec.capacity:  # the window is full: slide it
            win = window(held[active, :n_held])
            held[active, :win.shape[1]] = win
            n_held = win.shape[1]
            full = np.concatenate([win, win]) if guided else win
            rows_style = torch.cat([styles[active], null[:len(active)]]) if guided \
                else styles[active]
            dec = decoder(win.shape[1])
            logits = dec.start(torch.from_numpy(full).to(dev), rows_style,
                               torch.arange(full.shape[0], device=dev), rows_style)
        else:
            logits = dec.step(torch.cat([col, col]) if guided else col)
    seconds = time.perf_counter() - t0
    return SampleResult([np.asarray(o, dtype=np.int64) for o in out], steps, seconds,
                        first_bar_s or seconds)


def _template_masks(tok: Tokenizer, masks: torch.Tensor, states: Sequence[GrammarState],
                    out: Sequence[Sequence[int]], n_forced: int, template: Sequence[int]
                    ) -> torch.Tensor:
    """Keep-rhythm: at step k a row must emit template[k] unless that is a PITCH, in which
    case any pitch the other masks allow; past the template only closing the segment is left."""
    v, g = tok.vocab, tok.grammar
    pitch = v.ranges["pitch"]
    masks = masks.clone()
    for r, s in enumerate(states):
        if s.phase == DONE:
            continue
        k = len(out[r]) - n_forced
        allowed = torch.from_numpy(g.allowed(s))
        only = torch.zeros_like(allowed)
        if k < len(template) and template[k] in pitch:
            only[pitch.start:pitch.stop] = True
            only &= masks[r]
            if not only.any():
                only[pitch.start:pitch.stop] = True
        elif k < len(template):
            only[template[k]] = True
        else:
            only[v.bar] = True
            for t in g.end_tokens(s):
                only[t] = True
        only &= allowed
        if only.any():
            masks[r] = only
    return masks
