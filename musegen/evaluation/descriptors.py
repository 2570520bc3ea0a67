"""Musical descriptors of a clip, and whether generations follow their requested style.

A clip becomes a small vector: the key-relative pitch-class profile (12), the onset-phase
profile within the beat (12, on the tokenizer's 1/12-quarter grid), notes per bar, voices,
pitch range and mean melodic step. Each style's real pieces give a centroid; a generated take
"follows its style" when its nearest real centroid (standardised Euclidean distance) is
the style it was asked for.

`profile()` is the style classifier's richer reading of the same notes (metre, tempo,
tonality, rhythm, melody, register, texture; see PROFILE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from musegen.clip import PPQ, Clip, Note, parse_key

GRID = PPQ // 12
NAMES = ([f"pc{i}" for i in range(12)] + [f"phase{i}" for i in range(12)]
         + ["notes_per_bar", "voices", "pitch_range", "mean_step"])


def describe(clip: Clip) -> np.ndarray:
    notes = clip.pitched_notes()
    v = np.zeros(len(NAMES))
    if not notes:
        return v
    tonic = parse_key(clip.key)[0] if clip.key else 0
    pc = np.zeros(12)
    phase = np.zeros(12)
    for n in notes:
        pc[(n.pitch - tonic) % 12] += n.duration_ticks
        phase[(n.start_tick // GRID) % 12] += 1
    v[:12] = pc / pc.sum()
    v[12:24] = phase / phase.sum()
    v[24] = len(notes) / max(1, clip.n_bars)
    v[25] = sum(1 for t in clip.tracks if t.notes and not t.is_drum)
    pitches = [n.pitch for n in notes]
    v[26] = max(pitches) - min(pitches)
    top = {}
    for n in notes:
        top[n.start_tick] = max(top.get(n.start_tick, 0), n.pitch)
    line = [top[k] for k in sorted(top)]
    v[27] = float(np.mean(np.abs(np.diff(line)))) if len(line) > 1 else 0.0
    return v


@dataclass
class StyleFidelity:
    styles: list[str]
    confusion: np.ndarray  # (requested style, nearest real style) counts
    centroid_match: list[bool]  # per style: generated centroid nearest its own real centroid

    @property
    def take_accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(1, self.confusion.sum()))

    @property
    def centroid_accuracy(self) -> float:
        return float(np.mean(self.centroid_match)) if self.centroid_match else 0.0


def centroids(real: dict[str, Sequence[np.ndarray]]) -> tuple[list[str], np.ndarray, np.ndarray,
                                                                np.ndarray]:
    names = [s for s in real if len(real[s])]
    allv = np.concatenate([np.stack(real[s]) for s in names])
    mu, sd = allv.mean(0), allv.std(0) + 1e-6
    cents = np.stack([((np.stack(real[s]) - mu) / sd).mean(0) for s in names])
    return names, cents, mu, sd


def style_fidelity(real: dict[str, Sequence[np.ndarray]],
                   generated: dict[str, Sequence[np.ndarray]]) -> StyleFidelity:
    names, cents, mu, sd = centroids(real)
    conf = np.zeros((len(names), len(names)), dtype=np.int64)
    match = []
    for i, s in enumerate(names):
        gen = generated.get(s, [])
        if not len(gen):
            continue
        z = (np.stack(gen) - mu) / sd
        d = ((z[:, None, :] - cents[None]) ** 2).sum(-1)
        for j in d.argmin(1):
            conf[i, j] += 1
        gc = z.mean(0)
        match.append(int(((gc[None] - cents) ** 2).sum(-1).argmin()) == i)
    return StyleFidelity(names, conf, match)


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    u = vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12)
    return u @ u.T


# ---------------------------------------------------------------- named musical descriptors
# The seven figures the evaluation compares between real and generated music (MusPy's
# definitions where one exists). Each takes a clip and returns one float.

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


def pitch_class_entropy(clip: Clip) -> float:
    """Entropy (bits) of the pitch-class histogram of note onsets; 0 for no notes, at most
    log2(12) = 3.58."""
    notes = clip.pitched_notes()
    if not notes:
        return 0.0
    h = np.bincount([n.pitch % 12 for n in notes], minlength=12) / len(notes)
    h = h[h > 0]
    return float(-(h * np.log2(h)).sum())


def scale_consistency(clip: Clip) -> float:
    """Largest share of notes inside one major or natural-minor scale (any tonic)."""
    notes = clip.pitched_notes()
    if not notes:
        return 0.0
    h = np.bincount([n.pitch % 12 for n in notes], minlength=12)
    best = 0
    for tonic in range(12):
        for scale in (_MAJOR, _MINOR):
            best = max(best, int(sum(h[(tonic + d) % 12] for d in scale)))
    return best / len(notes)


def pitch_range(clip: Clip) -> float:
    """Highest minus lowest pitch, in semitones."""
    pitches = [n.pitch for n in clip.pitched_notes()]
    return float(max(pitches) - min(pitches)) if pitches else 0.0


def note_density(clip: Clip) -> float:
    """Pitched notes per bar."""
    return len(clip.pitched_notes()) / max(1, clip.n_bars)


def _bar_onsets(clip: Clip) -> list[list]:
    """Per bar: the pitched notes starting in it (start_tick relative to the bar)."""
    starts = list(clip.bar_starts) + [max(clip.length_ticks, clip.bar_starts[-1] + 1)
                                       if clip.bar_starts else 0]
    bars: list[list] = [[] for _ in range(clip.n_bars)]
    b = 0
    for n in sorted(clip.pitched_notes(), key=lambda n: n.start_tick):
        while b + 1 < clip.n_bars and n.start_tick >= starts[b + 1]:
            b += 1
        if clip.n_bars:
            bars[b].append((n.start_tick - starts[b], n.pitch))
    return bars


def groove_consistency(clip: Clip) -> float:
    """1 - mean Hamming distance between consecutive bars' onset patterns (on the 1/12-quarter
    grid), as a share of the grid: 1 when every bar has the same rhythm."""
    bars = _bar_onsets(clip)
    if len(bars) < 2:
        return 1.0
    pats = [frozenset(t // GRID for t, _ in bar) for bar in bars]
    size = max(1, max((clip.bar_starts[i + 1] - clip.bar_starts[i]) // GRID
                      for i in range(len(clip.bar_starts) - 1)) if len(clip.bar_starts) > 1
               else 48)
    d = [len(a ^ b) / size for a, b in zip(pats, pats[1:])]
    return float(1.0 - np.mean(d))


def empty_bar_rate(clip: Clip) -> float:
    """Share of bars in which no pitched note starts."""
    bars = _bar_onsets(clip)
    return sum(1 for b in bars if not b) / len(bars) if bars else 0.0


def repetition(clip: Clip) -> float:
    """Repetition structure: for each bar after the first, the best Jaccard overlap of its
    (onset in bar, pitch) set with any earlier bar, averaged. 1 = every bar repeats an
    earlier one exactly; about 0 = nothing recurs."""
    bars = [frozenset(b) for b in _bar_onsets(clip)]
    if len(bars) < 2:
        return 0.0
    best = []
    for i in range(1, len(bars)):
        cur = bars[i]
        m = 0.0
        for prev in bars[:i]:
            union = len(cur | prev)
            if union:
                m = max(m, len(cur & prev) / union)
        best.append(m)
    return float(np.mean(best))


MUSICAL = {"pitch_class_entropy": pitch_class_entropy, "scale_consistency": scale_consistency,
           "pitch_range": pitch_range, "note_density": note_density,
           "groove_consistency": groove_consistency, "empty_bar_rate": empty_bar_rate,
           "repetition": repetition}


def musical(clip: Clip) -> np.ndarray:
    """The MUSICAL descriptors of a clip, in MUSICAL's order."""
    return np.array([f(clip) for f in MUSICAL.values()])


