"""Pictures: the style map and piano rolls (matplotlib, Agg backend, written to PNG)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musegen.clip import PPQ, Clip, atomic_write_bytes


def _pyplot():  # noqa: ANN202 - matplotlib's module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: object, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")  # type: ignore[attr-defined]
    _pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """Project rows onto their first two principal components."""
    x = vectors - vectors.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T


def style_map(styles: Sequence[object], path: Path,
              extra_points: Sequence[tuple[str, np.ndarray]] = ()) -> Path:
    """Labelled 2-D map (PCA) of style vectors; `extra_points` are (label, vector) pairs
    placed in the same projection (for example held-out pieces)."""
    plt = _pyplot()
    vecs = np.stack([s.vector for s in styles])  # type: ignore[attr-defined]
    allv = np.concatenate([vecs] + [v[None] for _, v in extra_points]) if extra_points else vecs
    xy = pca_2d(allv)
    fig, ax = plt.subplots(figsize=(7, 6))
    if extra_points:
        ax.scatter(xy[len(vecs):, 0], xy[len(vecs):, 1], s=6, alpha=0.3, color="grey")
    ax.scatter(xy[: len(vecs), 0], xy[: len(vecs), 1], s=60, color="tab:red")
    for s, (x, y) in zip(styles, xy[: len(vecs)]):
        ax.annotate(s.name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=9)  # type: ignore[attr-defined]
    ax.set_title("musegen style space (PCA of the learned style vectors)")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    return _save(fig, path)


def piano_roll(clip: Clip, path: Path, title: str | None = None) -> Path:
    """Notes as bars over time (beats), one colour per track, bar lines drawn."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, min(24, clip.length_ticks / PPQ / 2)), 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, t in enumerate(clip.tracks):
        for n in t.notes:
            ax.broken_barh([(n.start_beats, n.duration_beats)], (n.pitch - 0.4, 0.8),
                           color=colors[i % len(colors)], alpha=0.85)
    for b in clip.bar_starts:
        ax.axvline(b / PPQ, color="black", lw=0.5, alpha=0.4)
    ax.set_xlabel("beats")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title or f"{clip.name or 'clip'}: {clip.n_bars} bars, {clip.n_notes} notes")
    return _save(fig, path)
