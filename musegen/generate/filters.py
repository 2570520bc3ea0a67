"""Logit filters: small pure functions from (logits or a vocabulary, context) to logits or
masks, each testable alone; the constraints in `constraints.py` are built from them, and
temperature and top-p live with the draw (`draw.py`).

All work on a batch: `logits` is (B, V) float; masks are (B, V) or (V,) bool where True
means "allowed".
"""

from __future__ import annotations

import torch

from musegen.tokenizer.vocab import Vocab


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
