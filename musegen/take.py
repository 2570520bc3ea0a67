"""`Take`: one generated variation and its record; `StyleInfo`: one of a model's styles.

Torch-free: reading, writing and judging takes (the session, the bridges, the lyrics) needs no
model. Generating them is `musegen.generate.run`; `musegen.studio.Studio` is the front.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from musegen.atomic import write_bytes
from musegen.clip import Clip
from musegen.errors import ParameterError
from musegen.novelty import Novelty
from musegen.params import INHERITED  # what a take built on a take inherits (style too)

MUSIC_OPS = ("continue", "regenerate", "blend", "morph", "melody_for")  # takes of the music model
DRUMS_UNTRAINED = "drums_untrained"  # warning: the model saw no drums (toms, ride, cowbell...)


@dataclass(frozen=True)
class StyleInfo:
    name: str
    description: str
    index: int
    pieces: int
    vector: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class Take:
    """One generated variation: the clip and everything needed to reproduce and judge it."""

    clip: Clip
    operation: str
    params: dict
    seed: int
    model_id: str
    novelty: Novelty | None = None  # when the model ships a novelty index
    parent: str | None = None
    bars: tuple[int, int] = (0, 0)  # the generated bar range inside `clip` (0-based, end excl.)
    seconds: float = 0.0  # wall time of the whole request (all its variations)
    first_bar_s: float = 0.0  # until every variation had finished its first bar
    tokens: tuple[int, ...] = field(default=(), repr=False, compare=False)

    @property
    def id(self) -> str:
        h = hashlib.sha1(json.dumps([self.operation, self.params, self.seed, self.model_id,
                                     self.parent], sort_keys=True, default=str).encode())
        return h.hexdigest()[:12]

    def __repr__(self) -> str:
        """One line for the REPL: `<Take continue 8 bars (1-8) 31 notes style=irish-dance
        seed=7 novelty=4 notes of 'piece' id=...>` (the full record is in `sidecar()`)."""
        styles = self.params.get("styles")
        if isinstance(styles, dict):
            style = "+".join(k if len(styles) == 1 else f"{k}={float(w):g}" for k, w in styles.items())
        else:
            style = "none" if styles is None else str(styles)
        if self.novelty is None:
            nov = "n/a"
        else:
            run, piece = self.novelty.longest_run, self.novelty.piece
            nov = f"{run} notes of {piece!r}" if piece else f"{run}"
        a, b = self.bars
        span = f" ({a + 1}-{b})" if b > a else ""
        return (f"<Take {self.operation} {self.clip.n_bars} bars{span} {self.clip.n_notes} notes "
                f"style={style} seed={self.seed} novelty={nov} id={self.id}>")

    def sidecar(self) -> dict:
        nov = None
        if self.novelty is not None:
            nov = {k: v for k, v in asdict(self.novelty).items()}
        return {"take_id": self.id, "operation": self.operation, "params": self.params,
                "seed": self.seed, "model_id": self.model_id, "parent": self.parent,
                "bars": list(self.bars), "n_bars": self.clip.n_bars, "n_notes": self.clip.n_notes,
                "novelty": nov, "seconds": round(self.seconds, 4)}

    def save(self, path: str | Path) -> Path:
        """Write the MIDI file and `<path>.json` beside it, both atomically."""
        p = Path(path)
        self.clip.save(p)
        write_bytes(p.with_suffix(".json"), json.dumps(self.sidecar(), indent=1, default=str).encode())
        return p

    @classmethod
    def load(cls, path: str | Path) -> Take:
        """A take as `save` wrote it: the MIDI file and its `.json` sidecar (so building on it
        inherits its style and parameters). `ParameterError` if the sidecar is missing or
        unreadable; `MidiFileError` for the MIDI file."""
        p = Path(path)
        side = p.with_suffix(".json")
        try:
            rec = json.loads(side.read_text())
            params, op = dict(rec["params"]), str(rec["operation"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ParameterError(f"take sidecar {side}: unreadable ({type(e).__name__}: {e})") from None
        clip = Clip.load(p)
        bars = rec.get("bars") or (0, clip.n_bars)
        return cls(clip=clip, operation=op, params=params, seed=int(rec.get("seed") or 0),
                   model_id=str(rec.get("model_id") or ""), parent=rec.get("parent"),
                   bars=(int(bars[0]), int(bars[1])))

    def inherit(self, style: object, kw: dict) -> tuple[object, dict]:
        """The style and parameters a take built on this one uses: this take's, unless given
        (`style="none"` asks for no style). Returns (style, kw) with `inherited` noted in kw."""
        if self.operation not in MUSIC_OPS:  # a lyrics take's temperature is the lyric model's
            return style, kw
        kw = dict(kw)
        names = [k for k in INHERITED if kw.get(k) is None and self.params.get(k) is not None]
        for k in names:
            kw[k] = tuple(self.params[k]) if k == "pitch_range" else self.params[k]
        styles = self.params.get("styles")
        if style is None and isinstance(styles, dict) and styles:
            style = next(iter(styles)) if list(styles.values()) == [1.0] else dict(styles)
            names.append("style")
        if names:
            kw["_inherited"] = names
        return style, kw


__all__ = ["DRUMS_UNTRAINED", "INHERITED", "MUSIC_OPS", "StyleInfo", "Take"]
