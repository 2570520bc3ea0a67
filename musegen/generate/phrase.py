"""A request's phrase parameters (`PhraseParams`): where its cadences fall and on what tonic,
how strongly it reuses the prompt's motifs, and for a start from nothing the key and tempo
each take draws from its style's real pieces (`musegen.corpus.priors`).

    >>> p, drawn = phrase_params(engine, base, kw, "irish-dance", bars=8, n=4, seed=7)

Pure but for reading the engine's styles and priors; `musegen.studio` calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from musegen.clip import Clip, estimate_key, parse_key
from musegen.generate.constraints import PhraseParams
from musegen.priors import StylePriors

FOLK_FAMILIES = frozenset({"essen", "celtic"})  # styles whose tunes are built of 4-bar phrases
FOLK_MOTIF = 0.7  # folk's default motif strength: 4-bar prompts' 3-grams reused ~5 % -> ~19 %, 8-bar ~12 % -> ~34 %
PHRASE_BARS = 4
KEY_BARS = 16  # the prompt's key is estimated from its last bars


def dominant_style(style: object) -> str | None:
    """The style that weighs most in a request's style (a name, a {name: weight} blend, or a
    morph's list of blends: its first); None without one."""
    if isinstance(style, list):
        style = style[0] if style else None
    if isinstance(style, Mapping):
        return max(style, key=lambda k: style[k]) if style else None  # first of the heaviest
    return style if isinstance(style, str) and style != "none" else None


def prompt_key(clip: Clip | None) -> tuple[int, str] | None:
    """(tonic pitch class, mode) of the clip's last `KEY_BARS` bars, estimated from its notes."""
    if clip is None or clip.n_bars == 0:
        return None
    tail = clip.slice_bars(max(0, clip.n_bars - KEY_BARS), clip.n_bars)
    key = estimate_key(tail.pitched_notes())
    return parse_key(key) if key else None


def motif_of(kw: Mapping[str, object], folk: bool) -> float:
    """The motif strength: as given, else `FOLK_MOTIF` in a folk style, else off."""
    m = kw.get("motif")
    return float(m) if m is not None else (FOLK_MOTIF if folk else 0.0)  # type: ignore[arg-type]


def family_of(records: Sequence[dict], style: str | None) -> str:
    return next((r.get("family", "") for r in records if r.get("name") == style), "")


def phrase_params(records: Sequence[dict], priors: StylePriors | None, base: Clip | None,
                  kw: Mapping[str, object], style: object, *, bars: int, n: int, seed: int,
                  bar_offset: int = 0, final: bool = True, same_start: bool = False,
                  free_start: bool = False) -> tuple[PhraseParams, list[dict]]:
    """(the sampler's phrase parameters, per row what was drawn for it: {"key", "tempo"}).
    `final`: the last generated bar ends the piece (a regenerated middle does not).
    From nothing (`base` None) every row draws a key (and with `free_start` a tempo) from the
    dominant style's real pieces unless given; `same_start`: one draw for every row (morph)."""
    dom = dominant_style(style)
    cadence = str(kw.get("cadence", "auto"))
    folk = family_of(records, dom) in FOLK_FAMILIES
    lock = kw.get("key")
    key = parse_key(str(lock)) if lock else prompt_key(base)
    drawn: list[dict] = [{} for _ in range(n)]
    row_keys = row_tempos = None
    if base is None and priors is not None and dom is not None:
        rngs = [np.random.default_rng([seed, 0 if same_start else i]) for i in range(n)]
        if not lock:
            keys = [priors.draw_key(dom, r) for r in rngs]
            if all(keys):
                row_keys = tuple(parse_key(str(k)) for k in keys)
                for d, k in zip(drawn, keys):
                    d["key"] = k
        if free_start and kw.get("tempo") is None:
            from musegen.tokenizer.codec import tempo_bin
            from musegen.tokenizer.vocab import TEMPOS_QPM

            qpms = [priors.draw_tempo(dom, r) for r in rngs]
            if all(q is not None for q in qpms):
                row_tempos = tuple(tempo_bin(float(q), TEMPOS_QPM) for q in qpms)  # type: ignore[arg-type]
                for d, q in zip(drawn, qpms):
                    d["tempo"] = q
    p = PhraseParams(bars=bars, cadence=cadence, phrase_bars=PHRASE_BARS if folk else 0,
                     bar_offset=bar_offset, final=final, key=key, row_keys=row_keys,
                     motif=motif_of(kw, folk),
                     row_tempos=row_tempos, key_prior=row_keys is not None)
    return p, drawn
