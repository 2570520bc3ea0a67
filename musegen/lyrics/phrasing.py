"""The melody side of lyric writing: which track carries the tune, its onsets, which fall on
beats, and how they group into phrases (one lyric line each).

A rest of at least a beat, a long note (at least twice the median length and a beat), or a
phrase past 16 notes (cut at a bar line) ends a phrase; phrases of fewer than 3 notes join their
neighbour. Each phrase's note count is its line's syllable budget. `stress_figures` measures
how the syllables of written lines meet those beats.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from musegen.clip import PPQ, Clip
from musegen.errors import ParameterError
from musegen.lyrics.syllables import line_syllables, sung_stresses

MAX_PHRASE = 16
MIN_PHRASE = 3
MAX_MERGED = 24  # two short phrases join only while the result stays this short


def melody_track(clip: Clip) -> int:
    """The track that carries the tune: among pitched tracks with notes, the highest on average."""
    best, best_mean = -1, -1.0
    for i, t in enumerate(clip.tracks):
        if t.is_drum or not t.notes:
            continue
        m = float(np.mean([n.pitch for n in t.notes]))
        if m > best_mean:
            best, best_mean = i, m
    if best < 0:
        raise ParameterError("the clip has no pitched notes to write lyrics for")
    return best


def onsets_of(clip: Clip, track: int) -> list[tuple[int, int]]:
    """(onset tick, end tick) of each distinct onset of `track` (the highest note of a chord),
    in the order `attach_lyrics` gives syllables to them."""
    best: dict[int, int] = {}
    pitch: dict[int, int] = {}
    for n in clip.tracks[track].notes:
        if n.start_tick not in pitch or n.pitch > pitch[n.start_tick]:
            pitch[n.start_tick], best[n.start_tick] = n.pitch, n.end_tick
    return sorted(best.items())


def beat_ticks(num: int, den: int) -> int:
    """The felt beat: a dotted quarter in compound metres (6/8, 9/8, 12/8), else 1/den."""
    unit = PPQ * 4 // den
    return unit * 3 if den == 8 and num % 3 == 0 and num > 3 else unit


def strong_flags(clip: Clip, ticks: Sequence[int]) -> list[bool]:
    """Whether each onset falls on a beat of its bar's metre."""
    out = []
    starts = clip.bar_starts
    for t in ticks:
        ts = clip.time_signature_at(t)
        i = bisect.bisect_right(starts, t) - 1
        bar = starts[i] if i >= 0 else 0
        out.append((t - bar) % beat_ticks(ts.numerator, ts.denominator) == 0)
    return out


ON_BEAT = 0.85  # a metric weight at least this is a note on a beat (`strong_flags`)


