"""Musicianship figures: what a musician reads in a score, counted the same way for generated
takes and for the real music they continue (issue 14's table).

Every figure is one function of `Clip`s (integer ticks at `PPQ`), defined once here, with a
docstring saying exactly what it counts; `musegen.evaluation.musicianship_run` runs them over
takes and real pieces, `benchmarks/musicianship.py` is its command line. Pure: no model, no
I/O, nothing printed.

Words used throughout:

* a **voice** is a non-drum track that holds notes; the voices of a clip are ranked top to
  bottom by their mean pitch (`voice_order`), or by an order given (the prompt's, so that a
  take whose tenor sinks under its bass shows it);
* a voice **sounds** pitch p at tick t when one of its notes has start_tick <= t < end_tick
  (with several, the one that started last, then the highest);
* the **melody** is the top voice: its notes in onset order, the highest at a shared onset;
* a **beat** is a multiple of the time signature's denominator note (a quarter in 4/4, an
  eighth in 6/8) from each bar line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from musegen.clip import PPQ, Clip, Note, Track, parse_key

GRID = PPQ // 12  # the tokenizer's onset grid (1/12 quarter), for rhythm patterns
MOMENT_TICKS = PPQ // 2  # voice crossings are sampled every eighth note
SATB_RANGES = ((60, 79), (55, 74), (48, 67), (40, 60))
"""Soprano C4-G5, alto G3-D5, tenor C3-G4, bass E2-C4 (MIDI pitches, inclusive)."""
HYBRID_BAND = (0.2, 0.8)
KEY_SHARE_MIN = 0.05
LONG_NOTE_FACTOR = 2.0

# pitch-class sets (relative to the root) that count as a plain chord
_TRIADS = ((0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 4, 8))  # major, minor, diminished, augmented
_SEVENTHS = ((0, 4, 7, 10), (0, 3, 7, 10), (0, 4, 7, 11), (0, 3, 6, 10), (0, 3, 6, 9))


def _chord_sets() -> frozenset[frozenset[int]]:
    out = set()
    for root in range(12):
        for shape in _TRIADS:
            out.add(frozenset((root + d) % 12 for d in shape))
        for shape in _SEVENTHS:
            out.add(frozenset((root + d) % 12 for d in shape))
            out.add(frozenset((root + d) % 12 for d in shape if d not in (6, 7)))  # fifth left out
    return frozenset(out)


CHORDS = _chord_sets()
"""Every pitch-class set that is a plain triad (major, minor, diminished, augmented) or 7th
chord (dominant, minor, major, half-diminished, diminished; complete or without its fifth),
on any root."""


# ------------------------------------------------------------------------------- voices
def voices(clip: Clip) -> list[Track]:
    """The clip's voices: non-drum tracks with at least one note, in track order."""
    return [t for t in clip.tracks if not t.is_drum and t.notes]


def voice_count(clip: Clip) -> int:
    """How many voices (non-drum tracks holding notes) the clip has."""
    return len(voices(clip))


def voice_order(clip: Clip) -> list[int]:
    """Indices into `clip.tracks` of its voices, top to bottom by mean pitch."""
    idx = [i for i, t in enumerate(clip.tracks) if not t.is_drum and t.notes]
    return sorted(idx, key=lambda i: -float(np.mean([n.pitch for n in clip.tracks[i].notes])))


def _ordered(clip: Clip, order: Sequence[int] | None) -> list[Track]:
    """The voices top to bottom: `order` (track indices; those without notes here skipped) or
    the clip's own `voice_order`."""
    order = voice_order(clip) if order is None else order
    return [clip.tracks[i] for i in order if i < len(clip.tracks) and clip.tracks[i].notes
            and not clip.tracks[i].is_drum]


def sounding(track: Track, tick: int) -> int | None:
    """The pitch `track` sounds at `tick` (start_tick <= tick < end_tick; of several, the one
    that started last, then the highest), or None."""
    best: Note | None = None
    for n in track.notes:
        if n.start_tick > tick:
            break
        if n.end_tick > tick and (best is None or (n.start_tick, n.pitch) > (best.start_tick, best.pitch)):
            best = n
    return None if best is None else best.pitch


