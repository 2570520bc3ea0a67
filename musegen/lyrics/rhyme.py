"""Rhyme for lyric writing: rhyme schemes (ABAB...) as line groups, and the model's words
grouped by CMU rhyme class (`pronouncing`: the stressed vowel to the end of the word).

A line that opens a rhyme group takes an end word from the words that have rhymes; a line that
must rhyme takes a word of the same rhyme class (see `musegen.lyrics.line_decoder`).
"""

from __future__ import annotations

from collections.abc import Sequence

from musegen.errors import ParameterError
from musegen.lyrics import data as D
from musegen.lyrics.lm import LyricLM, n_syllables


def rhyme_scheme(rhyme: str | None, n: int) -> list[tuple[int, str] | None]:
    """Group key of each line (stanza number, letter), or None for a free line."""
    if not rhyme:
        return [None] * n
    r = rhyme.strip().upper()
    if not r.isalpha() or len(r) > 16:
        raise ParameterError(f"rhyme must be letters like ABAB or AABB (at most 16), got {rhyme!r}")
    return [(i // len(r), r[i % len(r)]) for i in range(n)]


class RhymeIndex:
    """Words the model knows, grouped by CMU rhyme class (stressed vowel to the end)."""

    def __init__(self, freq: dict[str, int], top: int = 20_000) -> None:
        import pronouncing

        self.freq = {w: c for w, c in freq.items() if c >= 8}
        self.part: dict[str, str] = {}
        self.classes: dict[str, list[tuple[str, int]]] = {}
        self._opening: list[tuple[str, int]] | None = None
        for w, c in list(freq.items())[:top]:
            if not w.isalpha() or len(w) < 2:
                continue
            ph = pronouncing.phones_for_word(w)
            if not ph:
                continue
            rp = pronouncing.rhyming_part(ph[0])
            self.part[w] = rp
            self.classes.setdefault(rp, []).append((w, int(c)))

    def rhyme_part(self, word: str) -> str | None:
        w = word.lower()
        if w in self.part:
            return self.part[w]
        import pronouncing

        ph = pronouncing.phones_for_word(w)
        return pronouncing.rhyming_part(ph[0]) if ph else None

    def rhymes(self, a: str, b: str) -> bool:
        pa, pb = self.rhyme_part(a), self.rhyme_part(b)
        return pa is not None and pa == pb and a.lower() != b.lower()

    def candidates(self, max_syl: int, *, rhyme_with: str | None = None, avoid: Sequence[str] = (),
                   limit: int = 400) -> list[tuple[str, int]]:
        avoid_l = {a.lower() for a in avoid}
        if rhyme_with is not None:
            rp = self.rhyme_part(rhyme_with)
            pool = self.classes.get(rp, []) if rp else []
        else:  # an opening end word: common, not a function word, with at least 3 rhymes
            if self._opening is None:
                self._opening = sorted(((w, c) for ws in self.classes.values() if len(ws) >= 4 for w, c in ws
                                        if w not in D.STOPWORDS), key=lambda x: -x[1])
            pool = self._opening
        out = [(w, c) for w, c in pool if w not in avoid_l and 1 <= n_syllables(w) <= max_syl]
        return out[:limit]




def rhyme_index(lm: LyricLM) -> RhymeIndex:
    """The rhyme index of `lm`'s word list, built once per model (a foreign model without a
    word list gets the shipped model's)."""
    idx = lm.derived.get("rhyme_index")
    if idx is None:
        freq = lm.word_freq
        if not freq:  # a foreign model: use the shipped model's word list when it is there
            import json

            from musegen.lyrics.lm import SHIPPED

            p = SHIPPED / "words.json"
            freq = json.loads(p.read_text()) if p.exists() else {}
        idx = RhymeIndex(freq)
        lm.derived["rhyme_index"] = idx
    return idx
