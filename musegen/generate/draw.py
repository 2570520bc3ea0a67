"""Drawing a token: temperature, the top-p nucleus, and the draw itself, in one place.

Two ways to draw from the same distribution, both seeded by the caller:

* `draw` (the MIDI sampler): inverse CDF, one uniform per row from the row's own generator,
  so a row's take depends on its seed alone, whatever else is in the batch;
* `gumbel` / `gumbel_max` (the lyric writer, which ranks candidates): argmax of the scores
  plus Gumbel noise is a draw from softmax(scores); the noisy scores also rank the runners-up.

The nucleus is defined once (`in_nucleus`): a token is kept while the probability mass
strictly before it, in descending order, is below `top_p`.
"""

from __future__ import annotations

import torch

NEG_INF = float("-inf")


def check(temperature: float, top_p: float) -> None:
    """ValueError naming the bad value, before any work is done."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def scale(logits: torch.Tensor, t: float) -> torch.Tensor:
    """logits / temperature."""
    check(t, 1.0)
    return logits / t


def in_nucleus(probs_sorted: torch.Tensor, top_p: float) -> torch.Tensor:
    """(..., V) bool over probabilities sorted in descending order: True for the smallest
    prefix whose mass reaches `top_p`."""
    return (probs_sorted.cumsum(-1) - probs_sorted) < top_p


def nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """The logits with -inf outside their top-p nucleus."""
    check(1.0, top_p)
    if top_p >= 1:
        return logits
    srt, order = logits.sort(dim=-1, descending=True)
    drop = torch.zeros_like(order, dtype=torch.bool).scatter(
        -1, order, ~in_nucleus(srt.softmax(-1), top_p))
    return logits.masked_fill(drop, NEG_INF)


def outside_nucleus(logprobs: torch.Tensor, top_p: float) -> torch.Tensor:
    """(B, V) bool in vocabulary order: the tokens outside the top-p nucleus of `logprobs`
    (log-probabilities, e.g. a log_softmax), for a caller that penalises rather than drops."""
    check(1.0, top_p)
    srt, order = torch.sort(logprobs, dim=-1, descending=True)
    return torch.zeros_like(order, dtype=torch.bool).scatter(
        -1, order, ~in_nucleus(srt.exp(), top_p))


def draw(logits: torch.Tensor, temperature: float, top_p: float, u: torch.Tensor) -> torch.Tensor:
    """One token per row from softmax(logits / temperature) cut to its top-p nucleus, by
    inverse CDF with the row's uniform `u` (R,) in [0, 1): the distribution of `nucleus` +
    softmax + multinomial in one sort and two cumulative sums. Returns (R,) token ids;
    a -inf logit is never drawn."""
    check(temperature, top_p)
    lg = logits / temperature if temperature != 1.0 else logits
    srt, order = lg.sort(dim=-1, descending=True)
    p = srt.softmax(-1)
    if top_p < 1:
        p = p.masked_fill(~in_nucleus(p, top_p), 0.0)
    cdf = p.cumsum(-1)
    idx = torch.searchsorted(cdf, (u.to(cdf.dtype) * cdf[:, -1])[:, None], right=True)
    idx = torch.minimum(idx, (p > 0).sum(-1, keepdim=True) - 1)  # rounding at the very top
    return order.gather(1, idx)[:, 0]


def gumbel(shape: torch.Size | tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Standard Gumbel noise -log(-log(u)), u uniform from `generator` (kept off 0 and 1)."""
    u = torch.rand(shape, generator=generator).clamp_(1e-12, 1 - 1e-12)
    return -torch.log(-torch.log(u))


def gumbel_max(scores: torch.Tensor, generator: torch.Generator) -> int:
    """Index of one draw from softmax(scores) (1-D) by the Gumbel-max trick."""
    return int(torch.argmax(scores + gumbel(scores.shape, generator)))
