"""Same seed, same lyrics: the lines of a few seeded `lyrics_for` takes from the shipped lyric
model, committed (the lyric counterpart of `test_golden_takes`).

A change to what the lyric model is fed or how its tokens and end words are drawn (phrasing,
the rhyme pool, the allowed-token rules, the draw) fails here; a change meant to alter lyrics
regenerates the file with `python -m tests.test_golden_lyrics` and says why in its commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "data" / "golden_lyrics.json"
REAL = Path(__file__).parent / "data" / "realworld"


def requests() -> dict:
    from musegen import Clip

    chorale = Clip.load(REAL / "lyrics_chorale.mid").slice_bars(0, 8)
    six_eight = Clip.load(REAL / "six_eight_ppq96.mid").slice_bars(0, 8)
    return {
        "chorale ABAB, theme, 2 variations": lambda s: s.lyrics_for(chorale, theme="the sea", rhyme="ABAB",
                                                                    variations=2, seed=3),
        "chorale free verse, 1 candidate, no top-p": lambda s: s.lyrics_for(chorale, rhyme=None, variations=1,
                                                                            seed=7, candidates=1, top_p=1.0),
        "6/8 AABB, hot": lambda s: s.lyrics_for(six_eight, rhyme="AABB", variations=1, seed=5, temperature=1.4,
                                                top_p=0.8, candidates=4),
    }


def lines_of(takes: list) -> list[dict]:
    return [{"lines": t.params["lines"], "end_words": t.params["end_words"]} for t in takes]


@pytest.fixture(scope="module")
def shipped():
    from musegen.studio import Studio

    return Studio(device="cpu", threads=1)


@pytest.mark.parametrize("name", list(json.loads(GOLDEN.read_text())) if GOLDEN.exists() else [])
def test_same_seed_same_lyrics_as_committed(shipped, name):
    want = json.loads(GOLDEN.read_text())[name]
    assert lines_of(requests()[name](shipped)) == want, f"{name}: the lyrics changed"


if __name__ == "__main__":  # regenerate the golden file (only when a change is meant to alter lyrics)
    from musegen.studio import Studio

    studio = Studio(device="cpu", threads=1)
    GOLDEN.write_text(json.dumps({name: lines_of(run(studio)) for name, run in requests().items()}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
