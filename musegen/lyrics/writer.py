"""Lyrics for a melody: phrases from the notes, one line per phrase, syllables counted exactly.

`lyrics_for` (the Studio operation) is here; the parts live by concern:
`musegen.lyrics.phrasing` (phrases, beats, stress figures), `musegen.lyrics.rhyme` (schemes
and rhyme classes) and `musegen.lyrics.line_decoder` (the constrained decoding of lines).

How a line is written (constrained decoding, not filtering afterwards):
- The melody's phrases come from its notes: a rest of at least a beat, a long note (at least
  twice the median length and a beat), or a phrase past 16 notes (cut at a bar line) ends one;
  phrases of fewer than 3 notes join their neighbour. Each phrase's note count is its line's
  syllable budget.
- The end word is chosen first. A line that opens a rhyme group takes an end word the model
  proposes (the shipped model reads a *plan* `<|sN|> word<|sep|>` before each line, so it can
  say which word it wants to end on) from the words that have rhymes; a line that must rhyme
  takes a word of the same CMU rhyme class (`pronouncing`), chosen by the model's preference.
- The line is then sampled token by token (Gumbel-max over the allowed tokens, which is exact
  sampling from the renormalised masked distribution). A token is allowed only if the words it
  completes still fit the budget: a word piece may grow the current word only while its
  syllables fit, a new word only when at least one syllable is left, and the end word (then a
  line break) exactly when the budget is used up. The invariant "used + current word <=
  budget" holds after every token, so a line can always be finished: every line has exactly
  the phrase's syllable count.
- Stress: word starts whose stressed syllables would land on beats get a soft bonus while
  sampling (`line_decoder._stress_bonus`), and of several candidates decoded per line in one
  batch the one whose stresses best meet the beats (stressed on a beat, unstressed off it) is
  kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from musegen.clip import Clip
from musegen.errors import ParameterError
from musegen.lyrics.line_decoder import LyricResult, decode_lines, write_lines
from musegen.lyrics.lm import LyricLM
from musegen.lyrics.phrasing import melody_track, onsets_of, phrases, stress_figures, strong_flags
from musegen.lyrics.rhyme import RhymeIndex, rhyme_index, rhyme_scheme
from musegen.lyrics.syllables import attach_lyrics

__all__ = ["LyricResult", "RhymeIndex", "decode_lines", "lyrics_for", "melody_track", "onsets_of", "phrases",
           "rhyme_index", "rhyme_scheme", "stress_figures", "strong_flags", "write_lines"]


def lyrics_for(studio: object, clip: object, *, theme: str | None = None, rhyme: str | None = "ABAB",
               variations: int = 4, seed: int | None = None, temperature: float = 0.9, top_p: float = 0.95,
               candidates: int = 3, track: int | None = None,
               on_progress: Callable[[float], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> list:
    """Lyrics for the melody of `clip` (a Clip or Take); see `Studio.lyrics_for`."""
    from musegen.studio import MAX_VARIATIONS, Take, _torch_threads

    t0 = time.perf_counter()
    parent = clip.id if isinstance(clip, Take) else None
    base: Clip = clip.clip if isinstance(clip, Take) else clip
    if not isinstance(base, Clip):
        raise ParameterError(f"lyrics_for needs a Clip or a Take, got {type(clip).__name__}")
    if not 1 <= int(variations) <= MAX_VARIATIONS:
        raise ParameterError(f"variations must be in 1..{MAX_VARIATIONS}, got {variations}")
    if not 1 <= int(candidates) <= 8:
        raise ParameterError(f"candidates must be in 1..8, got {candidates}")
    if not 0.05 <= float(temperature) <= 3.0:
        raise ParameterError(f"temperature must be in 0.05..3.0, got {temperature}")
    if not 0.05 <= float(top_p) <= 1.0:
        raise ParameterError(f"top_p must be in 0.05..1.0, got {top_p}")
    if track is None:
        track = melody_track(base)
    elif not 0 <= track < len(base.tracks):
        raise ParameterError(f"track must be in 0..{len(base.tracks) - 1}, got {track}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (2**31))
    ons = onsets_of(base, track)
    groups = phrases(base, track)
    if len(groups) > 64:
        raise ParameterError(f"the melody has {len(groups)} phrases; lyrics_for takes at most 64 (cut the clip)")
    flags = strong_flags(base, [s for s, _ in ons])
    targets = [len(g) for g in groups]
    strong = [[flags[i] for i in g] for g in groups]
    lm: LyricLM = studio.lyric_lm  # type: ignore[attr-defined]
    idx = rhyme_index(lm)
    cpu = getattr(getattr(studio, "device", None), "type", "cpu") == "cpu"
    with _torch_threads(getattr(studio, "threads", None) if cpu else None):
        results = write_lines(lm, targets, strong, theme=theme, rhyme=rhyme, variations=int(variations),
                              candidates=int(candidates), seed=seed, temperature=float(temperature),
                              top_p=float(top_p), idx=idx, on_progress=on_progress, cancelled=cancelled)
    seconds = time.perf_counter() - t0
    takes = []
    for v, res in enumerate(results):
        text = " ".join(res.lines)
        out = attach_lyrics(base, text, track)
        params = {"theme": theme, "rhyme": rhyme, "temperature": temperature, "top_p": top_p,
                  "candidates": candidates, "track": track, "variation": v, "phrases": targets,
                  "lines": res.lines, "end_words": res.end_words,
                  "figures": {"syllable_fit": res.syllable_fit, "rhyme_fit": res.rhyme_fit,
                              "stress_alignment": round(res.alignment, 4),
                              "stressed_on_beat": round(res.stressed_on_beat, 4)},
                  "lyric_model": lm.model_id}
        takes.append(Take(clip=out, operation="lyrics", params=params, seed=seed + v,
                          model_id=getattr(studio, "model_id", ""), parent=parent, bars=(0, out.n_bars),
                          seconds=seconds))
    return takes
