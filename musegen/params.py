"""Every request parameter once: its type, range, default, unit, help, and the operations that
accept it (mido's `messages/specs.py` + `checks.py` are the model: one table, one checker).

    >>> check("continue", {"bars": 8, "temperature": 0.9})     # Studio's keywords
    {'bars': 8, 'temperature': 0.9}
    >>> check("continue", {"temperature": 9.0})
    Traceback (most recent call last):
    musegen.errors.ParameterError: temperature must be in 0.05..5.0, got 9.0

The table feeds every surface: `musegen.studio.Studio` (and `melody_for`, `lyrics_for`) check
their keywords with `check`; the OSC protocol (`bridges/osc/protocol.py`) parses a request's
`key value` pairs with `Param.parse` and documents them (docs/osc.md's tables are generated from
here and a test compares them); the CLI (`bridges/commands/_params.py`) makes a flag and its
help of every parameter an operation accepts. Adding a parameter is one `Param` below plus the
code that uses it.

Operations: `continue`, `regenerate`, `blend`, `morph` (the music model's), `melody` (a melody
for words, `Studio.melody_for`), `lyrics` (words for a melody, `Studio.lyrics_for`) and
`arrange` (voices added to the musician's, `Studio.arrange`). Torch-free
and I/O-free.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field

from musegen.clip import parse_key
from musegen.errors import ParameterError

MAX_BARS = 256  # bars one request may generate
MAX_VARIATIONS = 64  # takes one request may make
MAX_TEXT_CHARS = 1024  # a string sent over OSC
MAX_STYLE_WEIGHT = 10.0  # |weight| of one style in a blend (beyond 1: extrapolation)
MAX_TRACK = 63
# a take copying 12 or more consecutive notes of one training piece is drawn again (issue 16:
# <= 1 % of takes may; real held-out 8-bar excerpts do so 19 % of the time, mostly folk
# tunes of one family filed under two numbers: `musegen.novelty`)
MAX_COPY = 11
# regenerated bars join their neighbours within a fifth in each track (real seams: 0 % leap
# more than 7 semitones; the model's own: 34 % of folk seams, 25 % of chorale ones)
SEAM_LEAP = 7
MELODY_METRES = ((4, 4), (3, 4), (6, 8), (2, 4))  # musegen.lyrics.melody.METRES has their beats

MUSIC = frozenset({"continue", "regenerate", "blend", "morph"})
GENERATE = MUSIC | {"melody", "arrange"}  # everything the music model generates
OPERATIONS = {"continue": "continue_", "regenerate": "regenerate", "blend": "blend",
              "morph": "morph", "melody": "melody_for", "lyrics": "lyrics_for",
              "arrange": "arrange"}  # -> Studio method


def show(v: object) -> str:
    """A value in an error message: its type and (the start of) its repr."""
    if isinstance(v, (bytes, bytearray)):
        return f"a {len(v)}-byte blob"
    return f"{type(v).__name__} {repr(v)[:60]}"


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) or x != int(x) or abs(x) >= 1e6 else f"{x:g}"


# ------------------------------------------------------------------- kinds of value
# Each kind checks a Python value (`check`: what Studio is called with) and parses a value as a
# client sends it (`parse`: OSC's strings and numbers, the CLI's strings). `name` is what the
# error message calls the parameter (the OSC key, the CLI flag, the keyword).
class Kind:
    type_doc = "string"  # docs/osc.md's type column
    metavar = "TEXT"  # the CLI's placeholder
    cli_number: type | None = None  # int/float: argparse converts; None: `parse` gets the string

    def check(self, name: str, v: object, top: int | None = None) -> object:
        raise NotImplementedError

    def parse(self, name: str, v: object, top: int | None = None) -> object:
        return self.check(name, v, top)

    def from_text(self, name: str, text: str) -> object:
        """A command-line string as the Python value `check` takes (only its syntax is looked
        at here: `check` says what is out of range)."""
        return text

    def range_doc(self, cap: str = "") -> str:
        return ""

    def value_doc(self, v: object) -> str:
        """A value as docs/osc.md writes it."""
        if isinstance(v, float):
            return f"{v:g}"
        return f"`{v}`" if isinstance(v, str) else str(v)


@dataclass(frozen=True)
class Int(Kind):
    lo: int
    hi: int
    type_doc = "int"
    metavar = "N"
    cli_number = int

    def check(self, name: str, v: object, top: int | None = None) -> int:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise ParameterError(f"{name} must be an integer, got {show(v)}")
        return self._in_range(name, int(v), top)

    def parse(self, name: str, v: object, top: int | None = None) -> int:
        if isinstance(v, float) and math.isfinite(v) and v == int(v):
            v = int(v)  # Max and Pd send every number as a float
        return self.check(name, v, top)

    def _in_range(self, name: str, v: int, top: int | None) -> int:
        hi = self.hi if top is None else min(self.hi, top)
        if not self.lo <= v <= hi:
            raise ParameterError(f"{name} must be in {self.lo}..{hi}, got {v}")
        return v

    def range_doc(self, cap: str = "") -> str:
        return f"{_num(self.lo)}…{cap or _num(self.hi)}"


@dataclass(frozen=True)
class Float(Kind):
    lo: float
    hi: float
    type_doc = "float"
    metavar = "X"
    cli_number = float

    def check(self, name: str, v: object, top: int | None = None) -> float:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ParameterError(f"{name} must be a number, got {show(v)}")
        if not math.isfinite(v):
            raise ParameterError(f"{name} must be a finite number, got {v}")
        if not self.lo <= v <= self.hi:
            raise ParameterError(f"{name} must be in {self.lo}..{self.hi}, got {v}")
        return float(v)

    def range_doc(self, cap: str = "") -> str:
        return f"{_num(self.lo)}…{_num(self.hi)}"


@dataclass(frozen=True)
class Text(Kind):
    """A string; over OSC 1..1024 characters."""

    def check(self, name: str, v: object, top: int | None = None) -> str:
        if not isinstance(v, str):
            raise ParameterError(f"{name} must be a string, got {show(v)}")
        return v

    def parse(self, name: str, v: object, top: int | None = None) -> str:
        text = self.check(name, v)
        if not text or len(text) > MAX_TEXT_CHARS:
            raise ParameterError(f"{name} must be 1..{MAX_TEXT_CHARS} characters long")
        return text


@dataclass(frozen=True)
class Choice(Text):
    choices: tuple[str, ...]
    metavar = "NAME"

    def check(self, name: str, v: object, top: int | None = None) -> str:
        if v not in self.choices:
            raise ParameterError(f"{name} must be {' or '.join(repr(c) for c in self.choices)}, got {v!r}")
        return str(v)

    def parse(self, name: str, v: object, top: int | None = None) -> str:
        return self.check(name, super().parse(name, v))

    def range_doc(self, cap: str = "") -> str:
        return " or ".join(f"`{c}`" for c in self.choices)


@dataclass(frozen=True)
class Key(Text):
    """A key to lock pitches to: 'D major', 'Em', 'F# minor' (`musegen.clip.parse_key`)."""

    metavar = "KEY"

    def check(self, name: str, v: object, top: int | None = None) -> str:
        text = super().check(name, v)
        try:
            parse_key(text)
        except (ValueError, IndexError):
            raise ParameterError(f"{name} {text!r} is not like 'C major', 'F# minor' or 'Ebm'") from None
        return text

    def parse(self, name: str, v: object, top: int | None = None) -> str:
        return self.check(name, super().parse(name, v))


@dataclass(frozen=True)
class Flag(Kind):
    type_doc = "0/1"

    def check(self, name: str, v: object, top: int | None = None) -> bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, (int, float)) and v in (0, 1):
            return bool(v)
        raise ParameterError(f"{name} must be True or False (0 or 1), got {show(v)}")

    def parse(self, name: str, v: object, top: int | None = None) -> bool:
        if isinstance(v, bool) or (isinstance(v, (int, float)) and v in (0, 1)):
            return bool(v)
        raise ParameterError(f"{name} must be 0 or 1, got {show(v)}")

    def value_doc(self, v: object) -> str:
        return str(int(bool(v)))


def _pair(name: str, v: object, example: str) -> tuple[int, int]:
    """'5-6' (or one int, or one number as text) -> (5, 6); a pair of ints as given."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        n = Int(0, 10**6).parse(name, v)
        return n, n
    if isinstance(v, str):
        a, sep, b = v.strip().partition("-")
        try:
            return int(a), int(b if sep else a)
        except ValueError:
            raise ParameterError(f"{name} must look like {example}, got {v!r}") from None
    try:
        a, b = (int(x) for x in v)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a pair like {example}, got {v!r}") from None
    return a, b


