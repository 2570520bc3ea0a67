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


# ---------------------------------------------------------------- the classifier's features
def _clip(voices: list[list[Note]], sig: tuple[int, int] = (4, 4), bars: int = 2) -> Clip:
    bar = PPQ * 4 * sig[0] // sig[1]
    tracks = tuple(Track(notes=tuple(v), program=0, name=f"v{i}") for i, v in enumerate(voices))
    return Clip(tracks=tracks, time_signatures=(TimeSignature(0, *sig),), length_ticks=bars * bar)


def _profile(clip: Clip) -> dict[str, float]:
    from musegen.evaluation.descriptors import PROFILE, profile

    return dict(zip(PROFILE, profile(clip), strict=True))


def test_profile_metre_one_hot() -> None:
    waltz = _clip([[Note(60 + i % 3, 80, i * PPQ, PPQ) for i in range(6)]], sig=(3, 4))
    jig = _clip([[Note(67, 80, i * PPQ // 2, PPQ // 2) for i in range(12)]], sig=(6, 8))
    p, q = _profile(waltz), _profile(jig)
    assert p["metre_3_4"] == 1 and p["bar_quarters"] == 3
    assert sum(v for k, v in p.items() if k.startswith("metre_")) == 1
    assert q["metre_6_8"] == 1 and q["metre_3_4"] == 0 and q["bar_quarters"] == 3
    # quarters in 3/4 start at thirds of the bar: twelfths 0, 4 and 8
    assert p["barpos0"] == p["barpos4"] == p["barpos8"] == pytest.approx(1 / 3)


def test_profile_voices_and_chords() -> None:
    melody = [Note(p, 80, i * PPQ // 2, PPQ // 2) for i, p in enumerate([60, 62, 64, 65] * 4)]
    solo = _profile(_clip([melody]))
    assert solo["sounding_1"] == 1 and solo["sounding_2"] == 0
    assert solo["len_8th"] == 1 and solo["ioi_8th"] == 1
    # steps 2, 2, 1, then a fourth down (5) back to the start: 12 of the 15 are seconds
    assert solo["step_1"] + solo["step_2"] == pytest.approx(0.8) and solo["step_5"] == pytest.approx(0.2)
    assert solo["step_up"] == pytest.approx(0.8)
    duet = _profile(_clip([melody, [Note(48, 70, 0, 8 * PPQ)]]))  # a held bass under it
    assert duet["sounding_2"] == 1 and duet["sounding_1"] == 0
    assert duet["bass_mean"] == 48 and duet["top_mean"] > 60
    # block C major and A minor triads on every half note: all sounding onsets are triads
    roots = [(60, 4), (57, 3), (60, 4), (57, 3)]  # (root, third above it)
    chords = [[Note(r + (0, third, 7)[v], 64, h * 2 * PPQ, 2 * PPQ)
               for h, (r, third) in enumerate(roots)] for v in range(3)]
    tri = _profile(_clip(chords))
    assert tri["triad_share"] == 1 and tri["sounding_3"] == 1
    assert tri["ic3"] + tri["ic4"] + tri["ic5"] == pytest.approx(1)  # thirds and fourths/fifths


def test_profile_pentatonic_and_mode() -> None:
    penta = [Note(p, 80, i * PPQ, PPQ) for i, p in enumerate([62, 64, 66, 69, 71, 69, 66, 64])]
    p = _profile(_clip([penta]))
    assert p["pentatonic"] == pytest.approx(1)
    chromatic = _profile(_clip([[Note(60 + i, 80, i * PPQ, PPQ) for i in range(8)]]))
    assert chromatic["pentatonic"] < 0.8


def test_features_match_their_names() -> None:
    from musegen.evaluation.report import FEATURES, features

    x = features(_clip([[Note(60, 80, 0, PPQ)]]))
    assert x.shape == (len(FEATURES),) and np.isfinite(x).all()
    assert len(set(FEATURES)) == len(FEATURES)
    empty = features(_clip([]))  # no notes: zeros but the metre, no error
    assert empty.shape == x.shape and np.isfinite(empty).all()


def test_classifier_learns_a_middle_band() -> None:
    """A style marked by a middle range of one feature (a linear model can only say 'more' or
    'less'): the hinge terms let the classifier find it."""
    from musegen.evaluation.report import StyleClassifier

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 3, size=(600, 2))  # feature 1 is noise
    y = ((x[:, 0] > 1) & (x[:, 0] < 2)).astype(int)
    clf = StyleClassifier.fit(x, y, ["outer", "middle"])
    test = rng.uniform(0, 3, size=(300, 2))
    truth = ((test[:, 0] > 1) & (test[:, 0] < 2)).astype(int)
    assert (clf.predict(test) == truth).mean() > 0.85  # a linear model: 2/3 at best (all "outer")
    p = clf.proba(test[0])  # one vector is one row
    assert p.shape == (1, 2) and p.sum() == pytest.approx(1)


def test_classifier_balance_weighs_a_rare_style_up() -> None:
    """`balance` 1 gives a rare style as much weight as a common one; 0 leaves the counts as
    they are, so an ambiguous point goes to the common style."""
    from musegen.evaluation.report import StyleClassifier

    rng = np.random.default_rng(1)
    common = rng.normal(0.0, 1.0, size=(500, 1))
    rare = rng.normal(1.5, 1.0, size=(25, 1))
    x, y = np.vstack([common, rare]), np.array([0] * 500 + [1] * 25)
    probe = np.array([[2.0]])  # nearer the rare style's centre than the common one's
    p0 = StyleClassifier.fit(x, y, ["common", "rare"], balance=0.0).proba(probe)[0, 1]
    p1 = StyleClassifier.fit(x, y, ["common", "rare"], balance=1.0).proba(probe)[0, 1]
    assert p0 < 0.5 < p1
