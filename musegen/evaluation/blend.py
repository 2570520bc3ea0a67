"""Blend control figures shared by `musegen eval` and `benchmarks/blend.py`: where a take sits
on the line between two styles' real pieces, and the rank correlation of weight vs position."""

from __future__ import annotations

import numpy as np

WEIGHTS = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (ties broken by order; NaN-free: 0.0 for a constant input)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def projection(vectors: np.ndarray, a: np.ndarray, b: np.ndarray, mu: np.ndarray,
               sd: np.ndarray) -> np.ndarray:
    """Position of descriptor vectors (rows) on the line from centroid `a` (0) to `b` (1), in
    the standardised units of `mu`/`sd` (the centroids are already standardised)."""
    axis = b - a
    z = (np.atleast_2d(vectors) - mu) / sd
    return (z - a) @ axis / (axis @ axis)
