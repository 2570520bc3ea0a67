"""The seams between the bridges and the library: the bridges type their studio against the
Protocols of bridges/studio.py; the real Studio and the tests' one fake (tests/fakes.py) both
keep them, so a change to Studio's operations that a bridge relies on fails here."""

from __future__ import annotations

import inspect
import typing

import pytest

from bridges.studio import Continues, StudioLike
from musegen.studio import Studio
from tests.fakes import FakeStudio


def _members(proto: type) -> list[str]:
    return sorted(n for n in proto.__dict__ if not n.startswith("_")) + \
        [n for b in proto.__mro__[1:] if b is not typing.Protocol and b is not object
         and getattr(b, "_is_protocol", False) for n in b.__dict__ if not n.startswith("_")]


def _named(fn: object) -> list[tuple[str, object]]:
    """(name, default) of a method's named parameters, without self and **kw."""
    ps = inspect.signature(fn).parameters.values()  # type: ignore[arg-type]
    return [(p.name, p.default) for p in ps if p.name != "self" and p.kind != p.VAR_KEYWORD]


@pytest.mark.parametrize("cls", [Studio, FakeStudio], ids=["Studio", "FakeStudio"])
@pytest.mark.parametrize("proto", [Continues, StudioLike], ids=["Continues", "StudioLike"])
def test_studio_and_fake_keep_the_protocols(cls, proto):
    for name in _members(proto):
        want = getattr(proto, name)
        assert hasattr(cls, name) or name == "styles", (cls.__name__, name)
        if callable(want) and not isinstance(want, property):
            assert _named(getattr(cls, name)) == _named(want), (cls.__name__, name)


def test_a_fake_instance_is_a_studio_for_the_bridges():
    fake = FakeStudio()
    assert isinstance(fake, StudioLike) and isinstance(fake, Continues)
    assert not isinstance(object(), Continues)


def test_the_osc_server_runs_melody_and_lyrics_on_the_fake(tmp_path):
    from tests.test_osc import Client, done_of, make_server

    (tmp_path / "in").mkdir()
    fake = FakeStudio()
    server, session = make_server(tmp_path, tmp_path / "in", fake)
    c = Client(server.address)
    try:
        msgs = c.request("/musegen/melody", 1, "text", "la la / la", "variations", 2, "seed", 3)
        _, first, *paths = done_of(msgs)
        lines = [args for a, args in msgs if a == "/musegen/lyrics/line"]
        assert len(paths) == 2 and [a[2:] for a in lines[:2]] == [[0, 2, "la la"], [1, 1, "la"]]
        msgs = c.request("/musegen/lyrics", 2, "take", first, "rhyme", "none")
        assert done_of(msgs) and any(a == "/musegen/lyrics/figures" for a, _ in msgs)
        assert fake.calls[-1][3]["rhyme"] is None and fake.calls[0][3]["seed"] == 3
    finally:
        c.sock.close()
        server.stop()
        session.close()
