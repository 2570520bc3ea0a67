"""The OSC address space of `musegen serve`: what each address takes, checked at the boundary.

Every request is `/musegen/<op> <id> [key value]...`: a client-chosen request id (int or string)
first, then `key value` pairs. `parse_request` turns one decoded OSC message into a `Request`
or raises `ProtocolError` with a message that names the bad argument and its value. Nothing
here touches a socket, a model or a file (paths are only resolved and checked).
See docs/osc.md for the full reference.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "/musegen"
MAX_ID_CHARS = 64
MAX_STRING_CHARS = 1024


class ProtocolError(ValueError):
    """A request that can't be served as sent. `kind` is the status counter it goes to."""

    def __init__(self, message: str, kind: str = "bad_arguments") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Limits:
    """What the server accepts; every limit is a `musegen serve` option (docs/osc.md)."""

    max_bars: int = 64
    max_variations: int = 8
    max_queue: int = 32
    max_notes: int = 20_000  # per streamed clip, both ways
    max_open_streams: int = 16  # clips being streamed in at once
    allowed_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Request:
    op: str  # the address without the prefix: "continue", "clip/begin", ...
    id: int | str
    params: dict = field(default_factory=dict)


# ---------------------------------------------------------------- value checks
Check = Callable[[str, object, Limits], object]


def _int(lo: int, hi: int | Callable[[Limits], int]) -> Check:
    def check(key: str, v: object, lim: Limits) -> int:
        top = hi(lim) if callable(hi) else hi
        if isinstance(v, float) and math.isfinite(v) and v == int(v):
            v = int(v)  # Max and Pd send every number as a float
        if isinstance(v, bool) or not isinstance(v, int):
            raise ProtocolError(f"{key} must be an integer, got {_show(v)}")
        if not lo <= v <= top:
            raise ProtocolError(f"{key} must be in {lo}..{top}, got {v}")
        return v
    return check


def _float(lo: float, hi: float) -> Check:
    def check(key: str, v: object, lim: Limits) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ProtocolError(f"{key} must be a number, got {_show(v)}")
        if not math.isfinite(v):
            raise ProtocolError(f"{key} must be a finite number, got {v}")
        if not lo <= v <= hi:
            raise ProtocolError(f"{key} must be in {lo}..{hi}, got {v}")
        return float(v)
    return check


def _str(key: str, v: object, lim: Limits) -> str:
    if not isinstance(v, str):
        raise ProtocolError(f"{key} must be a string, got {_show(v)}")
    if not v or len(v) > MAX_STRING_CHARS:
        raise ProtocolError(f"{key} must be 1..{MAX_STRING_CHARS} characters long")
    return v


def _flag(key: str, v: object, lim: Limits) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    raise ProtocolError(f"{key} must be 0 or 1, got {_show(v)}")


