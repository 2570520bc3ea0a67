"""Takes the CLI writes into `--out` never overwrite earlier ones: names number on from the
highest already there (`musegen.session.files.write_numbered_takes`, the one place that picks
them), every command that writes takes uses it, and the command says where it wrote them."""

import hashlib
import threading
from pathlib import Path

import pytest

from bridges.cli import main
from musegen import Clip, Note, Track
from musegen.examples import example_path
from musegen.session.files import create_new, next_take_number, write_numbered_takes
from musegen.studio import Take


def take(seed: int) -> Take:
    notes = tuple(Note(60 + (seed + i) % 12, 90, i * 480, 240) for i in range(8))
    return Take(clip=Clip(tracks=(Track(notes),)), operation="continue", params={"bars": 2},
                seed=seed, model_id="fake@0", bars=(0, 2))


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_numbers_count_on_and_nothing_is_replaced(tmp_path):
    out = tmp_path / "d"
    first = write_numbered_takes([take(1), take(2)], out, "folk-regenerate")
    assert [p.name for p in first] == ["folk-regenerate-1.mid", "folk-regenerate-2.mid"]
    before = digests(out)
    second = write_numbered_takes([take(3), take(4)], out, "folk-regenerate")
    assert [p.name for p in second] == ["folk-regenerate-3.mid", "folk-regenerate-4.mid"]
    after = digests(out)
    assert {k: after[k] for k in before} == before  # the first run's takes are untouched
    assert len(after) == 8 and Clip.load(second[1]).n_notes == 8
    assert '"seed": 4' in second[1].with_suffix(".json").read_text()
    # a gap is not refilled, a lone sidecar holds its number, another stem has its own count
    (out / "folk-regenerate-2.mid").unlink()
    (out / "folk-regenerate-9.json").write_text("{}")
    (out / "folk-continue-12.mid").write_bytes(b"not mine")
    assert next_take_number(out, "folk-regenerate") == 10
    assert [p.name for p in write_numbered_takes([take(5)], out, "folk-continue")] == ["folk-continue-13.mid"]
    assert (out / "folk-continue-12.mid").read_bytes() == b"not mine"
    assert not list(out.glob(".*.tmp"))


def test_create_new_refuses_an_existing_file(tmp_path):
    p = tmp_path / "x.mid"
    create_new(p, b"one")
    with pytest.raises(FileExistsError):
        create_new(p, b"two")
    assert p.read_bytes() == b"one" and not list(tmp_path.glob(".*.tmp"))


def test_two_writers_at_once_get_distinct_names(tmp_path):
    out, results = tmp_path / "d", []
    threads = [threading.Thread(target=lambda s=s: results.extend(
        write_numbered_takes([take(s), take(s + 100)], out, "a-b"))) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in results) == sorted(f"a-b-{i}.mid" for i in range(1, 13))
    assert len(list(out.glob("*.json"))) == 12


@pytest.fixture
def tiny_studio(monkeypatch, tiny_model_dir):
    import bridges.commands.generate as gen
    from musegen.studio import Studio

    studio = Studio(model=tiny_model_dir, device="cpu", threads=1)
    monkeypatch.setattr(gen, "_studio", lambda args: studio)
    monkeypatch.setenv("COLUMNS", "200")
    return studio


def test_regenerate_twice_into_one_folder_keeps_both_runs(tmp_path, capsys, tiny_studio):
    out = tmp_path / "d"
    argv = ["regenerate", str(example_path("folk")), "--bars", "5-6", "--variations", "2",
            "--out", str(out)]
    assert main([*argv, "--seed", "1"]) == 0
    first, printed_first = digests(out), capsys.readouterr().out
    assert main([*argv, "--seed", "7"]) == 0
    printed = capsys.readouterr().out
    now = digests(out)
    assert len(now) == 8 and {k: now[k] for k in first} == first  # the first run's takes are kept
    assert "wrote folk-regenerate-1.mid, folk-regenerate-2.mid (+ .json sidecars) in" in printed_first
    assert "wrote folk-regenerate-3.mid, folk-regenerate-4.mid" in printed and "kept" in printed
    assert "folk-regenerate-4.mid" in printed.split("wrote")[0]  # the table names it in full
    assert main(["continue", str(example_path("folk")), "--bars", "1", "--variations", "1",
                 "--seed", "1", "--out", str(out)]) == 0
    assert "wrote folk-continue-1.mid" in capsys.readouterr().out


def test_melody_twice_numbers_on_and_prints_the_real_names(tmp_path, capsys, monkeypatch, tiny_studio):
    import bridges.commands.lyrics as cmd

    monkeypatch.setattr(cmd, "_studio", lambda args, lyric_model=None: tiny_studio)
    out = tmp_path / "m"
    for _ in range(2):
        assert main(["melody", "Down by the river", "--style", "alpha", "--variations", "1",
                     "--seed", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.mid")) == ["down-by-the-river-melody-1.mid",
                                                        "down-by-the-river-melody-2.mid"]
    assert "\ndown-by-the-river-melody-2.mid  (" in printed  # the per-take lines name the real file


def test_demo_twice_keeps_the_first_takes(tmp_path, capsys, monkeypatch):
    import musegen.studio
    from tests.test_osc import FakeStudio

    class DemoStudio(FakeStudio):  # instant takes (real Take and Clip objects) in the demo's style
        style_names = ["irish-dance"]
        model_id, device = "fake@0", "cpu"

    monkeypatch.setattr(musegen.studio, "Studio", lambda model=None: DemoStudio())
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    first = digests(out)
    assert main(["demo", "--out", str(out), "--seed", "9"]) == 0
    now = digests(out)
    assert len(first) == 8 and len(now) == 16 and {k: now[k] for k in first} == first
    assert "wrote folk-continue-5.mid, folk-continue-6.mid, folk-continue-7.mid, folk-continue-8.mid" \
        in capsys.readouterr().out