def _grid(clip: Clip, step: int) -> range:
    return range(0, max(clip.length_ticks, 1), step)


def voice_crossing_share(clip: Clip, order: Sequence[int] | None = None) -> float | None:
    """Share of sampled moments (every eighth note) with at least two voices sounding at which
    some voice sounds strictly above a voice ranked above it (ranking: `order`, track indices
    top to bottom, else `voice_order(clip)`). None when no moment has two voices sounding."""
    vs = _ordered(clip, order)
    if len(vs) < 2:
        return None
    n = crossed = 0
    for t in _grid(clip, MOMENT_TICKS):
        ps = [p for p in (sounding(v, t) for v in vs) if p is not None]
        if len(ps) < 2:
            continue
        n += 1
        crossed += any(ps[j] > ps[i] for i in range(len(ps)) for j in range(i + 1, len(ps)))
    return crossed / n if n else None


def bass_below_tenor_share(clip: Clip, order: Sequence[int] | None = None) -> float | None:
    """Share of sampled moments (every eighth note) at which both of the two lowest-ranked
    voices sound (ranking as in `voice_crossing_share`) and the lowest sounds at or below the
    one above it. None with fewer than three voices or no such moment."""
    vs = _ordered(clip, order)
    if len(vs) < 3:
        return None
    tenor, bass = vs[-2], vs[-1]
    n = ok = 0
    for t in _grid(clip, MOMENT_TICKS):
        pt, pb = sounding(tenor, t), sounding(bass, t)
        if pt is None or pb is None:
            continue
        n += 1
        ok += pb <= pt
    return ok / n if n else None


def satb_range_share(clip: Clip, order: Sequence[int] | None = None) -> float | None:
    """For a clip of exactly four voices: the share of its notes inside their voice's SATB
    range (`SATB_RANGES`, voices ranked top to bottom as in `voice_crossing_share`). None for
    any other number of voices."""
    vs = _ordered(clip, order)
    if len(vs) != 4:
        return None
    inside = total = 0
    for v, (lo, hi) in zip(vs, SATB_RANGES):
        inside += sum(lo <= n.pitch <= hi for n in v.notes)
        total += len(v.notes)
    return inside / total if total else None


def overlap_share(clip: Clip) -> float | None:
    """Share of notes, over all voices, that start before an earlier-starting (or same-onset)
    note of the same voice has ended: 0 for voices that are single lines. None without notes."""
    total = over = 0
    for v in voices(clip):
        end = -1
        for n in v.notes:  # sorted by (start_tick, pitch)
            total += 1
            over += n.start_tick < end
            end = max(end, n.end_tick)
    return over / total if total else None


def voices_kept(prompt: Clip, take: Clip) -> float | None:
    """Share of the prompt's voices (tracks with notes, matched by track index) that hold at
    least one note in the take. None when the prompt has no voice."""
    idx = [i for i, t in enumerate(prompt.tracks) if t.notes and not t.is_drum]
    if not idx:
        return None
    return sum(i < len(take.tracks) and bool(take.tracks[i].notes) for i in idx) / len(idx)


# ------------------------------------------------------------------------------ harmony
def beat_ticks(clip: Clip) -> list[int]:
    """Every beat of the clip: multiples of the time signature's denominator note from each
    bar line."""
    out = []
    bars = clip.bar_starts
    for b in range(clip.n_bars):
        step = PPQ * 4 // clip.time_signature_at(bars[b]).denominator
        out.extend(range(bars[b], bars[b + 1], max(1, step)))
    return out


def _chord_beats(clip: Clip, lo: int = 0, hi: int | None = None) -> tuple[int, int]:
    vs = voices(clip)
    n = chords = 0
    for t in beat_ticks(clip):
        if t < lo or (hi is not None and t >= hi):
            continue
        ps = [p for p in (sounding(v, t) for v in vs) if p is not None]
        if len(ps) < 3:
            continue
        n += 1
        chords += frozenset(p % 12 for p in ps) in CHORDS
    return chords, n


