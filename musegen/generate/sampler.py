"""The seeded decode loop: every variation of a request in one batch, one cached step per token.

`sample()` continues a token prompt by exactly `bars` bars for each row. Per step the model
side (`decode.Stream`) gives every row's next-token logits, the constraints
(`constraints.Pipeline`: grammar, key, range, meter, tracks, keep-rhythm, leap, density,
no-repeat) mask and bias them, and `draw.draw` takes one token per row with a uniform from
the row's own seeded generator. Rows that finish leave the batch; the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from musegen.generate import draw
from musegen.generate.constraints import KeptVoices, Pipeline, Request, Row, SampleParams
from musegen.generate.decode import Decoder, DecodeWeights, Stream
from musegen.model import MusegenLM
from musegen.tokenizer import Tokenizer
from musegen.tokenizer.grammar import GrammarState

__all__ = ["SampleParams", "SampleResult", "sample"]

DEFAULTS = SampleParams()


@dataclass
class SampleResult:
    tokens: list[np.ndarray]  # generated tokens per row, the forced ones first
    steps: int
    seconds: float
    first_bar_s: float  # time until every row had finished its first bar
    stats: dict = field(default_factory=dict)


@torch.no_grad()
def sample(
    model: MusegenLM,
    tok: Tokenizer,
    prompt: np.ndarray,
    state: GrammarState,
    styles: torch.Tensor,
    bars: int,
    seeds: Sequence[int],
    params: SampleParams = DEFAULTS,
    *,
    forced: Sequence[int] = (),
    earlier: Sequence[Sequence[int]] = (),
    template: Sequence[int] | None = None,
    kept: KeptVoices | None = None,
    on_progress: Callable[[float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    make_decoder: Callable[[DecodeWeights, int], Decoder] = Decoder,
    on_bar: Callable[[int, list[int]], None] | None = None,
) -> SampleResult:
    """Generate `bars` bars after `prompt` for each row of `styles` (B, d).

    `state` is the grammar state after `prompt` (the caller walked it). `forced` tokens are
    appended first (a BAR that opens the first new bar, for instance) and count as output.
    `earlier` are token lists of earlier takes of the same request, to be avoided.
    `template` (keep-rhythm) fixes every token after `forced` except the pitches: positions,
    tracks, velocities and durations are copied from it, pitches are sampled.
    `kept` (arrange) forces the kept tracks' notes where they lie; the model writes the rest.
    `make_decoder` is the forward pass: `decode.Decoder` (torch, the reference) or the fast
    CPU path's (`fast.decoder_factory`). `on_bar(row, tokens)` is called each time a row
    opens a new bar or completes a note (its last token, a BAR or a DURATION): `tokens` are the
    row's so far, forced ones first.
    """
    if len(seeds) != styles.shape[0]:
        raise ValueError(f"{len(seeds)} seeds for {styles.shape[0]} rows")
    draw.check(params.temperature, params.top_p)  # before any work
    t0 = time.perf_counter()
    rows = _start_rows(tok, state, bars, forced, styles.shape[0])
    pipeline = Pipeline(Request(tok, params, prompt, forced, earlier, template, kept))
    budget = bars * params.max_tokens_per_bar + 8
    seq = np.concatenate([prompt, np.asarray(forced, dtype=prompt.dtype)]).astype(np.int64)
    stream = Stream(model, seq, tok.header(prompt), styles, strength=params.style_strength,
                    budget=budget, make_decoder=make_decoder)
    watch = _Watch(t0, rows, bars, on_progress, cancelled)
    rngs = [np.random.Generator(np.random.PCG64(int(sd))) for sd in seeds]
    active = list(rows)  # rows still generating; finished rows leave the batch
    first_duration = tok.vocab.ranges["duration"].start  # DURATION ends a note; it is the last range
    assert tok.vocab.ranges["duration"].stop == tok.vocab.size
    for _ in range(budget):
        nxt = _draw_step(pipeline, active, stream.logits(), rngs, params)
        for row, t in zip(active, nxt):
            row.push(tok.grammar, t)
            if on_bar is not None and (t == tok.vocab.bar or t >= first_duration) and not row.done:
                on_bar(row.index, row.tokens)
        pipeline.advance(active, nxt)
        watch.tick()
        keep = [i for i, row in enumerate(active) if not row.done]
        if not keep:
            break
        active = [active[i] for i in keep]
        stream.feed([nxt[i] for i in keep], keep)
    seconds = time.perf_counter() - t0
    return SampleResult([np.asarray(r.tokens, dtype=np.int64) for r in rows], watch.steps,
                        seconds, watch.first_bar_s or seconds)


def _start_rows(tok: Tokenizer, state: GrammarState, bars: int, forced: Sequence[int], n: int
                ) -> list[Row]:
    """`n` rows after the prompt and the forced tokens, each counting down `bars` bars."""
    rows = [Row(i, state.copy(), list(forced)) for i in range(n)]
    for r in rows:
        r.state.bars_left = bars
        for t in forced:
            tok.grammar.step(r.state, t)  # checked: the caller chose them
    return rows


def _draw_step(pipeline: Pipeline, rows: Sequence[Row], logits: torch.Tensor,
               rngs: Sequence[np.random.Generator], params: SampleParams) -> list[int]:
    """One token per row: masked and biased by the pipeline, drawn with the row's uniform."""
    logits, allowed = pipeline.apply(rows, logits)  # no row's mask is empty
    u = torch.tensor([rngs[r.index].random() for r in rows], dtype=torch.float64)
    drawn = draw.draw(logits, params.temperature, params.top_p, u)
    # the rows step their grammar states without re-checking: this is the check, batched
    if not bool(allowed.gather(1, drawn[:, None]).all()):
        raise RuntimeError("a drawn token lies outside its mask")  # cannot happen
    return drawn.tolist()


class _Watch:
    """Steps, the time to the first bar, progress every 16 steps, and cancellation."""

    def __init__(self, t0: float, rows: Sequence[Row], bars: int,
                 on_progress: Callable[[float], None] | None,
                 cancelled: Callable[[], bool] | None) -> None:
        self.t0, self.rows, self.bars = t0, rows, bars
        self.on_progress, self.cancelled = on_progress, cancelled
        self.start_bars = rows[0].state.bars  # the forced BAR (if any) opened the first new bar
        self.steps, self.first_bar_s = 0, 0.0

    def tick(self) -> None:
        self.steps += 1
        if not self.first_bar_s and all(r.state.bars - self.start_bars >= 1 or r.done
                                        for r in self.rows):
            self.first_bar_s = time.perf_counter() - self.t0
        if self.on_progress and self.steps % 16 == 0:
            # bars finished: a row still writing counts the bar it is in as not done yet
            done = sum(self.bars if r.done else max(0, self.bars - (r.state.bars_left or 0) - 1)
                       for r in self.rows)
            self.on_progress(done / (len(self.rows) * self.bars))
        if self.cancelled and self.cancelled():
            raise InterruptedError("generation cancelled")
