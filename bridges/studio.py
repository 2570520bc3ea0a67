"""What a bridge needs of a studio, as `typing.Protocol`s: `musegen.studio.Studio` is one, and
so is the tests' fake (tests/fakes.py), so every OSC and MIDI path runs without a model.

The MIDI call-and-response bridge only continues phrases (`Continues`); the OSC server runs
every operation and lists the styles (`StudioLike`). Keywords beyond the named ones are the
request parameters of `musegen/params.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from musegen.clip import Clip
    from musegen.take import StyleInfo, Take


@runtime_checkable
class Continues(Protocol):
    """Continues a clip (or a take, inheriting its style and parameters)."""

    def continue_(self, clip: Clip | Take | None, bars: int = 8, variations: int = 4,
                  style: str | dict[str, float] | None = None, **kw: Any) -> list[Take]: ...


@runtime_checkable
class StudioLike(Continues, Protocol):
    """Every operation the OSC server runs, and the styles it lists."""

    @property
    def styles(self) -> Sequence[StyleInfo]: ...

    def regenerate(self, clip: Clip | Take, bars: tuple[int, int] = (1, 1), variations: int = 4,
                   style: str | dict[str, float] | None = None, **kw: Any) -> list[Take]: ...

    def blend(self, clip: Clip | Take | None, styles: dict[str, float], bars: int = 8,
              variations: int = 4, slerp: bool = False, **kw: Any) -> list[Take]: ...

    def morph(self, clip: Clip | Take | None, from_style: str, to_style: str, steps: int = 5,
              bars: int = 4, **kw: Any) -> list[Take]: ...

    def arrange(self, clip: Clip | Take, add: str | int = "satb",
                style: str | dict[str, float] | None = None, keep: list[int] | None = None,
                bars: tuple[int, int] | None = None, variations: int = 4, **kw: Any) -> list[Take]: ...

    def lyrics_for(self, clip: Clip | Take, theme: str | None = None, rhyme: str = "ABAB",
                   variations: int = 4, **kw: Any) -> list[Take]: ...

    def melody_for(self, text: str, style: str | dict[str, float] | None = None,
                   variations: int = 4, **kw: Any) -> list[Take]: ...


__all__ = ["Continues", "StudioLike"]