def chord_on_beat_share(clip: Clip, lo_tick: int = 0, hi_tick: int | None = None) -> float | None:
    """Share of beats (between `lo_tick` and `hi_tick`) with at least three voices sounding at
    which the set of sounding pitch classes is a plain triad or 7th chord (`CHORDS`). None when
    no beat has three voices sounding."""
    chords, n = _chord_beats(clip, lo_tick, hi_tick)
    return chords / n if n else None


DOUBLING_SHARE = 0.75


def doubles(a: Track, b: Track, length_ticks: int) -> bool:
    """Whether voice `b` doubles voice `a` (an instrument playing a sung part colla parte, at
    the unison or octave): at `DOUBLING_SHARE` (75 %) or more of the eighth-note moments at
    which both sound, they sound the same pitch class."""
    n = same = 0
    for t in range(0, max(length_ticks, 1), MOMENT_TICKS):
        pa, pb = sounding(a, t), sounding(b, t)
        if pa is not None and pb is not None:
            n += 1
            same += pa % 12 == pb % 12
    return n > 0 and same >= DOUBLING_SHARE * n


def parallels(clip: Clip) -> tuple[int, int]:
    """(parallel perfect fifths, parallel octaves or unisons) between any two voices.

    For each pair of voices, the moments are the onsets of either voice; at two consecutive
    moments where both voices sound, both change pitch in the same direction and the interval
    between them is a perfect fifth (7 semitones modulo 12, compound too) both times, or an
    octave or unison (0 modulo 12) both times: one parallel. A pair where one voice doubles
    the other (`doubles`) is a doubling, not voice leading, and is skipped.
    """
    vs = voices(clip)
    fifths = octaves = 0
    for i in range(len(vs)):
        for j in range(i + 1, len(vs)):
            a, b = vs[i], vs[j]
            if doubles(a, b, clip.length_ticks):
                continue
            times = sorted({n.start_tick for n in a.notes} | {n.start_tick for n in b.notes})
            prev = None
            for t in times:
                pa, pb = sounding(a, t), sounding(b, t)
                cur = None if pa is None or pb is None else (pa, pb)
                if prev is not None and cur is not None:
                    da, db = cur[0] - prev[0], cur[1] - prev[1]
                    if da and db and (da > 0) == (db > 0):
                        before, after = abs(prev[0] - prev[1]) % 12, abs(cur[0] - cur[1]) % 12
                        fifths += before == after == 7
                        octaves += before == after == 0
                prev = cur
    return fifths, octaves


def parallel_fifths_per_bar(clip: Clip) -> float:
    """Parallel perfect fifths (see `parallels`) per bar of the clip."""
    return parallels(clip)[0] / max(1, clip.n_bars)


def parallel_octaves_per_bar(clip: Clip) -> float:
    """Parallel octaves and unisons (see `parallels`) per bar of the clip."""
    return parallels(clip)[1] / max(1, clip.n_bars)


# ------------------------------------------------------------------------ melody, form
def melody(clip: Clip) -> list[Note]:
    """The top voice's notes in onset order (the highest at a shared onset); [] without one."""
    vs = _ordered(clip, None)
    if not vs:
        return []
    top: dict[int, Note] = {}
    for n in vs[0].notes:
        if n.start_tick not in top or n.pitch > top[n.start_tick].pitch:
            top[n.start_tick] = n
    return [top[k] for k in sorted(top)]


def interval_ngrams(notes: Sequence[Note], n: int = 3) -> list[tuple[int, ...]]:
    """The melody's interval n-grams: n consecutive intervals (semitones, signed) of n+1
    consecutive notes, in order."""
    iv = [b.pitch - a.pitch for a, b in zip(notes, notes[1:])]
    return [tuple(iv[k:k + n]) for k in range(len(iv) - n + 1)]