@dataclass(frozen=True)
class PitchRange(Kind):
    """(low, high) MIDI pitches; as text '55-84'."""

    metavar = "LOW-HIGH"

    def check(self, name: str, v: object, top: int | None = None) -> tuple[int, int]:
        a, b = _pair(name, v, "55-84")
        if not 0 <= a <= b <= 127:
            raise ParameterError(f"{name} must be low-high within 0..127, got {a}-{b}")
        return a, b

    def parse(self, name: str, v: object, top: int | None = None) -> tuple[int, int]:
        if not isinstance(v, (str, int, float)):
            raise ParameterError(f"{name} must look like 55-84, got {show(v)}")
        return self.check(name, v)

    def from_text(self, name: str, text: str) -> tuple[int, int]:
        return _pair(name, text, "55-84")

    def range_doc(self, cap: str = "") -> str:
        return "`\"55-84\"`, 0…127"

    def value_doc(self, v: object) -> str:
        return f"`{v[0]}-{v[1]}`"  # type: ignore[index]


VOICES = {"soprano": (62, 79), "alto": (55, 72), "tenor": (48, 67), "bass": (41, 62)}  # D4-G5 ... F2-D4


@dataclass(frozen=True)
class Voice(Kind):
    """A singer: 'soprano', 'alto', 'tenor', 'bass' (their comfortable tessituras, `VOICES`) or a
    pitch range '57-74'; checks to (low, high) MIDI pitches."""

    metavar = "VOICE"

    def check(self, name: str, v: object, top: int | None = None) -> tuple[int, int]:
        if isinstance(v, str) and v.strip().lower() in VOICES:
            return VOICES[v.strip().lower()]
        if isinstance(v, str) and not any(c.isdigit() for c in v):
            raise ParameterError(f"{name} must be {', '.join(VOICES)} or a range like 57-74, got {v!r}")
        return PitchRange().check(name, v)

    def parse(self, name: str, v: object, top: int | None = None) -> tuple[int, int]:
        if not isinstance(v, (str, int, float)):
            raise ParameterError(f"{name} must be {', '.join(VOICES)} or a range like 57-74, got {show(v)}")
        return self.check(name, v)

    def from_text(self, name: str, text: str) -> tuple[int, int]:
        return self.check(name, text)

    def range_doc(self, cap: str = "") -> str:
        return " or ".join(f"`{c}`" for c in VOICES) + " or `\"57-74\"`"

    def value_doc(self, v: object) -> str:
        return f"`{v[0]}-{v[1]}`"  # type: ignore[index]


