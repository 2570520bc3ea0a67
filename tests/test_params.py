"""The request-parameter table (musegen/params.py) and the surfaces made from it: the checker
Studio uses, the OSC protocol's keys and checks, and docs/osc.md's tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridges.osc import protocol
from bridges.osc.protocol import Limits, ProtocolError, parse_request
from musegen import params as P
from musegen.errors import ParameterError

DOCS = Path(__file__).parents[1] / "docs" / "osc.md"
WIRE_KEYS = {"take", "path", "stream"}  # the protocol's own keys: source and streaming
LIM = Limits(max_bars=400, max_variations=100)  # above the table's limits: the table decides


def test_each_parameter_once_per_operation_and_keys_unique():
    for op in P.OPERATIONS:
        names = [p.name for p in P.TABLE if op in p.ops]
        assert len(names) == len(set(names)), op
        keys = [p.key for p in P.TABLE if op in p.ops and p.osc]
        assert len(keys) == len(set(keys)) and not set(keys) & WIRE_KEYS, op


def test_the_protocol_accepts_exactly_the_table():
    for op in P.OPERATIONS:
        accepted, _ = protocol.ADDRESSES[op]
        table = {p.key for p in P.params_for(op).values() if p.osc}
        assert set(accepted) - WIRE_KEYS == table, op


@pytest.mark.parametrize("name", list(protocol.DOC_TABLES))
def test_docs_osc_md_tables_are_the_tables(name):
    """docs/osc.md holds each generated table right after its marker (after changing the
    table, `python -m tests.test_params` rewrites them)."""
    text = DOCS.read_text()
    start, end = _table_span(text, name)
    assert text[start:end] == protocol.docs_table(name), f"docs/osc.md's {name} table differs"


def _table_span(text: str, name: str) -> tuple[int, int]:
    marker = f"bridges.osc.protocol.docs_table({name!r}) -->\n"
    assert marker in text, f"docs/osc.md has no {name} table marker"
    start = text.index(marker) + len(marker)
    return start, text.index("\n\n", start) + 1


def test_docs_name_every_key_of_every_generating_address():
    text = DOCS.read_text()
    for op in P.OPERATIONS:
        for key in protocol.ADDRESSES[op][0]:
            assert f"| `{key}` |" in text, (op, key)


def _numbers():
    for p in P.TABLE:
        if isinstance(p.kind, (P.Int, P.Float)):
            yield p


@pytest.mark.parametrize("p", list(_numbers()), ids=lambda p: f"{p.name}-{min(p.ops)}")
def test_python_and_osc_enforce_the_same_range(p):
    """Each numeric range is the table's on both sides: its ends pass, just outside fails."""
    op = min(p.ops)
    step = 1 if isinstance(p.kind, P.Int) else 1e-6
    for ok in (p.kind.lo, p.kind.hi):
        assert P.check(op, {p.name: ok})[p.name] == ok
        if p.osc:
            assert parse_request(f"/musegen/{op}", [1, p.key, ok, *_required(op, p.key)], LIM).params[p.key] == ok
    for bad in (p.kind.lo - step, p.kind.hi + step):
        with pytest.raises(ParameterError, match=f"{p.name} must be in"):
            P.check(op, {p.name: bad})
        if p.osc:
            with pytest.raises(ProtocolError, match=f"{p.key} must be in"):
                parse_request(f"/musegen/{op}", [1, p.key, bad, *_required(op, p.key)], LIM)


def _required(op: str, but: str) -> list:
    fill = {"take": "t1", "bars": "1-2", "styles": "a=1", "from": "a", "to": "b", "text": "la"}
    out: list = []
    for need in protocol.REQUIRED.get(op, ()):
        key = need.split("|")[0]
        if key != but:
            out += [key, fill[key]]
    return out


def test_every_default_passes_its_own_check():
    for p in P.TABLE:
        for op in p.ops:
            d = p.default_for(op)
            if d is not None:
                assert P.check(op, {p.name: d}) == {p.name: d} or isinstance(p.kind, P.Rhyme), (op, p.name)


def test_check_names_unknown_and_misplaced_parameters_and_skips_none():
    with pytest.raises(ParameterError, match="unknown parameter.*colour"):
        P.check("continue", {"colour": 3})
    with pytest.raises(ParameterError, match="keep_rhythm does not apply to melody_for"):
        P.check("melody", {"keep_rhythm": True})
    with pytest.raises(ParameterError, match="candidates does not apply to continue_"):
        P.check("continue", {"candidates": 3})
    assert P.check("melody", {"keep_rhythm": None, "density": False, "seed": None}) == {}


def test_kinds_convert_python_and_wire_values_alike():
    assert P.check("continue", {"pitch_range": [55, 84]}) == {"pitch_range": (55, 84)}
    assert protocol.parse_request("/musegen/continue", [1, "pitch_range", "55-84"], LIM).params == \
        {"pitch_range": (55, 84)}
    assert P.check("melody", {"time_signature": "6/8"}) == {"time_signature": (6, 8)}
    with pytest.raises(ParameterError, match="5/4 is not supported for melodies"):
        P.check("melody", {"time_signature": (5, 4)})
    assert P.check("continue", {"time_signature": (5, 4)}) == {"time_signature": (5, 4)}
    with pytest.raises(ParameterError, match="style weight for 'a'.*-10..10"):
        P.check("blend", {"styles": {"a": 11}})
    with pytest.raises(ProtocolError, match="-10..10"):
        parse_request("/musegen/blend", [1, "styles", "a=11"], LIM)
    with pytest.raises(ParameterError, match="key 'H major' is not like"):
        P.check("continue", {"key": "H major"})
    with pytest.raises(ProtocolError, match="key 'H major' is not like"):  # at the boundary now
        parse_request("/musegen/continue", [1, "key", "H major"], LIM)
    with pytest.raises(ParameterError, match=r"bars 5..2: the first bar \(5\) is after the last"):
        P.check("regenerate", {"bars": (5, 2)})
    assert P.check("regenerate", {"bars": "5"}) == {"bars": (5, 5)}
    assert P.check("continue", {"tracks": (2, 0)}) == {"tracks": [2, 0]}
    with pytest.raises(ParameterError, match="tracks must be in 0..63"):
        P.check("continue", {"tracks": [64]})
    with pytest.raises(ParameterError, match="max_leap must be an integer, got float 2.5"):
        P.check("continue", {"max_leap": 2.5})
    assert P.check("continue", {"max_leap": 5})["max_leap"] == 5
    assert parse_request("/musegen/continue", [1, "max_leap", 5.0], LIM).params["max_leap"] == 5


