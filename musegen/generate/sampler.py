"""The seeded decode loop: every variation of a request in one batch, one cached step per token.

`sample()` continues a token prompt by exactly `bars` bars for each row. Per step it runs one
forward over the batch (two with guidance), then for each row the grammar mask, the
constraint masks (key, pitch range, meter lock, tracks), the biases (density, no-repeat),
temperature and top-p, and draws from the row's own seeded generator. Rows that finish keep
stepping with a dummy token until the whole batch is done (lockstep keeps every row the
same length, so the KV cache needs no padding).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from musegen.generate import filters
from musegen.model import KVCache, MusegenLM, guided_logits
from musegen.tokenizer import Tokenizer
from musegen.tokenizer.grammar import (
    AFTER_DURATION,
    AFTER_POSITION,
    AFTER_TRACK,
    DONE,
    GrammarState,
)
from musegen.tokenizer.vocab import DRUM_PROGRAM


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
    t0 = time.perf_counter()
    guided = params.style_strength != 1.0
    null = model.styles.null.expand(B, -1)
    style_in = torch.cat([styles, null]) if guided else styles
    n_rows = style_in.shape[0]

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

    context = model.cfg.context
    budget = bars * params.max_tokens_per_bar + 8
    seq = np.concatenate([prompt, np.asarray(forced, dtype=prompt.dtype)]).astype(np.int64)
    keep = max(8, context // 2)

    def window(full_rows: np.ndarray) -> np.ndarray:  # (R, T) -> the last tokens + header
        if full_rows.shape[1] <= keep:
            return full_rows
        tail = full_rows[:, -(keep - len(head)):]
        return np.concatenate([np.broadcast_to(head, (full_rows.shape[0], len(head))), tail], 1)

    # prefill the shared prompt once per distinct style row, then give each row its copy
    first = window(seq[None, :])
    uniq, inverse = torch.unique(style_in, dim=0, return_inverse=True)
    cache = KVCache.empty(model.cfg, uniq.shape[0], min(context, first.shape[1] + budget) + 1,
                          dev, model.model.embed_tokens.weight.dtype)
    ids = torch.from_numpy(first).to(dev).expand(uniq.shape[0], -1)
    logits = model(ids, uniq, cache)[:, -1][inverse]
    cache = cache.select(inverse.to(dev))

    pitch_ids = v.ranges["pitch"]
    start_bars = states[0].bars  # the forced BAR (if any) opened the first new bar
    gens = [torch.Generator().manual_seed(int(sd)) for sd in seeds]
    out: list[list[int]] = [list(forced) for _ in range(B)]
    rows_tokens = np.repeat(first, B, axis=0)  # what the cache holds, per row (for re-windowing)
    bar_tokens = [0] * B  # tokens since the row's last BAR (runaway guard)
    bar_notes = [0] * B  # notes since the row's last BAR (density control)
    follow = [[list(e) for e in earlier] for _ in range(B)]  # earlier takes still being followed
    first_bar_s = 0.0
    steps = 0
    for _ in range(budget):
        if all(s.phase == DONE for s in states):
            break
        lg = guided_logits(logits[:B], logits[B:], params.style_strength) if guided \
            else logits[:B]
        lg = lg.float().cpu()
        masks = _row_masks(tok, states, params, programs, bar_tokens, static)
        if template is not None:
            masks = _template_masks(tok, masks, states, out, len(forced), template)
        lg = filters.apply_mask(lg, masks)
        if params.density is not None:
            lg = filters.density_bias(lg, v, torch.tensor(bar_notes), params.density)
            lg = filters.apply_mask(lg, masks)
        if earlier:
            n = [len(o) for o in out]
            lg = filters.avoid_tokens(lg, [[e[n[r]] for e in follow[r] if len(e) > n[r]]
                                           for r in range(B)], params.avoid_penalty)
        lg = filters.top_p(filters.temperature(lg, params.temperature), params.top_p)
        probs = lg.softmax(-1)
        nxt = []
        for r in range(B):
            if states[r].phase == DONE:
                nxt.append(v.pad)
                continue
            t = int(torch.multinomial(probs[r], 1, generator=gens[r]))
            tok.grammar.step(states[r], t)
            if states[r].phase != DONE:
                out[r].append(t)
                bar_tokens[r] = 0 if t == v.bar else bar_tokens[r] + 1
                bar_notes[r] = 0 if t == v.bar else bar_notes[r] + (t in pitch_ids)
            if follow[r]:
                k = len(out[r]) - 1
                follow[r] = [e for e in follow[r] if len(e) > k and e[k] == t]
            nxt.append(t)
        steps += 1
        if not first_bar_s and all(s.bars - start_bars >= 1 or s.phase == DONE for s in states):
            first_bar_s = time.perf_counter() - t0
        if on_progress and steps % 16 == 0:
            done_bars = sum(min(bars, bars - (s.bars_left or 0)) for s in states)
            on_progress(done_bars / (B * bars))
        if cancelled and cancelled():
            raise InterruptedError("generation cancelled")
        col = np.asarray(nxt, dtype=np.int64)[:, None]
        step_ids = np.concatenate([col, col]) if guided else col
        rows_tokens = np.concatenate([rows_tokens, col], 1)
        if cache.length + 1 >= cache.layers[0][0].shape[2]:  # the window is full: slide it
            win = window(rows_tokens)
            rows_tokens = win
            full = np.concatenate([win, win]) if guided else win
            cache = KVCache.empty(model.cfg, n_rows, min(context, win.shape[1] + budget) + 1,
                                  dev, model.model.embed_tokens.weight.dtype)
            logits = model(torch.from_numpy(full).to(dev), style_in, cache)[:, -1]
        else:
            logits = model(torch.from_numpy(step_ids).to(dev), style_in, cache)[:, -1]
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
