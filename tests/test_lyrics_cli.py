"""`musegen lyrics` and `musegen melody` through `bridges.cli.main`: takes and sidecars written,
one syllable per note (read back with mido and Clip.load), lines and figures printed, and bad
input refused in one line naming the value (exit 1). Shipped models, CPU, one thread."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import pytest

from bridges.cli import main
from musegen import Clip
from musegen.lyrics import line_syllables
from musegen.lyrics.lm import SHIPPED
from musegen.lyrics.writer import onsets_of, phrases

DATA = Path(__file__).parent / "data" / "realworld"


@pytest.fixture(scope="module")
def tune(tmp_path_factory) -> Path:
    """Four bars of a real file: a melody track (30 onsets, two phrases) and a drum track."""
    path = tmp_path_factory.mktemp("tune") / "groove.mid"
    Clip.load(DATA / "drums.mid").slice_bars(0, 4).save(path)
    return path


@pytest.fixture(scope="module")
def studio():
    from musegen.studio import Studio

    return Studio(threads=1, device="cpu")


@pytest.fixture
def shared_studio(monkeypatch, studio):
    """The commands get one studio loaded for the module instead of loading their own."""
    import bridges.commands.lyrics as cmd

    monkeypatch.setattr(cmd, "_studio", lambda args, lyric_model=None: studio)
    return studio


def mido_lyrics(path: Path) -> list[str]:
    return [m.text for tr in mido.MidiFile(path).tracks for m in tr if m.type == "lyrics"]


def test_lyrics_writes_takes_with_one_syllable_per_note(tune, tmp_path, capsys):
    out = tmp_path / "takes"
    rc = main(["lyrics", str(tune), "--theme", "the sea", "--rhyme", "AA", "--variations", "2",
               "--candidates", "1", "--seed", "5", "--threads", "1", "--device", "cpu",
               "--lyric-model", str(SHIPPED), "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    src = Clip.load(tune)
    ons = onsets_of(src, 0)
    notes_per_phrase = [len(g) for g in phrases(src, 0)]
    assert sum(notes_per_phrase) == len(ons) == 30
    for i in (1, 2):
        mid, side = out / f"groove-lyrics-{i}.mid", out / f"groove-lyrics-{i}.json"
        assert mid.exists() and side.exists()
        meta = json.loads(side.read_text())
        assert meta["operation"] == "lyrics" and meta["params"]["track"] == 0
        lines = meta["params"]["lines"]
        assert meta["params"]["phrases"] == notes_per_phrase
        # each line has exactly as many syllables as its phrase has notes
        assert [len(line_syllables(ln)) for ln in lines] == notes_per_phrase
        assert meta["params"]["figures"]["syllable_fit"] == 1.0
        # one lyric event per onset of the melody track, as mido and Clip.load read the file
        back = Clip.load(mid)
        assert len(mido_lyrics(mid)) == len(back.lyrics) == len(ons)
        assert [n.lyric is not None for n in back.tracks[0].notes] == [True] * len(back.tracks[0].notes)
        assert back.n_notes == src.n_notes
        assert f"groove-lyrics-{i}.mid" in printed
        for ln in lines:
            assert ln in printed
    assert "syllable fit 100 %" in printed and "stress alignment" in printed and "rhyme fit" in printed
    # the same seed and inputs give the same lyrics
    again = tmp_path / "again"
    assert main(["lyrics", str(tune), "--theme", "the sea", "--rhyme", "AA", "--variations", "2",
                 "--candidates", "1", "--seed", "5", "--threads", "1", "--device", "cpu",
                 "--out", str(again)]) == 0
    for i in (1, 2):
        first = json.loads((out / f"groove-lyrics-{i}.json").read_text())["params"]["lines"]
        assert json.loads((again / f"groove-lyrics-{i}.json").read_text())["params"]["lines"] == first


def test_melody_writes_one_note_per_syllable(tmp_path, capsys):
    out = tmp_path / "takes"
    text = "Down by the river / where the cold wind blows"
    rc = main(["melody", text, "--style", "irish-dance", "--time-signature", "3/4", "--tempo", "90",
               "--variations", "2", "--seed", "3", "--threads", "1", "--device", "cpu",
               "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    n_syl = len(line_syllables("Down by the river where the cold wind blows"))
    for i in (1, 2):
        mid = out / f"down-by-the-river-melody-{i}.mid"
        meta = json.loads(mid.with_suffix(".json").read_text())
        assert meta["operation"] == "melody_for" and meta["params"]["time_signature"] == "3/4"
        f = meta["params"]["figures"]
        assert f["syllables"] == f["notes"] == n_syl and f["melismas"] == 0 and f["one_note_per_syllable"]
        back = Clip.load(mid)
        assert back.n_notes == n_syl and len(back.lyrics) == n_syl == len(mido_lyrics(mid))
        assert back.time_signatures[0].numerator == 3
        assert f"down-by-the-river-melody-{i}.mid" in printed
    assert "Down by the riv- er" in printed and "10 syllables, 10 notes, 0 melismas" in printed
    assert "stress on a beat" in printed


def test_melody_from_a_text_file_with_a_style_blend(tmp_path, shared_studio):
    lyric = tmp_path / "words.txt"
    lyric.write_text("Oh the summer time is coming\nAnd the trees are sweetly blooming\n", encoding="utf-8")
    out = tmp_path / "takes"
    assert main(["melody", "--text-file", str(lyric), "--style", "irish-dance=0.7",
                 "--style", "bach-chorale=0.3", "--variations", "1", "--seed", "1",
                 "--key", "D major", "--pitch-range", "60-79", "--max-leap", "5", "--out", str(out)]) == 0
    [mid] = sorted(out.glob("*.mid"))
    assert mid.name == "oh-the-summer-time-melody-1.mid"
    meta = json.loads(mid.with_suffix(".json").read_text())
    assert meta["params"]["styles"] == {"irish-dance": 0.7, "bach-chorale": 0.3}
    assert meta["params"]["lines"] == 2
    assert meta["params"]["max_leap"] == 5 and meta["params"]["figures"]["max_leap"] <= 5
    back = Clip.load(mid)
    assert all(60 <= n.pitch <= 79 for n in back.all_notes())
    assert len(back.lyrics) == back.n_notes == meta["params"]["figures"]["syllables"]


@pytest.mark.parametrize("argv,fragment", [
    (["lyrics", "{tmp}/missing.mid"], "missing.mid: cannot open"),
    (["lyrics", "{corrupt}"], "corrupt.mid"),
    (["lyrics", "{tune}", "--rhyme", "AB1"], "got 'AB1'"),
    (["lyrics", "{tune}", "--variations", "0"], "variations must be in 1..64, got 0"),
    (["lyrics", "{tune}", "--candidates", "99"], "candidates must be in 1..8, got 99"),
    (["lyrics", "{tune}", "--temperature", "nan"], "--temperature must be a finite number, got nan"),
    (["lyrics", "{tune}", "--top-p", "7"], "--top-p must be in 0.05..1.0, got 7"),
    (["lyrics", "{tune}", "--track", "9"], "track must be in 0..1, got 9"),
    (["lyrics", "{tune}", "--seed", "-4"], "--seed must be in 0..2147483647, got -4"),
    (["lyrics", "{tune}", "--lyric-model", "{tmp}/no-such-model"], "no-such-model"),
    (["melody", "   "], "text has no words to sing"),
    (["melody"], "give the lyric"),
    (["melody", "la la", "--text-file", "x.txt"], "give the lyric"),
    (["melody", "--text-file", "{tmp}/gone.txt"], "gone.txt"),
    (["melody", "la la la", "--time-signature", "5/4"], "--time-signature 5/4 is not supported"),
    (["melody", "la la la", "--variations", "1000"], "--variations must be in 1..64, got 1000"),
    (["melody", "la la la", "--tempo", "1e9"], "--tempo must be in 20.0..400.0"),
    (["melody", "la la la", "--pitch-range", "high"], "--pitch-range must look like 55-84, got 'high'"),
    (["melody", "la la la", "--style", "no-such-style"], "unknown style 'no-such-style'"),
    (["melody", "la la la", "--style", "irish-dance=lots"], "'irish-dance=lots'"),
    (["melody", "la la la", "--bars-per-line", "99"], "--bars-per-line must be in 1..16, got 99"),
    (["melody", "la " * 40], "syllables (at most 32)"),
])
def test_bad_input_is_one_line_naming_the_value(argv, fragment, tune, tmp_path, shared_studio, capsys):
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x10\x00\x90")
    argv = [a.format(tmp=tmp_path, tune=tune, corrupt=corrupt) for a in argv]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert fragment in err, err
    assert len(err.splitlines()) == 1 and err.startswith(f"musegen {argv[0]}: error: ")
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_no_lyric_model_is_refused(tune, tmp_path, capsys):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    assert main(["lyrics", str(tune), "--lyric-model", str(empty), "--threads", "1", "--device", "cpu",
                 "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "no Hugging Face model folder at" in err and "not-a-model" in err