# ------------------------------------------------------------------ the style profile
# What the style classifier reads beside `describe()` and MUSICAL: metre, tempo, mode and
# scale, rhythm, melodic intervals, register, texture and harmony. Histograms are shares
# (each sums to 1, or is all 0 for a clip with nothing to count).

METRES = ((2, 4), (3, 4), (4, 4), (2, 2), (3, 2), (4, 2), (6, 4), (3, 8), (6, 8), (9, 8), (12, 8))
# note lengths in quarters: upper edges of grace note or 32nd, sixteenth, eighth triplet, eighth,
# dotted eighth, quarter, dotted quarter, half, dotted half, whole; then longer
_LENGTH_EDGES = (0.2, 0.3, 0.4, 0.55, 0.8, 1.1, 1.6, 2.1, 3.1, 4.1)
_LENGTHS = ("grace", "16th", "8th3", "8th", "dot8th", "quarter", "dotquarter", "half", "dothalf",
            "whole", "longer")
_STEPS = ("0", "1", "2", "3", "4", "5", "6-7", "8-11", "12+")  # |interval| in semitones
_STEP_BIN = (0, 1, 2, 3, 4, 5, 6, 6, 7, 7, 7, 7)  # |interval| 0..11 -> bin; 12+ is the last
_PENTATONIC = (0, 2, 4, 7, 9)
_TRIADS = (frozenset({0, 4, 7}), frozenset({0, 3, 7}))  # major, minor (any root)
BAR_POSITIONS = 12  # onset position in the bar, in twelfths of the bar (fits 2, 3, 4 and 6)
MAX_SOUNDING = 5  # polyphony shares of 0, 1, ..., 4, 5+ notes sounding