@dataclass(frozen=True)
class BarRange(Kind):
    """(first, last) bars, 1-based and inclusive; as text '5-6' (or '5')."""

    most: int  # bars one range may span
    metavar = "FIRST-LAST"
    type_doc = "string or int"

    def check(self, name: str, v: object, top: int | None = None) -> tuple[int, int]:
        """(The clip's own bars are checked where the clip is known: `Studio.regenerate`.)"""
        a, b = _pair(name, v, "5-6 (1-based, inclusive)")
        if a > b:
            raise ParameterError(f"{name} {a}..{b}: the first bar ({a}) is after the last ({b})")
        most = self.most if top is None else min(self.most, top)
        if b - a + 1 > most:
            raise ParameterError(f"{name} must be first-last with 1 <= first <= last and at most "
                                 f"{most} bars, got {a}-{b}")
        return a, b

    def parse(self, name: str, v: object, top: int | None = None) -> tuple[int, int]:
        if not isinstance(v, (str, int, float)):
            raise ParameterError(f"{name} must look like 5-6, got {show(v)}")
        a, b = _pair(name, v, "5-6 (1-based, inclusive)")
        if not 1 <= a <= b:  # the wire's message (tests and clients know it)
            most = self.most if top is None else min(self.most, top)
            raise ParameterError(f"{name} must be first-last with 1 <= first <= last and at most "
                                 f"{most} bars, got {a}-{b}")
        return self.check(name, (a, b), top)

    def from_text(self, name: str, text: str) -> tuple[int, int]:
        return _pair(name, text, "5-6 (1-based, inclusive)")

    def range_doc(self, cap: str = "") -> str:
        return f"`FIRST-LAST`, 1-based and inclusive (`5` = just bar 5), at most {cap or self.most} bars"


@dataclass(frozen=True)
class Tracks(Kind):
    """Track numbers; as text '0,2'."""

    metavar = "0,2"
    type_doc = "string or int"

    def check(self, name: str, v: object, top: int | None = None) -> list[int]:
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            return self.parse(name, v)
        try:
            out = [Int(0, MAX_TRACK).check(name, x) for x in v]  # type: ignore[union-attr]
        except TypeError:
            raise ParameterError(f"{name} must be track numbers like [0, 2], got {v!r}") from None
        if not out:
            raise ParameterError(f"{name} must name at least one track, got {v!r}")
        return out

    def parse(self, name: str, v: object, top: int | None = None) -> list[int]:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return [Int(0, MAX_TRACK).parse(name, v)]
        try:
            out = [int(x) for x in Text().parse(name, v).replace(",", " ").split()]
        except ValueError:
            raise ParameterError(f"{name} must be track numbers like '0,2', got {v!r}") from None
        if not out or not all(0 <= t <= MAX_TRACK for t in out):
            raise ParameterError(f"{name} must be track numbers in 0..{MAX_TRACK}, got {v!r}")
        return out

    def from_text(self, name: str, text: str) -> list[int]:
        return self.parse(name, text)

    def range_doc(self, cap: str = "") -> str:
        return f"`\"0,2\"`, each 0…{MAX_TRACK}"


