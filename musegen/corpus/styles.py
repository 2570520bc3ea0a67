"""The style registry: which files of music21's bundled corpus make up each training style.

A style is a short name the musician types (``--style irish-dance``), a one-sentence
description, and the source globs (relative to music21's ``corpus/`` folder) whose pieces
carry that style. ``family`` groups styles whose tunes travel between collections
(an Irish reel turns up in a Scottish fiddle book), so that same-titled variants are kept
in one split across those styles.

Run ``python -m musegen.corpus.styles`` to print the registry with file and tune counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Style:
    """One training style and where its pieces come from.

    ``kind`` is ``"abc"`` (one file holds many tunes, ``X:`` numbered; converted with
    abc2midi) or ``"music21"`` (one file is one piece, parsed by music21).
    ``globs``/``exclude`` are relative to the corpus root. ``default=False`` styles are
    built only when asked for by name (they are slow to parse).
    """

    name: str
    description: str
    kind: str
    globs: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    family: str = ""
    default: bool = True

    @property
    def family_name(self) -> str:
        """The family used for title grouping (the style's own name when not set)."""
        return self.family or self.name


_ESSEN = "essenFolksong/"

STYLES: tuple[Style, ...] = (
    Style(
        "german-folk",
        "German folk songs and ballads from the Essen collection (Erk, Boehme, Zuccalmaglio, "
        "children's songs).",
        "abc",
        tuple(
            _ESSEN + g
            for g in (
                "altdeu*.abc", "ballad*.abc", "boehme*.abc", "dva*.abc", "erk*.abc",
                "fink*.abc", "kinder*.abc", "zuccal*.abc",
            )
        ),
        family="essen",
    ),
    Style(
        "chinese-folk",
        "Han Chinese folk songs from the Essen collection, mostly pentatonic melodies.",
        "abc",
        (_ESSEN + "han*.abc",),
        family="essen",
    ),
    Style(
        "european-folk",
        "Folk songs from Lorraine, Luxembourg, Switzerland, Ireland and Haydn's British "
        "song settings (Essen collection).",
        "abc",
        tuple(_ESSEN + g for g in ("lot*.abc", "lux*.abc", "irl*.abc", "variant*.abc",
                                    "folkHaydn*.abc")),
        family="essen",
    ),
    Style(
        "irish-dance",
        "Irish dance tunes (jigs, reels, hornpipes) and airs from O'Neill's 1850 collection.",
        "abc",
        ("oneills1850/*.abc",),
        family="celtic",
    ),
    Style(
        "scottish-fiddle",
        "Fiddle reels, strathspeys and hornpipes from Ryan's Mammoth Collection (1883).",
        "abc",
        ("ryansMammoth/*.abc",),
        family="celtic",
    ),
    Style(
        "scottish-air",
        "Scottish airs, marches and dances from Aird's Selection of Airs (1780s).",
        "abc",
        ("airdsAirs/*.abc",),
        family="celtic",
    ),
    Style(
        "american-fife",
        "American fife-and-drum tunes and marches from the colonial and revolutionary era.",
        "abc",
        ("miscFolk/americanfifeopus.abc",),
        family="celtic",
    ),
    Style(
        "english-folk",
        "English dance tunes: Northumbrian minstrelsy and reels from the Nottingham "
        "Music Database.",
        "abc",
        ("miscFolk/northumbrianminstrelsyopus.abc", "nottingham-dataset/*.abc"),
        family="celtic",
    ),
    Style(
        "bach-chorale",
        "Four-part chorale harmonisations by J. S. Bach.",
        "music21",
        ("bach/bwv*.mxl", "bach/bwv*.xml"),
        exclude=("bach/bwv846.mxl",),  # a keyboard prelude, not a chorale
    ),
    Style(
        "renaissance-mass",
        "Mass movements by Palestrina: four- to six-voice Renaissance polyphony.",
        "music21",
        ("palestrina/*.krn",),
    ),
    Style(
        "madrigal",
        "Italian madrigals by Monteverdi (Books 3 to 5), five-voice secular song.",
        "music21",
        ("monteverdi/madrigal.*.mxl",),
        exclude=("monteverdi/madrigal.3.1_old.mxl",),  # an older encoding of 3.1
    ),
    Style(
        "trecento",
        "Fourteenth-century Italian polyphony: ballate, madrigals and mass movements.",
        "music21",
        ("trecento/*.xml", "trecento/*.mxl"),
    ),
    Style(
        "string-quartet",
        "Classical string quartet movements by Haydn, Mozart and Beethoven (slow to parse; "
        "built only when asked for).",
        "music21",
        ("haydn/**/*.mxl", "mozart/**/*.mxl", "beethoven/**/*.mxl"),
        default=False,
    ),
)

_BY_NAME = {s.name: s for s in STYLES}
assert len(_BY_NAME) == len(STYLES), "style names must be unique"


def get_style(name: str) -> Style:
    """The registered style called ``name``; raises ``KeyError`` naming the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(_BY_NAME)
        raise KeyError(f"unknown style {name!r}; known styles: {known}") from None


def default_styles() -> list[Style]:
    """The styles a plain ``build_corpus()`` builds, in registry order."""
    return [s for s in STYLES if s.default]


def corpus_root() -> Path:
    """The folder of music21's bundled corpus."""
    import music21

    return Path(music21.__file__).parent / "corpus"


def style_files(style: Style, root: Path | None = None) -> list[Path]:
    """The source files of ``style``, sorted, without ``test*`` files and exclusions."""
    root = corpus_root() if root is None else root
    excluded = {root / e for e in style.exclude}
    found: set[Path] = set()
    for pattern in style.globs:
        for path in root.glob(pattern):
            if path.is_file() and not path.name.startswith("test") and path not in excluded:
                found.add(path)
    return sorted(found)


if __name__ == "__main__":  # pragma: no cover - a listing for people
    for _s in STYLES:
        _files = style_files(_s)
        print(f"{_s.name:18} {_s.kind:8} {len(_files):5} files  {_s.description}")
