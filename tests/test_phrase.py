"""Phrases, motifs, form and starts from nothing (issue 14, items 4-7): the `Cadence`, `Motif`,
`KeyPrior` and `Opening` constraints alone on small cases, the style priors, and the Studio
paths that use them (form, blends from nothing, morph, aspect blend) on the shipped model."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from musegen import Clip
from musegen.errors import ParameterError
from musegen.examples import example_path
from musegen.generate import constraints as C
from musegen.generate.constraints import PhraseParams, Request, Row, SampleParams
from musegen.params import check, parse_form
from musegen.priors import StylePriors
from musegen.tokenizer import Tokenizer

G, D = 7, 2  # pitch classes of G (the tonic below) and D (its dominant)


@pytest.fixture(scope="module")
def tok():
    return Tokenizer()


def bar(tok, pitches, step=12):
    v = tok.vocab
    out = [v.bar]
    for k, p in enumerate(pitches):
        out += [v.id("position", k * step), v.id("pitch", p), v.id("duration", v.durations.index(step))]
    return out


def prompt_of(tok, *bars):
    v = tok.vocab
    head = [v.bos, v.id("track", 0), v.id("program", 0)]
    first = bar(tok, bars[0])
    first[1:1] = [v.id("timesig", v.time_signatures.index((4, 4))), v.id("tempo", 10)]
    return np.array(head + first + [t for b in bars[1:] for t in bar(tok, b)], dtype=np.int64)


def row_at(tok, prompt, *, bars_left, position, index=0):
    """A row after `prompt` in a new bar (`bars_left` after it), just after POSITION `position`."""
    s = tok.validate(prompt)
    s.bars_left = bars_left + 1
    extra = [tok.vocab.bar, tok.vocab.id("position", position)]
    for t in extra:
        tok.grammar.step(s, t)
    return Row(index, s, extra)


def pipeline_logits(tok, prompt, rows, phrase):
    req = Request(tok, SampleParams(phrase=phrase), prompt, forced=())
    logits = torch.zeros(len(rows), tok.vocab.size)
    out, _ = C.Pipeline(req).apply(rows, logits)
    return out


def pitch_probs(tok, logits):
    p = logits.softmax(-1)
    r = tok.vocab.ranges["pitch"]
    return p[:, r.start:r.stop]


# ------------------------------------------------------------------------ cadence
def test_cadence_raises_the_tonic_in_the_last_bar(tok):
    prompt = prompt_of(tok, [67, 69, 71, 72], [74, 72, 71, 69])
    phrase = PhraseParams(bars=4, cadence="auto", key=(G, "major"))
    last = row_at(tok, prompt, bars_left=0, position=24)  # final bar, second half
    free = pitch_probs(tok, pipeline_logits(tok, prompt, [last], None))
    biased = pitch_probs(tok, pipeline_logits(tok, prompt, [last], phrase))
    assert biased[0, 67] > 2 * free[0, 67]  # G4, the tonic
    assert biased[0, 67] > biased[0, 69]  # ...above A4, no chord tone
    assert biased[0, 67] > biased[0, 71]  # ...and above B4, the third


def test_half_cadence_leans_to_the_dominant(tok):
    prompt = prompt_of(tok, [67, 69, 71, 72])
    last = row_at(tok, prompt, bars_left=0, position=24)
    biased = pitch_probs(tok, pipeline_logits(tok, prompt, [last], PhraseParams(
        bars=4, cadence="half", key=(G, "major"))))
    assert biased[0, 62] > biased[0, 67]  # D above G


def test_cadence_none_leaves_logits_unchanged(tok):
    prompt = prompt_of(tok, [67, 69, 71, 72])
    last = row_at(tok, prompt, bars_left=0, position=24)
    plain = pipeline_logits(tok, prompt, [last], None)
    off = pipeline_logits(tok, prompt, [last], PhraseParams(bars=4, cadence="none", key=(G, "major")))
    assert torch.equal(plain, off)


def test_cadence_only_where_a_phrase_ends(tok):
    prompt = prompt_of(tok, [67, 69, 71, 72])
    mid = row_at(tok, prompt, bars_left=2, position=24)  # bar 2 of 4: no phrase end
    plain = pipeline_logits(tok, prompt, [mid], None)
    on = pipeline_logits(tok, prompt, [mid], PhraseParams(bars=4, cadence="auto", key=(G, "major")))
    assert torch.equal(plain, on)


def test_cadence_goals_of_folk_strains():
    p = PhraseParams(bars=8, cadence="auto", phrase_bars=4)
    assert [C.cadence_goal(p, b) for b in range(1, 9)] == [None] * 3 + ["half"] + [None] * 3 + ["tonic"]
    after4 = replace(p, bar_offset=4)  # bar 1 is the piece's bar 5: bar 4 ends the strain
    assert C.cadence_goal(after4, 4) == "tonic" and C.cadence_goal(after4, 8) == "tonic"
    assert C.cadence_goal(replace(p, phrase_bars=0), 4) is None  # not folk: the final bar only
    assert C.cadence_goal(replace(p, final=False, phrase_bars=0), 8) is None  # a regenerated middle


def test_long_final_note_is_favoured(tok):
    v = tok.vocab
    prompt = prompt_of(tok, [67, 69, 71, 72])
    r = row_at(tok, prompt, bars_left=0, position=24)
    tok.grammar.step(r.state, v.id("pitch", 67))
    r.tokens.append(v.id("pitch", 67))
    out = pipeline_logits(tok, prompt, [r], PhraseParams(bars=4, cadence="tonic", key=(G, "major")))
    d = v.ranges["duration"]
    quarter, half = v.durations.index(12), v.durations.index(24)
    assert out[0, d.start + half] > out[0, d.start + quarter]  # a half note reaches the bar end


# -------------------------------------------------------------------------- motif
def test_motif_favours_the_prompts_interval_patterns(tok):
    prompt = prompt_of(tok, [60, 62, 64, 65], [60, 62, 64, 65])  # intervals 2, 2, 1, -5, ...
    now = row_at(tok, prompt, bars_left=3, position=0)
    out = pipeline_logits(tok, prompt, [now], PhraseParams(bars=4, cadence="none", motif=1.0))
    pitch = tok.vocab.ranges["pitch"].start
    # the prompt ends 62, 64, 65 (2, 1): its 3-gram (2, 1, -5) gives 60 the bonus
    assert out[0, pitch + 60] == pytest.approx(C.MOTIF_INTERVAL)
    assert out[0, pitch + 61] == 0.0
    off = pipeline_logits(tok, prompt, [now], PhraseParams(bars=4, cadence="none", motif=0.0))
    assert torch.equal(off, pipeline_logits(tok, prompt, [now], None))


def test_prompt_patterns_count_bar_rhythms(tok):
    prompt = prompt_of(tok, [60, 62, 64, 65], [67, 65])
    tri, bi, rhythms = C.prompt_patterns(tok, prompt)
    assert (2, 2, 1) in tri and (2, 1) in bi
    assert rhythms == {(0, 12, 24, 36), (0, 12)}


# ----------------------------------------------------------------- starts from nothing
def test_opening_forces_the_drawn_tempo(tok):
    v = tok.vocab
    prompt = np.array([v.bos, v.id("track", 0), v.id("program", 0)], dtype=np.int64)
    s = tok.validate(prompt)
    s.bars_left = 4
    tok.grammar.step(s, v.bar)
    rows = [Row(0, s.copy(), [v.bar]), Row(1, s.copy(), [v.bar])]
    phrase = PhraseParams(bars=4, row_tempos=(5, 20))
    req = Request(tok, SampleParams(free_first_bar=True, phrase=phrase), prompt)
    _, allowed = C.Pipeline(req).apply(rows, torch.zeros(2, v.size))
    t = v.ranges["tempo"]
    assert allowed[0, t.start:t.stop].nonzero().flatten().tolist() == [5]
    assert allowed[1, t.start:t.stop].nonzero().flatten().tolist() == [20]
    assert not allowed[:, v.ranges["position"].start].any()  # a tempo must come first


def test_key_prior_lowers_pitches_outside_each_rows_key(tok):
    prompt = prompt_of(tok, [60])
    rows = [row_at(tok, prompt, bars_left=3, position=0, index=i) for i in range(2)]
    phrase = PhraseParams(bars=4, row_keys=((G, "major"), (0, "major")), key_prior=True)
    out = pipeline_logits(tok, prompt, rows, phrase)
    pitch = tok.vocab.ranges["pitch"].start
    assert out[0, pitch + 66] == 0 and out[0, pitch + 65] < 0  # G major: F# in, F out
    assert out[1, pitch + 65] == 0 and out[1, pitch + 66] < 0  # C major: F in, F# out


def test_priors_draw_from_the_stored_distribution():
    p = StylePriors({"styles": {"x": {"keys": {"D major": 0.75, "B minor": 0.25},
                                      "tempi_qpm": {"96": 0.5, "180": 0.5}, "metres": {"6/8": 1.0}}}})
    rng = np.random.default_rng(0)
    keys = [p.draw_key("x", rng, min_share=0.0) for _ in range(400)]
    assert set(keys) == {"D major", "B minor"} and 0.65 < keys.count("D major") / 400 < 0.85
    assert {p.draw_key("x", rng, min_share=0.3) for _ in range(50)} == {"D major"}  # rare keys left out
    assert {p.draw_tempo("x", rng) for _ in range(50)} == {96.0, 180.0}
    assert p.draw_metre("x", rng) == (6, 8)
    assert p.draw_key("unknown", rng) is None and p.common_keys("x", 0.3) == {"D major"}


def test_shipped_priors_are_measured_per_style():
    from musegen.studio import DEFAULT_MODEL_DIR

    data = json.loads((DEFAULT_MODEL_DIR / "style_priors.json").read_text())
    assert data["command"] == "python -m musegen.corpus.priors"
    styles = data["styles"]
    celtic = max(styles["irish-dance"]["keys"], key=styles["irish-dance"]["keys"].get)
    assert celtic in ("G major", "D major")  # O'Neill: sharp keys, never B or C# major
    assert styles["irish-dance"]["keys"].get("C# major", 0) < 0.05
    assert styles["bach-chorale"]["metres"]["4/4"] > 0.8
    assert abs(sum(styles["scottish-air"]["tempi_qpm"].values()) - 1) < 0.01


def test_abc_tempo_fields():
    from musegen.corpus.priors import abc_qpm

    assert abc_qpm("1/4=120", None) == 120
    assert abc_qpm("3/8=120", None) == 180
    assert abc_qpm('"Allegro" 1/2=90', None) == 180
    assert abc_qpm("80", "1/8") == 40  # a bare number counts L: units
    assert abc_qpm("Allegro", None) is None


# --------------------------------------------------------------------- parameters
def test_form_and_phrase_parameters_are_checked():
    assert parse_form("A A' B A") == [("A", 0), ("A", 1), ("B", 0), ("A", 0)]
    assert check("continue", {"form": "AABA", "cadence": "half", "motif": 0.5})["cadence"] == "half"
    for bad in ("BA", "A", "a b", "A1B"):
        with pytest.raises(ParameterError, match="form"):
            check("continue", {"form": bad})
    with pytest.raises(ParameterError, match="cadence"):
        check("continue", {"cadence": "perfect"})
    with pytest.raises(ParameterError, match="motif"):
        check("continue", {"motif": 2.0})


# ------------------------------------------------------------- the shipped model
@pytest.fixture(scope="module")
def studio():
    from musegen.studio import Studio

    return Studio(device="cpu", threads=1)


def notes_of(clip: Clip) -> list[tuple[int, int, int]]:
    return [(n.pitch, n.start_tick, n.duration_ticks) for n in clip.pitched_notes()]


def test_form_aaba_restates_the_prompt(studio):
    folk = Clip.load(example_path("folk"))
    a = folk.slice_bars(folk.n_bars - 4, folk.n_bars)
    take, = studio.continue_(folk, bars=4, variations=1, seed=3, style="irish-dance", form="AABA")
    assert take.clip.n_bars == 12 and take.params["form"] == "AABA"
    sections = [take.clip.slice_bars(4 * k, 4 * k + 4) for k in range(3)]
    assert notes_of(sections[0]) == notes_of(a) and notes_of(sections[2]) == notes_of(a)
    assert notes_of(sections[1]) != notes_of(a)  # B: new material


def test_form_variation_keeps_half_of_a(studio):
    folk = Clip.load(example_path("folk"))
    a = folk.slice_bars(folk.n_bars - 4, folk.n_bars)
    take, = studio.continue_(folk, bars=4, variations=1, seed=5, style="irish-dance", form="AA'")
    var = take.clip.slice_bars(0, 4)
    assert notes_of(var.slice_bars(0, 2)) == notes_of(a.slice_bars(0, 2))  # the first half kept
    assert notes_of(var) != notes_of(a)  # the second half drawn again


def test_from_nothing_key_and_tempo_come_from_the_style(studio):
    takes = studio.continue_(None, bars=2, variations=3, seed=7, style="irish-dance")
    styles = studio.engine.priors.styles["irish-dance"]
    for t in takes:
        start = t.params["start"]
        assert start["key"] in styles["keys"] and str(round(start["tempo"])) in styles["tempi_qpm"]
        assert abs(t.clip.tempo_at(0) / start["tempo"] - 1) < 0.05  # the bin of the drawn tempo


def test_blend_from_nothing_steps_its_texture_with_the_weights(studio):
    """A blend from nothing: the metre is the heaviest style's, the same at every weight it
    leads; the voice count is the weights' mean of the styles' (chinese-folk 1, bach-chorale
    4), the same for every take of a request, so it steps with the weight instead of flipping
    at half (before: 1 voice up to 0.5, 4 from 0.55)."""
    metres, counts = set(), []
    for w in (0.35, 0.55, 0.75, 0.95):
        takes = studio.blend(None, styles={"bach-chorale": w, "chinese-folk": 1 - w}, bars=2,
                             variations=2, seed=4)
        n = {len(t.clip.tracks) for t in takes}
        assert len(n) == 1 and all(t.params["start"]["voices"] == len(t.clip.tracks) for t in takes)
        counts.append(n.pop())
        if w > 0.5:
            metres |= {(t.clip.time_signatures[0].numerator, t.clip.time_signatures[0].denominator)
                       for t in takes}
    assert counts == [2, 3, 3, 4] and len(metres) == 1


def test_morph_steps_share_their_seed(studio):
    takes = studio.morph(None, "chinese-folk", "bach-chorale", steps=3, bars=2, seed=9)
    assert len({t.seed for t in takes}) == 1
    assert len({tuple(tr.program for tr in t.clip.tracks) for t in takes}) == 1


def test_aspect_blend_keeps_the_rhythm_styles_onsets(studio):
    folk = Clip.load(example_path("folk"))
    takes = studio.blend(folk, styles={"irish-dance": 1.0}, rhythm_style="chinese-folk", bars=2,
                         variations=1, seed=6)
    first = studio.continue_(folk, bars=2, variations=1, seed=6, style="chinese-folk")
    onsets = [(n.start_tick, n.duration_ticks) for n in takes[0].clip.pitched_notes()]
    assert onsets == [(n.start_tick, n.duration_ticks) for n in first[0].clip.pitched_notes()]
    assert takes[0].params["rhythm_style"] == "chinese-folk"