VOICE_ROLES = ("soprano", "alto", "tenor", "bass", "counter")


@dataclass(frozen=True)
class Voices(Kind):
    """Voices to add: role names ('satb', 'bass', 'alto,tenor', 'counter') or a count ('2')."""

    metavar = "VOICES"
    type_doc = "string or int"

    def check(self, name: str, v: object, top: int | None = None) -> str | int:
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):
            return Int(1, MAX_TRACK).check(name, v)
        if isinstance(v, (list, tuple)):
            v = ",".join(str(x) for x in v)
        return self.parse(name, v)

    def parse(self, name: str, v: object, top: int | None = None) -> str | int:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return Int(1, MAX_TRACK).parse(name, v)
        text = Text().parse(name, v).strip().lower()
        if text.isdigit():
            return Int(1, MAX_TRACK).check(name, int(text))
        words = text.replace(",", " ").split()
        bad = [w for w in words if w not in (*VOICE_ROLES, "satb")]
        if not words or bad:
            raise ParameterError(f"{name}: unknown voice {(bad or [text])[0]!r}; use soprano, alto, "
                                 f"tenor, bass, satb, counter or a count")
        return ",".join(words)

    def from_text(self, name: str, text: str) -> str | int:
        return self.parse(name, text)

    def range_doc(self, cap: str = "") -> str:
        return ""  # the help names them


@dataclass(frozen=True)
class Roles(Kind):
    """Roles of the kept tracks, in order: 'soprano' or 'soprano,bass'."""

    metavar = "ROLES"

    def check(self, name: str, v: object, top: int | None = None) -> list[str]:
        if isinstance(v, (list, tuple)):
            v = ",".join(str(x) for x in v)
        return self.parse(name, v)

    def parse(self, name: str, v: object, top: int | None = None) -> list[str]:
        words = Text().parse(name, v).strip().lower().replace(",", " ").split()
        bad = [w for w in words if w not in VOICE_ROLES]
        if not words or bad:
            raise ParameterError(f"{name}: unknown role {(bad or [str(v)])[0]!r}; use soprano, alto, "
                                 f"tenor, bass or counter")
        return words

    def from_text(self, name: str, text: str) -> list[str]:
        return self.parse(name, text)

    def range_doc(self, cap: str = "") -> str:
        return ""  # the help names them


def check_style_weight(name: str, w: object) -> float:
    """One style's weight in a blend: a finite number in -10..10."""
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) \
            or abs(w) > MAX_STYLE_WEIGHT:
        raise ParameterError(f"style weight for {name!r} must be a number in "
                             f"-{MAX_STYLE_WEIGHT:g}..{MAX_STYLE_WEIGHT:g}, got {w!r}")
    return float(w)


@dataclass(frozen=True)
class Styles(Kind):
    """{name: weight}; as text 'alpha=0.7 beta=0.3' (commas or spaces between pairs)."""

    metavar = "NAME=WEIGHT"

    def check(self, name: str, v: object, top: int | None = None) -> dict[str, float]:
        if not isinstance(v, Mapping):
            raise ParameterError(f"{name} must be a {{name: weight}} blend, got {v!r}")
        if not v:
            raise ParameterError(f"{name}: give at least one style with a weight")
        return {str(k): check_style_weight(str(k), w) for k, w in v.items()}

    def parse(self, name: str, v: object, top: int | None = None) -> dict[str, float]:
        out: dict[str, float] = {}
        for item in Text().parse(name, v).replace(",", " ").split():
            style, sep, w = item.partition("=")
            try:
                weight = float(w) if sep else 1.0
            except ValueError:
                raise ParameterError(f"{name}: weight of {style!r} must be a number, got {w!r}") from None
            if not style or not math.isfinite(weight) or abs(weight) > MAX_STYLE_WEIGHT:
                raise ParameterError(f"{name}: {item!r} must be name=weight with a weight in "
                                     f"-{MAX_STYLE_WEIGHT:g}..{MAX_STYLE_WEIGHT:g}")
            out[style] = weight
        if not out:
            raise ParameterError(f"{name} must name at least one style, like 'alpha=0.7 beta=0.3'")
        return out

    def range_doc(self, cap: str = "") -> str:
        return f"`\"irish-dance=0.7 bach-chorale=0.3\"`, weights -{MAX_STYLE_WEIGHT:g}…{MAX_STYLE_WEIGHT:g}"


