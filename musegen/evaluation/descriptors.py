"""Musical descriptors of a clip, and whether generations follow their requested style.

A clip becomes a small vector: the key-relative pitch-class profile (12), the onset-phase
profile within the beat (12, on the tokenizer's 1/12-quarter grid), notes per bar, voices,
pitch range and mean melodic step. Each style's real pieces give a centroid; a generated take
"follows its style" when its nearest real centroid (standardised Euclidean distance) is
the style it was asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from musegen.clip import PPQ, Clip, parse_key

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
