"""Request parameters: the limits every operation shares."""

from __future__ import annotations

MAX_BARS = 256  # bars one request may generate
MAX_VARIATIONS = 64  # takes one request may make

__all__ = ["MAX_BARS", "MAX_VARIATIONS"]
