"""Session and take history: atomic takes, the journal, edit/undo, and crash recovery for real
(a subprocess writing takes is killed with SIGKILL, then the session is reopened)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from musegen import Clip, MidiFileError, Note, Track
from musegen.session import Session, SessionError
from musegen.session.journal import read_journal
from musegen.studio import Take

ROOT = Path(__file__).parents[1]


def small_clip(seed: int = 0, bars: int = 2) -> Clip:
    notes = tuple(Note(60 + (seed + i) % 12, 90, i * 480, 240) for i in range(bars * 4))
    return Clip(tracks=(Track(notes),), name=f"c{seed}")


def fake_take(clip: Clip, seed: int = 1) -> Take:
    return Take(clip=clip, operation="continue", params={"bars": clip.n_bars, "temperature": 1.0},
                seed=seed, model_id="fake@0", bars=(0, clip.n_bars))


@pytest.fixture
def session(tmp_path):
    s = Session.open(tmp_path / "song")
    yield s
    s.close()


def test_takes_are_files_and_the_journal_records_everything(session, tmp_path):
    first = session.import_clip(small_clip(0), source="riff.mid")
    session.log_request("r1", "continue", {"bars": 2}, client="127.0.0.1:9")
    recs = session.add_takes([fake_take(small_clip(1), 5), fake_take(small_clip(2), 6)],
                             parent=first.id, request_id="r1")
    assert [r.id for r in recs] == ["t0002", "t0003"]
    for r in recs:
        assert r.parent == first.id and r.request_id == "r1" and r.operation == "continue"
        assert Clip.load(r.midi_path).n_notes == 8
        side = json.loads(r.sidecar_path.read_text())
        assert side["take_id"] == r.id and side["parent"] == first.id and side["model_id"] == "fake@0"
        assert side["seed"] in (5, 6) and side["params"]["bars"] == 2 and "novelty" in side
    session.accept("t0002")
    session.reject("t0003")
    types = [e["type"] for e in session.entries()]
    assert types == ["take", "request", "take", "take", "accept", "reject"]
    lines = session.journal_path.read_text().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [1, 2, 3, 4, 5, 6]
    assert [t.status for t in session.takes()] == ["pending", "accepted", "rejected"]
    assert not list((tmp_path / "song").rglob("*.tmp"))


def test_edit_undo_and_lineage(session, tmp_path):
    a = session.import_clip(small_clip(0))
    [b] = session.add_takes([fake_take(small_clip(1))], parent=a.id)
    session.accept(b.id)
    edited = tmp_path / "my-edit.mid"
    small_clip(7, bars=3).save(edited)
    e = session.edit(b.id, edited)
    assert e.parent == b.id and e.operation == "edit" and e.source == str(edited.resolve())
    assert e.midi_path.read_bytes() == edited.read_bytes()  # the musician's file, byte for byte
    assert session.clip(e.id).n_bars == 3
    assert [r.id for r in session.lineage(e.id)] == [e.id, b.id, a.id]
    session.reject(a.id)
    # undo walks back: the reject, then the edit (hidden, files kept), then the accept
    undone, rec = session.undo()
    assert undone["type"] == "reject" and rec.status == "pending"
    undone, rec = session.undo()
    assert undone["type"] == "edit" and rec.undone and rec.midi_path.exists()
    assert e.id not in [t.id for t in session.takes()]
    assert e.id in [t.id for t in session.takes(include_undone=True)]
    undone, rec = session.undo()
    assert undone["type"] == "accept" and rec.id == b.id and rec.status == "pending"
    with pytest.raises(SessionError, match="nothing to undo"):
        session.undo()
    with pytest.raises(SessionError, match="t0099"):
        session.accept("t0099")


def test_bad_edits_are_refused_and_nothing_is_written(session, tmp_path):
    a = session.import_clip(small_clip(0))
    bad = tmp_path / "corrupt.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\xff\xff")
    with pytest.raises(MidiFileError, match="corrupt.mid"):
        session.edit(a.id, bad)
    with pytest.raises(MidiFileError, match="cannot open"):
        session.edit(a.id, tmp_path / "missing.mid")
    with pytest.raises(SessionError, match="no take"):
        session.edit("nope", small_clip(1))
    assert [t.id for t in session.takes()] == [a.id]
    assert sorted(p.name for p in session.takes_dir.iterdir()) == ["t0001.json", "t0001.mid"]


def test_state_survives_reopen_and_read_only_sees_it(tmp_path):
    with Session.open(tmp_path / "s") as s:
        a = s.import_clip(small_clip(0))
        s.accept(a.id)
        b = s.edit(a.id, small_clip(3))
    with Session.open(tmp_path / "s", readonly=True) as ro:
        assert [(t.id, t.status) for t in ro.takes()] == [(a.id, "accepted"), (b.id, "pending")]
        with pytest.raises(SessionError, match="read-only"):
            ro.accept(b.id)
    with Session.open(tmp_path / "s") as s:
        assert s.recovery.clean
        c = s.import_clip(small_clip(4))
        assert c.id == "t0003"


def test_one_writer_at_a_time(tmp_path):
    with Session.open(tmp_path / "s"):
        with pytest.raises(SessionError, match="another process"):
            Session.open(tmp_path / "s")
        Session.open(tmp_path / "s", readonly=True).close()


def test_refuses_folders_that_are_not_sessions(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("hello")
    with pytest.raises(SessionError, match="not empty"):
        Session.open(tmp_path / "busy")
    with pytest.raises(SessionError, match="no session.json"):
        Session.open(tmp_path / "nothing", readonly=True)


def test_recovery_from_every_partial_state(tmp_path):
    folder = tmp_path / "s"
    with Session.open(folder) as s:
        a = s.import_clip(small_clip(0))
        s.accept(a.id)
        b = s.import_clip(small_clip(1))
    takes = folder / "takes"
    # a crash between the sidecar and the journal entry: complete files, not journaled
    small_clip(2).save(takes / "t0003.mid")
    (takes / "t0003.json").write_text(json.dumps({"take_id": "t0003", "operation": "continue",
                                                   "parent": b.id, "n_bars": 2}))
    # a crash between the MIDI file and its sidecar
    small_clip(3).save(takes / "t0004.mid")
    # a MIDI file cut short (written without the atomic helper by someone else)
    (takes / "t0005.mid").write_bytes(small_clip(4).to_bytes()[:30])
    (takes / "t0005.json").write_text(json.dumps({"take_id": "t0005"}))
    # temp files of atomic writes cut short, and a torn last journal line
    (takes / ".t0006.mid.abc123.tmp").write_bytes(b"MThd\x00")
    (folder / ".session.json.x1.tmp").write_bytes(b"{")
    torn = b'{"seq": 4, "time": 1.0, "type": "acc'
    good_length = (folder / "journal.jsonl").stat().st_size
    with open(folder / "journal.jsonl", "ab") as f:
        f.write(torn)
    with Session.open(folder) as s:
        r = s.recovery
        assert r.torn_journal_bytes == len(torn) and r.adopted == ["t0003"]
        assert r.torn_tail_kept == f"orphans/journal-tail-{good_length}.bin"
        assert (folder / r.torn_tail_kept).read_bytes() == torn  # cut, but not thrown away
        assert f"({len(torn)} byte(s), kept in {r.torn_tail_kept}) cut" in r.summary()
        assert s.problems() == []  # a torn tail is a crash, not damage
        assert sorted(r.temp_files_removed) == [".session.json.x1.tmp", "takes/.t0006.mid.abc123.tmp"]
        assert sorted(r.orphaned) == ["t0004.mid", "t0005.json", "t0005.mid"]
        assert r.missing == []
        assert [(t.id, t.status) for t in s.takes()] == [(a.id, "accepted"), (b.id, "pending"),
                                                          ("t0003", "pending")]
        assert s.take("t0003").recovered and s.take("t0003").parent == b.id
        assert sorted(p.name for p in (folder / "orphans").iterdir()) == [
            f"journal-tail-{good_length}.bin", "t0004.mid", "t0005.json", "t0005.mid"]
        assert s.entries()[-1]["type"] == "recover"
        new = s.import_clip(small_clip(5))
        assert new.id == "t0006"  # never reuses an id seen on disk
    scan = read_journal(folder / "journal.jsonl")
    assert scan.torn_tail_bytes == 0 and scan.bad_lines == []
    with Session.open(folder) as s:
        assert s.recovery.clean


def test_a_garbled_line_in_the_middle_is_skipped_not_deleted(tmp_path):
    folder = tmp_path / "s"
    with Session.open(folder) as s:
        a = s.import_clip(small_clip(0))
    with open(folder / "journal.jsonl", "ab") as f:
        f.write(b"this is not json\n")
    with Session.open(folder) as s:
        s.accept(a.id)
    with Session.open(folder) as s:
        assert s.recovery.bad_journal_lines == [2]
        assert s.take(a.id).status == "accepted"
    assert b"this is not json" in (folder / "journal.jsonl").read_bytes()


WRITER = textwrap.dedent("""
    import sys
    from musegen import Clip, Note, Track
    from musegen.session import Session
    from musegen.studio import Take
    s = Session.open(sys.argv[1])
    i = 0
    while True:
        i += 1
        notes = tuple(Note(48 + (i + k) % 30, 80, k * 240, 200) for k in range(64))
        clip = Clip(tracks=(Track(notes),))
        if i % 3 == 0:
            rec = s.import_clip(clip)
        else:
            take = Take(clip=clip, operation="continue", params={"i": i}, seed=i, model_id="m")
            [rec] = s.add_takes([take], request_id=f"r{i}")
        print("take", rec.id, flush=True)
        if i % 2 == 0:
            s.accept(rec.id)
            print("accepted", rec.id, flush=True)
