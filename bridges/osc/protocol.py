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

from musegen import params as P
from musegen.errors import ParameterError

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
    # replies are paced (`bridges.osc.pacing.Pacer`): up to send_burst datagrams at once, then
    # at most send_rate a second, so a take's notes do not overrun a host's UDP receive buffer
    send_rate: int = 4000
    send_burst: int = 128


@dataclass(frozen=True)
class Request:
    op: str  # the address without the prefix: "continue", "clip/begin", ...
    id: int | str
    params: dict = field(default_factory=dict)


# ---------------------------------------------------------------- value checks
# Every value is checked by its kind in the parameter table (musegen/params.py), which also
# says which keys each generating address accepts; this module adds only what is the wire's own:
# the source of a request (take, path), streaming, and the non-generating addresses.
Check = Callable[[str, object, Limits], object]


def _kind(kind: P.Kind, cap: Callable[[Limits], int] | None = None) -> Check:
    def check(key: str, v: object, lim: Limits) -> object:
        try:
            return kind.parse(key, v, cap(lim) if cap else None)
        except ParameterError as e:
            raise ProtocolError(str(e)) from None
    return check


def _int(lo: int, hi: int) -> Check:
    return _kind(P.Int(lo, hi))


def _float(lo: float, hi: float) -> Check:
    return _kind(P.Float(lo, hi))


_str = _kind(P.Text())
_flag = _kind(P.Flag())
CAPS: dict[str, Callable[[Limits], int]] = {"max_bars": lambda lim: lim.max_bars,
                                            "max_variations": lambda lim: lim.max_variations}


def _param(p: P.Param) -> Check:
    """A table parameter's check on the wire: its kind, its range lowered to the server's limit."""
    cap = CAPS.get(p.cap)
    lo = getattr(p.kind, "lo", 1)
    return _kind(p.kind, (lambda lim: max(lo, cap(lim))) if cap else None)


def _request_ref(key: str, v: object, lim: Limits) -> int | str:
    return check_id(v)


# keys of the wire itself (with what docs/osc.md says of them)
SOURCE = {"take": (_str, "session take to work from (its MIDI file)"),
          "path": (_str, "MIDI file to work from, inside an allowed folder: a regular file of at "
                         "most 64 MB (a FIFO, device, socket or folder is refused with an error, "
                         "never waited on). It is imported as a take first (so it shows up in the "
                         "lineage), once: a file whose bytes an earlier import holds reuses that take")}
STREAM = (_kind(P.Int(0, 2)), "also send every take as note messages: 1 each take after it is saved, "
          "2 each take's notes as its bars are decoded (see *Streaming*)")
_SOURCES = {"continue", "regenerate", "blend", "morph", "lyrics", "arrange"}  # melody starts from words
_NEED_SOURCE = ("regenerate", "lyrics", "arrange")  # they change a clip: one must be given
REQUIRED = {op: (("take|path",) if op in _NEED_SOURCE else ())
            + tuple(p.key for p in P.params_for(op).values() if op in p.required) for op in P.OPERATIONS}
MELODY_METRES = P.MELODY_METRES
DEFAULTS = {"bars": 4}  # a request without bars gets 4 (a DAW asks for short takes; Python: 8)


def generating(op: str) -> dict[str, Check]:
    """The keys a generating address accepts: the table's parameters of `op` that go over OSC,
    its source (take or path) and `stream`."""
    keys = {p.key: _param(p) for p in P.params_for(op).values() if p.osc}
    if op in _SOURCES:
        keys.update({k: check for k, (check, _) in SOURCE.items()})
    keys["stream"] = STREAM[0]
    return keys


# address -> (accepted keys, required keys)
ADDRESSES: dict[str, tuple[dict[str, Check], tuple[str, ...]]] = {
    **{op: (generating(op), REQUIRED[op]) for op in P.OPERATIONS},
    "accept": ({"take": _str}, ("take",)),
    "reject": ({"take": _str}, ("take",)),
    "edit": ({"take": _str, "path": _str}, ("take", "path")),
    "undo": ({}, ()),
    "styles": ({}, ()),
    "status": ({}, ()),
    "cancel": ({"request": _request_ref}, ("request",)),
    "clip/begin": ({"name": _str, "tempo": _param(P.spec("continue", "tempo")),
                    "time_signature": _param(P.spec("continue", "time_signature"))}, ()),
    "clip/end": ({}, ()),
}
GENERATE = frozenset(P.OPERATIONS)
LYRIC_OPS = frozenset({"lyrics", "melody"})  # their takes get /musegen/lyrics/line replies
NOTE = "note"  # /musegen/note id pitch velocity start_beats duration_beats track [syllable] (positional)


