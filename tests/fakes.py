"""The tests' one fake studio: `bridges.studio.StudioLike` (what the OSC server and the MIDI
bridge need of a studio), answering at once with takes of quarter notes, so every bridge path
runs without a model (tests/test_seams.py checks it keeps the real Studio's signatures)."""

from __future__ import annotations

import time

import numpy as np

from musegen import Clip, Note, ParameterError, Track
from musegen.take import StyleInfo, Take


def fake_clip(bars: int, seed: int = 0, pitch: int = 60, velocity: int = 80, duration: int = 400) -> Clip:
    """`bars` bars of quarter notes from `pitch` upwards (a `seed` shifts where they start)."""
    notes = tuple(Note(pitch + (seed * 7 + i) % 12, velocity, i * 480, duration) for i in range(bars * 4))
    return Clip(tracks=(Track(notes),), length_ticks=bars * 1920)


class FakeStudio:
    """The Studio's operations, instantly (or with `delay` per progress step): takes of
    quarter notes, pitch 70, 71, ... (row r starts 7r higher). `calls` records each
    operation's (clip, bars, style, keywords); `received` the clip or Take each got."""

    style_names = ["alpha", "beta", "gamma"]

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.styles = [StyleInfo(n, f"style {n}", i, 3, np.zeros(4)) for i, n in enumerate(self.style_names)]
        self.calls: list[tuple] = []
        self.received: list = []

    def _run(self, op: str, clip: object, bars: int, n: int, styles: list, kw: dict) -> list[Take]:
        self.received.append(clip)  # a Take when built on a take
        for s in styles:
            if s is not None and s not in self.style_names:
                raise ParameterError(f"unknown style {s!r}")
        on_progress, cancelled = kw.pop("on_progress", None), kw.pop("cancelled", None)
        for i in range(4):
            if on_progress:
                on_progress(i / 4)
            if cancelled and cancelled():
                raise InterruptedError("generation cancelled")
            time.sleep(self.delay)
        seed = kw.get("seed", 0)
        return [Take(clip=fake_clip(bars, r, pitch=70, velocity=90, duration=240), operation=op,
                     params={"bars": bars, **kw}, seed=seed + r, model_id="fake@0", bars=(0, bars))
                for r in range(n)]

    def continue_(self, clip, bars=8, variations=4, style=None, **kw):  # noqa: ANN001, ANN201
        self.calls.append((clip, bars, style, dict(kw)))
        return self._run("continue", clip, bars, variations, [style], kw)

    def regenerate(self, clip, bars=(1, 1), variations=4, style=None, **kw):  # noqa: ANN001, ANN201
        self.calls.append((clip, bars, style, dict(kw)))
        base = clip.clip if isinstance(clip, Take) else clip  # like Studio: a Take or a Clip
        if bars[1] > base.n_bars:
            raise ParameterError(f"bars {bars[0]}..{bars[1]} outside the clip's bars 1..{base.n_bars}")
        return self._run("regenerate", clip, base.n_bars, variations, [style], kw)

    def arrange(self, clip, add="satb", style=None, keep=None, bars=None, variations=4, **kw):  # noqa: ANN001, ANN201
        self.calls.append((clip, bars, style, dict(kw, add=add, keep=keep)))
        base = clip.clip if isinstance(clip, Take) else clip
        if not base.n_notes:
            raise ParameterError("arrange: the clip has no notes to arrange")
        return self._run("arrange", clip, base.n_bars, variations, [style], kw)

    def blend(self, clip, styles, bars=8, variations=4, slerp=False, **kw):  # noqa: ANN001, ANN201
        self.calls.append((clip, bars, styles, dict(kw)))
        return self._run("blend", clip, bars, variations, list(styles), kw)

    def morph(self, clip, from_style, to_style, steps=5, bars=4, **kw):  # noqa: ANN001, ANN201
        self.calls.append((clip, bars, (from_style, to_style), dict(kw)))
        return self._run("morph", clip, bars, steps, [from_style, to_style], kw)

    def lyrics_for(self, clip, theme=None, rhyme="ABAB", variations=4, **kw):  # noqa: ANN001, ANN201
        """One line of 'la's per take, as many as the clip has notes."""
        self.calls.append((clip, None, None, dict(kw, theme=theme, rhyme=rhyme)))
        base = clip.clip if isinstance(clip, Take) else clip
        takes = self._run("lyrics", clip, base.n_bars, variations, [None], kw)
        n = base.n_notes
        return [Take(clip=base, operation="lyrics", seed=t.seed, model_id=t.model_id, bars=(0, base.n_bars),
                     params={"phrases": [n], "lines": [" ".join(["la"] * n)], "figures": {"syllable_fit": 1.0}})
                for t in takes]

    def melody_for(self, text, style=None, variations=4, **kw):  # noqa: ANN001, ANN201
        """One bar per line of the text."""
        self.calls.append((text, None, style, dict(kw)))
        lines = [ln.strip() for ln in text.split("/") if ln.strip()]
        takes = self._run("melody_for", None, len(lines), variations, [style] if isinstance(style, str) else [None], kw)
        plan = {"lines": [{"syllables": ln.split(), "text": ln} for ln in lines]}
        return [Take(clip=t.clip, operation="melody_for", seed=t.seed, model_id=t.model_id, bars=t.bars,
                     params={**t.params, "plan": plan, "figures": {"notes": t.clip.n_notes}}) for t in takes]
