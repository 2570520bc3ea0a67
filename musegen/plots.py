"""Pictures: the style map and piano rolls (matplotlib, Agg backend, written to PNG)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musegen.atomic import write_bytes
from musegen.clip import PPQ, Clip, Track

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def pyplot():  # noqa: ANN202 - matplotlib's module
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: object, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    pyplot().close(fig)
    write_bytes(path, buf.getvalue())
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
    plt = pyplot()
    vecs = np.stack([s.vector for s in styles])
    allv = np.concatenate([vecs] + [v[None] for _, v in extra_points]) if extra_points else vecs
    xy = pca_2d(allv)
    fig, ax = plt.subplots(figsize=(7, 6))
    if extra_points:
        ax.scatter(xy[len(vecs):, 0], xy[len(vecs):, 1], s=6, alpha=0.3, color="grey")
    ax.scatter(xy[: len(vecs), 0], xy[: len(vecs), 1], s=60, color="tab:red")
    for s, (x, y) in zip(styles, xy[: len(vecs)]):
        ax.annotate(s.name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=9)
    ax.set_title("musegen style space (PCA of the learned style vectors)")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    return _save(fig, path)


# Pitch classes labelled on the pitch axis, by how many semitones the notes span: every
# natural note for an octave, C E G up to three octaves, C G up to five, then only the Cs.
_PITCH_LABELS = ((13, (0, 2, 4, 5, 7, 9, 11)), (37, (0, 4, 7)), (61, (0, 7)), (10**9, (0,)))
_BLACK_KEYS = (1, 3, 6, 8, 10)
_ROW_BEATS = 40  # about ten 4/4 bars per row, so syllables and bar numbers stay legible
_MAX_ROWS = 40


def track_labels(tracks: Sequence[Track]) -> list[str]:
    """Each track's name for a legend: its own name ("Viola (track 2)" where two share one),
    else "Track N (GM program name)" or "Track N (drums)"."""
    import pretty_midi

    names = [t.name.strip() for t in tracks]
    out = []
    for i, (t, name) in enumerate(zip(tracks, names)):
        if name:
            out.append(name if names.count(name) == 1 else f"{name} (track {i + 1})")
        else:
            kind = "drums" if t.is_drum else pretty_midi.program_to_instrument_name(t.program)
            out.append(f"Track {i + 1} ({kind})")
    return out


def pitch_ticks(lo: int, hi: int) -> list[int]:
    """Integer MIDI pitches to label on an axis showing `lo`..`hi` (see `_PITCH_LABELS`)."""
    classes = next(pcs for span, pcs in _PITCH_LABELS if hi - lo < span)
    return [p for p in range(lo, hi + 1) if p % 12 in classes]


def _rows(clip: Clip, bars_per_row: int | None) -> list[tuple[int, int]]:
    """(first bar, end bar) of each row of the roll, 0-based, end exclusive."""
    n = max(1, clip.n_bars)
    if bars_per_row is None:
        bar_beats = max(clip.time_signature_at(0).bar_ticks / PPQ, 1.0)
        bars_per_row = max(1, int(_ROW_BEATS // bar_beats), -(-n // _MAX_ROWS))
        bars_per_row = -(-n // -(-n // bars_per_row))  # as even as the rows can be
    return [(b, min(n, b + bars_per_row)) for b in range(0, n, bars_per_row)]


def piano_roll_figure(clip: Clip, title: str | None = None,
                      bars_per_row: int | None = None) -> Figure:
    """The piano roll as a matplotlib `Figure` (not attached to pyplot): one row per
    `bars_per_row` bars (about 40 beats by default), each track in its own colour and named
    in the legend, pitches labelled by note name (C4 = MIDI 60) at integer pitches, bar
    numbers along the time axis, and each note's syllable (`Note.lyric`) printed above it."""
    import matplotlib
    import pretty_midi
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator

    notes = [n for t in clip.tracks for n in t.notes]
    lo = min((n.pitch for n in notes), default=60)
    hi = max((n.pitch for n in notes), default=72)
    rows = _rows(clip, bars_per_row)
    grid = list(clip.bar_starts) if clip.n_bars else [0, clip.time_signature_at(0).bar_ticks]
    has_lyrics = any(n.lyric for n in notes)
    top = hi + (3 if has_lyrics else 1)  # room for the syllables above the highest notes
    row_beats = max((grid[e] - grid[b]) / PPQ for b, e in rows)
    row_h = min(6.0, max(2.2, 0.09 * (top - lo) + 1.0))
    fig = Figure(figsize=(min(30.0, max(6.0, row_beats * (0.42 if has_lyrics else 0.3))),
                          row_h * len(rows) + 0.9), layout="constrained")
    axes = fig.subplots(len(rows), 1, squeeze=False, sharey=True)[:, 0]
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = track_labels(clip.tracks)
    for ax, (b0, b1) in zip(axes, rows):
        for p in range(lo - 1, top + 1):  # black-key rows shaded, as on a keyboard
            if p % 12 in _BLACK_KEYS:
                ax.axhspan(p - 0.5, p + 0.5, color="0.93", lw=0, zorder=0)
        _draw_notes(ax, clip, grid[b0], grid[b1], colors)
        _draw_bars(ax, clip, grid, b0, b1, row_beats)
    ticks = pitch_ticks(lo - 1, top)
    axes[0].set_ylim(lo - 1.5, top + 0.5)
    axes[0].set_yticks(ticks, [pretty_midi.note_number_to_name(p) for p in ticks])  # shared by all rows
    axes[0].yaxis.set_minor_locator(FixedLocator(range(lo - 1, top + 1)))
    for ax in axes:
        ax.set_ylabel("pitch")
    axes[-1].set_xlabel("bar")
    _heading(fig, clip, title, colors, labels)
    return fig