@dataclass(frozen=True)
class Style(Text):
    """A style name (see the model's styles); in Python also a {name: weight} blend."""

    metavar = "NAME"

    def check(self, name: str, v: object, top: int | None = None) -> str | dict[str, float]:
        if isinstance(v, Mapping):
            return Styles().check(name, v)
        if not isinstance(v, str):
            raise ParameterError(f"{name} must be a style name or a {{name: weight}} blend, got {v!r}")
        return v


@dataclass(frozen=True)
class TimeSignature(Kind):
    """(numerator, denominator); as text '3/4'. `choices`: the only ones accepted."""

    choices: tuple[tuple[int, int], ...] = ()
    metavar = "N/D"

    def check(self, name: str, v: object, top: int | None = None) -> tuple[int, int]:
        try:
            if isinstance(v, str):
                num, den = (int(x) for x in v.strip().split("/"))
            else:
                num, den = (int(x) for x in v)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ParameterError(f"{name} must be like (4, 4) or '6/8', got {v!r}") from None
        return self._valid(name, num, den)

    def parse(self, name: str, v: object, top: int | None = None) -> tuple[int, int]:
        text = Text().parse(name, v)
        a, _, b = text.partition("/")
        try:
            num, den = int(a), int(b)
        except ValueError:
            raise ParameterError(f"{name} must look like 3/4, got {text!r}") from None
        return self._valid(name, num, den)

    def _valid(self, name: str, num: int, den: int) -> tuple[int, int]:
        if not (1 <= num <= 32 and den in (1, 2, 4, 8, 16, 32)):
            raise ParameterError(f"{name} '{num}/{den}' is not a time signature")
        if self.choices and (num, den) not in self.choices:
            known = ", ".join(f"{a}/{b}" for a, b in self.choices)
            raise ParameterError(f"{name} {num}/{den} is not supported for melodies; use one of {known}")
        return num, den

    def range_doc(self, cap: str = "") -> str:
        if self.choices:
            return ", ".join(f"`{a}/{b}`" for a, b in self.choices)
        return "`\"3/4\"`"

    def value_doc(self, v: object) -> str:
        return f"`{v[0]}/{v[1]}`"  # type: ignore[index]


@dataclass(frozen=True)
class Rhyme(Kind):
    """A rhyme scheme of letters (ABAB, AABB), repeated over the lines; none: free verse."""

    metavar = "ABAB"

    def check(self, name: str, v: object, top: int | None = None) -> str | None:
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip().isalpha() or len(v.strip()) > 16:
            raise ParameterError(f"{name} must be letters like ABAB or AABB (at most 16), got {v!r}")
        return v

    def parse(self, name: str, v: object, top: int | None = None) -> str | None:
        if isinstance(v, str) and not v.strip():
            return None  # the CLI's --rhyme ''
        text = Text().parse(name, v).strip()
        if text.lower() in ("none", "free", "-"):
            return None
        if not text.isalpha() or not text.isascii() or len(text) > 16:
            raise ParameterError(f"{name} must be letters like ABAB or AABB (at most 16), or none; "
                                 f"got {text[:60]!r}")
        return text.upper()

    def from_text(self, name: str, text: str) -> str | None:
        return self.parse(name, text)


FORM_LETTERS = 8  # sections one form may have


def parse_form(text: str) -> list[tuple[str, int]]:
    """'AABA', 'A A\' B A' -> [(letter, primes)...]: a letter each, primes (' or ′) after it."""
    out: list[tuple[str, int]] = []
    for ch in text.replace("\u2032", "'").replace(" ", ""):
        if ch == "'" and out:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        elif ch.isascii() and ch.isalpha() and ch.isupper():
            out.append((ch, 0))
        else:
            raise ParameterError(f"form must be capital letters with primes like 'AABA' or \"A A' B A\", "
                                 f"got {text!r}")
    if not 2 <= len(out) <= FORM_LETTERS or out[0] != ("A", 0):
        raise ParameterError(f"form must start with A and have 2..{FORM_LETTERS} sections, got {text!r}")
    return out


@dataclass(frozen=True)
class Form(Text):
    """A form of phrase sections: 'AABA', "A A' B A", 'ABAC' (`parse_form`)."""

    metavar = "AABA"

    def check(self, name: str, v: object, top: int | None = None) -> str:
        text = super().check(name, v)
        try:
            parse_form(text)
        except ParameterError as e:
            raise ParameterError(str(e).replace("form ", f"{name} ", 1)) from None
        return text

    def parse(self, name: str, v: object, top: int | None = None) -> str:
        return self.check(name, super().parse(name, v))


@dataclass(frozen=True)
class Callback(Kind):
    """A Python function (progress reports, the cancel check): not on the wire."""

    def check(self, name: str, v: object, top: int | None = None) -> object:
        if not callable(v):
            raise ParameterError(f"{name} must be a function, got {show(v)}")
        return v


