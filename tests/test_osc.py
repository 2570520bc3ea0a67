"""OSC bridge: the protocol checks alone, then a real server on 127.0.0.1 over real UDP sockets —
with the tiny trained model end to end, and with a fast fake studio for the load tests
(10,000 bad packets, 50 concurrent requests, cancel, streaming), liblo's oscsend, and kill -9."""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from bridges.osc.notes import ClipAssembler, clip_messages
from bridges.osc.protocol import Limits, ProtocolError, parse_request, resolve_path
from bridges.osc.server import OscServer
from musegen import Clip, Note, Track
from musegen.examples import example_path
from musegen.session import Session
from musegen.take import Take
from tests.fakes import FakeStudio, fake_clip

ROOT = Path(__file__).parents[1]


# ----------------------------------------------------------------- helpers
def dgram(address: str, *args) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


class Client:
    """A python-osc-encoding UDP client that keeps everything it receives."""

    def __init__(self, server_addr):
        self.server = server_addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.inbox: list[tuple[str, list]] = []

    def send(self, address: str, *args) -> None:
        self.sock.sendto(dgram(address, *args), self.server)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def pump(self) -> None:
        try:
            data, _ = self.sock.recvfrom(65536)
        except TimeoutError:
            return
        for m in OscPacket(data).messages:
            self.inbox.append((m.message.address, list(m.message.params)))

    def wait(self, rid, timeout: float = 30.0) -> list[tuple[str, list]]:
        """Everything for request `rid` up to and including its done or error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mine = [m for m in self.inbox if m[1] and m[1][0] == rid]
            if any(a in ("/musegen/done", "/musegen/error") for a, _ in mine):
                self.inbox = [m for m in self.inbox if not (m[1] and m[1][0] == rid)]
                return mine
            self.pump()
        raise AssertionError(f"no done/error for request {rid!r}; inbox: {self.inbox[-5:]}")

    def request(self, address: str, rid, *args, timeout: float = 30.0):
        self.send(address, rid, *args)
        return self.wait(rid, timeout)

    def status(self, rid="st") -> dict:
        self.send("/musegen/status", rid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for i, (a, args) in enumerate(self.inbox):
                if a == "/musegen/status" and args[0] == rid:
                    del self.inbox[i]
                    return dict(zip(args[1::2], args[2::2]))
            self.pump()
        raise AssertionError("no status reply")

    def close(self):
        self.sock.close()


def done_of(msgs):
    [(addr, args)] = [m for m in msgs if m[0] in ("/musegen/done", "/musegen/error")]
    assert addr == "/musegen/done", args
    return args


def error_of(msgs):
    [(addr, args)] = [m for m in msgs if m[0] in ("/musegen/done", "/musegen/error")]
    assert addr == "/musegen/error", args
    return args[1]


@pytest.fixture
def inbox_dir(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    return d


def make_server(tmp_path, inbox_dir, studio, **limits):
    session = Session.open(tmp_path / "session")
    lim = Limits(allowed_dirs=(inbox_dir.resolve(), session.folder), **limits)
    server = OscServer(studio, session, port=0, limits=lim).start()
    return server, session


@pytest.fixture
def fake_server(tmp_path, inbox_dir):
    server, session = make_server(tmp_path, inbox_dir, FakeStudio(), max_queue=64)
    yield server
    server.stop()
    session.close()


@pytest.fixture
def client(fake_server):
    c = Client(fake_server.address)
    yield c
    c.close()


# ------------------------------------------------------------ protocol alone
LIM = Limits(max_bars=64, max_variations=8, allowed_dirs=(Path("/tmp/allowed"),))


@pytest.mark.parametrize("address,args,fragment,kind", [
    ("/musegen/continue", [], "missing request id", "missing_id"),
    ("/musegen/continue", [b"blob"], "request id", "missing_id"),
    ("/musegen/continue", [1.5], "request id", "missing_id"),
    ("/musegen/continue", [True], "request id", "missing_id"),
    ("/musegen/nope", [1], "unknown address", "unknown_address"),
    ("/other/continue", [1], "unknown address", "unknown_address"),
    ("/musegen/continue", [1, "bars", 10**6], "bars must be in 1..64, got 1000000", "bad_arguments"),
    ("/musegen/continue", [1, "variations", 0], "variations must be in 1..8, got 0", "bad_arguments"),
    ("/musegen/continue", [1, "temperature", -1.0], "temperature must be in 0.05..5.0", "bad_arguments"),
    ("/musegen/continue", [1, "temperature", float("nan")], "finite", "bad_arguments"),
    ("/musegen/continue", [1, "top_p", float("inf")], "finite", "bad_arguments"),
    ("/musegen/continue", [1, "bars", "eight"], "bars must be an integer, got str 'eight'", "bad_arguments"),
    ("/musegen/continue", [1, "bars", 2.5], "bars must be an integer", "bad_arguments"),
    ("/musegen/continue", [1, "seed", -3], "seed must be in 0..", "bad_arguments"),
    ("/musegen/continue", [1, "bars"], "key value pairs", "bad_arguments"),
    ("/musegen/continue", [1, 4, 4], "parameter name must be a string", "bad_arguments"),
    ("/musegen/continue", [1, "colour", "red"], "unknown parameter 'colour'", "bad_arguments"),
    ("/musegen/continue", [1, "bars", 2, "bars", 3], "given twice", "bad_arguments"),
    ("/musegen/continue", [1, "take", "t1", "path", "a.mid"], "either take or path", "bad_arguments"),
    ("/musegen/continue", [1, "pitch_range", "200-300"], "within 0..127", "bad_arguments"),
    ("/musegen/continue", [1, "max_leap", 200], "max_leap must be in 0..127", "bad_arguments"),
    ("/musegen/regenerate", [1, "take", "t0001"], "missing parameter 'bars'", "bad_arguments"),
    ("/musegen/regenerate", [1, "take", "t0001", "bars", "5-2"], "first <= last", "bad_arguments"),
    ("/musegen/blend", [1, "styles", "alpha=lots"], "must be a number", "bad_arguments"),
    ("/musegen/blend", [1, "styles", "alpha=1e9"], "-10..10", "bad_arguments"),
    ("/musegen/accept", [1], "missing parameter 'take'", "bad_arguments"),
    ("/musegen/note", [1, 60, 100, 0.0], "takes id pitch velocity", "bad_arguments"),
    ("/musegen/note", [1, 160, 100, 0.0, 1.0, 0], "pitch must be in 0..127", "bad_arguments"),
    ("/musegen/clip/begin", [1, "time_signature", "7/3"], "not a time signature", "bad_arguments"),
])
def test_protocol_refuses_bad_requests_naming_the_value(address, args, fragment, kind):
    with pytest.raises(ProtocolError) as e:
        parse_request(address, args, LIM)
    assert fragment in str(e.value) and e.value.kind == kind


def test_protocol_accepts_and_converts():
    r = parse_request("/musegen/continue", [7, "bars", 4.0, "temperature", 1, "pitch_range", "55-84",
                                            "tracks", "0,2", "stream", 1, "style", "alpha",
                                            "max_leap", 5.0], LIM)
    assert r.op == "continue" and r.id == 7
    assert r.params == {"bars": 4, "temperature": 1.0, "pitch_range": (55, 84), "tracks": [0, 2],
                        "stream": True, "style": "alpha", "max_leap": 5}
    r = parse_request("/musegen/regenerate", ["abc", "take", "t0002", "bars", "3-4"], LIM)
    assert r.id == "abc" and r.params["bars"] == (3, 4)
    r = parse_request("/musegen/blend", [1, "styles", "alpha=0.7, beta=0.3"], LIM)
    assert r.params["styles"] == {"alpha": 0.7, "beta": 0.3}
    r = parse_request("/musegen/note", [1, 60, 90, 0.5, 1, 2], LIM)
    assert r.params == {"pitch": 60, "velocity": 90, "start_beats": 0.5, "duration_beats": 1.0, "track": 2}


def test_paths_must_stay_inside_allowed_folders(tmp_path):
    allowed = tmp_path / "ok"
    (allowed / "sub").mkdir(parents=True)
    (tmp_path / "secret.mid").write_bytes(b"x")
    os.symlink(tmp_path / "secret.mid", allowed / "link.mid")
    lim = Limits(allowed_dirs=(allowed,))
    assert resolve_path("sub/a.mid", lim) == (allowed / "sub" / "a.mid").resolve()
    assert resolve_path(str(allowed / "b.mid"), lim) == (allowed / "b.mid").resolve()
    for bad in ("../../etc/passwd", "/etc/passwd", "sub/../../secret.mid", "link.mid", "a\x00b"):
        with pytest.raises(ProtocolError) as e:
            resolve_path(bad, lim)
        assert e.value.kind == "bad_path"
    with pytest.raises(ProtocolError, match="--allow"):
        resolve_path("a.mid", Limits())


def test_note_streams_round_trip():
    clip = Clip(tracks=(Track((Note(60, 90, 0, 480), Note(64, 70, 960, 240))),
                        Track((Note(40, 100, 480, 1920),))), length_ticks=3840)
    msgs = clip_messages(5, "t0001", clip)
    assert msgs[0] == ("/musegen/clip/begin", [5, "t0001", 3, 2, 120.0, "4/4"])
    assert msgs[-1] == ("/musegen/clip/end", [5, "t0001"])
    asm = ClipAssembler(Limits(max_notes=10))
    asm.begin(("h", 5), {})
    for _, args in msgs[1:-1]:
        asm.add(("h", 5), parse_request("/musegen/note", args, LIM).params)
    back = asm.end(("h", 5))
    assert [[(n.pitch, n.velocity, n.start_tick, n.duration_ticks) for n in t.notes] for t in back.tracks] == \
        [[(n.pitch, n.velocity, n.start_tick, n.duration_ticks) for n in t.notes] for t in clip.tracks]
    with pytest.raises(ProtocolError, match="without /musegen/clip/begin"):
        asm.add(("h", 6), {"pitch": 60})
    asm.begin(("h", 7), {})
    for _ in range(10):
        asm.add(("h", 7), {"pitch": 60, "velocity": 9, "start_beats": 0.0, "duration_beats": 1.0, "track": 0})
    with pytest.raises(ProtocolError, match="more than 10 notes"):
        asm.add(("h", 7), {"pitch": 60, "velocity": 9, "start_beats": 0.0, "duration_beats": 1.0, "track": 0})


# --------------------------------------------- end to end with the real model
def test_end_to_end_with_the_tiny_model_over_udp(tmp_path, inbox_dir, tiny_model_dir):
    from musegen.studio import Studio

    studio = Studio(model=tiny_model_dir, device="cpu")
    server, session = make_server(tmp_path, inbox_dir, studio)
    c = Client(server.address)
    try:
        shutil.copy(example_path("folk"), inbox_dir / "tune.mid")
        msgs = c.request("/musegen/continue", 1, "path", "tune.mid", "bars", 2, "variations", 2,
                         "seed", 5, "style", "alpha")
        kinds = [a for a, _ in msgs]
        assert kinds[0] == "/musegen/ack" and "/musegen/progress" in kinds
        assert kinds.count("/musegen/take") == 2 and kinds[-1] == "/musegen/done"
        rid, first, *paths = done_of(msgs)
        assert rid == 1 and len(paths) == 2 and Path(paths[0]).stem == first
        for p in paths:
            assert Clip.load(p).n_bars == 2
        imported = session.take(first).parent
        assert session.take(imported).operation == "import"

        assert done_of(c.request("/musegen/accept", 2, "take", first))[1] == first
        edited = Clip.load(paths[0]).transpose(2)
        edited.save(inbox_dir / "my-edit.mid")
        _, edit_id, edit_path = done_of(c.request("/musegen/edit", 3, "take", first, "path",
                                                  str(inbox_dir / "my-edit.mid")))
        assert Clip.load(edit_path).n_notes == edited.n_notes
        msgs = c.request("/musegen/continue", "four", "take", edit_id, "bars", 1, "variations", 1,
                         "seed", 9)
        _, last, last_path = done_of(msgs)
        assert Clip.load(last_path).n_bars == 1
        assert [t.id for t in session.lineage(last)] == [last, edit_id, first, imported]
        assert session.take(first).status == "accepted"
        journal = [e["type"] for e in session.entries()]
        assert journal == ["request", "take", "take", "take", "accept", "edit", "request", "take"]

        err = error_of(c.request("/musegen/continue", 5, "take", edit_id, "style", "nonexistent"))
        assert "nonexistent" in err
        st = c.status()
        assert st["served"] == 4 and st["failed"] == 1 and st["takes"] == 5
    finally:
        c.close()
        server.stop()
        session.close()


# ------------------------------------------------------- with the fake studio
def test_every_address_answers(client, fake_server, inbox_dir):
    c = client
    styles = c.request("/musegen/styles", 1)
    assert [args[2] for a, args in styles if a == "/musegen/style"] == ["alpha", "beta", "gamma"]
    assert done_of(styles) == [1, 3]
    _, t1, *paths = done_of(c.request("/musegen/continue", 2, "bars", 2, "variations", 3))
    assert len(paths) == 3
    _, r1, _ = done_of(c.request("/musegen/regenerate", 3, "take", t1, "bars", "1-2", "variations", 1))
    _, b1, *_ = done_of(c.request("/musegen/blend", 4, "take", t1, "styles", "alpha=0.5 beta=0.5"))
    morph = c.request("/musegen/morph", 5, "from", "alpha", "to", "gamma", "steps", 3, "bars", 1)
    assert len(done_of(morph)) == 2 + 3
    assert done_of(c.request("/musegen/reject", 6, "take", r1))[1] == r1
    assert done_of(c.request("/musegen/accept", 7, "take", b1))[1] == b1
    undo = c.request("/musegen/undo", 8)
    assert ("/musegen/undone", [8, "accept", b1, "pending"]) in undo
    assert "nothing to undo" not in str(undo)
    st = c.status()
    assert st["served"] == 8 and st["bad_input"] == 0 and st["queued"] == 0 and st["running"] == ""
    sess = fake_server.session
    assert sess.take(r1).status == "rejected" and sess.take(b1).status == "pending"
    assert sess.take(r1).parent == t1 and sess.take(t1).parent is None
    # built on a take, the studio gets the take itself (style and parameters to inherit)
    regen_in, blend_in = fake_server.studio.received[1:3]
    assert isinstance(regen_in, Take) and regen_in.params == sess.take(t1).params
    assert isinstance(blend_in, Take) and blend_in.operation == "continue"


def test_streaming_a_clip_in_and_a_take_out(client, fake_server):
    c = client
    clip = fake_clip(2, seed=3)
    c.send("/musegen/clip/begin", 10, "tempo", 96.0, "time_signature", "4/4", "name", "riff")
    for n in clip.tracks[0].notes:
        c.send("/musegen/note", 10, n.pitch, n.velocity, n.start_beats, n.duration_beats, 0)
    c.send("/musegen/clip/end", 10)
    _, tid, path = done_of(c.wait(10))
    got = Clip.load(path)
    assert [(n.pitch, n.start_tick) for n in got.all_notes()] == [(n.pitch, n.start_tick) for n in clip.all_notes()]
    assert got.tempos[0].qpm == pytest.approx(96.0)
    msgs = c.request("/musegen/continue", 11, "take", tid, "bars", 1, "variations", 1, "stream", 1)
    begin = [args for a, args in msgs if a == "/musegen/clip/begin"]
    notes = [args for a, args in msgs if a == "/musegen/note"]
    _, out_id, out_path = done_of(msgs)
    assert begin == [[11, out_id, len(notes), 1, 120.0, "4/4"]]
    want = Clip.load(out_path).all_notes()
    assert [(a[1], a[2]) for a in notes] == [(n.pitch, n.velocity) for n in want]
    # OSC floats are 32-bit: beats come back to within a fraction of a tick
    assert [a[3] for a in notes] == pytest.approx([n.start_beats for n in want], abs=1e-4)
    assert [a[4] for a in notes] == pytest.approx([n.duration_beats for n in want], abs=1e-4)
    assert error_of(c.request("/musegen/clip/end", 12)).startswith("/musegen/clip/end for request 12 without")


def test_cancel_a_running_generation(tmp_path, inbox_dir):
    server, session = make_server(tmp_path, inbox_dir, FakeStudio(delay=0.5))
    c = Client(server.address)
    try:
        c.send("/musegen/continue", 1, "bars", 1)
        c.send("/musegen/continue", 2, "bars", 1)  # queued behind 1
        deadline = time.monotonic() + 10
        while not any(a == "/musegen/progress" and args[0] == 1 for a, args in c.inbox):
            c.pump()
            assert time.monotonic() < deadline
        c.send("/musegen/cancel", 3, "request", 1)  # answered once 1 has stopped
        c.send("/musegen/cancel", 4, "request", 2)  # answered at once: 2 is still queued
        assert done_of(c.wait(4)) == [4, 2]
        assert done_of(c.wait(3)) == [3, 1]
        assert error_of(c.wait(1)) == "cancelled while generating"
        assert "cancelled" in error_of(c.wait(2))
        assert "no request 99" in error_of(c.request("/musegen/cancel", 5, "request", 99))
        st = c.status()
        assert st["cancelled"] == 2 and st["served"] == 0
        kinds = [e["type"] for e in session.entries()]
        assert kinds == ["request", "cancel"]  # 2 never started, so it never reached the journal
        server.studio.delay = 0.0
        assert len(done_of(c.request("/musegen/continue", 7, "bars", 1, "variations", 2))) == 4
    finally:
        c.close()
        server.stop()
        session.close()


def test_bad_paths_and_corrupt_midi_get_errors_and_counts(client, inbox_dir):
    c = client
    for i, p in enumerate(["../../etc/passwd", "/etc/passwd", "../in/../../x.mid"]):
        assert "outside the allowed folders" in error_of(c.request("/musegen/continue", 100 + i, "path", p))
    (inbox_dir / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x10\x00\x90")
    (inbox_dir / "text.mid").write_text("hello")
    assert "corrupt.mid" in error_of(c.request("/musegen/continue", 110, "path", "corrupt.mid"))
    assert "not a Standard MIDI File" in error_of(c.request("/musegen/continue", 111, "path", "text.mid"))
    assert "cannot open" in error_of(c.request("/musegen/continue", 112, "path", "missing.mid"))
    assert "no take 't9999'" in error_of(c.request("/musegen/accept", 113, "take", "t9999"))
    assert "nothing to undo" in error_of(c.request("/musegen/undo", 114))
    st = c.status()
    assert st["bad_path"] == 3 and st["failed"] == 5 and st["bad_input"] == 3
    assert done_of(c.request("/musegen/continue", 120, "bars", 1, "variations", 1))[0] == 120


def _bad_packets(n: int, seed: int = 0) -> list[bytes]:
    """Packets that are all invalid, each in exactly one way: random bytes, truncations, unknown
    addresses, wrong types, missing ids, absurd values, odd pairs, paths outside."""
    rng = random.Random(seed)
    bad_msgs = [
        dgram("/musegen/continue"), dgram("/musegen/continue", 1, "bars", 10**6),
        dgram("/musegen/continue", 2, "variations", 0), dgram("/musegen/continue", 3, "temperature", -1.0),
        dgram("/musegen/continue", 4, "temperature", float("nan")), dgram("/musegen/continue", b"\x00\x01"),
        dgram("/musegen/continue", 5, "bars"), dgram("/musegen/blend", 6, "styles", 3),
        dgram("/musegen/continue", 7, "path", "../../etc/passwd"), dgram("/musegen/frobnicate", 8),
        dgram("/musegen/accept", 9), dgram("/musegen/note", 10, 60), dgram("/synth/freq", 440.0),
        dgram("/musegen/regenerate", 11, "bars", "x-y", "take", "t1"), dgram("/musegen/continue", True),
        dgram("/musegen/morph", 12, "from", "alpha"), dgram("/musegen/continue", 13, 7, 7),
    ]
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 120))))
        elif kind == 1:
            m = rng.choice(bad_msgs)
            out.append(m[:rng.randrange(0, len(m))])
        elif kind == 2:
            out.append(rng.choice(bad_msgs))
        else:  # OSC-shaped garbage: a /musegen address with random type tags and junk data
            # (continue with an even number of values is an id + an odd list of pairs; a note
            # without clip/begin is refused; /musegen/x does not exist: all bad, whatever parses)
            tags = "".join(rng.choice("ifsbTFNhdx") for _ in range(rng.choice([0, 2, 4])))
            addr = rng.choice(["/musegen/continue", "/musegen/note", "/musegen/x"])
            body = addr.encode() + b"\x00" * (4 - len(addr) % 4)
            t = ("," + tags).encode()
            body += t + b"\x00" * (4 - len(t) % 4)
            body += bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 24)))
            out.append(body if tags and tags != "s" * len(tags) else body + b"\xff")
    return out


def test_10000_bad_packets_then_a_valid_request(client, fake_server):
    packets = _bad_packets(10_000)
    logged: list[str] = []
    fake_server._log = logged.append  # what `musegen serve` would print
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # takes the error replies
    sink.bind(("127.0.0.1", 0))
    try:
        for start in range(0, len(packets), 500):
            for p in packets[start:start + 500]:
                sink.sendto(p, fake_server.address)
            deadline = time.monotonic() + 30
            while fake_server.status()["packets"] < start + len(packets[start:start + 500]):
                assert time.monotonic() < deadline, "server stopped reading"
                time.sleep(0.01)
    finally:
        sink.close()
    st = client.status()
    assert st["packets"] == 10_000 + 1 and st["served"] == 0
    assert st["bad_input"] == 10_000, st
    assert st["bad_packets"] > 1000 and st["missing_id"] > 100 and st["bad_arguments"] > 1000
    assert st["unknown_address"] > 100 and st["bad_path"] > 50
    _, tid, path = done_of(client.request("/musegen/continue", "after", "bars", 2, "variations", 1))
    assert Clip.load(path).n_bars == 2
    assert client.status()["served"] == 1
    # each bad input is logged, but a flood is summarised instead of printing 10,000 lines
    assert 10 <= len([x for x in logged if x.startswith("error [")]) < 2000
    deadline = time.monotonic() + 5  # the summary comes once the flood is a second old
    while not any("more bad input(s) not logged" in x for x in logged):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_50_concurrent_requests_from_several_clients(fake_server):
    results: dict[int, dict] = {}

    def run_client(k: int) -> None:
        c = Client(fake_server.address)
        try:
            for rid in range(10):  # every client uses the same ids 0..9, each its own bars
                c.send("/musegen/continue", rid, "bars", k + 1, "variations", 1, "seed", rid)
            results[k] = {rid: c.wait(rid) for rid in range(10)}
        finally:
            c.close()

    threads = [threading.Thread(target=run_client, args=(k,)) for k in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [0, 1, 2, 3, 4]
    session = fake_server.session
    seen = set()
    for k, by_id in results.items():
        for rid, msgs in by_id.items():
            assert [a for a, _ in msgs][0] == "/musegen/ack"
            _, tid, path = done_of(msgs)
            assert tid not in seen
            seen.add(tid)
            rec = session.take(tid)
            assert rec.request_id == str(rid) and rec.n_bars == k + 1 and rec.seed == rid
    st = fake_server.status()
    assert st["served"] == 50 and st["bad_input"] == 0 and len(seen) == 50


def test_a_bundle_and_a_queue_limit(tmp_path, inbox_dir):
    server, session = make_server(tmp_path, inbox_dir, FakeStudio(delay=0.2), max_queue=1)
    c = Client(server.address)
    try:
        from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
        from pythonosc.osc_message_builder import OscMessageBuilder as MB

        b = OscBundleBuilder(IMMEDIATELY)
        for rid in (1, 2, 3):
            m = MB("/musegen/continue")
            for a in (rid, "bars", 1, "variations", 1):
                m.add_arg(a)
            b.add_content(m.build())
        c.send_raw(b.build().dgram)
        outcomes = [c.wait(rid) for rid in (1, 2, 3)]
        full = [error_of(m) for m in outcomes if m[-1][0] == "/musegen/error"]
        assert full and all("queue full" in e for e in full)
        assert c.status()["queue_full"] == len(full)
    finally:
        c.close()
        server.stop()
        session.close()


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_liblo_oscsend_and_oscdump_as_the_client(tmp_path, inbox_dir):
    if not (shutil.which("oscsend") and shutil.which("oscdump")):
        pytest.skip("liblo-tools (oscsend/oscdump) not installed: apt-get install liblo-tools")
    dump_port = _free_udp_port()
    session = Session.open(tmp_path / "session")
    server = OscServer(FakeStudio(), session, port=0, reply_to=("127.0.0.1", dump_port),
                       limits=Limits(allowed_dirs=(inbox_dir.resolve(),))).start()
    dump = subprocess.Popen(["oscdump", "-L", str(dump_port)], stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(dump.stdout.readline, "")), daemon=True)
    reader.start()
    port = str(server.address[1])

    def send(*args):
        subprocess.run(["oscsend", "localhost", port, *args], check=True, timeout=10)

    def wait_for(text):
        deadline = time.monotonic() + 20
        while not any(text in ln for ln in lines):
            assert time.monotonic() < deadline, f"{text!r} not in {lines[-5:]}"
            time.sleep(0.05)
        return [ln for ln in lines if text in ln]

    try:
        time.sleep(0.3)  # let oscdump bind
        send("/musegen/continue", "isisisi", "7", "bars", "2", "variations", "2", "seed", "3")
        wait_for("/musegen/ack i 7")
        [done] = wait_for("/musegen/done")
        _timetag, address, types, rid, tid, *paths = done.split()  # oscdump: "TT /addr tags args"
        assert (address, types, rid) == ("/musegen/done", "isss", "7") and len(paths) == 2
        tid = tid.strip('"')
        send("/musegen/accept", "sss", "a1", "take", tid)
        wait_for(f'/musegen/done sss "a1" "{tid}"')
        send("/musegen/continue", "isi", "8", "bars", "1000000")
        [err] = wait_for("/musegen/error")
        assert "bars must be in 1..64" in err
        send("/musegen/status", "s", "q")
        [st] = wait_for("/musegen/status")
        assert '"bad_input" 1' in st and '"served" 2' in st
        assert session.take(tid).status == "accepted"
    finally:
        dump.send_signal(signal.SIGTERM)
        dump.wait(5)
        server.stop()
        session.close()


def test_kill_9_during_generation_then_restart(tmp_path, inbox_dir, tiny_model_dir):
    folder = tmp_path / "song"
    shutil.copy(example_path("folk"), inbox_dir / "tune.mid")

    def serve():
        p = subprocess.Popen([sys.executable, "-m", "bridges.cli", "serve", "--osc-port", "0",
                              "--session", str(folder), "--model", str(tiny_model_dir),
                              "--device", "cpu", "--allow", str(inbox_dir), "--quiet"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        first = ""
        for line in p.stdout:
            first += line
            if "listening on udp://" in line:
                port = int(line.split("udp://")[1].split()[0].rsplit(":", 1)[1])
                return p, ("127.0.0.1", port), first
        raise AssertionError(f"serve did not start: {first}")

    proc, addr, _ = serve()
    c = Client(addr)
    try:
        _, tid, *paths = done_of(c.request("/musegen/continue", 1, "path", "tune.mid", "bars", 1,
                                           "variations", 2, "seed", 1, timeout=120))
        done_of(c.request("/musegen/accept", 2, "take", tid))
        c.send("/musegen/continue", 3, "take", tid, "bars", 64, "variations", 8)
        deadline = time.monotonic() + 60
        while not any(a == "/musegen/progress" and args[0] == 3 for a, args in c.inbox):
            c.pump()
            assert time.monotonic() < deadline
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    finally:
        c.close()
    accepted_bytes = Path(paths[0]).read_bytes()
    proc, addr, out = serve()
    c = Client(addr)
    try:
        st = c.status()
        assert st["takes"] == 3  # the import and the two takes of request 1
        with Session.open(folder, readonly=True) as s:
            assert s.take(tid).status == "accepted"
            assert s.take(tid).midi_path.read_bytes() == accepted_bytes
            assert Clip.load(s.take(tid).midi_path).n_bars == 1
            reqs = s.requests()
            assert reqs["3"]["operation"] == "continue"  # the killed request is on record
        listing = subprocess.run([sys.executable, "-m", "bridges.cli", "session", "list", str(folder),
                                  "--json"], cwd=ROOT, capture_output=True, text=True, check=True)
        assert f'"take": "{tid}"' in listing.stdout and '"status": "accepted"' in listing.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        c.close()
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()


def test_floats_from_max_and_pd_are_accepted_where_integral():
    r = parse_request("/musegen/continue", [3.0, "bars", 4.0, "variations", 2.0], LIM)
    assert r.id == 3 and r.params == {"bars": 4, "variations": 2}
