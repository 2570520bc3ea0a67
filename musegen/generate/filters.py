"""Logit filters: small functions from (logits, context) to logits, each testable alone.

All work on a batch: `logits` is (B, V) float; masks are (B, V) or (V,) bool where True
means "allowed". A disallowed token gets -inf. The grammar mask always comes last so no
filter can make an undecodable sequence possible; a filter that would forbid every token
of a row is skipped for that row (the grammar still holds).
"""

from __future__ import annotations

import torch

from musegen.tokenizer.vocab import Vocab

NEG_INF = float("-inf")


def apply_mask(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """-inf where not allowed. Rows where nothing would remain are left unchanged."""
    allowed = allowed.expand_as(logits)
    empty = ~allowed.any(dim=-1, keepdim=True)
    return logits.masked_fill(~allowed & ~empty, NEG_INF)


def temperature(logits: torch.Tensor, t: float) -> torch.Tensor:
    if t <= 0:
        raise ValueError(f"temperature must be > 0, got {t}")
    return logits / t


def top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of tokens whose probability reaches `p`."""
    if not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    if p >= 1:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    before = probs.cumsum(-1) - probs  # mass strictly before each token
    drop_sorted = before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, NEG_INF)


def pitch_class_mask(vocab: Vocab, pitch_classes: set[int]) -> torch.Tensor:
    """(V,) allowed: every token except PITCH tokens outside `pitch_classes`."""
    m = torch.ones(vocab.size, dtype=torch.bool)
    r = vocab.ranges["pitch"]
    for p in range(vocab.n_pitches):
        if p % 12 not in pitch_classes:
            m[r.start + p] = False
    return m


def pitch_range_mask(vocab: Vocab, low: int, high: int) -> torch.Tensor:
    """(V,) allowed: every token except PITCH tokens outside [low, high]."""
    m = torch.ones(vocab.size, dtype=torch.bool)
    r = vocab.ranges["pitch"]
    m[r.start:r.start + low] = False
    m[r.start + high + 1:r.stop] = False
    return m


def leap_mask(vocab: Vocab, last_pitches: list[int | None], max_leap: int) -> torch.Tensor:
    """(B, V) allowed: every token except PITCH tokens more than `max_leap` semitones from
    row r's previous pitch `last_pitches[r]` (None: no previous note, nothing is cut)."""
    if max_leap < 0:
        raise ValueError(f"max_leap must be >= 0, got {max_leap}")
    m = torch.ones(len(last_pitches), vocab.size, dtype=torch.bool)
    r = vocab.ranges["pitch"]
    for row, last in enumerate(last_pitches):
        if last is not None:
            m[row, r.start:r.start + max(0, last - max_leap)] = False
            m[row, r.start + min(vocab.n_pitches, last + max_leap + 1):r.stop] = False
    return m


def scale_pitch_classes(tonic: int, mode: str) -> set[int]:
    """Pitch classes of a key: major, or minor with both the 6th/7th forms (melodic)."""
    steps = (0, 2, 4, 5, 7, 9, 11) if mode == "major" else (0, 2, 3, 5, 7, 8, 9, 10, 11)
    return {(tonic + s) % 12 for s in steps}


def density_bias(logits: torch.Tensor, vocab: Vocab, notes_in_bar: torch.Tensor,
                 target: float, strength: float = 1.5) -> torch.Tensor:
    """Steer notes per bar toward `target`: below it, closing the bar costs more; above it,
    starting another note costs more. `notes_in_bar` is (B,)."""
    gap = (notes_in_bar.float() - target)  # (B,)
    out = logits.clone()
    bar = vocab.bar
    note_tokens = slice(vocab.ranges["pitch"].start, vocab.ranges["pitch"].stop)
    under = (-gap).clamp(min=0) * strength / max(target, 1.0) ** 0.5
    over = (gap + 1).clamp(min=0) * strength / max(target, 1.0) ** 0.5
    out[:, bar] -= under
    out[:, note_tokens] -= over[:, None]
    return out


def avoid_tokens(logits: torch.Tensor, tokens: list[list[int]], penalty: float = 3.0
                 ) -> torch.Tensor:
    """No-repeat filter: lower the logits of `tokens[r]` in row r. The sampler passes, for
    each row, the next token of every earlier take whose path the row is still following,
    so a new take leaves the old path instead of repeating it."""
    if not any(tokens):
        return logits
    out = logits.clone()
    for r, toks in enumerate(tokens):
        for t in toks:
            out[r, t] -= penalty
    return out
