"""The musicianship benchmark's core on the tiny model and a tiny corpus: every section is
measured, real pieces are judged by the same figures (block triads score 100 % chords), and
the generation switches reach the requests."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from musegen.clip import PPQ, Clip, Note, TimeSignature, Track
from musegen.corpus.grouping import split_of
from musegen.errors import ParameterError
from musegen.evaluation.musicianship_run import MusicianshipConfig, family, generation_kwargs, markdown, run

STYLES = ["alpha", "beta", "gamma"]  # the tiny model's style names
BAR = 4 * PPQ


def _piece(style: str, rng: random.Random, bars: int = 16) -> Clip:
    """alpha and beta: one stepwise line of quarter notes (high / low); gamma: C, F and G
    major triads in three voices, a half note each."""
    if style == "gamma":
        chords = [(72, 67, 64), (72, 69, 65), (71, 67, 62)]
        voices: list[list[Note]] = [[], [], []]
        for h in range(2 * bars):
            for v, p in enumerate(rng.choice(chords)):
                voices[v].append(Note(p, 70, h * 2 * PPQ, 2 * PPQ))
        tracks = tuple(Track(tuple(n), name=f"v{i}") for i, n in enumerate(voices))
    else:
        base = 72 if style == "alpha" else 48
        k, notes = 0, []
        for i in range(4 * bars):
            k = max(-5, min(5, k + rng.choice([-2, -1, 1, 2])))
            notes.append(Note(base + k, 80, i * PPQ, PPQ))
        tracks = (Track(tuple(notes)),)
    return Clip(tracks=tracks, time_signatures=(TimeSignature(0, 4, 4),), length_ticks=bars * BAR)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from musegen.corpus import build_corpus

    root = tmp_path_factory.mktemp("mus_corpus")
    rng = random.Random(3)
    for style in STYLES:
        (root / "midi" / style).mkdir(parents=True)
        want, j = {"train": 2, "valid": 1, "test": 3}, 0
        while any(want.values()):
            name = f"{style}{j:04d}"
            sp = split_of(f"{style}/{name}")
            if want[sp]:
                want[sp] -= 1
                _piece(style, rng).save(root / "midi" / style / f"{name}.mid")
            j += 1
    build_corpus(root / "corpus", midi_dir=root / "midi", workers=1)
    return root / "corpus"


@pytest.fixture(scope="module")
def result(tiny_model_dir: Path, tiny_corpus: Path) -> dict:
    from musegen.corpus import Corpus
    from musegen.studio import Studio

    cfg = MusicianshipConfig.quick_config(blend_pairs=(("alpha", "gamma"),), takes=2)
    return run(Studio(model=tiny_model_dir, threads=1), Corpus.open(tiny_corpus), cfg)


def test_every_section_is_measured(result: dict) -> None:
    assert result["families"] == {"alpha": ["alpha"], "beta": ["beta"], "gamma": ["gamma"]}
    assert [(c["family"], c["prompt_bars"]) for c in result["continue"]] == [
        ("alpha", 4), ("beta", 4), ("gamma", 4)]
    assert all(c["prompts"] == 2 for c in result["continue"])
    assert [r["family"] for r in result["infill"]] == STYLES
    assert [b["pair"] for b in result["blend"]] == [["alpha", "gamma"]]
    assert len(result["blend"][0]["voices"]) == 3  # one list per weight 0, 0.5, 1
    assert [r["style"] for r in result["nothing"]] == STYLES
    # 3 families x 2 prompts x 2 takes + 3 x 1 infill x 2 + 3 weights x 2 + 3 styles x 2
    assert result["takes"] == 12 + 6 + 6 + 6
    json.dumps(result)  # JSON-able


def test_real_music_is_judged_by_the_same_figures(result: dict) -> None:
    by_family = {c["family"]: c["figures"] for c in result["continue"]}
    assert by_family["gamma"]["chord_on_beat"]["real"] == 1.0  # block triads
    assert by_family["gamma"]["voices"]["real"] == 3.0
    assert by_family["alpha"]["overlap"]["real"] == 0.0
    assert by_family["alpha"]["chord_on_beat"]["real"] is None  # one voice: no chords to judge
    assert by_family["gamma"]["voice_crossing"]["real"] == 0.0
    takes = by_family["alpha"]["voices"]["takes"]
    assert takes["mean"] is not None and len(takes["per_seed"]) == 1
    nothing = {r["style"]: r for r in result["nothing"]}
    assert nothing["gamma"]["real"]["voices_median"] == 3.0
    assert nothing["alpha"]["real"]["idiomatic_keys"]  # some key is used by >= 5 %


def test_markdown_has_every_table(result: dict) -> None:
    text = "\n".join(markdown(result))
    for heading in ("## Continue: alpha", "## Continue: gamma", "## Regenerate", "## Blend from nothing",
                    "## From nothing"):
        assert heading in text
    assert "| beats sounding a plain triad or 7th chord (>= 3 voices) |" in text


def test_generation_switches() -> None:
    cfg = MusicianshipConfig(gen_kwargs={"temperature": 0.8, "keep_rhythm": True})
    assert generation_kwargs("continue", cfg) == {"temperature": 0.8}  # keep_rhythm: regenerate only
    assert generation_kwargs("regenerate", cfg) == {"temperature": 0.8, "keep_rhythm": True}
    with pytest.raises(ParameterError, match="no_such_knob"):
        generation_kwargs("continue", MusicianshipConfig(gen_kwargs={"no_such_knob": 1}))
    from musegen.evaluation.musicianship_run import OFF_SWITCHES
    from musegen.params import params_for

    off = generation_kwargs("continue", MusicianshipConfig(no_constraints=True))
    assert off == {k: v for k, v in OFF_SWITCHES.items() if k in params_for("continue")}
    from musegen.params import check

    for op in ("continue", "regenerate", "blend", "arrange"):  # every switch is a valid value
        check(op, generation_kwargs(op, MusicianshipConfig(no_constraints=True)))


def test_families() -> None:
    assert family("irish-dance") == "folk" and family("chinese-folk") == "folk"
    assert family("bach-chorale") == "chorale" and family("madrigal") == "renaissance"
    assert family("my-style") == "my-style"


def test_the_model_card_section(result: dict) -> None:
    from musegen.modelcard import musicianship_section

    text = "\n".join(musicianship_section(result))
    assert text.startswith("\n## Musicianship") and "### Continue: gamma" in text


def test_musegen_eval_has_a_musicianship_section(tiny_model_dir: Path, tiny_corpus: Path,
                                                 tmp_path: Path) -> None:
    from bridges.cli import main

    assert main(["eval", "--model", str(tiny_model_dir), "--corpus", str(tiny_corpus), "--quick",
                 "--musicianship", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert text.index("## 7. Style map") < text.index("## 8. Musicianship")
    assert "### Continue: gamma" in text
    assert "musicianship" in json.loads((tmp_path / "metrics.json").read_text())
