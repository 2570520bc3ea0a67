"""Building on a take inherits its style and parameters; drum tracks are flagged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from musegen import Clip
from musegen.studio import DRUMS_UNTRAINED, Studio, Take

ROOT = Path(__file__).parents[1]
FOLK = ROOT / "musegen" / "data" / "examples" / "folk.mid"


@pytest.fixture(scope="module")
def studio(tiny_model_dir) -> Studio:
    return Studio(tiny_model_dir, device="cpu", threads=1)


def test_continue_and_regenerate_of_a_take_inherit_its_style_and_parameters(studio, tmp_path):
    first = studio.continue_(Clip.load(FOLK), bars=1, variations=1, seed=1, style="beta",
                             temperature=0.7, key="D major", max_leap=7)[0]
    again = Take.load(first.save(tmp_path / "first.mid"))
    assert again.id == first.id
    for t in (studio.continue_(again, bars=1, variations=1, seed=2),
              studio.regenerate(again, bars=(1, 1), variations=1, seed=2)):
        p = t[0].params
        assert p["styles"] == {"beta": 1.0}
        assert (p["temperature"], p["key"], p["max_leap"]) == (0.7, "D major", 7)
        assert {"style", "temperature", "key", "max_leap"} <= set(p["inherited"])
        assert t[0].parent == first.id
    over = studio.continue_(again, bars=1, variations=1, seed=2, style="gamma", temperature=1.2)[0]
    assert over.params["styles"] == {"gamma": 1.0} and over.params["temperature"] == 1.2
    bare = studio.continue_(again, bars=1, variations=1, seed=2, style="none")[0]
    assert bare.params["styles"] is None


def test_the_cli_continues_a_take_file_in_its_style(tiny_model_dir, tmp_path):
    first = tmp_path / "a"
    run = [sys.executable, "-m", "musegen", "continue", "--model", str(tiny_model_dir), "--bars", "1",
           "--variations", "1", "--threads", "1"]
    subprocess.run(run + [str(FOLK), "--style", "alpha", "--temperature", "0.6", "--out", str(first)],
                   check=True, capture_output=True, cwd=ROOT)
    take = sorted(first.glob("*.mid"))[0]
    subprocess.run(run + [str(take), "--out", str(tmp_path / "b")], check=True, capture_output=True, cwd=ROOT)
    side = json.loads(sorted((tmp_path / "b").glob("*.json"))[0].read_text())
    assert side["params"]["styles"] == {"alpha": 1.0} and side["params"]["temperature"] == 0.6


def test_drum_tracks_are_flagged_as_untrained(studio):
    drums = Clip.load(ROOT / "tests" / "data" / "realworld" / "drums.mid")
    assert any(t.is_drum for t in drums.tracks)
    take = studio.continue_(drums, bars=1, variations=1, seed=1)[0]
    assert DRUMS_UNTRAINED in take.params["warnings"]
    plain = studio.continue_(Clip.load(FOLK), bars=1, variations=1, seed=1)[0]
    assert DRUMS_UNTRAINED not in plain.params.get("warnings", [])


def test_the_cli_says_when_drums_are_untrained(tiny_model_dir, tmp_path):
    drums = ROOT / "tests" / "data" / "realworld" / "drums.mid"
    out = subprocess.run([sys.executable, "-m", "musegen", "continue", str(drums), "--model", str(tiny_model_dir),
                          "--bars", "1", "--variations", "1", "--threads", "1", "--out", str(tmp_path)],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    assert "trained without drums" in out.stdout + out.stderr
