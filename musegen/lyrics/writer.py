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
from musegen.generate.run import torch_threads
from musegen.lyrics.line_decoder import LyricResult, decode_lines, write_lines
from musegen.lyrics.lm import LyricLM
from musegen.lyrics.phrasing import (
    melody_track,
    metric_weights,
    notes_per_beat,
    onsets_of,
    phrases,
    stress_figures,
    strong_flags,
)
from musegen.lyrics.rhyme import RhymeIndex, rhyme_index, rhyme_scheme
from musegen.lyrics.syllables import attach_lyrics
from musegen.params import check, default
from musegen.take import Take

__all__ = ["LyricResult", "RhymeIndex", "decode_lines", "lyrics_for", "melody_track", "metric_weights",
           "notes_per_beat", "onsets_of", "phrases", "rhyme_index", "rhyme_scheme", "stress_figures",
           "strong_flags", "write_lines"]


def lyrics_for(lm: LyricLM | Callable[[], LyricLM], clip: Clip | Take, *, model_id: str = "",
               threads: int | None = None, theme: str | None = None, rhyme: str | None = "ABAB",
               variations: int | None = None, seed: int | None = None, temperature: float | None = None,
               top_p: float | None = None, candidates: int | None = None, track: int | None = None,
               on_progress: Callable[[float], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> list[Take]:
    """Lyrics for the melody of `clip` (a Clip or Take); see `Studio.lyrics_for`. `lm`: the
    lyric model, or a function that loads it once the request has passed its checks;
    `model_id`: the music model the takes name; `threads`: torch CPU threads to decode with
    (None: as they are). The parameters' ranges and defaults: `musegen.params` ("lyrics")."""
    t0 = time.perf_counter()
    base, parent = _melody_clip(clip)
    given = check("lyrics", {"theme": theme, "rhyme": rhyme, "variations": variations, "seed": seed,
                             "temperature": temperature, "top_p": top_p, "candidates": candidates,
                             "track": track})
    variations, candidates, temperature, top_p = (
        given.get(k, default("lyrics", k)) for k in ("variations", "candidates", "temperature", "top_p"))
    track = _checked_track(base, track)
    seed = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % (2**31))
    targets, strong = _line_budgets(base, track)
    if callable(lm) and not isinstance(lm, LyricLM):
        lm = lm()
    idx = rhyme_index(lm)
    with torch_threads(threads):
        results = write_lines(lm, targets, strong, theme=theme, rhyme=rhyme, variations=int(variations),
                              candidates=int(candidates), seed=seed, temperature=float(temperature),
                              top_p=float(top_p), idx=idx, on_progress=on_progress, cancelled=cancelled)
    seconds = time.perf_counter() - t0
    request = {"theme": theme, "rhyme": rhyme, "temperature": temperature, "top_p": top_p,
               "candidates": candidates, "track": track}
    return [_lyric_take(base, res, v, request, targets, lm.model_id, seed=seed, model_id=model_id,
                        parent=parent, seconds=seconds)
            for v, res in enumerate(results)]


def _melody_clip(clip: Clip | Take) -> tuple[Clip, str | None]:
    """The clip to write lyrics for, and the id of the take it came from (None for a Clip)."""
    parent = clip.id if isinstance(clip, Take) else None
    base: Clip = clip.clip if isinstance(clip, Take) else clip
    if not isinstance(base, Clip):
        raise ParameterError(f"lyrics_for needs a Clip or a Take, got {type(clip).__name__}")
    return base, parent


def _checked_track(base: Clip, track: int | None) -> int:
    """The melody track: the one asked for (checked against the clip), else `melody_track`'s."""
    if track is None:
        return melody_track(base)
    if not track < len(base.tracks):
        raise ParameterError(f"track must be in 0..{len(base.tracks) - 1}, got {track}")
    return track


def _line_budgets(base: Clip, track: int) -> tuple[list[int], list[list[float]]]:
    """Per phrase of the melody: its syllable budget (note count) and its notes' metric weights."""
    ons = onsets_of(base, track)
    groups = phrases(base, track)
    if len(groups) > 64:
        raise ParameterError(f"the melody has {len(groups)} phrases; lyrics_for takes at most 64 (cut the clip)")
    weights = metric_weights(base, [s for s, _ in ons])
    return [len(g) for g in groups], [[weights[i] for i in g] for g in groups]


def _lyric_take(base: Clip, res: LyricResult, v: int, request: dict, targets: list[int],
                lyric_model: str, *, seed: int, model_id: str, parent: str | None,
                seconds: float) -> Take:
    """Variation `v`'s lyrics attached to the melody, as a Take with its figures."""
    track = request["track"]
    out = attach_lyrics(base, " ".join(res.lines), track)
    params = {**request, "variation": v, "phrases": targets,
              "lines": res.lines, "end_words": res.end_words,
              "figures": {"syllable_fit": res.syllable_fit, "rhyme_fit": res.rhyme_fit,
                          "stress_alignment": round(res.alignment, 4),
                          "stressed_on_beat": round(res.stressed_on_beat, 4),
                          **({"stressed_on_beat_sung": round(res.stressed_on_beat_sung, 4)}
                             if res.stressed_on_beat_sung is not None else {}),
                          "lines_outside_word_rules": res.failed_lines},
              "lyric_model": lyric_model}
    return Take(clip=out, operation="lyrics", params=params, seed=seed + v,
                model_id=model_id, parent=parent, bars=(0, out.n_bars), seconds=seconds)
