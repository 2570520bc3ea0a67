"""The request parameters' flags, made from the parameter table (musegen/params.py): each
command adds the flags of its operation with `add_params` and turns them back into Studio
keywords with `request_kw`. A parameter added to the table is a flag of every command whose
operation accepts it, with its help, range and default.

Flags stay unset (None) unless given, so a take built on a take inherits what the flag leaves
out; the help says what the library uses then. Counts (bars, variations, steps...) default to
the table's value, which the commands read for their progress.
"""

from __future__ import annotations

import argparse

from musegen import params as P


def _value_text(kind: P.Kind, v: object) -> str:
    return kind.value_doc(v).strip("`") if not isinstance(v, (int, float)) or isinstance(v, bool) else str(v)


def help_text(p: P.Param, op: str) -> str:
    """The flag's help: what it does, its range (with unit) and its default."""
    if p.cli_help:
        return p.cli_help
    text = p.help
    rng = p.kind.range_doc().replace("…", "..").replace("`", "").replace('"', "")
    if rng:
        text += f", {rng}" + (f" {p.unit}" if p.unit else "")
    d = p.default_for(op)
    if isinstance(p.kind, P.Flag):
        return text  # a switch: off unless given
    if d is not None:
        text += f" (default: {_value_text(p.kind, d)})"
    elif p.default_doc:
        text += f" (default: {p.default_doc})"
    return text.replace("%", "%%")


def cli_default(p: P.Param, op: str) -> object:
    """What argparse fills in when the flag is not given: the table's default for a count or
    a setting of its own, None (not given) for what a take inherits or what only applies when
    starting from nothing (giving it changes how the take starts)."""
    if p.inherited or p.from_nothing:
        return None
    return p.default_for(op)


def add_params(parser: argparse.ArgumentParser, op: str, *, has_input: bool = True) -> None:
    """A flag for every parameter of `op` the CLI offers. `has_input`: the command always has a
    clip to work from (so the parameters for starting from nothing are left out)."""
    for p in P.params_for(op).values():
        if not p.cli or (p.from_nothing and has_input):
            continue
        kw: dict = {"dest": p.name, "help": help_text(p, op)}
        if isinstance(p.kind, P.Flag) and not p.default_for(op):
            kw["action"] = "store_true"  # a switch, off unless given
        elif isinstance(p.kind, P.Flag):  # a switch that turns an on-by-default setting off
            kw.update(action="store_const", const=False, default=None)
        else:
            kw.update(type=p.kind.cli_number or str, metavar=p.kind.metavar)
            if op in p.required:
                kw["required"] = True
            else:
                kw["default"] = cli_default(p, op)
        parser.add_argument(p.flag, **kw)


def request_kw(args: argparse.Namespace, op: str) -> dict:
    """The table parameters' flags of a parsed command line as Studio keywords (flags left
    unset are left out), each checked against the table under its flag's name, so a bad value
    is refused before any model loads."""
    out: dict = {}
    for p in P.params_for(op).values():
        v = getattr(args, p.name, None) if p.cli else None
        if v is None:
            continue
        if isinstance(v, str) and not p.kind.cli_number:
            v = p.kind.from_text(p.flag, v)
        if v is not None:
            v = p.kind.check(p.flag, v)
        out[p.name] = v
    return out

