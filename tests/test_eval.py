"""`musegen eval --quick` on the tiny model and a tiny corpus of three clearly different styles:
the report has every section, and its figures come from the data (a planted copy of a
training piece is caught; pieces scored against the wrong style do worse than the right one)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from musegen.clip import PPQ, Clip, Note, TimeSignature, Track
from musegen.corpus.grouping import split_of

STYLES = ["alpha", "beta", "gamma"]  # the tiny model's style names


def _piece(style: str, rng: random.Random, bars: int = 16) -> Clip:
    """alpha: high stepwise eighths in C major; beta: low leaping quarters and halves in A
    minor; gamma: three-voice block chords in half notes."""
    bar = 4 * PPQ
    notes: list[list[Note]] = [[], [], []]
    if style == "alpha":
        scale = [72, 74, 76, 77, 79, 81, 83, 84]
        k = rng.randrange(8)
        for i in range(bars * 8):
            k = max(0, min(7, k + rng.choice([-1, 1])))
            notes[0].append(Note(scale[k], 80, i * PPQ // 2, PPQ // 2))
    elif style == "beta":
        scale = [45, 47, 48, 50, 52, 53, 55, 57, 59, 60]
        t = 0
        while t < bars * bar:
            d = rng.choice([PPQ, 2 * PPQ])
            notes[0].append(Note(rng.choice(scale), 70, t, d))
            t += d
    else:
        roots = [62, 67, 69, 64]
        for b in range(bars):
            for h in range(2):
                r = rng.choice(roots)
                for v, iv in enumerate((0, 4, 7)):
                    notes[v].append(Note(r + iv - 12 * (v == 0), 64, b * bar + h * 2 * PPQ, 2 * PPQ))
    tracks = tuple(Track(notes=tuple(n), program=0, name=f"v{i}") for i, n in enumerate(notes) if n)
    return Clip(tracks=tracks, time_signatures=(TimeSignature(0, 4, 4),), length_ticks=bars * bar)


def _names(style: str) -> list[str]:
    """File names whose (stable, hashed) split gives 6 train, 1 valid and 3 test pieces."""
    want = {"train": 6, "valid": 1, "test": 3}
    out = []
    for j in range(10_000):
        name = f"{style}{j:04d}"
        sp = split_of(f"{style}/{name}")
        if want[sp]:
            want[sp] -= 1
            out.append(name)
        if not any(want.values()):
            return out
    raise AssertionError("could not fill the splits")


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from musegen.corpus import build_corpus

    root = tmp_path_factory.mktemp("eval_corpus")
    rng = random.Random(7)
    for style in STYLES:
        (root / "midi" / style).mkdir(parents=True)
        for name in _names(style):
            _piece(style, rng).save(root / "midi" / style / f"{name}.mid")
    build_corpus(root / "corpus", midi_dir=root / "midi", workers=1)
    return root / "corpus"


@pytest.fixture(scope="module")
def report_dir(tiny_model_dir: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Path:
    from bridges.cli import main

    out = tmp_path_factory.mktemp("eval_out")
    assert main(["eval", "--model", str(tiny_model_dir), "--corpus", str(tiny_corpus),
                 "--quick", "--out", str(out)]) == 0
    return out


def test_report_structure(report_dir: Path) -> None:
    m = json.loads((report_dir / "metrics.json").read_text())
    for key in ("headline", "nll", "classifier", "fidelity", "blend", "descriptors", "novelty",
                "validity", "style_map", "targets"):
        assert key in m, key
    assert m["styles"] == STYLES
    assert set(m["nll"]["model"]) == set(STYLES)
    assert len(m["blend"]) >= 1
    assert m["blend"][0]["weights"] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    assert all(-1.0 <= b["spearman_prob"] <= 1.0 for b in m["blend"])
    assert set(m["descriptors"]["alpha"]) == {
        "pitch_class_entropy", "scale_consistency", "pitch_range", "note_density",
        "groove_consistency", "empty_bar_rate", "repetition"}
    assert m["validity"]["takes"] > 0
    assert 0.0 <= m["headline"]["validity"] <= 1.0
    text = (report_dir / "report.md").read_text()
    sections = ["## Headline", "## 1. Likelihood", "## 2. Style fidelity", "## 3. Blend",
                "## 4. Musical descriptors", "## 5. Novelty", "## 6. Validity", "## 7. Style map"]
    positions = [text.index(s) for s in sections]
    assert positions == sorted(positions)
    # the classifier's accuracy on real pieces comes before the generated takes' figure
    assert text.index("held-out real pieces:**") < text.index("generated takes per style")
    for png in ("confusion.png", "blend.png", "descriptors.png", "novelty.png", "style_map.png"):
        data = (report_dir / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 300_000, png


def test_figures_come_from_data(report_dir: Path) -> None:
    m = json.loads((report_dir / "metrics.json").read_text())
    c = m["classifier"]
    # three clearly different real styles: the real-piece classifier must separate them,
    # and scoring the same pieces against a wrong style must do worse
    assert c["test_pieces"] == 9
    assert c["accuracy"] >= 0.8
    assert c["wrong_label_accuracy"] < c["accuracy"]
    assert np.array(c["confusion"]).sum() == c["test_pieces"]
    # a planted copy of a training piece is caught by the novelty check
    assert m["novelty"]["planted_train_excerpt_run"] >= 12
    assert m["novelty"]["generated"]["n"] == m["config"]["takes_per_style"] * 3
    # descriptor gaps are computed from the two means
    d = m["descriptors"]["beta"]["note_density"]
    assert d["gap"] == pytest.approx((d["generated"] - d["real"]) / d["real"])


def test_novelty_runs_catch_a_planted_copy(tiny_corpus: Path) -> None:
    from musegen.corpus.dataset import Corpus
    from musegen.evaluation.report import excerpts, novelty_runs
    from musegen.novelty import build_from_corpus

    corpus = Corpus.open(tiny_corpus)
    tok = corpus.tokenizer()
    index = build_from_corpus(tiny_corpus, split="train")
    planted = excerpts(tok.decode(corpus.split("train")[0][1]), 8, 1)
    fresh = excerpts(_piece("beta", random.Random(99)), 8, 1)
    runs = novelty_runs(index, planted + fresh)
    assert runs[0] >= 12
    assert runs[1] < runs[0]