def _range(key: str, v: object, lim: Limits) -> tuple[int, int]:
    """'55-84' (or one int for a one-bar range)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        n = _int(0, 10**6)(key, v, lim)
        return n, n
    text = _str(key, v, lim)
    a, sep, b = text.partition("-")
    try:
        lo, hi = int(a), int(b if sep else a)
    except ValueError:
        raise ProtocolError(f"{key} must look like 5-6, got {text!r}") from None
    return lo, hi


def _bar_range(key: str, v: object, lim: Limits) -> tuple[int, int]:
    a, b = _range(key, v, lim)
    if not 1 <= a <= b or b - a + 1 > lim.max_bars:
        raise ProtocolError(f"{key} must be first-last with 1 <= first <= last and at most "
                            f"{lim.max_bars} bars, got {a}-{b}")
    return a, b


def _pitch_range(key: str, v: object, lim: Limits) -> tuple[int, int]:
    a, b = _range(key, v, lim)
    if not 0 <= a <= b <= 127:
        raise ProtocolError(f"{key} must be low-high within 0..127, got {a}-{b}")
    return a, b


def _time_signature(key: str, v: object, lim: Limits) -> tuple[int, int]:
    text = _str(key, v, lim)
    a, sep, b = text.partition("/")
    try:
        num, den = int(a), int(b)
    except ValueError:
        raise ProtocolError(f"{key} must look like 3/4, got {text!r}") from None
    if not (1 <= num <= 32 and den in (1, 2, 4, 8, 16, 32)):
        raise ProtocolError(f"{key} {text!r} is not a time signature")
    return num, den


def _tracks(key: str, v: object, lim: Limits) -> list[int]:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return [_int(0, 63)(key, v, lim)]
    try:
        out = [int(x) for x in _str(key, v, lim).replace(",", " ").split()]
    except ValueError:
        raise ProtocolError(f"{key} must be track numbers like '0,2', got {v!r}") from None
    if not out or not all(0 <= t <= 63 for t in out):
        raise ProtocolError(f"{key} must be track numbers in 0..63, got {v!r}")
    return out


def _styles(key: str, v: object, lim: Limits) -> dict[str, float]:
    """'alpha=0.7 beta=0.3' (commas or spaces between pairs)."""
    out: dict[str, float] = {}
    for item in _str(key, v, lim).replace(",", " ").split():
        name, sep, w = item.partition("=")
        try:
            weight = float(w) if sep else 1.0
        except ValueError:
            raise ProtocolError(f"{key}: weight of {name!r} must be a number, got {w!r}") from None
        if not name or not math.isfinite(weight) or abs(weight) > 10:
            raise ProtocolError(f"{key}: {item!r} must be name=weight with a weight in -10..10")
        out[name] = weight
    if not out:
        raise ProtocolError(f"{key} must name at least one style, like 'alpha=0.7 beta=0.3'")
    return out


def _request_ref(key: str, v: object, lim: Limits) -> int | str:
    return check_id(v)


def _rhyme(key: str, v: object, lim: Limits) -> str | None:
    """A rhyme scheme of letters ('ABAB', 'AABB'), repeated over the lines; 'none' (or '-')
    for free verse."""
    text = _str(key, v, lim).strip()
    if text.lower() in ("none", "free", "-"):
        return None
    if not text.isalpha() or not text.isascii() or len(text) > 16:
        raise ProtocolError(f"{key} must be letters like ABAB or AABB (at most 16), or none; "
                            f"got {text[:60]!r}")
    return text.upper()


def _melody_time_signature(key: str, v: object, lim: Limits) -> tuple[int, int]:
    num, den = _time_signature(key, v, lim)
    if (num, den) not in MELODY_METRES:
        raise ProtocolError(f"{key} {num}/{den} is not supported for melodies; use one of "
                            f"{', '.join(f'{a}/{b}' for a, b in MELODY_METRES)}")
    return num, den


SAMPLING: dict[str, Check] = {
    "temperature": _float(0.05, 5.0), "top_p": _float(0.01, 1.0), "seed": _int(0, 2**31 - 1),
    "style_strength": _float(0.0, 10.0), "key": _str, "scale": _str,
    "pitch_range": _pitch_range, "density": _float(0.0, 64.0), "tracks": _tracks,
    "max_copy": _int(1, 10_000), "tempo": _float(20.0, 400.0), "program": _int(0, 127),
    "time_signature": _time_signature, "stream": _flag, "max_leap": _int(0, 127),
    "take": _str, "path": _str,
}
_BARS = _int(1, lambda lim: lim.max_bars)
_VARIATIONS = _int(1, lambda lim: lim.max_variations)
MELODY_METRES = ((4, 4), (3, 4), (6, 8), (2, 4))  # musegen.lyrics.melody.METRES
LYRICS: dict[str, Check] = {
    "take": _str, "path": _str, "theme": _str, "rhyme": _rhyme, "variations": _VARIATIONS,
    "seed": _int(0, 2**31 - 1), "temperature": _float(0.05, 3.0), "top_p": _float(0.05, 1.0),
    "candidates": _int(1, 8), "track": _int(0, 63), "stream": _flag,
}
MELODY: dict[str, Check] = {
    **{k: SAMPLING[k] for k in ("temperature", "top_p", "seed", "style_strength", "key", "scale",
                                "pitch_range", "max_copy", "tempo", "program", "stream",
                                "max_leap")},
    "text": _str, "variations": _VARIATIONS, "style": _str, "styles": _styles,
    "time_signature": _melody_time_signature, "bars_per_line": _int(1, 16), "vary_rhythm": _flag,
}

# address -> (accepted keys, required keys)
ADDRESSES: dict[str, tuple[dict[str, Check], tuple[str, ...]]] = {
    "continue": ({**SAMPLING, "bars": _BARS, "variations": _VARIATIONS, "style": _str}, ()),
    "regenerate": ({**SAMPLING, "bars": _bar_range, "variations": _VARIATIONS, "style": _str},
                   ("take|path", "bars")),
    "blend": ({**SAMPLING, "bars": _BARS, "variations": _VARIATIONS, "styles": _styles,
               "slerp": _flag}, ("styles",)),
    "morph": ({**SAMPLING, "bars": _BARS, "from": _str, "to": _str,
               "steps": _int(2, lambda lim: max(2, lim.max_variations))}, ("from", "to")),
    "lyrics": (LYRICS, ("take|path",)),
    "melody": (MELODY, ("text",)),
    "accept": ({"take": _str}, ("take",)),
    "reject": ({"take": _str}, ("take",)),
    "edit": ({"take": _str, "path": _str}, ("take", "path")),
    "undo": ({}, ()),
    "styles": ({}, ()),
    "status": ({}, ()),
    "cancel": ({"request": _request_ref}, ("request",)),
    "clip/begin": ({"name": _str, "tempo": _float(20.0, 400.0),
                    "time_signature": _time_signature}, ()),
    "clip/end": ({}, ()),
}
GENERATE = frozenset({"continue", "regenerate", "blend", "morph", "lyrics", "melody"})
LYRIC_OPS = frozenset({"lyrics", "melody"})  # their takes get /musegen/lyrics/line replies
NOTE = "note"  # /musegen/note id pitch velocity start_beats duration_beats track [syllable] (positional)


def check_id(v: object) -> int | str:
    """A request id: an int (32 or 64 bit; an integral float from Max/Pd) or a short string."""
    if isinstance(v, float) and math.isfinite(v) and v == int(v) and abs(v) <= 2**53:
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise ProtocolError(f"the request id (first argument) must be an int or a string, "
                            f"got {_show(v)}", "missing_id")
    if isinstance(v, int) and not -2**63 <= v < 2**63:
        raise ProtocolError(f"the request id {v} does not fit in 64 bits", "missing_id")
    if isinstance(v, str) and not 1 <= len(v) <= MAX_ID_CHARS:
        raise ProtocolError(f"the request id must be 1..{MAX_ID_CHARS} characters", "missing_id")
    return v


def parse_request(address: str, args: Sequence[object], limits: Limits) -> Request:
    """One decoded OSC message -> a checked Request (or ProtocolError naming what is wrong)."""
    if not address.startswith(PREFIX + "/"):
        raise ProtocolError(f"unknown address {address[:200]!r}", "unknown_address")
    op = address[len(PREFIX) + 1:]
    if op != NOTE and op not in ADDRESSES:
        raise ProtocolError(f"unknown address {address[:200]!r}", "unknown_address")
    if not args:
        raise ProtocolError(f"{address}: missing request id (the first argument)", "missing_id")
    rid = check_id(args[0])
    if op == NOTE:
        return Request(op, rid, parse_note(args[1:]))
    accepted, required = ADDRESSES[op]
    rest = list(args[1:])
    if len(rest) % 2:
        raise ProtocolError(f"{address}: parameters come in key value pairs; got {len(rest)} "
                            f"values after the id")
    params: dict = {}
    for k, v in zip(rest[0::2], rest[1::2]):
        if not isinstance(k, str):
            raise ProtocolError(f"{address}: a parameter name must be a string, got {_show(k)}")
        if k not in accepted:
            known = ", ".join(sorted(accepted)) or "none"
            raise ProtocolError(f"{address}: unknown parameter {k[:100]!r} (accepted: {known})")
        if k in params:
            raise ProtocolError(f"{address}: parameter {k!r} given twice")
        params[k] = accepted[k](k, v, limits)
    for need in required:
        if not any(n in params for n in need.split("|")):
            raise ProtocolError(f"{address}: missing parameter {need.replace('|', ' or ')!r}")
    if "take" in params and "path" in params and op != "edit":
        raise ProtocolError(f"{address}: give either take or path, not both")
    if "style" in params and "styles" in params:
        raise ProtocolError(f"{address}: give either style or styles, not both")
    return Request(op, rid, params)


def parse_note(values: Sequence[object]) -> dict:
    """`pitch velocity start_beats duration_beats track [syllable]` -> a checked note dict
    (with `lyric`, the sung syllable, when one is given)."""
    if len(values) not in (5, 6):
        raise ProtocolError("/musegen/note takes id pitch velocity start_beats duration_beats "
                            f"track [syllable]; got {len(values)} values after the id")
    lim = Limits()
    pitch = _int(0, 127)("pitch", values[0], lim)
    velocity = _int(1, 127)("velocity", values[1], lim)
    start = _float(0.0, 4.0 * 20_000)("start_beats", values[2], lim)
    dur = _float(1e-3, 4.0 * 1_000)("duration_beats", values[3], lim)
    track = _int(0, 63)("track", values[4], lim)
    note = {"pitch": pitch, "velocity": velocity, "start_beats": start, "duration_beats": dur,
            "track": track}
    if len(values) == 6:
        lyric = _str("syllable", values[5], lim)
        if len(lyric) > 64:
            raise ProtocolError(f"syllable must be at most 64 characters, got {len(lyric)}")
        note["lyric"] = lyric
    return note


def resolve_path(text: str, limits: Limits) -> Path:
    """A client's path, made absolute (relative paths start at the first allowed folder) and
    refused unless it lies inside an allowed folder once symlinks and `..` are resolved."""
    if "\x00" in text:
        raise ProtocolError("path contains a NUL byte", "bad_path")
    if not limits.allowed_dirs:
        raise ProtocolError("this server accepts no file paths (start it with --allow DIR)",
                            "bad_path")
    p = Path(os.path.expanduser(text))
    if not p.is_absolute():
        p = limits.allowed_dirs[0] / p
    real = Path(os.path.realpath(p))
    for d in limits.allowed_dirs:
        if real.is_relative_to(Path(os.path.realpath(d))):
            return real
    raise ProtocolError(f"path {text[:300]!r} is outside the allowed folders "
                        f"({', '.join(str(d) for d in limits.allowed_dirs)})", "bad_path")


def _show(v: object) -> str:
    if isinstance(v, (bytes, bytearray)):
        return f"a {len(v)}-byte blob"
    text = repr(v)
    return f"{type(v).__name__} {text[:60]}"