PROFILE = ([f"metre_{a}_{b}" for a, b in METRES] + ["metre_other", "bar_quarters", "log2_qpm",
            "minor", "in_scale", "pentatonic"] + [f"tonic{i}" for i in range(12)]
           + [f"len_{n}" for n in _LENGTHS] + [f"ioi_{n}" for n in _LENGTHS]
           + ["ioi_dotted", "ioi_snap", "ioi_even", "long_on_downbeat"]
           + [f"barpos{i}" for i in range(BAR_POSITIONS)]
           + [f"step_{n}" for n in _STEPS] + ["step_up", "turns", "bass_step"]
           + [f"first_degree{i}" for i in range(12)] + [f"last_degree{i}" for i in range(12)]
           + ["top_mean", "bass_mean", "lowest", "highest", "pitch_sd"]
           + [f"sounding_{i}" for i in range(MAX_SOUNDING + 1)]
           + [f"ic{i}" for i in range(7)] + ["triad_share"])


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else counts.astype(float)


def _length_bins(quarters: Sequence[float]) -> np.ndarray:
    return _shares(np.bincount(np.searchsorted(_LENGTH_EDGES, quarters), minlength=len(_LENGTHS)
                               ).astype(float))


def _lines(clip: Clip, notes: Sequence[Note]) -> tuple[list[Note], list[Note]]:
    """The skyline (the highest note of each onset) and the bass voice (the pitched track with
    the lowest mean pitch, by onset)."""
    top: dict[int, Note] = {}
    for n in notes:
        if n.start_tick not in top or n.pitch > top[n.start_tick].pitch:
            top[n.start_tick] = n
    voices = [t.notes for t in clip.tracks if t.notes and not t.is_drum]
    low = min(voices, key=lambda v: np.mean([n.pitch for n in v]))
    return [top[t] for t in sorted(top)], sorted(low, key=lambda n: (n.start_tick, n.pitch))


def metre(clip: Clip) -> np.ndarray:
    """One-hot of the first time signature over METRES (then 'other'), and the bar's length in
    quarters."""
    ts = clip.time_signatures[0]
    v = np.zeros(len(METRES) + 2)
    sig = (ts.numerator, ts.denominator)
    v[METRES.index(sig) if sig in METRES else len(METRES)] = 1.0
    v[-1] = ts.bar_ticks / PPQ
    return v


def tonality(clip: Clip, notes: Sequence[Note]) -> np.ndarray:
    """Minor (1) or major (0) by the clip's key; the duration share inside the key's scale
    (harmonic minor's leading note counted in minor) and inside the best major pentatonic; the
    tonic, one-hot (0 = C): folk styles favour their instruments' keys."""
    tonic, mode = parse_key(clip.key) if clip.key else (0, "major")
    h = np.bincount([n.pitch % 12 for n in notes], [n.duration_ticks for n in notes], minlength=12)
    h = _shares(h.astype(float))
    scale = set(_MINOR) | {11} if mode == "minor" else set(_MAJOR)
    in_scale = sum(h[(tonic + d) % 12] for d in scale)
    penta = max(sum(h[(t + d) % 12] for d in _PENTATONIC) for t in range(12))
    return np.concatenate([[mode == "minor", in_scale, penta], np.eye(12)[tonic]])