""")


def test_kill_9_while_writing_takes_loses_no_accepted_take(tmp_path):
    folder = tmp_path / "crashy"
    accepted, written = set(), set()
    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        n_acc, deadline = 0, time.monotonic() + 60
        while n_acc < 6 + 3 * round_ and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            kind, tid = line.split()
            (accepted if kind == "accepted" else written).add(tid)
            n_acc += kind == "accepted"
        os.kill(proc.pid, signal.SIGKILL)  # mid-write, most likely: the writer never pauses
        proc.wait()
        proc.stdout.close()
        assert n_acc >= 6, "the writer did not get going"
    with Session.open(folder) as s:
        assert s.recovery.missing == []
        for tid in accepted:
            rec = s.take(tid)
            assert rec.status == "accepted"
            assert Clip.load(rec.midi_path).n_notes == 64
            assert json.loads(rec.sidecar_path.read_text())["take_id"] == tid
        known = {t.id for t in s.takes()}
        assert written <= known
        assert not list(folder.rglob("*.tmp"))
        for t in s.takes():  # every take listed is complete
            assert Clip.load(t.midi_path).n_notes == 64
        seqs = [e["seq"] for e in s.entries()]
        assert seqs == sorted(set(seqs))


def test_session_command_line(tmp_path, capsys):
    from bridges.cli import main

    folder = tmp_path / "s"
    with Session.open(folder) as s:
        a = s.import_clip(small_clip(0))
        [b] = s.add_takes([fake_take(small_clip(1), 3)], parent=a.id)
    edited = tmp_path / "mine.mid"
    small_clip(5).save(edited)
    assert main(["session", "accept", str(folder), b.id]) == 0
    assert main(["session", "edit", str(folder), b.id, str(edited)]) == 0
    assert main(["session", "undo", str(folder)]) == 0
    assert "undid edit of t0003" in capsys.readouterr().out
    assert main(["session", "list", str(folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["take"], r["status"]) for r in rows] == [(a.id, "pending"), (b.id, "accepted")]
    assert main(["session", "list", str(folder), "--all"]) == 0
    assert "(undone)" in capsys.readouterr().out
    assert main(["session", "show", str(folder), b.id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["lineage"] == ["t0002 (continue)", "t0001 (import)"] and shown["sidecar"]["seed"] == 3
    assert main(["session", "export", str(folder), b.id, str(tmp_path / "out")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert Clip.load(tmp_path / "out" / f"s-{b.id}.mid").n_notes == 8
    assert main(["session", "log", str(folder)]) == 0
    assert [json.loads(x)["type"] for x in capsys.readouterr().out.splitlines()] == \
        ["take", "take", "accept", "edit", "undo"]
    assert main(["session", "reject", str(folder), "t0042"]) == 1
    assert "no take 't0042'" in capsys.readouterr().err
    assert main(["session", "list", str(tmp_path / "nowhere")]) == 1


# ------------------------------------------------ damage is reported, never guessed away
def _flip(path: Path, lineno: int, old: bytes, new: bytes) -> bytes:
    """Change `old` to `new` (same length) in line `lineno` (1-based); the damaged line."""
    assert len(old) == len(new)
    lines = path.read_bytes().split(b"\n")
    assert old in lines[lineno - 1]
    lines[lineno - 1] = lines[lineno - 1].replace(old, new, 1)
    path.write_bytes(b"\n".join(lines))
    return lines[lineno - 1]


def _two_accepted(folder: Path) -> None:
    with Session.open(folder) as s:
        a, b = s.import_clip(small_clip(0)), s.import_clip(small_clip(1))
        s.accept(a.id)  # journal line 3
        s.accept(b.id)


@pytest.mark.parametrize("old,new,named", [
    (b'"accept"', b'"aCbept"', "t0001"),  # two flipped bytes in the entry type: still JSON
    (b'"t0001"', b'"t0003"', "t0003"),  # one flipped digit: a valid-looking accept of another take
    (b'"take": "t0001"', b'"take"; "t0001"', "t0001"),  # not JSON any more
])
def test_a_damaged_accept_line_is_reported_until_resolved(tmp_path, capsys, monkeypatch, old, new,
                                                          named):
    from bridges.cli import main
    from bridges.commands.session import report_opening

    monkeypatch.setenv("COLUMNS", "200")  # the table on one line per take
    folder = tmp_path / "s"
    _two_accepted(folder)
    damaged = _flip(folder / "journal.jsonl", 3, old, new)
    for _ in range(3):  # every start reports it; the journal records it once
        with Session.open(folder) as s:
            [p] = s.problems()
            assert p.kind == "journal-line" and p.line == 3 and p.raw == damaged.decode()
            assert p.message.startswith("journal line 3 is damaged (") and p.takes == (named,)
            assert f"about {named}" in p.message and damaged.decode() in p.message
            assert s.take("t0001").status == "pending" and s.take("t0002").status == "accepted"
            assert s.in_doubt() == {named: [3]}
            assert s.recovery.torn_journal_bytes == 0 and s.recovery.bad_journal_lines == [3]
            report_opening(s, "musegen serve")
        err = capsys.readouterr().err
        assert "WARNING: journal line 3 is damaged" in err and "torn" not in err
        assert f"musegen session resolve {s.folder} 3" in err
    recovers = [e for e in read_journal(folder / "journal.jsonl").entries if e["type"] == "recover"]
    assert len(recovers) == 1 and [d["line"] for d in recovers[0]["damaged_lines"]] == [3]
    assert damaged in (folder / "journal.jsonl").read_bytes()  # never cut or "repaired"
    # session list warns, and marks the take the line names as in doubt
    assert main(["session", "list", str(folder), "--json"]) == 0
    out = capsys.readouterr()
    assert "WARNING: journal line 3 is damaged" in out.err
    rows = {r["take"]: r for r in json.loads(out.out)}
    assert rows["t0001"]["in_doubt"] == ([3] if named == "t0001" else [])
    assert main(["session", "list", str(folder)]) == 0
    table = capsys.readouterr().out
    assert ("pending (in doubt: line 3)" in table) == (named == "t0001")
    # the musician decides the take again and says the line is dealt with
    assert main(["session", "accept", str(folder), "t0001"]) == 0
    assert main(["session", "resolve", str(folder), "3"]) == 0
    capsys.readouterr()
    assert main(["session", "list", str(folder)]) == 0
    assert "WARNING" not in capsys.readouterr().err
    with Session.open(folder) as s:
        assert s.problems() == [] and s.take("t0001").status == "accepted"
        resolve = [e for e in s.entries() if e["type"] == "resolve"]
        assert [(e["line"], e["raw"]) for e in resolve] == [(3, damaged.decode())]
        with pytest.raises(SessionError, match="journal line 3 is not a damaged line"):
            s.resolve(3)
    assert len([e for e in read_journal(folder / "journal.jsonl").entries
                if e["type"] == "recover"]) == 1
    assert main(["session", "resolve", str(folder), "2"]) == 1
    assert "journal line 2 is not a damaged line" in capsys.readouterr().err


def test_a_damaged_take_line_keeps_its_intact_decisions(tmp_path):
    folder = tmp_path / "s"
    _two_accepted(folder)
    _flip(folder / "journal.jsonl", 1, b'"import"', b'"imXort"')  # the take entry of t0001
    with Session.open(folder, readonly=True) as ro:
        assert [t.id for t in ro.takes()] == ["t0002"] and [p.line for p in ro.problems()] == [1]
    with Session.open(folder) as s:
        # its complete files are adopted again; the intact accept of it still counts
        assert s.recovery.adopted == ["t0001"] and s.take("t0001").status == "accepted"
        assert [p.takes for p in s.problems()] == [("t0001",)]
        assert s.import_clip(small_clip(2)).id == "t0003"


def test_a_journal_from_before_checksums_still_reads(tmp_path):
    folder = tmp_path / "old"
    with Session.open(folder) as s:
        s.import_clip(small_clip(0))
        s.import_clip(small_clip(1))
    # rewrite it as musegen wrote sessions before: no checksums, no marker for them
    marker = json.loads((folder / "session.json").read_text())
    del marker["journal_checksums"]
    (folder / "session.json").write_text(json.dumps(marker))
    lines = [json.loads(x) for x in (folder / "journal.jsonl").read_text().splitlines()]
    (folder / "journal.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in e.items() if k != "crc"}) + "\n" for e in lines))
    with Session.open(folder) as s:
        assert s.recovery.clean and len(s.takes()) == 2
        s.accept("t0001")  # written with a checksum; from here on every line needs one
    with open(folder / "journal.jsonl", "a") as f:
        f.write(json.dumps({"seq": 9, "time": 1.0, "type": "reject", "take": "t0002"}) + "\n")
    with Session.open(folder, readonly=True) as s:
        assert s.take("t0001").status == "accepted" and s.take("t0002").status == "pending"
        [p] = s.problems()
        assert p.line == 4 and "no checksum" in p.message and p.takes == ("t0002",)


def test_damaged_and_missing_take_files_are_refused_with_the_file_named(tmp_path, capsys,
                                                                         monkeypatch):
    from bridges.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    folder = tmp_path / "s"
    with Session.open(folder) as s:
        a, b, c = (s.import_clip(small_clip(i)) for i in range(3))
        s.accept(a.id)
    side, mid = a.sidecar_path, b.midi_path
    os.chmod(side, 0o644)
    side.write_text('{"take_id": "t00')  # a corrupt sidecar on an accepted take
    mid.unlink()  # a take whose MIDI is gone
    for readonly in (True, False, False):
        with Session.open(folder, readonly=readonly) as s:
            assert s.recovery.missing == [a.id, b.id]
            assert s.take(a.id).damage.startswith(f"its sidecar {side} is unreadable")
            assert s.take(b.id).damage == f"its MIDI file {mid} is missing"
            assert [p.takes for p in s.problems()] == [(a.id,), (b.id,)]
            if readonly:
                continue
            for call in (lambda: s.accept(a.id), lambda: s.reject(a.id), lambda: s.sidecar(a.id),
                         lambda: s.export(a.id, tmp_path / "x"), lambda: s.clip(a.id)):
                with pytest.raises(SessionError, match=f"take {a.id} can't be used: its sidecar {side}"):
                    call()
            with pytest.raises(SessionError, match=f"take {b.id} can't be used: its MIDI file {mid} is missing"):
                s.accept(b.id)
            assert s.accept(c.id).status == "accepted"  # the intact take is fine
    recovers = [e for e in read_journal(folder / "journal.jsonl").entries if e["type"] == "recover"]
    assert len(recovers) == 1 and sorted(recovers[0]["damaged_takes"]) == [a.id, b.id]
    assert not (tmp_path / "x").exists()
    capsys.readouterr()
    assert main(["session", "show", str(folder), a.id]) == 1  # a clear error, not a traceback
    err = capsys.readouterr().err
    assert f"take {a.id} can't be used: its sidecar {side} is unreadable" in err
    assert main(["session", "list", str(folder), "--json"]) == 0
    out = capsys.readouterr()
    rows = {r["take"]: r for r in json.loads(out.out)}
    assert rows[a.id]["damage"].startswith(f"its sidecar {side}") and rows[c.id]["damage"] is None
    assert f"WARNING: take {b.id}: its MIDI file {mid} is missing" in out.err
    assert main(["session", "list", str(folder)]) == 0
    table = capsys.readouterr().out
    assert "sidecar DAMAGED" in table and "MIDI file MISSING" in table
    assert main(["session", "accept", str(folder), b.id]) == 1
    assert f"its MIDI file {mid} is missing" in capsys.readouterr().err


def test_osc_accept_of_a_missing_take_answers_an_error_and_keeps_serving(tmp_path):
    from bridges.osc.protocol import Limits
    from bridges.osc.server import OscServer
    from tests.test_osc import Client, FakeStudio, done_of, error_of

    folder = tmp_path / "s"
    with Session.open(folder) as s:
        a, b, c = (s.import_clip(small_clip(i)) for i in range(3))
    a.midi_path.unlink()  # gone before the server starts
    session = Session.open(folder)
    server = OscServer(FakeStudio(), session, port=0,
                       limits=Limits(allowed_dirs=(session.folder,))).start()
    client = Client(server.address)
    try:
        assert f"its MIDI file {a.midi_path} is missing" in error_of(client.request("/musegen/accept", 1, "take", a.id))
        b.midi_path.unlink()  # gone while it serves
        assert f"take {b.id} can't be used: its MIDI file {b.midi_path} is missing" in \
            error_of(client.request("/musegen/reject", 2, "take", b.id))
        assert "is missing" in error_of(client.request("/musegen/continue", 3, "take", b.id))
        assert done_of(client.request("/musegen/accept", 4, "take", c.id))[1] == c.id
        assert [t.status for t in session.takes()] == ["pending", "pending", "accepted"]
    finally:
        client.close()
        server.stop()
        session.close()