def metric_weights(clip: Clip, ticks: Sequence[int]) -> list[float]:
    """How strong each onset's place in its bar is: 1 the downbeat, 0.85 another beat, 0.35 the
    middle of a beat (an eighth between quarter beats, the 2nd of three eighths in 6/8 is 0.2), 0.1
    anything finer. `strong_flags` is `weight >= ON_BEAT`."""
    out = []
    starts = clip.bar_starts
    for t in ticks:
        ts = clip.time_signature_at(t)
        i = bisect.bisect_right(starts, t) - 1
        pos = t - (starts[i] if i >= 0 else 0)
        beat = beat_ticks(ts.numerator, ts.denominator)
        if pos == 0:
            out.append(1.0)
        elif pos % beat == 0:
            out.append(0.85)
        elif beat % 2 == 0 and pos % (beat // 2) == 0:
            out.append(0.35)
        elif beat % 3 == 0 and pos % (beat // 3) == 0:
            out.append(0.2)
        else:
            out.append(0.1)
    return out


def notes_per_beat(clip: Clip, track: int) -> float:
    """The melody's density: onsets per felt beat over the span from its first to its last onset."""
    ons = onsets_of(clip, track)
    ts = clip.time_signatures[0]
    beat = beat_ticks(ts.numerator, ts.denominator)
    span = max(ons[-1][0] - ons[0][0], beat) if ons else beat
    return len(ons) / (span / beat) if ons else 0.0


def phrases(clip: Clip, track: int) -> list[list[int]]:
    """Indices into `onsets_of(clip, track)`, one list per phrase."""
    ons = onsets_of(clip, track)
    if not ons:
        raise ParameterError(f"track {track} has no notes")
    beat = beat_ticks(clip.time_signatures[0].numerator, clip.time_signatures[0].denominator)
    starts = set(clip.bar_starts)
    cut = [part for g in _split_at_rests(ons, beat) for part in _cut_long(g, ons, starts)]
    return _merge_short(cut)


def _split_at_rests(ons: Sequence[tuple[int, int]], beat: int) -> list[list[int]]:
    """Phrases ended by a rest of a beat or more, or by a long note once MIN_PHRASE long."""
    lengths = [max(e - s, 1) for s, e in ons]
    med = float(np.median(lengths))
    groups: list[list[int]] = [[]]
    for i, (_, e) in enumerate(ons):
        groups[-1].append(i)
        nxt = ons[i + 1][0] if i + 1 < len(ons) else None
        rest = nxt is not None and nxt - e >= beat
        long_note = lengths[i] >= max(2 * med, beat) and len(groups[-1]) >= MIN_PHRASE
        if nxt is not None and (rest or long_note):
            groups.append([])
    return [g for g in groups if g]


def _cut_long(g: list[int], ons: Sequence[tuple[int, int]], starts: set[int]) -> list[list[int]]:
    """A phrase past MAX_PHRASE notes, cut at the bar line nearest its middle (again while
    a part is still too long)."""
    out = []
    while len(g) > MAX_PHRASE:
        mid = len(g) // 2
        cuts = [k for k in range(MIN_PHRASE, len(g) - MIN_PHRASE + 1) if ons[g[k]][0] in starts
                and k <= MAX_PHRASE] or [min(mid, MAX_PHRASE)]
        k = min(cuts, key=lambda c: abs(c - mid))
        out.append(g[:k])
        g = g[k:]
    out.append(g)
    return out


def _merge_short(groups: Sequence[list[int]]) -> list[list[int]]:
    """Short phrases join the one before (or the next, at the start)."""
    merged: list[list[int]] = []
    for g in groups:
        if merged and (len(g) < MIN_PHRASE or len(merged[-1]) < MIN_PHRASE) and len(merged[-1]) + len(g) <= MAX_MERGED:
            merged[-1] = merged[-1] + g
        else:
            merged.append(g)
    return merged


def stress_figures(line_texts: Sequence[str], strong: Sequence[bool]) -> dict:
    """How the syllables' stresses meet the beats: `alignment` is the share of syllables where
    stressed <=> on a beat; `stressed_on_beat` the share of stressed syllables on a beat. A
    syllable is stressed when the CMU dictionary gives it primary or secondary stress; the
    `_sung` figures count a one-syllable function word as unstressed (`sung_stresses`), as verse
    and song treat "of", "to", "in" (CMU's citation form stresses them)."""
    def figures(stressed: list[bool]) -> tuple[float, float]:
        n = min(len(stressed), len(strong))
        agree = sum(stressed[i] == strong[i] for i in range(n))
        on = sum(1 for i in range(n) if stressed[i] and strong[i])
        return (agree / n if n else 0.0), on / max(1, sum(stressed[:n]))

    cmu = figures([s.stress >= 1 for t in line_texts for s in line_syllables(t)])
    sung = figures([x == 1 for t in line_texts for x in sung_stresses(t)])
    return {"alignment": cmu[0], "stressed_on_beat": cmu[1],
            "alignment_sung": sung[0], "stressed_on_beat_sung": sung[1]}