def motif_reuse(prompt: Clip, continuation: Clip, n: int = 3) -> float | None:
    """Share of the continuation's melody interval 3-grams (occurrences) that also occur in
    the prompt's melody: how much of the continuation is made of the prompt's motifs,
    transposed or not. None when the continuation's melody has fewer than four notes or the
    prompt's none."""
    ref = set(interval_ngrams(melody(prompt), n))
    grams = interval_ngrams(melody(continuation), n)
    if not grams or not ref:
        return None
    return sum(g in ref for g in grams) / len(grams)


def bar_rhythms(clip: Clip) -> list[frozenset[int]]:
    """Per bar: the set of onset positions (on the 1/12-quarter grid, from the bar line) of
    every voice's notes starting in it."""
    bars = clip.bar_starts
    out: list[set[int]] = [set() for _ in range(clip.n_bars)]
    for v in voices(clip):
        for n in v.notes:
            b = int(np.searchsorted(bars, n.start_tick, side="right")) - 1
            if 0 <= b < clip.n_bars:
                out[b].add((n.start_tick - bars[b]) // GRID)
    return [frozenset(s) for s in out]


def rhythm_reuse(prompt: Clip, continuation: Clip) -> float | None:
    """Share of the continuation's non-empty bars whose onset pattern (`bar_rhythms`) is
    exactly that of one of the prompt's bars. None when the continuation has no notes."""
    ref = set(bar_rhythms(prompt))
    bars = [r for r in bar_rhythms(continuation) if r]
    return sum(r in ref for r in bars) / len(bars) if bars else None


def repeated_note_share(clip: Clip) -> float | None:
    """Share of the melody's steps (consecutive onsets of `melody`) that strike the same
    pitch again: a fiddle tune repeats a pitch on ~10 % of its steps, a bar of one pitch
    struck eight times pushes a take far above that. None with fewer than two melody notes."""
    mel = melody(clip)
    if len(mel) < 2:
        return None
    return sum(a.pitch == b.pitch for a, b in zip(mel, mel[1:])) / (len(mel) - 1)


def long_note_ends_bar(clip: Clip, bar: int) -> bool | None:
    """Whether bar `bar` (1-based) ends on a long note: the last melody note starting in that
    bar lasts at least `LONG_NOTE_FACTOR` (2) times the median duration of the clip's melody
    notes. None when the clip has fewer bars or no melody note starts in that bar."""
    if not 1 <= bar <= clip.n_bars:
        return None
    mel = melody(clip)
    lo, hi = clip.bar_starts[bar - 1], clip.bar_starts[bar]
    inside = [n for n in mel if lo <= n.start_tick < hi]
    if not inside:
        return None
    median = float(np.median([n.duration_ticks for n in mel]))
    return inside[-1].duration_ticks >= LONG_NOTE_FACTOR * median


def tonic_of(key: str | None) -> int | None:
    """The tonic pitch class of a key name ('D major', 'Em'), or None."""
    return parse_key(key)[0] if key else None


def ends_on_tonic(clip: Clip, key: str | None) -> bool | None:
    """Whether the clip's last sonority has the tonic of `key` in its lowest sounding note:
    the lowest pitch among the notes starting at the clip's last onset (for one voice, its
    last note). None without notes or key."""
    notes = clip.pitched_notes()
    tonic = tonic_of(key)
    if not notes or tonic is None:
        return None
    last = max(n.start_tick for n in notes)
    return min(n.pitch for n in notes if n.start_tick == last) % 12 == tonic


def seam_leaps(clip: Clip, lo_tick: int, hi_tick: int) -> tuple[int | None, int | None]:
    """Melody (top voice) leaps at the two seams of a region lo_tick..hi_tick: (semitones from
    the last melody note before the region to its first one inside, from its last one inside
    to the first after it); None where there is no note on one side."""
    mel = melody(clip)
    before = [n for n in mel if n.start_tick < lo_tick]
    inside = [n for n in mel if lo_tick <= n.start_tick < hi_tick]
    after = [n for n in mel if n.start_tick >= hi_tick]
    into = abs(inside[0].pitch - before[-1].pitch) if before and inside else None
    out = abs(after[0].pitch - inside[-1].pitch) if inside and after else None
    return into, out


# ------------------------------------------------------------- keys, tempi, blends
def clip_key(clip: Clip) -> str | None:
    """The clip's key as musegen reads it (its key signature, else the Krumhansl estimate),
    normalised to the estimate's spelling ('Eb major', 'C# minor')."""
    if not clip.key:
        return None
    tonic, mode = parse_key(clip.key)
    names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    return f"{names[tonic]} {mode}"


def idiomatic_keys(real_keys: Sequence[str | None], min_share: float = KEY_SHARE_MIN) -> set[str]:
    """The keys used by at least `min_share` (5 %) of a style's real pieces."""
    ks = [k for k in real_keys if k]
    return {k for k in set(ks) if ks.count(k) >= min_share * len(ks)} if ks else set()


def key_idiomatic_share(take_keys: Sequence[str | None], real_keys: Sequence[str | None]) -> float | None:
    """Share of takes whose key (`clip_key`) is one that at least 5 % of the style's real
    pieces use (`idiomatic_keys`). None without takes."""
    return keys_in_share(take_keys, idiomatic_keys(real_keys))


def keys_in_share(take_keys: Sequence[str | None], keys: set[str]) -> float | None:
    """Share of takes whose key (`clip_key`) is one of `keys`. None without takes."""
    if not take_keys:
        return None
    return sum(k in keys for k in take_keys) / len(take_keys)


def tempo(clip: Clip) -> float:
    """The clip's opening tempo in quarter notes per minute."""
    return float(clip.tempos[0].qpm)


def tempo_in_style_share(take_tempi: Sequence[float], real_tempi: Sequence[float],
                         weights: Sequence[float] | None = None) -> float | None:
    """Share of takes whose tempo lies within the 10th..90th percentile of the style's real
    tempi (`weights`: how often each real tempo occurs, e.g. a style prior's shares; None:
    once each). None without takes or real tempi."""
    if not take_tempi or not real_tempi:
        return None
    if weights is None:
        lo, hi = np.percentile(real_tempi, [10, 90])
    else:
        order = np.argsort(real_tempi)
        vals, cum = np.asarray(real_tempi, float)[order], np.cumsum(np.asarray(weights, float)[order])
        cum = cum / cum[-1]
        lo, hi = vals[np.searchsorted(cum, 0.1)], vals[min(len(vals) - 1, np.searchsorted(cum, 0.9))]
    return float(np.mean([lo - 1e-6 <= t <= hi + 1e-6 for t in take_tempi]))


def modal_share(values: Sequence[float]) -> float | None:
    """Share of the values equal (to 0.5) to the most common one: 43 of 48 takes at 123 qpm
    gives 0.9. None for no values."""
    if not values:
        return None
    r = [round(2 * v) for v in values]
    return max(r.count(v) for v in set(r)) / len(r)


@dataclass(frozen=True)
class BlendLine:
    """The line from style A's real centroid (0) to B's (1) in standardised descriptor space
    (`musegen.evaluation.descriptors.describe`)."""

    a: np.ndarray
    b: np.ndarray
    mu: np.ndarray
    sd: np.ndarray

    @classmethod
    def of(cls, real_a: Sequence[Clip], real_b: Sequence[Clip]) -> BlendLine:
        """The line between two styles' real pieces (standardised over both)."""
        from musegen.evaluation.descriptors import describe

        va = np.stack([describe(c) for c in real_a])
        vb = np.stack([describe(c) for c in real_b])
        both = np.concatenate([va, vb])
        mu, sd = both.mean(0), both.std(0) + 1e-6
        return cls(((va - mu) / sd).mean(0), ((vb - mu) / sd).mean(0), mu, sd)

    def position(self, clip: Clip) -> float:
        """Where the clip's descriptors project onto the line (0 = A's centroid, 1 = B's)."""
        from musegen.evaluation.blend import projection
        from musegen.evaluation.descriptors import describe

        return float(projection(describe(clip)[None], self.a, self.b, self.mu, self.sd)[0])


def hybrid_share(positions: Sequence[float], band: tuple[float, float] = HYBRID_BAND) -> float | None:
    """Share of blend takes whose position between the two styles' real pieces
    (`BlendLine.position`) lies inside `band` (0.2..0.8): a hybrid, neither style's copy."""
    if not positions:
        return None
    return float(np.mean([band[0] <= p <= band[1] for p in positions]))


def weight_position_spearman(weights: Sequence[float], positions: Sequence[float]) -> float:
    """Spearman rank correlation of blend weight vs position, over all takes."""
    from musegen.evaluation.blend import spearman

    return spearman(np.asarray(weights), np.asarray(positions))


# ------------------------------------------------------------------- per-clip table
CONTINUATION_FIGURES = ("chord_on_beat", "parallel_fifths_per_bar", "parallel_octaves_per_bar",
                        "voice_crossing", "overlap", "motif_reuse", "rhythm_reuse",
                        "repeated_notes", "long_end_bar4", "long_end_bar8", "ends_on_tonic", "voices",
                        "voices_kept", "satb_range", "bass_below_tenor")


def continuation_figures(prompt: Clip, continuation: Clip) -> dict[str, float | None]:
    """Every per-clip figure of a continuation (a take, or the real bars that follow the
    prompt), judged against its prompt: voices ranked by the prompt's order, tonic of the
    prompt's key. Booleans become 0/1; a figure that does not apply is None."""
    order = voice_order(prompt)
    key = prompt.key

    def num(x: object) -> float | None:
        return None if x is None else float(x)  # type: ignore[arg-type]

    return {
        "chord_on_beat": chord_on_beat_share(continuation),
        "parallel_fifths_per_bar": parallel_fifths_per_bar(continuation),
        "parallel_octaves_per_bar": parallel_octaves_per_bar(continuation),
        "voice_crossing": voice_crossing_share(continuation, order),
        "overlap": overlap_share(continuation),
        "motif_reuse": motif_reuse(prompt, continuation),
        "rhythm_reuse": rhythm_reuse(prompt, continuation),
        "repeated_notes": repeated_note_share(continuation),
        "long_end_bar4": num(long_note_ends_bar(continuation, 4)),
        "long_end_bar8": num(long_note_ends_bar(continuation, 8)),
        "ends_on_tonic": num(ends_on_tonic(continuation, key)),
        "voices": float(voice_count(continuation)),
        "voices_kept": voices_kept(prompt, continuation),
        "satb_range": satb_range_share(continuation, order),
        "bass_below_tenor": bass_below_tenor_share(continuation, order),
    }


def mean_of(rows: Sequence[dict[str, float | None]], name: str) -> float | None:
    """The mean of figure `name` over the rows where it applies (None where it never does)."""
    vals = [r[name] for r in rows if r.get(name) is not None]
    return float(np.mean(vals)) if vals else None


__all__ = ["CHORDS", "CONTINUATION_FIGURES", "HYBRID_BAND", "SATB_RANGES", "BlendLine",
           "bar_rhythms", "bass_below_tenor_share", "beat_ticks", "chord_on_beat_share",
           "clip_key", "continuation_figures", "doubles", "ends_on_tonic", "hybrid_share", "idiomatic_keys",
           "interval_ngrams", "key_idiomatic_share", "long_note_ends_bar", "mean_of", "melody", "repeated_note_share",
           "modal_share", "motif_reuse", "overlap_share", "parallel_fifths_per_bar",
           "parallel_octaves_per_bar", "parallels", "rhythm_reuse", "satb_range_share",
           "seam_leaps", "sounding", "tempo", "tempo_in_style_share", "tonic_of",
           "voice_count", "voice_crossing_share", "voice_order", "voices", "voices_kept",
           "weight_position_spearman"]