# ------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class Param:
    """One request parameter. `name` is the Python keyword; `key` the OSC key and `flag` the
    CLI flag when they differ. `default` is what the library uses when it is not given
    (`defaults`: per operation; `default_doc` says it in words when it is no single value);
    `cap` names the `musegen serve` limit that lowers `kind`'s upper bound over OSC."""

    name: str
    kind: Kind
    ops: frozenset[str]
    help: str
    default: object = None
    defaults: Mapping[str, object] = field(default_factory=dict)
    default_doc: str = ""
    unit: str = ""
    key: str = ""
    flag: str = ""
    cap: str = ""  # "max_bars" or "max_variations"
    osc: bool = True  # offered over OSC
    cli: bool = True  # a flag of the CLI commands (False: the command adds its own, or none)
    cli_help: str = ""  # the flag's help when it differs (a flag that turns a default off)
    required: frozenset[str] = frozenset()  # the operations that need it
    inherited: bool = False  # a take built on a take inherits it unless given
    from_nothing: bool = False  # only used when there is no clip to start from
    note: str = ""  # docs/osc.md only: more about it

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.key or self.name)
        object.__setattr__(self, "flag", self.flag or "--" + self.name.replace("_", "-"))

    def default_for(self, op: str) -> object:
        return self.defaults.get(op, self.default)