def to_keywords(op: str, params: dict) -> dict:
    """A parsed request's table parameters under their Python names (`from` -> `from_style`),
    for the Studio method of `op`; the wire's own keys (take, path, stream) are left out."""
    by_key = {p.key: p.name for p in P.params_for(op).values()}
    return {by_key[k]: v for k, v in params.items() if k in by_key}


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
    op = _op_of(address)
    if not args:
        raise ProtocolError(f"{address}: missing request id (the first argument)", "missing_id")
    rid = check_id(args[0])
    if op == NOTE:
        return Request(op, rid, parse_note(args[1:]))
    accepted, required = ADDRESSES[op]
    params = _parse_pairs(address, list(args[1:]), accepted, limits)
    _check_required(address, op, params, required)
    return Request(op, rid, params)


def _op_of(address: str) -> str:
    """The operation an address names (`/musegen/continue` -> `continue`), or ProtocolError."""
    if not address.startswith(PREFIX + "/"):
        raise ProtocolError(f"unknown address {address[:200]!r}", "unknown_address")
    op = address[len(PREFIX) + 1:]
    if op != NOTE and op not in ADDRESSES:
        raise ProtocolError(f"unknown address {address[:200]!r}", "unknown_address")
    return op


def _parse_pairs(address: str, rest: list, accepted: dict, limits: Limits) -> dict:
    """The key value pairs after the id -> checked parameters (each key known and given once)."""
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
    return params


def _check_required(address: str, op: str, params: dict, required: Sequence[str]) -> None:
    """Every required parameter is there (`a|b`: either) and no two exclusive ones are both given."""
    for need in required:
        if not any(n in params for n in need.split("|")):
            raise ProtocolError(f"{address}: missing parameter {need.replace('|', ' or ')!r}")
    if "take" in params and "path" in params and op != "edit":
        raise ProtocolError(f"{address}: give either take or path, not both")
    if "style" in params and "styles" in params:
        raise ProtocolError(f"{address}: give either style or styles, not both")


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


_show = P.show


# ------------------------------------------------------------------- docs/osc.md
DOC_TABLES = {"generating": ("continue", "regenerate", "blend", "morph"), "lyrics": ("lyrics",),
              "melody": ("melody",), "arrange": ("arrange",)}
_CAP_DOCS = {"max_bars": "`--max-bars`", "max_variations": "`--max-variations`"}


def _meaning(p: P.Param, op: str) -> str:
    text = p.help
    rng = p.kind.range_doc(_CAP_DOCS.get(p.cap, ""))
    if rng:
        text += f", {rng}" + (f" {p.unit}" if p.unit else "")
    d = p.default_for(op)
    if d is not None and p.name in DEFAULTS:
        d = DEFAULTS[p.name]
    if d is not None:
        text += f" (default {p.kind.value_doc(d)}" + (", or the limit if lower" if p.cap else "") + ")"
    elif p.default_doc:
        text += f" (default: {p.default_doc})"
    return text + (f"; {p.note}" if p.note else "")


def docs_table(name: str) -> str:
    """The markdown table of an address group's keys in docs/osc.md (a test compares them)."""
    ops = DOC_TABLES[name]
    several = len(ops) > 1
    rows = []
    for p in P.TABLE:
        mine = [op for op in ops if op in p.ops and p.osc]
        if mine:
            rows.append((f"`{p.key}`", p.kind.type_doc, mine, _meaning(p, mine[0])))
    wire = [(f"`{k}`", "string", [op for op in ops if op in _SOURCES], doc) for k, (_, doc) in SOURCE.items()]
    rows = [r for r in wire if r[2]] + rows + [("`stream`", "0/1/2", list(ops), STREAM[1])]
    if several:
        head = "| key | type | addresses | meaning |\n|---|---|---|---|\n"
        body = "".join(f"| {k} | {t} | {'all' if list(o) == list(ops) else ', '.join(o)} | {m} |\n"
                       for k, t, o, m in rows)
    else:
        head = "| key | type | meaning |\n|---|---|---|\n"
        body = "".join(f"| {k} | {t} | {m} |\n" for k, t, _, m in rows)
    return head + body

