"""Which pieces are versions of one another, and which split each group lands in.

Folk collections are full of variants: the same tune under two titles, or two settings under
one. If one lands in ``train`` and the other in ``test``, the test loss flatters the model.
So pieces are joined into *groups* by union-find over two kinds of evidence:

* the same normalised title within a style family (:func:`normalize_title`), unless that
  title is too generic to mean anything ("Kyrie", "Reel", or shared by many pieces);
* the same melodic fingerprint (:func:`melodic_fingerprint`): the first intervals and
  onset gaps of the top line, which survive transposition and a change of tempo.

A group's id is its smallest piece id and its split is a stable hash of that id
(:func:`split_of`), so the same pieces always give the same split on any machine.

Everything here is pure: no files, no music libraries.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

SPLITS = ("train", "valid", "test")
SPLIT_PER_MILLE = {"train": 900, "valid": 50, "test": 50}

FINGERPRINT_INTERVALS = 16
FINGERPRINT_GRID = 12  # onsets are quantised to 1/12 of a quarter note
MAX_TITLE_GROUP = 40  # a title shared by more pieces than this in a family is generic

GENERIC_TITLES = frozenset({
    "", "untitled", "no title", "ohne titel", "title", "tune", "song", "air", "reel", "jig",
    "hornpipe", "march", "waltz", "polka", "strathspey", "minuet", "lied", "volkslied",
    "kyrie", "gloria", "credo", "sanctus", "benedictus", "agnus", "agnus dei", "amen",
})
_TUNE_TYPES = (
    "reel", "jig", "double jig", "single jig", "slip jig", "hop jig", "hornpipe",
    "strathspey", "march", "quick step", "quickstep", "polka", "waltz", "set dance",
    "clog", "fling", "air", "slow air", "schottische", "country dance", "highland fling",
)
_TYPE_SUFFIX = re.compile(
    r"(?:\s*(?:--|-|,|\.)?\s*\b(?:" + "|".join(sorted(map(re.escape, _TUNE_TYPES), key=len,
                                                   reverse=True)) + r"))+\s*$"
)
_PAGE_REF = re.compile(r",?\s*\b(?:s|p|pp|nr|no)\.\s*\d+.*$")
_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}")
_PMFC = re.compile(r"^pmfc[\s_]*\d+[a-z]?(?:[\s_]+\d+[a-z]?)?\s*[-_]\s*")
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an|der|die|das|le|la|les|il|lo)\s+")
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalize_title(title: str | None) -> str:
    """A title reduced to what variants share: ascii, lower case, no page numbers, no tune
    type ("-- Reel"), no leading article, no punctuation. ``""`` for no title.

    >>> normalize_title("The Acacia -- Reel")
    'acacia'
    >>> normalize_title("Wir haben verloren ein Blümelein, S. 18")
    'wir haben verloren ein bluemelein'
    """
    if not title:
        return ""
    text = _CAMEL.sub(" ", title).lower()
    # German umlauts as the all-caps Essen titles spell them (MUELLER = Müller)
    text = text.translate(_UMLAUTS)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _PMFC.sub("", text)
    text = _BRACKETS.sub(" ", text)
    text = _PAGE_REF.sub("", text)
    text = text.replace("_", " ")
    text = _TYPE_SUFFIX.sub("", text.rstrip(" .,;:!?"))
    text = _NON_WORD.sub(" ", text).strip()
    text = _LEADING_ARTICLE.sub("", text)
    return text.strip()


def melodic_fingerprint(notes: Iterable[tuple[int, int]], ticks_per_quarter: int,
                        n_intervals: int = FINGERPRINT_INTERVALS) -> str | None:
    """A short hash of how a melody starts, or None when it has too few notes.

    ``notes`` are ``(start_tick, pitch)`` of the top line (any order; at one onset the
    highest pitch wins). The hash covers the first ``n_intervals`` pitch intervals and the
    gaps between onsets quantised to 1/12 of a quarter, so a transposed or re-barred copy of
    a tune gets the same fingerprint.
    """
    highest: dict[int, int] = {}
    for start, pitch in notes:
        step = round(start * FINGERPRINT_GRID / ticks_per_quarter)
        if pitch > highest.get(step, -1):
            highest[step] = pitch
    steps = sorted(highest)[: n_intervals + 1]
    if len(steps) < n_intervals + 1:
        return None
    intervals = [highest[b] - highest[a] for a, b in zip(steps, steps[1:])]
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    key = ",".join(map(str, intervals)) + "|" + ",".join(map(str, gaps))
    return hashlib.sha1(key.encode()).hexdigest()[:16]


class UnionFind:
    """Disjoint sets over string keys; the representative of a set is its smallest key."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def add(self, key: str) -> None:
        """Make ``key`` a set of its own if it is new."""
        self._parent.setdefault(key, key)

    def find(self, key: str) -> str:
        """The representative of ``key``'s set."""
        self.add(key)
        root = key
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[key] != root:  # path compression
            self._parent[key], key = root, self._parent[key]
        return root

    def union(self, a: str, b: str) -> None:
        """Join the sets of ``a`` and ``b``."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self._parent[hi] = lo


def assign_groups(pieces: Sequence[dict]) -> dict[str, str]:
    """Piece id → group id for pieces given as dicts with ``id``, ``family``, ``title``,
    ``fingerprint`` (title and fingerprint may be None).

    The group id is the smallest piece id in the group, so it does not depend on the order
    of ``pieces``.
    """
    uf = UnionFind()
    by_key: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for piece in pieces:
        uf.add(piece["id"])
        title = normalize_title(piece.get("title"))
        if title and title not in GENERIC_TITLES:
            by_key[("title", piece["family"], title)].append(piece["id"])
        if piece.get("fingerprint"):
            by_key[("melody", "", piece["fingerprint"])].append(piece["id"])
    for (kind, _family, _value), ids in by_key.items():
        if kind == "title" and len(ids) > MAX_TITLE_GROUP:
            continue
        first = ids[0]
        for other in ids[1:]:
            uf.union(first, other)
    return {piece["id"]: uf.find(piece["id"]) for piece in pieces}


def split_of(group_id: str) -> str:
    """The split of a group: ~90 % train, 5 % valid, 5 % test, by a stable hash."""
    bucket = int(hashlib.sha1(group_id.encode("utf-8")).hexdigest()[:8], 16) % 1000
    edge = 0
    for name in SPLITS:
        edge += SPLIT_PER_MILLE[name]
        if bucket < edge:
            return name
    raise AssertionError("split shares must add up to 1000")  # pragma: no cover


def group_sizes(groups: dict[str, str]) -> Counter:
    """How many pieces each group holds."""
    return Counter(groups.values())
