"""OSC /musegen/lyrics and /musegen/melody: the argument checks alone, then a real server on
127.0.0.1 over real UDP sockets with the shipped music and lyric models (CPU, one thread):
takes in the session with their lines as /musegen/lyrics/line replies, syllables on streamed
notes both ways, accept/undo on lyric takes, and malformed requests answered with
/musegen/error while the server keeps serving."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bridges.osc.jobs import lyric_messages
from bridges.osc.protocol import MELODY_METRES, Limits, ProtocolError, parse_request
from musegen import Clip
from musegen.lyrics import line_syllables
from musegen.lyrics.melody import METRES
from musegen.lyrics.writer import phrases
from tests.test_osc import Client, done_of, error_of, inbox_dir, make_server  # noqa: F401 - fixture

DATA = Path(__file__).parent / "data" / "realworld"
LIM = Limits(max_bars=64, max_variations=8)
TEXT = "Down by the river / where the cold wind blows"


# ------------------------------------------------------------------ protocol alone
def test_protocol_accepts_lyrics_and_melody_requests():
    r = parse_request("/musegen/lyrics", [1, "take", "t0003", "theme", "the sea", "rhyme", "abab",
                                          "variations", 2.0, "seed", 7, "temperature", 0.8,
                                          "top_p", 0.9, "candidates", 2, "track", 0], LIM)
    assert r.op == "lyrics" and r.params == {"take": "t0003", "theme": "the sea", "rhyme": "ABAB",
                                             "variations": 2, "seed": 7, "temperature": 0.8,
                                             "top_p": 0.9, "candidates": 2, "track": 0}
    assert parse_request("/musegen/lyrics", [2, "path", "a.mid", "rhyme", "none"], LIM).params["rhyme"] is None
    r = parse_request("/musegen/melody", ["m", "text", TEXT, "style", "irish-dance", "time_signature", "6/8",
                                          "tempo", 90, "key", "D major", "pitch_range", "60-79",
                                          "variations", 1, "bars_per_line", 2, "vary_rhythm", 0], LIM)
    assert r.params == {"text": TEXT, "style": "irish-dance", "time_signature": (6, 8), "tempo": 90.0,
                        "key": "D major", "pitch_range": (60, 79), "variations": 1, "bars_per_line": 2,
                        "vary_rhythm": False}
    r = parse_request("/musegen/melody", [3, "text", "la", "styles", "irish-dance=0.7 bach-chorale=0.3"], LIM)
    assert r.params["styles"] == {"irish-dance": 0.7, "bach-chorale": 0.3}
    r = parse_request("/musegen/note", [1, 60, 90, 0.5, 1, 0, "won-"], LIM)
    assert r.params["lyric"] == "won-"
    assert set(MELODY_METRES) == set(METRES)  # the protocol's list follows the library's


@pytest.mark.parametrize("address,args,fragment", [
    ("/musegen/lyrics", [1], "missing parameter 'take or path'"),
    ("/musegen/lyrics", [1, "take", "t1", "path", "a.mid"], "either take or path"),
    ("/musegen/lyrics", [1, "take", "t1", "rhyme", "AB1"], "got 'AB1'"),
    ("/musegen/lyrics", [1, "take", "t1", "rhyme", "ABCDEFGHIJKLMNOPQ"], "at most 16"),
    ("/musegen/lyrics", [1, "take", "t1", "candidates", 0], "candidates must be in 1..8, got 0"),
    ("/musegen/lyrics", [1, "take", "t1", "variations", 99], "variations must be in 1..8, got 99"),
    ("/musegen/lyrics", [1, "take", "t1", "temperature", float("nan")], "finite"),
    ("/musegen/lyrics", [1, "take", "t1", "top_p", 0.0], "top_p must be in 0.05..1.0, got 0.0"),
    ("/musegen/lyrics", [1, "take", "t1", "track", -1], "track must be in 0..63, got -1"),
    ("/musegen/lyrics", [1, "take", "t1", "theme", 5], "theme must be a string, got int 5"),
    ("/musegen/lyrics", [1, "take", "t1", "bars", 4], "unknown parameter 'bars'"),
    ("/musegen/melody", [1], "missing parameter 'text'"),
    ("/musegen/melody", [1, "text", ""], "text must be 1..1024 characters long"),
    ("/musegen/melody", [1, "text", "la", "time_signature", "5/4"], "5/4 is not supported for melodies"),
    ("/musegen/melody", [1, "text", "la", "style", "a", "styles", "a=1"], "either style or styles"),
    ("/musegen/melody", [1, "text", "la", "bars_per_line", 40], "bars_per_line must be in 1..16, got 40"),
    ("/musegen/melody", [1, "text", "la", "tempo", 1e9], "tempo must be in 20.0..400.0"),
    ("/musegen/melody", [1, "text", "la", "density", 4.0], "unknown parameter 'density'"),
    ("/musegen/note", [1, 60, 90, 0.0, 1.0, 0, 7], "syllable must be a string, got int 7"),
])
def test_protocol_refuses_bad_lyric_requests_naming_the_value(address, args, fragment):
    with pytest.raises(ProtocolError) as e:
        parse_request(address, args, LIM)
    assert fragment in str(e.value) and e.value.kind == "bad_arguments"


# ------------------------------------------------------------------ over UDP
@pytest.fixture(scope="module")
def studio():
    from musegen.studio import Studio

    return Studio(threads=1, device="cpu")


@pytest.fixture
def served(tmp_path, inbox_dir, studio):  # noqa: F811 - inbox_dir is test_osc's fixture
    server, session = make_server(tmp_path, inbox_dir, studio, max_bars=8, max_variations=4)
    c = Client(server.address)
    yield c, server, session, inbox_dir
    c.close()
    server.stop()
    session.close()


def _replies(msgs, address):
    return [args for a, args in msgs if a == address]


def test_melody_then_lyrics_on_its_take(served):
    c, server, session, _ = served
    msgs = c.request("/musegen/melody", 1, "text", TEXT, "style", "irish-dance", "time_signature", "3/4",
                     "variations", 2, "seed", 3, "stream", 1, timeout=120)
    kinds = [a for a, _ in msgs]
    assert kinds[0] == "/musegen/ack" and "/musegen/progress" in kinds and kinds[-1] == "/musegen/done"
    _, first, *paths = done_of(msgs)
    takes = _replies(msgs, "/musegen/take")
    assert [t[:3] for t in takes] == [[1, 0, first], [1, 1, Path(paths[1]).stem]]
    n_syl = len(line_syllables(TEXT.replace("/", " ")))
    # the lines of each take, in order, each with its syllable count
    lines = _replies(msgs, "/musegen/lyrics/line")
    assert lines == [[1, i, j, 5, text] for i in (0, 1)
                     for j, text in enumerate(["Down by the river", "where the cold wind blows"])]
    figs = [dict(zip(f[2::2], f[3::2])) for f in _replies(msgs, "/musegen/lyrics/figures")]
    assert len(figs) == 2 and all(f["syllables"] == f["notes"] == n_syl and f["melismas"] == 0
                                  and f["one_note_per_syllable"] == 1 for f in figs)
    # replies come take by take: take, its lines, its figures, then the streamed notes
    i_take1 = kinds.index("/musegen/take", kinds.index("/musegen/take") + 1)
    assert kinds[1 + kinds.index("/musegen/take"):][:4] == ["/musegen/lyrics/line", "/musegen/lyrics/line",
                                                            "/musegen/lyrics/figures", "/musegen/clip/begin"]
    assert i_take1 > kinds.index("/musegen/clip/end")
    notes = _replies(msgs, "/musegen/note")
    assert len(notes) == 2 * n_syl and all(len(n) == 7 for n in notes)  # the syllable rides along
    assert [n[6] for n in notes[:n_syl]] == Clip.load(paths[0]).lyrics
    rec = session.take(first)
    assert rec.operation == "melody_for" and rec.request_id == "1"
    assert session.sidecar(first)["params"]["figures"]["syllables"] == n_syl

    # lyrics for the melody take: new words onto its notes, one syllable per note
    msgs = c.request("/musegen/lyrics", 2, "take", first, "theme", "the sea", "rhyme", "AA",
                     "variations", 1, "seed", 11, "candidates", 1, timeout=120)
    _, lyr, path = done_of(msgs)
    assert _replies(msgs, "/musegen/take") == [[2, 0, lyr, path]]
    lines = _replies(msgs, "/musegen/lyrics/line")
    melody = Clip.load(paths[0])
    want = [len(g) for g in phrases(melody, 0)]
    assert [ln[3] for ln in lines] == want and [ln[:3] for ln in lines] == [[2, 0, i] for i in range(len(want))]
    assert [len(line_syllables(ln[4])) for ln in lines] == want
    [fig] = _replies(msgs, "/musegen/lyrics/figures")
    fig = dict(zip(fig[2::2], fig[3::2]))
    assert fig["syllable_fit"] == 1.0 and 0 <= fig["stress_alignment"] <= 1
    back = Clip.load(path)
    assert len(back.lyrics) == back.n_notes == melody.n_notes
    rec = session.take(lyr)
    assert rec.operation == "lyrics" and rec.parent == first
    assert session.sidecar(lyr)["params"]["lines"] == [ln[4] for ln in lines]
    # a lyric take is a take like any other: accept, undo
    assert done_of(c.request("/musegen/accept", 3, "take", lyr))[1] == lyr
    undone = c.request("/musegen/undo", 4)
    assert _replies(undone, "/musegen/undone") == [[4, "accept", lyr, "pending"]]
    assert session.take(lyr).status == "pending"
    st = c.status()
    assert st["served"] == 4 and st["failed"] == 0 and st["takes"] == 3


def test_lyrics_on_a_file_and_on_a_streamed_clip(served):
    c, server, session, inbox = served
    src = Clip.load(DATA / "drums.mid").slice_bars(0, 4)  # a melody track and a drum track
    src.save(inbox / "groove.mid")
    msgs = c.request("/musegen/lyrics", "a", "path", "groove.mid", "variations", 2, "seed", 2,
                     "candidates", 1, "rhyme", "none", timeout=120)
    _, first, *paths = done_of(msgs)
    assert len(paths) == 2
    imported = session.take(first).parent
    assert session.take(imported).operation == "import"
    want = [len(g) for g in phrases(src, 0)]
    for i, p in enumerate(paths):
        lines = [ln for ln in _replies(msgs, "/musegen/lyrics/line") if ln[1] == i]
        assert [ln[3] for ln in lines] == want
        assert [len(line_syllables(ln[4])) for ln in lines] == want
        assert len(Clip.load(p).lyrics) == sum(want)
    figs = [dict(zip(f[2::2], f[3::2])) for f in _replies(msgs, "/musegen/lyrics/figures")]
    assert all("rhyme_fit" not in f for f in figs)  # free verse: no rhyme figure (not a nil)

    # a clip streamed in, notes with their own syllables, then lyrics for it by take id
    c.send("/musegen/clip/begin", 5, "tempo", 100.0, "time_signature", "4/4")
    for k, (pitch, syl) in enumerate([(60, "Twin-"), (60, "kle"), (67, "twin-"), (67, "kle"),
                                      (69, "lit-"), (69, "tle"), (67, "star")]):
        c.send("/musegen/note", 5, pitch, 90, float(k), 2.0 if k == 6 else 0.9, 0, syl)
    c.send("/musegen/clip/end", 5)
    _, tid, tpath = done_of(c.wait(5))
    assert Clip.load(tpath).lyrics == ["Twin-", "kle", "twin-", "kle", "lit-", "tle", "star"]
    msgs = c.request("/musegen/lyrics", 6, "take", tid, "variations", 1, "seed", 1, "candidates", 1,
                     timeout=120)
    _, lyr, path = done_of(msgs)
    [line] = _replies(msgs, "/musegen/lyrics/line")
    assert line[3] == 7 and len(line_syllables(line[4])) == 7
    assert len(Clip.load(path).lyrics) == 7 and session.take(lyr).parent == tid


def test_malformed_lyric_requests_get_errors_and_the_server_keeps_serving(served):
    c, server, session, _ = served
    bad = [  # refused by the listener
        ("/musegen/lyrics", [10], "missing parameter 'take or path'"),
        ("/musegen/lyrics", [11, "take", "t0001", "rhyme", "A-B"], "got 'A-B'"),
        ("/musegen/lyrics", [12, "take", "t0001", "candidates", 50], "candidates must be in 1..8"),
        ("/musegen/lyrics", [13, "path", "../../etc/passwd"], "outside the allowed folders"),
        ("/musegen/melody", [14], "missing parameter 'text'"),
        ("/musegen/melody", [15, "text", TEXT, "variations", 0], "variations must be in 1..4, got 0"),
        ("/musegen/melody", [16, "text", TEXT, "time_signature", "7/8"], "7/8 is not supported"),
        ("/musegen/melody", [17, "text", TEXT, "styles", "irish-dance=x"], "must be a number"),
    ]
    for address, args, fragment in bad:
        assert fragment in error_of(c.request(address, *args))
    failing = [  # accepted, then refused by the studio or the session
        ("/musegen/lyrics", [20, "take", "t9999"], "no take 't9999'"),
        ("/musegen/lyrics", [21, "path", "missing.mid"], "cannot open"),
        ("/musegen/melody", [22, "text", "  ... !  "], "no words to sing"),
        ("/musegen/melody", [23, "text", "la " * 40], "syllables (at most 32)"),
        ("/musegen/melody", [24, "text", "one two / three four / five six / seven eight / nine ten"],
         "needs 10 bars; this server allows at most 8"),
        ("/musegen/melody", [25, "text", TEXT, "style", "no-such-style", "variations", 1],
         "unknown style 'no-such-style'"),
    ]
    for address, args, fragment in failing:
        msgs = c.request(address, *args, timeout=60)
        assert msgs[0][0] == "/musegen/ack"
        assert fragment in error_of(msgs)
    st = c.status()
    assert st["bad_arguments"] == 7 and st["bad_path"] == 1 and st["failed"] == len(failing)
    assert st["takes"] == 0 and st["served"] == 0
    _, tid, path = done_of(c.request("/musegen/melody", 30, "text", "one two three", "variations", 1,
                                     "seed", 1, timeout=60))
    assert Clip.load(path).lyrics == ["one", "two", "three"]
    assert c.status()["served"] == 1


def test_lyric_messages_leave_out_missing_figures():
    class T:
        operation = "lyrics"
        params = {"phrases": [3, 4], "lines": ["a b c", "d e f g"],
                  "figures": {"syllable_fit": 1.0, "rhyme_fit": None, "stress_alignment": 0.5}}

    assert lyric_messages(9, 1, T()) == [
        ("/musegen/lyrics/line", [9, 1, 0, 3, "a b c"]), ("/musegen/lyrics/line", [9, 1, 1, 4, "d e f g"]),
        ("/musegen/lyrics/figures", [9, 1, "syllable_fit", 1.0, "stress_alignment", 0.5])]


def test_serve_refuses_a_lyric_model_folder_that_is_not_one(tmp_path, capsys):
    from bridges.cli import main

    (tmp_path / "lm").mkdir()
    shutil.copy(DATA / "drums.mid", tmp_path / "lm" / "x.mid")
    rc = main(["serve", "--osc-port", "0", "--session", str(tmp_path / "s"), "--threads", "1",
               "--device", "cpu", "--lyric-model", str(tmp_path / "lm")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "no Hugging Face model folder at" in err and str(tmp_path / "lm") in err


def test_a_cancelled_lyrics_request_leaves_no_takes(served):
    c, server, session, inbox = served
    Clip.load(DATA / "drums.mid").slice_bars(0, 4).save(inbox / "groove.mid")
    c.send("/musegen/lyrics", 40, "path", "groove.mid", "variations", 1, "candidates", 1)
    c.send("/musegen/cancel", 41, "request", 40)
    assert done_of(c.wait(41)) == [41, 40]
    assert "cancelled" in error_of(c.wait(40, timeout=60))
    assert not [t for t in session.takes() if t.operation == "lyrics"]
    assert c.status()["cancelled"] == 1