def _draw_notes(ax: Axes, clip: Clip, x0: int, x1: int, colors: list) -> None:
    """Each track's notes sounding in ticks x0..x1 as boxes in its colour, syllables above."""
    from matplotlib.collections import PolyCollection

    for i, t in enumerate(clip.tracks):
        seen = [n for n in t.notes if n.end_tick > x0 and n.start_tick < x1]
        verts = [[(n.start_beats, n.pitch - 0.4), (n.start_beats + n.duration_beats, n.pitch - 0.4),
                  (n.start_beats + n.duration_beats, n.pitch + 0.4), (n.start_beats, n.pitch + 0.4)]
                 for n in seen]
        ax.add_collection(PolyCollection(verts, facecolors=colors[i % len(colors)], edgecolors="black",
                                         linewidths=0.3, alpha=0.9, zorder=2))
        for n in seen:
            if n.lyric and x0 <= n.start_tick < x1:
                at_end = n.start_tick > x1 - PPQ // 2  # no room to the right: end at the edge
                ax.text(x1 / PPQ - 0.03 if at_end else n.start_beats + 0.03, n.pitch + 0.5,
                        n.lyric, fontsize=7, va="bottom", ha="right" if at_end else "left",
                        color="0.1", zorder=3, clip_on=True)


def _draw_bars(ax: Axes, clip: Clip, grid: list[int], b0: int, b1: int, row_beats: float) -> None:
    """Bar lines numbered from 1, a faint grid at each beat, one time scale for every row."""
    from matplotlib.ticker import FixedLocator

    bar_lines = [b / PPQ for b in grid[b0:b1 + 1]]
    beats = [(b + k * PPQ * 4 // ts.denominator) / PPQ
             for b in grid[b0:b1] for ts in [clip.time_signature_at(b)] for k in range(ts.numerator)]
    for x in bar_lines:
        ax.axvline(x, color="black", lw=0.6, alpha=0.5, zorder=1)
    ax.xaxis.set_major_locator(FixedLocator(bar_lines[:-1]))
    ax.set_xticklabels([str(b + 1) for b in range(b0, b1)])
    ax.xaxis.set_minor_locator(FixedLocator(beats))
    ax.set_xlim(grid[b0] / PPQ, grid[b0] / PPQ + row_beats)
    ax.grid(axis="x", which="minor", color="0.85", lw=0.4)


def _heading(fig: Figure, clip: Clip, title: str | None, colors: list, labels: list[str]) -> None:
    """Name, bars, notes, tempo and key as the legend's title (so the two never overlap)."""
    from matplotlib.patches import Patch

    tempo = f", {clip.tempos[0].qpm:g} bpm" + (" (changes)" if len(clip.tempos) > 1 else "")
    heading = title or (f"{clip.name or 'clip'}: {clip.n_bars} bars, {clip.n_notes} notes{tempo}"
                        + (f", {clip.key}" if clip.key else ""))
    handles = [Patch(facecolor=colors[i % len(colors)], edgecolor="black", label=label)
               for i, label in enumerate(labels)]
    if handles:
        fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 6),
                   fontsize=9, title=heading, title_fontsize=11, frameon=False)
    else:
        fig.suptitle(heading)


def piano_roll(clip: Clip, path: Path, title: str | None = None) -> Path:
    """Write `clip`'s piano roll (see `piano_roll_figure`) to the PNG file `path`."""
    buf = io.BytesIO()
    piano_roll_figure(clip, title).savefig(buf, format="png", dpi=120)
    write_bytes(path, buf.getvalue())
    return path