def test_server_limits_lower_the_table_ranges():
    lim = Limits(max_bars=16, max_variations=3)
    with pytest.raises(ProtocolError, match="bars must be in 1..16, got 17"):
        parse_request("/musegen/continue", [1, "bars", 17], lim)
    with pytest.raises(ProtocolError, match="at most 16 bars"):
        parse_request("/musegen/regenerate", [1, "take", "t1", "bars", "1-17"], lim)
    with pytest.raises(ProtocolError, match="steps must be in 2..3"):
        parse_request("/musegen/morph", [1, "from", "a", "to", "b", "steps", 4], lim)
    with pytest.raises(ParameterError, match=f"bars must be in 1..{P.MAX_BARS}"):
        P.check("continue", {"bars": P.MAX_BARS + 1})


def test_what_a_take_inherits_is_a_column_of_the_table():
    from musegen.take import INHERITED

    assert INHERITED == P.INHERITED
    assert {"temperature", "key", "pitch_range", "max_copy"} <= set(INHERITED)
    assert not {"seed", "bars", "variations", "tempo"} & set(INHERITED)


def test_melody_metres_and_defaults_come_from_the_table():
    from musegen.lyrics import melody

    assert tuple(melody.METRES) == P.MELODY_METRES == protocol.MELODY_METRES
    assert melody.DEFAULT_TEMPO == P.default("melody", "tempo") == 100.0
    assert melody.DEFAULT_PITCH_RANGE == P.default("melody", "pitch_range")
    assert P.default("continue", "tempo") == 120.0


def test_lyric_model_has_its_own_honest_ranges():
    assert P.spec("lyrics", "temperature").kind.hi == 3.0
    assert P.spec("continue", "temperature").kind.hi == 5.0
    assert re.search(r"temperature` \| float \| the lyric model's", protocol.docs_table("lyrics"))


if __name__ == "__main__":  # rewrite docs/osc.md's generated tables from the table
    doc = DOCS.read_text()
    for table in protocol.DOC_TABLES:
        a, b = _table_span(doc, table)
        doc = doc[:a] + protocol.docs_table(table) + doc[b:]
    DOCS.write_text(doc)
    print(f"wrote {DOCS}")


# ------------------------------------------------------------------- the CLI
COMMANDS = {"continue": ("continue", True), "regenerate": ("regenerate", True), "blend": ("blend", False),
            "morph": ("morph", False), "melody": ("melody", False), "lyrics": ("lyrics", True),
            "arrange": ("arrange", True)}


def _flags(command: str) -> dict:
    import argparse

    from bridges.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {o: a for a in sub.choices[command]._actions for o in a.option_strings}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_a_flag_for_each_of_its_table_parameters(command):
    op, has_input = COMMANDS[command]
    flags = _flags(command)
    for p in P.params_for(op).values():
        if not p.cli:  # the command's own flag (--style) or none (callbacks)
            continue
        offered = not (p.from_nothing and has_input)  # tempo etc. only where input is optional
        assert (p.flag in flags) == offered, (command, p.flag)
        if offered and not isinstance(p.kind, P.Flag):
            assert flags[p.flag].dest == p.name and p.help.split(",")[0] in flags[p.flag].help


def test_cli_flags_become_checked_studio_keywords():
    from bridges.cli import build_parser
    from bridges.commands._params import request_kw

    args = build_parser().parse_args(["blend", "--style", "a=1", "--pitch-range", "55-70", "--tracks", "0,2",
                                      "--time-signature", "3/4", "--slerp", "--seed", "3"])
    assert request_kw(args, "blend") == {"bars": 8, "variations": 4, "slerp": True, "seed": 3,
                                         "pitch_range": (55, 70), "tracks": [0, 2], "time_signature": (3, 4)}
    args = build_parser().parse_args(["lyrics", "x.mid", "--rhyme", "none"])
    assert request_kw(args, "lyrics")["rhyme"] is None
    args = build_parser().parse_args(["melody", "la", "--same-rhythm"])
    assert request_kw(args, "melody")["vary_rhythm"] is False
    args = build_parser().parse_args(["regenerate", "x.mid", "--bars", "5", "--keep-rhythm"])
    assert request_kw(args, "regenerate")["bars"] == (5, 5)
    args = build_parser().parse_args(["continue", "x.mid", "--key", "D", "--scale", "minor"])
    assert request_kw(args, "continue") == {"bars": 8, "variations": 4, "key": "D", "scale": "minor"}
    with pytest.raises(ProtocolError, match="scale must be 'major' or 'minor', got 'dorian'"):
        parse_request("/musegen/continue", [1, "scale", "dorian"], LIM)
    with pytest.raises(ParameterError, match="--temperature must be in 0.05..5.0"):
        request_kw(build_parser().parse_args(["continue", "x.mid", "--temperature", "9"]), "continue")
