"""Which words a lyric line may contain: real words only.

A word is *known* when it is in the model's verse word list (`words.json`, seen at least 8 times)
AND is either in the CMU pronouncing dictionary (`pronouncing`) or an elided or archaic form of
verse whose base is (`turn'd` -> turned, `heav'n` -> heaven, `o'er`, `'tis`, `thou`, `didst`).
That drops the corpus's OCR junk and Middle English / Latin spellings (`sche`, `noght`, `uiribus`)
and every cut-off word (`rivule`, `woodb`). One- and two-letter words are a short fixed list (no
stray letters: `a`, `I` and `O` are the only one-letter words).

`min_syllables[prefix]` is the fewest syllables of a known word that begins with `prefix`: the
decoder lets a word grow only while some known completion still fits the line's budget, so it
never spells itself into a word it cannot finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

SHORT_WORDS = frozenset("""
a i o ah am an as at ay be by do eh go ha he hi ho if in is it lo me my no of oh on or ox so to
up us we ye yo
""".split())
# archaic and elided verse forms the CMU dictionary lacks but a songwriter would keep
ARCHAIC = frozenset("""
o'er e'er ne'er e'en ere 'tis 'twas 'twere 'twill 'neath 'mid 'midst 'gainst 'twixt 'tween thro'
tho' whate'er where'er whene'er howe'er whoe'er heav'n ev'n ev'ry pow'r flow'r tow'r show'r
didst canst wouldst shouldst couldst hadst wast wert dost doth hath saith shalt art thee thou
thy thine ye nought naught methinks haply smote beauteous splendour wilt mayst mightst knowest
seest hast lov'st know'st th' i' wi' an' gi' o' smite smote clime drear erst sooth rend raiment
adown wherewith whereof whereon aright yon yonder twain anon alack alas forsooth hither thither
whither thence hence wherefore betwixt amid amidst ne'er oft list'ning
""".split())
_SUFFIXES = ("ness", "less", "like", "ful", "ment", "ly", "est", "er", "ed", "ing", "es", "s", "y")
_ELISIONS = (("'d", "ed"), ("'n", "en"), ("'st", "est"), ("'s", ""), ("'ring", "ering"),
             ("'ry", "ery"), ("'ning", "ening"), ("in'", "ing"))


@lru_cache(maxsize=1)
def cmu_words() -> frozenset[str]:
    import pronouncing

    pronouncing.init_cmu()
    return frozenset(pronouncing.lookup)


def common_words(freq: dict[str, int], at_least: int = 20) -> frozenset[str]:
    """The dictionary words seen at least `at_least` times in the verse word list `freq`."""
    return frozenset(k for k, c in freq.items() if c >= at_least) & cmu_words()


def is_real_word(word: str, common: frozenset[str] = frozenset()) -> bool:
    """A word a songwriter would keep: the CMU dictionary's, a short word from `SHORT_WORDS`, an
    archaic or elided form from `ARCHAIC`, an elision whose base the dictionary has, or (with the
    `common` words of `common_words`) a common word plus a suffix, or two common words."""
    w = word.lower().strip()
    if not w or not w.replace("'", "").isalpha() or not w[0].isalpha() and w not in ARCHAIC:
        return False
    cmu = cmu_words()
    if len(w.replace("'", "")) <= 2:
        return w in SHORT_WORDS or w in ARCHAIC or ("'" in w and w in cmu)
    if w in ARCHAIC or w in cmu:
        return True
    if "'" not in w and (_derived(w, common) or _compound(w, common)):
        return True
    for tail, full in _ELISIONS:
        if w.endswith(tail) and len(w) > len(tail) + 1:
            base = w[: -len(tail)] + full
            if base in cmu or (tail == "'d" and w[: -2] + "d" in cmu) or (tail == "'d" and w[:-2] + "ed" in cmu):
                return True
    return False


def _derived(w: str, cmu: frozenset[str]) -> bool:
    """A dictionary word plus a common suffix (gladness, dusky, deathless, loveliness), or a
    British spelling (honour, splendour)."""
    if w.endswith(("our", "ours")) and w.replace("our", "or") in cmu:
        return True
    for suf in _SUFFIXES:
        stem = w[: -len(suf)]
        if suf == "es" and not stem.endswith(("s", "x", "z", "ch", "sh")):
            continue
        if w.endswith(suf) and len(stem) >= 3 and (
                stem in cmu or stem + "e" in cmu or (stem.endswith("i") and stem[:-1] + "y" in cmu)
                or (len(stem) > 3 and stem[-1] == stem[-2] and stem[:-1] in cmu)):
            return True
    return False


def _compound(w: str, cmu: frozenset[str]) -> bool:
    """Two dictionary words of at least 4 letters each (straightway, moonbeam)."""
    return any(w[:i] in cmu and w[i:] in cmu for i in range(4, len(w) - 3))


@dataclass(frozen=True)
class Lexicon:
    """The known words of one model's word list, their prefixes and the fewest syllables a known
    completion of each prefix has."""

    known: frozenset[str]
    min_syllables: dict[str, int]

    @classmethod
    def from_freq(cls, freq: dict[str, int], count: object) -> Lexicon:
        """From a verse word list ({word: count}) and a syllable counter `count(word) -> int`."""
        common = common_words(freq)
        known = frozenset(w for w, c in freq.items() if c >= 8 and is_real_word(w, common))
        mins: dict[str, int] = {}
        for w in known:
            n = count(w)  # type: ignore[operator]
            for i in range(1, len(w) + 1):
                p = w[:i]
                if mins.get(p, 99) > n:
                    mins[p] = n
        return cls(known, mins)

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.known

    def knows(self, word: str) -> bool:
        """A known word, or one with an apostrophe ending on a known base (star's, call'd)."""
        w = word.lower()
        if w in self.known:
            return True
        base, _, tail = w.rpartition("'")
        return len(base) > 1 and base in self.known and tail in ("s", "d", "ll", "st", "t", "re", "ve")

    def is_prefix(self, text: str) -> bool:
        return text.lower() in self.min_syllables
