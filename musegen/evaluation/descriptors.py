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