def rhythm(clip: Clip, top: Sequence[Note]) -> np.ndarray:
    """Note-length shares of all notes; inter-onset-interval shares of the skyline, and the
    shares of its consecutive intervals that are dotted (3:1), a snap (1:3) or even; the share of
    its notes a quarter or longer that start on a bar line; the onsets' position in their bar
    (BAR_POSITIONS shares of the bar)."""
    notes = clip.pitched_notes()
    lengths = _length_bins([n.duration_ticks / PPQ for n in notes])
    onsets = [n.start_tick for n in top]
    ioi = _length_bins(np.diff(onsets) / PPQ) if len(onsets) > 1 else np.zeros(len(_LENGTHS))
    starts = np.asarray(clip.bar_starts)
    pos = np.zeros(BAR_POSITIONS)
    for t in onsets:
        b = min(max(0, int(np.searchsorted(starts, t, side="right")) - 1), len(starts) - 2)
        size = max(1, starts[b + 1] - starts[b])
        pos[min(BAR_POSITIONS - 1, (t - starts[b]) * BAR_POSITIONS // size)] += 1
    pairs = list(zip(np.diff(onsets), np.diff(onsets)[1:]))
    ratio = np.array([[a == 3 * b, 3 * a == b, a == b] for a, b in pairs], dtype=float)
    long_notes = [t for t, n in zip(onsets, top) if n.duration_ticks >= PPQ]
    down = sum(1 for t in long_notes if t in set(clip.bar_starts)) / len(long_notes) if long_notes else 0.0
    return np.concatenate([lengths, ioi, ratio.mean(0) if len(ratio) else np.zeros(3), [down],
                           _shares(pos)])


def melody(top: Sequence[Note], low: Sequence[Note], tonic: int) -> np.ndarray:
    """The skyline's |interval| shares (_STEPS), share of rising steps among moving ones and of
    changes of direction; the bass voice's mean |step|; the skyline's first and last note as a
    degree above `tonic` (one-hot); mean pitch of the skyline and of the bass voice."""
    steps = np.diff([n.pitch for n in top])
    h = np.zeros(len(_STEPS))
    for s in np.abs(steps):
        h[_STEP_BIN[s] if s < 12 else len(_STEPS) - 1] += 1
    moving = steps[steps != 0]
    up = float((moving > 0).mean()) if len(moving) else 0.5
    turns = float((np.diff(np.sign(moving)) != 0).mean()) if len(moving) > 1 else 0.0
    bass = np.diff([n.pitch for n in low])
    first, last = np.zeros(12), np.zeros(12)
    first[(top[0].pitch - tonic) % 12] = last[(top[-1].pitch - tonic) % 12] = 1
    return np.concatenate([_shares(h), [up, turns, float(np.abs(bass).mean()) if len(bass) else 0.0],
                           first, last, [np.mean([n.pitch for n in top]),
                                         np.mean([n.pitch for n in low])]])


def texture(clip: Clip, notes: Sequence[Note]) -> np.ndarray:
    """Share of the clip's time (on the 1/12-quarter grid) with 0, 1, ..., MAX_SOUNDING+ notes
    sounding; interval-class shares (unison/octave 0 .. tritone 6) of the note pairs sounding
    at each onset; the share of onsets with 3+ pitch classes sounding that form a major or minor
    triad (no other pitch class)."""
    cells = max(1, -(-clip.length_ticks // GRID))
    depth = np.zeros(cells + 1)
    for n in notes:
        depth[n.start_tick // GRID] += 1
        depth[min(cells, max(n.start_tick // GRID + 1, -(-n.end_tick // GRID)))] -= 1
    sounding = np.cumsum(depth)[:cells].astype(int)
    poly = _shares(np.bincount(np.minimum(sounding, MAX_SOUNDING), minlength=MAX_SOUNDING + 1)
                   .astype(float))
    ic = np.zeros(7)
    triads = chords = 0
    ends = np.array([n.end_tick for n in notes])
    starts = np.array([n.start_tick for n in notes])
    pitches = np.array([n.pitch for n in notes])
    for t in np.unique(starts):
        now = pitches[(starts <= t) & (ends > t)]
        for i in range(len(now)):
            for j in range(i + 1, len(now)):
                d = abs(int(now[i]) - int(now[j])) % 12
                ic[min(d, 12 - d)] += 1
        pcs = {int(p) % 12 for p in now}
        if len(pcs) >= 3:
            chords += 1
            triads += any(frozenset((p - r) % 12 for p in pcs) in _TRIADS for r in pcs)
    return np.concatenate([poly, _shares(ic), [triads / chords if chords else 0.0]])


def profile(clip: Clip) -> np.ndarray:
    """The style profile (PROFILE's order): metre, tempo, tonality, rhythm, melody, register
    and texture of the clip's pitched notes."""
    notes = clip.pitched_notes()
    if not notes:
        v = np.zeros(len(PROFILE))
        v[: len(METRES) + 2] = metre(clip)
        return v
    top, low = _lines(clip, notes)
    tonic = parse_key(clip.key)[0] if clip.key else 0
    pitches = [n.pitch for n in notes]
    out = np.concatenate([metre(clip), [np.log2(clip.tempo_at(0))], tonality(clip, notes),
                          rhythm(clip, top), melody(top, low, tonic),
                          [min(pitches), max(pitches), np.std(pitches)], texture(clip, notes)])
    assert len(out) == len(PROFILE), (len(out), len(PROFILE))
    return out
