"""A model's style priors (`style_priors.json`, written by `python -m musegen.corpus.priors`):
each style's real keys, tempi and metres, as shares of its pieces, to draw a start from
nothing from. Torch-free and light: the generation path reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FILE_NAME = "style_priors.json"
KEY_MIN_SHARE = 0.05  # a start from nothing draws among the keys this share of real pieces use


class StylePriors:
    """A model's `style_priors.json`: per style its keys, metres and tempi, to draw from."""

    def __init__(self, data: dict) -> None:
        self.styles: dict[str, dict] = dict(data.get("styles", {}))

    @classmethod
    def load(cls, model_dir: Path) -> StylePriors | None:
        path = Path(model_dir) / FILE_NAME
        return cls(json.loads(path.read_text())) if path.exists() else None

    def common_keys(self, style: str, share: float = 0.05) -> set[str]:
        """The keys that at least `share` of the style's real pieces are in."""
        return {k for k, s in self.styles.get(style, {}).get("keys", {}).items() if s >= share}

    def _draw(self, style: str, table: str, rng: np.random.Generator, min_share: float = 0.0
              ) -> str | None:
        shares = self.styles.get(style, {}).get(table, {})
        common = {k: s for k, s in shares.items() if s >= min_share}
        shares = common or shares  # nothing that common: every value
        if not shares:
            return None
        names, p = list(shares), np.array(list(shares.values()), dtype=float)
        return str(names[int(rng.choice(len(names), p=p / p.sum()))])

    def draw_key(self, style: str, rng: np.random.Generator, min_share: float = KEY_MIN_SHARE
                 ) -> str | None:
        """A key ('G major') as often as the style's real pieces are in it, among the keys at
        least `min_share` of them use (a rare key is no idiomatic start)."""
        return self._draw(style, "keys", rng, min_share)

    def draw_tempo(self, style: str, rng: np.random.Generator) -> float | None:
        """A tempo (quarter notes per minute) as often as the style's marked pieces take it."""
        q = self._draw(style, "tempi_qpm", rng)
        return float(q) if q is not None else None

    def draw_metre(self, style: str, rng: np.random.Generator) -> tuple[int, int] | None:
        m = self._draw(style, "metres", rng)
        if m is None:
            return None
        a, b = m.split("/")
        return int(a), int(b)


__all__ = ["FILE_NAME", "StylePriors"]
