"""Live streaming over a real UDP socket (`stream 2`): the shipped model's notes arrive as each
take's bars are decoded, under their take index, and are exactly the saved takes' notes."""

from __future__ import annotations

from collections import defaultdict

import pytest

from musegen.clip import PPQ
from tests.test_osc import Client, make_server


@pytest.fixture
def inbox_dir(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def shipped():
    from musegen.studio import Studio

    return Studio(device="cpu", threads=1)


def _key(track, pitch, velocity, start_beats, duration_beats):
    return (track, pitch, velocity, round(start_beats * PPQ), round(duration_beats * PPQ))


def test_notes_stream_while_the_takes_are_decoded(tmp_path, inbox_dir, shipped):
    from musegen.examples import example_path

    (inbox_dir / "folk.mid").write_bytes(example_path("folk").read_bytes())
    server, session = make_server(tmp_path, inbox_dir, shipped)
    c = Client(server.address)
    try:
        c.send("/musegen/continue", 1, "path", str(inbox_dir / "folk.mid"), "bars", 4, "variations", 4,
               "seed", 7, "stream", 2)
        msgs = c.wait(1, timeout=120)
    finally:
        c.close()
        server.stop()
    addrs = [a for a, _ in msgs]
    takes = {args[1]: args[2] for a, args in msgs if a == "/musegen/take"}
    assert sorted(takes) == [0, 1, 2, 3]
    # live: the first note comes before the first take is saved, and several takes' notes
    # interleave before the last one is complete
    first_note, first_take = addrs.index("/musegen/note"), addrs.index("/musegen/take")
    assert first_note < first_take
    begun = [args[1] for a, args in msgs[:first_take] if a == "/musegen/clip/begin"]
    assert sorted(begun) == [0, 1, 2, 3]
    streamed, ends = defaultdict(list), {}
    for a, args in msgs:
        if a == "/musegen/note":
            assert len(args) == 7 and args[0] == 1  # id, pitch, velocity, start, duration, track, take
            streamed[args[6]].append(_key(args[5], *args[1:5]))
        elif a == "/musegen/clip/end":
            ends[args[1]] = args[2:]
            assert addrs.index("/musegen/clip/end") > addrs.index("/musegen/take")
    for i, take_id in takes.items():
        clip = session.clip(take_id)
        saved = [_key(ti, n.pitch, n.velocity, n.start_beats, n.duration_beats)
                 for ti, t in enumerate(clip.tracks) for n in t.notes]
        assert sorted(streamed[i]) == sorted(saved), f"take {i}: streamed notes differ from the saved take"
        assert len(set(streamed[i])) == len(streamed[i])  # each note once
        assert ends[i] == [take_id, len(saved)]
    session.close()


def test_studio_on_bars_gives_each_takes_first_notes_then_bar_by_bar(shipped):
    from musegen import Clip
    from musegen.examples import example_path

    events = []
    takes = shipped.continue_(Clip.load(example_path("chorale")), bars=3, variations=2, seed=1,
                              on_bars=events.append)
    for i, take in enumerate(takes):
        mine = [e for e in events if e.take == i]
        # the take's first notes as soon as they are drawn (inside bar 1), then bar by bar
        assert [e.bars for e in mine] == [0, 1, 2, 3] and [e.final for e in mine] == [False, False, False, True]
        assert mine[0].notes and all(n.start_tick < take.clip.bar_starts[1] for _, n in mine[0].notes)
        got = [(ti, n) for e in mine for ti, n in e.notes]
        want = [(ti, n) for ti, t in enumerate(take.clip.tracks) for n in t.notes]
        assert len(got) == len(want) and set(got) == set(want)
