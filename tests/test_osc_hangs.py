"""Nothing hangs, and one client cannot act on another's request (issue 12, section 4), over real
UDP sockets on 127.0.0.1 with the fast fake studio of test_osc: a FIFO in an allowed folder, an
honest cancel, two clients on one host using the same ids, and a file imported once."""

import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from bridges.osc import server as osc_server
from bridges.osc.protocol import Limits
from bridges.osc.server import OscServer
from musegen import Clip, MidiFileError, Note, Track
from musegen.clip import read_regular_file
from musegen.examples import example_path
from musegen.session import Session
from tests.test_osc import Client, FakeStudio, done_of, error_of, make_server


@pytest.fixture
def inbox_dir(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    return d


def _within(seconds: float, fn, *args):
    """fn(*args) on a thread; fails (instead of hanging the suite) if it does not return."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{getattr(fn, '__name__', fn)} still blocked after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def _raises(fn, *args) -> str:
    try:
        fn(*args)
    except MidiFileError as e:
        return str(e)
    raise AssertionError(f"{fn.__name__}{args} did not raise")


# ------------------------------------------------------------- regular files only
def test_only_regular_files_are_read(tmp_path):
    fifo = tmp_path / "fifo.mid"
    os.mkfifo(fifo)
    (tmp_path / "folder.mid").mkdir()
    (tmp_path / "empty.mid").write_bytes(b"")
    os.symlink(fifo, tmp_path / "link-to-fifo.mid")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp_path / "socket.mid"))
    try:
        for name, says in [("fifo.mid", "is a FIFO"), ("link-to-fifo.mid", "is a FIFO"),
                           ("folder.mid", "is a folder"), ("socket.mid", "is a socket"),
                           ("empty.mid", "the file is empty"), ("missing.mid", "cannot open")]:
            for reader in (read_regular_file, Clip.load):
                msg = _within(5, _raises, reader, tmp_path / name)
                assert says in msg and name in msg, msg
        assert "is a device" in _within(5, _raises, Clip.load, "/dev/zero")
        big = tmp_path / "big.mid"
        big.write_bytes(b"MThd" + bytes(100))
        assert "104 bytes is larger than the 50 limit" in _raises(read_regular_file, big, 50)
        assert read_regular_file(example_path("folk")) == example_path("folk").read_bytes()
    finally:
        sock.close()


def test_a_file_swapped_for_a_fifo_after_its_check_is_still_refused(tmp_path, monkeypatch):
    """The race: stat() saw a regular file, then a FIFO took its place before open(). The open
    must not wait for a writer, and fstat() on what was opened refuses it."""
    fifo = tmp_path / "swapped.mid"
    os.mkfifo(fifo)
    regular = os.stat(example_path("folk"))
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: regular if Path(p) == fifo else real_stat(p, *a, **k))
    assert stat.S_ISREG(os.stat(fifo).st_mode)  # what the first check sees
    assert "is a FIFO" in _within(5, _raises, read_regular_file, fifo)


def test_a_session_never_blocks_on_a_fifo(tmp_path):
    fifo = tmp_path / "fifo.mid"
    os.mkfifo(fifo)
    with Session.open(tmp_path / "s") as s:
        rec = s.import_clip(example_path("folk"))
        assert "is a FIFO" in _within(5, _raises, s.import_clip, fifo)
        assert "is a FIFO" in _within(5, _raises, s.edit, rec.id, fifo)
        assert [t.id for t in s.takes()] == [rec.id]


def test_a_fifo_in_an_allowed_folder_gets_an_error_and_the_workers_go_on(tmp_path, inbox_dir):
    server, session = make_server(tmp_path, inbox_dir, FakeStudio())
    c = Client(server.address)
    try:
        os.mkfifo(inbox_dir / "fifo.mid")
        err = error_of(c.request("/musegen/continue", 1, "path", "fifo.mid", timeout=5))
        assert "fifo.mid: is a FIFO (named pipe), not a regular file" in err
        _, tid, _ = done_of(c.request("/musegen/continue", 2, "bars", 1, "variations", 1, timeout=5))
        assert "is a FIFO" in error_of(c.request("/musegen/edit", 3, "take", tid, "path", "fifo.mid",
                                                 timeout=5))
        # the session worker is free: a later accept is answered
        assert done_of(c.request("/musegen/accept", 4, "take", tid, timeout=5))[1] == tid
        st = c.status()
        assert st["failed"] == 2 and st["served"] == 2 and st["running"] == "" and st["queued"] == 0
    finally:
        c.close()
        server.stop()
        session.close()


# ------------------------------------------------------------------ honest cancel
class StubbornStudio(FakeStudio):
    """Generates for `seconds` and never looks at `cancelled` (like a stage that can't stop);
    listing the styles takes `seconds` too (the session worker's jobs never stop midway)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self._styles = self.styles

    @property
    def styles(self):
        time.sleep(getattr(self, "seconds", 0))
        return self._styles

    @styles.setter
    def styles(self, value):
        self._styles = value

    def continue_(self, clip, bars=8, variations=4, style=None, **kw):
        kw["on_progress"](0.5)
        time.sleep(self.seconds)
        kw.pop("cancelled")
        return FakeStudio.continue_(self, clip, bars, variations, style, **kw)


def _wait_progress(c: Client, rid, at_least: float = 0.0) -> None:
    deadline = time.monotonic() + 10
    while not any(a == "/musegen/progress" and args[0] == rid and args[1] >= at_least
                  for a, args in c.inbox):
        c.pump()
        assert time.monotonic() < deadline, "no progress"


def test_cancel_says_done_only_when_the_job_stopped(tmp_path, inbox_dir):
    server, session = make_server(tmp_path, inbox_dir, FakeStudio(delay=0.3))
    c = Client(server.address)
    try:
        c.send("/musegen/continue", 1, "bars", 1)
        _wait_progress(c, 1)
        c.send("/musegen/cancel", 2, "request", 1)
        t0 = time.monotonic()
        finals = []  # the final replies of 1 and 2, in the order they arrive
        while len(finals) < 2:
            assert time.monotonic() - t0 < 2, c.inbox
            c.pump()
            finals = [(a, args) for a, args in c.inbox
                      if a in ("/musegen/done", "/musegen/error") and args[0] in (1, 2)]
        # the cancel's done comes once the job has stopped, after the job's own error
        assert finals == [("/musegen/error", [1, "cancelled while generating"]),
                          ("/musegen/done", [2, 1])]
        assert c.status()["cancelled"] == 1
    finally:
        c.close()
        server.stop()
        session.close()


def test_a_cancel_that_could_not_stop_the_job_says_so(tmp_path, inbox_dir, monkeypatch):
    monkeypatch.setattr(osc_server, "CANCEL_WAIT_S", 0.4)
    server, session = make_server(tmp_path, inbox_dir, StubbornStudio(seconds=1.0))
    c = Client(server.address)
    try:
        # the job runs on past the cancel's wait: the cancel says it is still running...
        c.send("/musegen/continue", 1, "bars", 1, "variations", 1)
        _wait_progress(c, 1, 0.5)  # inside the studio (0.0 comes when the job starts)
        t0 = time.monotonic()
        err = error_of(c.request("/musegen/cancel", 2, "request", 1, timeout=5))
        assert time.monotonic() - t0 < 1.0
        assert err == ("request 1 has not stopped 0.4 s after the cancel: it is still running "
                       "(its own reply will say how it ended)")
        # ...and the job's own reply says how it ended: stopped once generating was over
        assert error_of(c.wait(1, timeout=5)) == "cancelled while generating"
        assert session.takes() == []

        # a job that finishes anyway (listing styles never stops midway): not stopped
        monkeypatch.setattr(osc_server, "CANCEL_WAIT_S", 5.0)
        c.send("/musegen/styles", 3)
        time.sleep(0.3)  # the idle session worker has started it (it takes 1 s)
        c.send("/musegen/cancel", 4, "request", 3)
        assert done_of(c.wait(3, timeout=5)) == [3, 3]
        assert error_of(c.wait(4, timeout=5)) == \
            "request 3 was not stopped: it finished before the cancel took effect"
        st = c.status()
        assert st["served"] == 1 and st["cancelled"] == 1
    finally:
        c.close()
        server.stop()
        session.close()


# ------------------------------------------------- two clients on one machine
def test_two_clients_on_one_host_with_the_same_ids_do_not_cross(tmp_path, inbox_dir):
    server, session = make_server(tmp_path, inbox_dir, FakeStudio(delay=0.3))
    a, b = Client(server.address), Client(server.address)
    try:
        a.send("/musegen/continue", 7, "bars", 1, "variations", 1, "seed", 1)
        b.send("/musegen/continue", 7, "bars", 2, "variations", 1, "seed", 2)  # queued behind a's
        _wait_progress(a, 7)
        assert done_of(b.request("/musegen/cancel", 8, "request", 7, timeout=5)) == [8, 7]
        assert "cancelled" in error_of(b.wait(7, timeout=5))
        msgs = a.wait(7, timeout=10)
        assert [m[0] for m in msgs][0] == "/musegen/ack"
        _, tid, _ = done_of(msgs)  # a's request 7 was not touched by b's cancel
        assert session.take(tid).n_bars == 1 and session.take(tid).seed == 1
        assert "no request 7 from 127.0.0.1:" in error_of(a.request("/musegen/cancel", 9, "request", 7))

        # two clips streamed under one id at the same time stay two clips
        a.send("/musegen/clip/begin", 20, "tempo", 100.0)
        b.send("/musegen/clip/begin", 20, "tempo", 140.0)
        for k in range(4):
            a.send("/musegen/note", 20, 60 + k, 90, float(k), 1.0, 0)
            b.send("/musegen/note", 20, 72 + k, 90, float(k), 0.5, 0)
        a.send("/musegen/clip/end", 20)
        b.send("/musegen/clip/end", 20)
        clips = {}
        for who, cl in (("a", a), ("b", b)):
            _, tid, path = done_of(cl.wait(20, timeout=5))
            clips[who] = Clip.load(path)
        assert [n.pitch for n in clips["a"].all_notes()] == [60, 61, 62, 63]
        assert [n.pitch for n in clips["b"].all_notes()] == [72, 73, 74, 75]
        assert [round(clips[w].tempos[0].qpm, 2) for w in "ab"] == [100, 140]
        assert a.status()["duplicate_id"] == 0
    finally:
        a.close()
        b.close()
        server.stop()
        session.close()


def test_with_a_reply_port_every_sender_is_one_client(tmp_path, inbox_dir):
    """--reply-port: replies all go to one address, so the sender's (throw-away) port is not
    part of a request's key: oscsend-style clients, one new port per message, can still stream
    a clip and cancel; a second clip under an open id is refused instead of merged."""
    sink = Client(("127.0.0.1", 9))  # receives every reply
    session = Session.open(tmp_path / "session")
    server = OscServer(FakeStudio(delay=0.3), session, port=0, reply_to=sink.sock.getsockname(),
                       limits=Limits(allowed_dirs=(inbox_dir.resolve(),))).start()

    def send(*msg):  # every message from a new port, like oscsend
        c = Client(server.address)
        c.send(*msg)
        c.close()

    try:
        send("/musegen/clip/begin", 20)
        for k in range(3):
            send("/musegen/note", 20, 60 + k, 90, float(k), 1.0, 0)
        send("/musegen/clip/begin", 20)
        send("/musegen/clip/end", 20)
        deadline = time.monotonic() + 5
        while not any(a == "/musegen/done" and args[0] == 20 for a, args in sink.inbox):
            sink.pump()
            assert time.monotonic() < deadline, sink.inbox
        [err] = [args[1] for a, args in sink.inbox if a == "/musegen/error" and args[0] == 20]
        assert err.startswith("clip 20 is already being streamed by this client")
        [(_, _, path)] = [args for a, args in sink.inbox if a == "/musegen/done" and args[0] == 20]
        assert [n.pitch for n in Clip.load(path).all_notes()] == [60, 61, 62]
        send("/musegen/continue", 21, "bars", 1)
        deadline = time.monotonic() + 5
        while not any(a == "/musegen/progress" and args[0] == 21 for a, args in sink.inbox):
            sink.pump()
            assert time.monotonic() < deadline
        send("/musegen/cancel", 22, "request", 21)
        assert "cancelled" in error_of(sink.wait(21, timeout=5))
        assert done_of(sink.wait(22, timeout=5)) == [22, 21]
    finally:
        server.stop()
        session.close()
        sink.close()


# ------------------------------------------------------------- imported once
def test_a_path_is_imported_once_however_often_it_is_named(tmp_path, inbox_dir):
    riff = Clip(tracks=(Track(tuple(Note(60 + i % 5, 90, i * 240, 200) for i in range(2000))),))
    riff.save(inbox_dir / "riff.mid")
    (inbox_dir / "copy.mid").write_bytes((inbox_dir / "riff.mid").read_bytes())
    example = inbox_dir / "folk.mid"
    example.write_bytes(example_path("folk").read_bytes())
    server, session = make_server(tmp_path, inbox_dir, FakeStudio())
    c = Client(server.address)

    def parent_of(rid, path):
        _, tid, _ = done_of(c.request("/musegen/continue", rid, "path", path, "bars", 1, "variations", 1))
        return session.take(tid).parent

    def stored_bytes():
        return sum(p.stat().st_size for p in session.takes_dir.glob("*.mid"))

    try:
        first = parent_of(1, "riff.mid")
        after_first = stored_bytes()
        assert parent_of(2, "riff.mid") == first and parent_of(3, "copy.mid") == first
        imports = [t for t in session.takes() if t.operation == "import"]
        assert [t.id for t in imports] == [first]
        size = (inbox_dir / "riff.mid").stat().st_size
        assert stored_bytes() - after_first < size  # three requests, one copy of the file
        other = parent_of(4, "folk.mid")
        assert other != first and session.take(other).operation == "import"
    finally:
        c.close()
        server.stop()
        session.close()
    # a restarted server finds the earlier import by its content too
    server, session = make_server(tmp_path, inbox_dir, FakeStudio())
    c = Client(server.address)
    try:
        assert parent_of(5, "copy.mid") == first
        assert len([t for t in session.takes() if t.operation == "import"]) == 2
    finally:
        c.close()
        server.stop()
        session.close()