_VOICE = "the model's unstyled voice"
TABLE: tuple[Param, ...] = (
    # what and how much
    Param("bars", Int(1, MAX_BARS), frozenset({"continue", "blend", "morph"}),
          "bars to generate (morph: per clip)", default=8, defaults={"morph": 4}, cap="max_bars"),
    Param("bars", BarRange(MAX_BARS), frozenset({"regenerate"}),
          "bars to regenerate (the rest is kept)", cap="max_bars", required=frozenset({"regenerate"})),
    Param("bars", BarRange(MAX_BARS), frozenset({"arrange"}),
          "bars that get the added voices", cap="max_bars", default_doc="every bar of the clip"),
    # arrange: which voices
    Param("add", Voices(), frozenset({"arrange"}),
          "voices to add, comma-separated: soprano, alto, tenor, bass, counter (a free "
          "counter-voice), satb (whichever of the four the kept tracks leave missing), or a count "
          "(the missing ones in the order bass, alto, tenor, soprano)", default="satb"),
    Param("keep", Tracks(), frozenset({"arrange"}),
          "the clip's tracks kept note for note (the others are left out)",
          default_doc="every track with notes"),
    Param("roles", Roles(), frozenset({"arrange"}),
          "the kept tracks' roles in the order of keep, comma-separated: soprano, alto, tenor, "
          "bass or counter",
          default_doc="from each track's register"),
    Param("variations", Int(1, MAX_VARIATIONS), frozenset(MUSIC - {"morph"} | {"melody", "lyrics", "arrange"}),
          "how many takes to make", default=4, cap="max_variations"),
    Param("steps", Int(2, MAX_VARIATIONS), frozenset({"morph"}),
          "clips walking from the first style to the last", default=5, cap="max_variations"),
    # style
    Param("style", Style(), frozenset({"continue", "regenerate", "melody", "arrange"}),
          "a style name (`musegen styles` lists them)", default_doc=f"none, {_VOICE}",
          cli=False),
    Param("styles", Styles(), frozenset({"blend", "melody"}),
          "a weighted mix of styles (weights outside 0…1 extrapolate; the takes say so)",
          cli=False, required=frozenset({"blend"}), note="not together with `style`"),
    Param("from_style", Text(), frozenset({"morph"}), "style of the first clip", key="from",
          flag="--from", required=frozenset({"morph"})),
    Param("to_style", Text(), frozenset({"morph"}), "style of the last clip", key="to", flag="--to",
          required=frozenset({"morph"})),
    Param("slerp", Flag(), frozenset({"blend", "melody"}),
          "spherical interpolation between two styles, instead of linear", default=False),
    # sampling
    Param("temperature", Float(0.05, 5.0), GENERATE, "lower = safer, higher = wilder",
          default=1.0, inherited=True),
    Param("temperature", Float(0.05, 3.0), frozenset({"lyrics"}),
          "the lyric model's: lower = plainer words, higher = wilder", default=0.9),
    Param("top_p", Float(0.01, 1.0), GENERATE,
          "draw only from the likeliest choices holding this share of the probability",
          default=0.95, inherited=True),
    Param("top_p", Float(0.05, 1.0), frozenset({"lyrics"}),
          "the lyric model's: draw only from the likeliest words holding this share of the probability",
          default=0.95),
    Param("seed", Int(0, 2**31 - 1), frozenset(OPERATIONS),
          "same seed + same input = same takes", default_doc="a new seed each time"),
    Param("style_strength", Float(0.0, 10.0), GENERATE,
          "0 = no style, 1 = as trained, >1 = exaggerated", default=1.0, inherited=True),
    # what the notes may be
    Param("key", Key(), GENERATE, "lock pitches to a key: 'D major', 'Em'", default_doc="no lock",
          inherited=True),
    Param("scale", Choice(("major", "minor")), GENERATE,
          "lock pitches to this scale on the key's tonic (on C without a key)",
          default_doc="the key's own", inherited=True),
    Param("pitch_range", PitchRange(), GENERATE, "lowest and highest MIDI pitch",
          defaults={"melody": (60, 74)}, default_doc="any pitch", inherited=True,
          note="melody: the voice's tessitura (C4-D5 for an unspecified voice)"),
    Param("density", Float(0.0, 64.0), MUSIC, "target notes per bar", unit="notes per bar",
          default_doc="as the model plays", inherited=True),
    Param("max_leap", Int(0, 127), GENERATE,
          "largest step between consecutive notes of a track", unit="semitones",
          defaults={"melody": 12}, default_doc="no limit", inherited=True,
          note="drums exempt; a key lock or range that leaves no pitch within reach wins"),
    Param("seam_leap", Int(1, 127), frozenset({"regenerate"}),
          "widest leap into and out of the regenerated bars, per track: its first note from its "
          "last one before, its notes in the region's last half bar to its first one after",
          unit="semitones", default=SEAM_LEAP, inherited=True,
          note="127 = no limit; drums exempt; a key lock or range that leaves no pitch within reach wins"),
    Param("tracks", Tracks(), MUSIC, "only these tracks get notes", default_doc="every track"),
    Param("voice_leading", Choice(("auto", "on", "off")), MUSIC | {"arrange"},
          "voice leading: each voice in its range, one note at a time, no crossing, no parallel "
          "fifths or octaves, chord tones on beats, no voice dropped; auto: on for chorale and "
          "Renaissance styles and prompts of 3 or more voices",
          default="auto", inherited=True),
    Param("max_copy", Int(1, 10_000), GENERATE,
          "draw again a take that copies more than this many consecutive notes from a training piece",
          unit="notes", default=MAX_COPY, inherited=True,
          note="10000 keeps every draw; a take still over it after the re-draws says so in its warnings"),
    # phrases and form
    Param("cadence", Choice(("auto", "tonic", "half", "none")), MUSIC,
          "how phrases end: auto = the last bar leans to the tonic (folk styles: every 4-bar phrase "
          "ends too, on the dominant mid-strain); tonic; half = end on the dominant; none",
          default="auto", inherited=True,
          note="the tonic is the key lock's, else the prompt's key, else the key drawn for a start from nothing"),
    Param("motif", Float(0.0, 1.0), MUSIC,
          "lean toward the prompt's interval and bar-rhythm patterns (0 = off, 1 = strongly)",
          default_doc="0.7 in folk styles, else 0", inherited=True),
    Param("form", Form(), frozenset({"continue"}),
          "sections after the prompt: AABA, \"A A' B A\", ABAC; A is the prompt (from nothing: a "
          "generated phrase), A' A with half its bars new, a new letter new material",
          default_doc="no form", note="each section is `bars` bars (with a clip: at most the prompt's); "
          "the takes hold every section after the first A"),
    Param("idiomatic", Flag(), frozenset({"continue", "blend", "morph"}),
          "from nothing: key and tempo drawn from the style's real pieces, a blend's metre "
          "chosen once by its heaviest style and its voice count by the weights, morph steps "
          "drawn with one seed; 0: the model chooses per take", default=True, flag="--free-start",
          cli_help="from nothing: the model chooses key, tempo and ensemble per take (default: "
          "drawn from the style's real pieces, a blend's once by its heaviest style)"),
    Param("rhythm_style", Text(), frozenset({"blend"}),
          "aspect blend: onsets and durations from this style, pitches from the blend",
          default_doc="one pass, no aspect blend"),
    Param("keep_rhythm", Flag(), frozenset({"regenerate"}),
          "keep the region's rhythm (onsets, durations, velocities): only its pitches change",
          default=False),
    # starting from nothing, and melodies
    Param("tempo", Float(20.0, 400.0), frozenset({"continue", "blend", "morph"}),
          "tempo of a clip started from nothing", unit="quarter notes per minute", default=120.0,
          default_doc="drawn from the style's real tempi; 120 without a style", from_nothing=True),
    Param("time_signature", TimeSignature(), frozenset({"continue", "blend", "morph"}),
          "metre of a clip started from nothing", default=(4, 4), from_nothing=True,
          note="without tempo, time_signature and program the style chooses all three (a blend: its "
          "heaviest style, once for every take, with the weights' voice count); key and tempo are "
          "drawn from the style's real pieces"),
    Param("time_signature", TimeSignature(MELODY_METRES), frozenset({"melody"}),
          "metre of the melody", default=(4, 4)),
    Param("tempo", Float(20.0, 400.0), frozenset({"melody"}), "tempo of the melody",
          unit="quarter notes per minute", default=100.0),
    Param("program", Int(0, 127), frozenset({"melody"}), "General MIDI program of the melody",
          default=0),
    Param("program", Int(0, 127), frozenset({"continue", "blend", "morph"}),
          "General MIDI program of a clip started from nothing", default=0, from_nothing=True),
    Param("text", Text(), frozenset({"melody"}),
          "the words, required: lines separated by `/` or newlines (at most 1024 characters, 64 "
          "lines, 32 syllables a line)",
          cli=False, required=frozenset({"melody"})),
    Param("voice", Voice(), frozenset({"melody"}),
          "the singer: soprano (D4-G5), alto (G3-C5), tenor (C3-G4), bass (F2-D4) or a range LOW-HIGH; "
          "sets the melody's pitch range", default_doc="C4-D5 (60-74), or pitch_range when given"),
    Param("bars_per_line", Int(1, 16), frozenset({"melody"}), "force each line's phrase length in bars",
          default_doc="the shortest that sets the line well"),
    Param("vary_rhythm", Flag(), frozenset({"melody"}),
          "1: later variations vary the rhythm too; 0: every one keeps the best rhythm", default=True,
          flag="--same-rhythm",
          cli_help="every variation keeps the best rhythm (default: later variations vary it)"),
    # lyrics
    Param("theme", Text(), frozenset({"lyrics"}), "words the lyrics are about: 'the sea'",
          default_doc="none"),
    Param("rhyme", Rhyme(), frozenset({"lyrics"}),
          "rhyme scheme repeated over the lines: ABAB, AABB, ABCB... (letters, at most 16); "
          "none for free verse", default="ABAB"),
    Param("candidates", Int(1, 8), frozenset({"lyrics"}),
          "lines decoded per phrase; the one whose stresses best meet the beats is kept", default=3),
    Param("track", Int(0, MAX_TRACK), frozenset({"lyrics"}), "the track that carries the tune",
          default_doc="the highest pitched one"),
    # Python only
    Param("on_progress", Callback(), frozenset(OPERATIONS), "called with the share done, 0..1",
          osc=False, cli=False),
    Param("cancelled", Callback(), frozenset(OPERATIONS), "returns True to stop the request",
          osc=False, cli=False),
    Param("on_bars", Callback(), frozenset({"continue", "blend", "morph", "regenerate"}),
          "called with each take's notes as its bars are decoded (`musegen.TakeNotes`)",
          osc=False, cli=False),
)

INHERITED = tuple(dict.fromkeys(p.name for p in TABLE if p.inherited))
NAMES = frozenset(p.name for p in TABLE)
_BY_OP: dict[str, dict[str, Param]] = {op: {} for op in OPERATIONS}
for _p in TABLE:
    for _op in _p.ops:
        assert _p.name not in _BY_OP[_op], f"{_p.name} twice for {_op}"
        _BY_OP[_op][_p.name] = _p


def params_for(op: str) -> dict[str, Param]:
    """The parameters `op` accepts, by Python name, in table order."""
    return dict(_BY_OP[op])


def spec(op: str, name: str) -> Param:
    return _BY_OP[op][name]


def default(op: str, name: str) -> object:
    """What `op` uses when `name` is not given (None: nothing, see the parameter's help)."""
    return _BY_OP[op][name].default_for(op)


def check(op: str, values: Mapping[str, object]) -> dict[str, object]:
    """The keywords of one call of `op`, checked -> the given ones (None: not given, left out),
    each converted to its plain form. `ParameterError` names the first bad one."""
    accepted = _BY_OP[op]
    unknown = sorted(k for k in values if k not in NAMES)
    if unknown:
        raise ParameterError(f"unknown parameter(s): {', '.join(unknown)}")
    elsewhere = [k for k, v in values.items() if k not in accepted and v is not None and v is not False]
    if elsewhere:
        raise ParameterError(f"{', '.join(elsewhere)} does not apply to {OPERATIONS[op]}")
    return {k: accepted[k].kind.check(k, v) for k, v in values.items()
            if v is not None and k in accepted}


__all__ = ["GENERATE", "INHERITED", "MAX_BARS", "MAX_VARIATIONS", "MELODY_METRES", "MUSIC",
           "OPERATIONS", "TABLE", "Param", "check", "check_style_weight", "default", "params_for",
           "parse_form", "spec"]
