"""Lyrics for a melody: phrases, exact syllable counts, rhyme, lyric events in the file, and a
foreign Hugging Face model in place of the shipped one."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest
import torch

from musegen import Clip
from musegen.errors import ParameterError
from musegen.lyrics.lm import BANNED, CONT, NEWLINE, PUNCT, SHIPPED, START, LyricLM, classify
from musegen.lyrics.syllables import line_syllables
from musegen.lyrics.writer import (
    RhymeIndex,
    melody_track,
    onsets_of,
    phrases,
    rhyme_index,
    rhyme_scheme,
    strong_flags,
    write_lines,
)
from musegen.studio import Studio

REAL = Path(__file__).parent / "data" / "realworld"


@pytest.fixture(scope="module")
def studio() -> Studio:
    return Studio(threads=1)


@pytest.fixture(scope="module")
def chorale() -> Clip:
    return Clip.load(REAL / "lyrics_chorale.mid").slice_bars(0, 8)


def _phrase_targets(clip: Clip) -> list[int]:
    return [len(g) for g in phrases(clip, melody_track(clip))]


def test_token_kinds():
    assert classify(" river") == (START, "river")
    assert classify("er") == (CONT, "er")
    assert classify("'s") == (CONT, "'s")
    assert classify(",") == (PUNCT, "")
    assert classify(" --") == (PUNCT, "")
    assert classify("\n") == (NEWLINE, "")
    for bad in ("", " 1854", "\n\n", "é", " _x", "<|bos|>", "a1"):
        assert classify(bad)[0] == BANNED, bad


def test_phrases_cover_every_onset_in_order(chorale):
    tr = melody_track(chorale)
    groups = phrases(chorale, tr)
    flat = [i for g in groups for i in g]
    assert flat == list(range(len(onsets_of(chorale, tr))))
    assert all(3 <= len(g) <= 24 for g in groups)


def test_phrases_split_at_rests():
    from musegen.clip import Note, Track

    notes = [Note(60 + i, 80, i * 480, 480) for i in range(4)]  # 4 quarters, a bar of rest, 4 more
    notes += [Note(67 + i, 80, 8 * 480 + i * 480, 480) for i in range(4)]
    clip = Clip(tracks=(Track(notes=tuple(notes)),))
    assert phrases(clip, 0) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_strong_flags_follow_the_metre():
    from musegen.clip import Note, TimeSignature, Track

    ticks = [0, 240, 480, 720, 960, 1200]
    clip = Clip(tracks=(Track(notes=tuple(Note(60, 80, t, 240) for t in ticks)),),
                time_signatures=(TimeSignature(0, 6, 8),))
    assert strong_flags(clip, ticks) == [True, False, False, True, False, False]  # dotted-quarter beats


def test_rhyme_scheme_groups_and_errors():
    assert rhyme_scheme("ABAB", 6) == [(0, "A"), (0, "B"), (0, "A"), (0, "B"), (1, "A"), (1, "B")]
    assert rhyme_scheme(None, 2) == [None, None]
    with pytest.raises(ParameterError, match="A1"):
        rhyme_scheme("A1", 4)


def test_lyrics_for_matches_every_phrase_exactly(studio, chorale, tmp_path):
    takes = studio.lyrics_for(chorale, theme="the sea", rhyme="ABAB", variations=2, seed=3)
    targets = _phrase_targets(chorale)
    assert len(takes) == 2
    for take in takes:
        lines = take.params["lines"]
        assert [len(line_syllables(ln)) for ln in lines] == targets
        fig = take.params["figures"]
        assert fig["syllable_fit"] == 1.0
        assert 0.0 <= fig["stress_alignment"] <= 1.0
        tr = take.params["track"]
        n_onsets = len(onsets_of(take.clip, tr))
        assert len([n for n in take.clip.tracks[tr].notes if n.lyric]) == n_onsets == sum(targets)
        assert take.clip.n_notes == chorale.n_notes  # the music is untouched
    assert takes[0].params["lines"] != takes[1].params["lines"]


def test_rhyme_words_rhyme(studio, chorale):
    take = studio.lyrics_for(chorale, rhyme="AABB", variations=1, seed=5)[0]
    idx = rhyme_index(studio.lyric_lm)
    ends = take.params["end_words"]
    assert take.params["figures"]["rhyme_fit"] == 1.0
    for a, b in zip(ends[0::2], ends[1::2]):
        assert idx.rhymes(a, b), (a, b)


def test_same_seed_same_lyrics(studio, chorale):
    a = studio.lyrics_for(chorale, variations=1, seed=11)[0]
    b = studio.lyrics_for(chorale, variations=1, seed=11)[0]
    assert a.params["lines"] == b.params["lines"]


def test_lyrics_in_the_file_for_pretty_midi_mido_and_clip_load(studio, chorale, tmp_path):
    take = studio.lyrics_for(chorale, variations=1, seed=2)[0]
    path = take.save(tmp_path / "sung.mid")
    syl = [e for n in sorted(take.clip.tracks[take.params["track"]].notes, key=lambda n: n.start_tick)
           if (e := n.lyric)]
    pm = pretty_midi.PrettyMIDI(str(path))
    assert [ly.text for ly in pm.lyrics] == syl
    mido_lyrics = [m.text for t in mido.MidiFile(path).tracks for m in t if m.type == "lyrics"]
    assert mido_lyrics == syl
    back = Clip.load(path)
    tr = take.params["track"]
    assert [(n.start_tick, n.lyric) for n in back.tracks[tr].notes if n.lyric] == \
           [(n.start_tick, n.lyric) for n in take.clip.tracks[tr].notes if n.lyric]
    assert any(s.endswith("-") for s in syl) or all(len(line_syllables(w)) == 1 for w in take.params["lines"])


def test_lyrics_for_rejects_bad_input(studio, chorale):
    with pytest.raises(ParameterError, match="variations"):
        studio.lyrics_for(chorale, variations=0)
    with pytest.raises(ParameterError, match="temperature"):
        studio.lyrics_for(chorale, temperature=0)
    with pytest.raises(ParameterError, match="rhyme"):
        studio.lyrics_for(chorale, rhyme="AB-AB")
    with pytest.raises(ParameterError, match="track"):
        studio.lyrics_for(chorale, track=9)
    with pytest.raises(ParameterError, match="phrases"):
        studio.lyrics_for(Clip.load(REAL / "tempo_map.mid"), variations=1)
    with pytest.raises(ParameterError, match="Clip or a Take"):
        studio.lyrics_for("not a clip")


def test_a_foreign_hf_model_without_plan_tokens(tmp_path, chorale):
    """Any local causal LM folder works: here a tiny random Llama with its own BPE (no plan
    tokens) still gets exact syllable counts and forced rhymes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    text = [ln.strip() for ln in (SHIPPED.parent.parent.parent / "README.md").read_text().splitlines() if ln.strip()]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(text * 3, trainers.BpeTrainer(vocab_size=600, special_tokens=["<s>", "</s>"],
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    folder = tmp_path / "foreign"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    lm = LyricLM.load(folder)
    assert not lm.planned
    idx = RhymeIndex({"day": 5, "way": 4, "say": 3, "night": 5, "light": 4, "bright": 2, "sea": 3, "free": 2})
    targets = [6, 5, 6, 5]
    res = write_lines(lm, targets, [[True] * t for t in targets], theme="the sea", rhyme="ABAB", variations=1,
                      candidates=2, seed=0, temperature=1.0, top_p=1.0, idx=idx)[0]
    assert [len(line_syllables(ln)) for ln in res.lines] == targets
    assert res.syllable_fit == 1.0
    studio = Studio(threads=1, lyric_model=folder)
    take = studio.lyrics_for(chorale, variations=1, seed=1, rhyme=None)[0]
    assert [len(line_syllables(ln)) for ln in take.params["lines"]] == _phrase_targets(chorale)
    assert take.params["lyric_model"].startswith("foreign@")


def test_missing_lyric_model_is_a_clear_error(tmp_path, chorale):
    from musegen.errors import ModelError

    with pytest.raises(ModelError, match="no Hugging Face model folder"):
        Studio(threads=1, lyric_model=tmp_path / "nothing").lyrics_for(chorale)


def test_shipped_lyric_model_is_small_and_planned():
    size = sum(p.stat().st_size for p in SHIPPED.iterdir() if p.is_file())
    assert size <= 40e6
    lm = LyricLM.load()
    assert lm.planned and len(lm.word_freq) > 10_000
    assert np.count_nonzero(lm.kinds == START) > 1000


# ------------------------------------------------------------------ what a songwriter would strike
def test_real_words_only():
    from musegen.lyrics.lexicon import is_real_word

    for w in ("river", "thee", "o'er", "turn'd", "heav'n", "a", "I", "O", "'tis"):
        assert is_real_word(w), w
    for w in ("rivule", "woodb", "se", "x", "b", "sche", "noght", "uiribus", ""):
        assert not is_real_word(w), w


def test_struck_word_pairs():
    from musegen.lyrics.line_decoder import _struck

    assert _struck("sea", "sea") and _struck("the", "a") and _struck("the", "of")
    assert not _struck("the", "sea") and not _struck("sea", "the")
    assert _struck("sea", "sea-wept") and _struck("salt-sea", "sea") and not _struck("sea", "wept-sea")


def test_stress_is_read_as_written_and_as_sung():
    """CMU stresses "of" (and "to", "with") in its citation form; sung, a one-syllable function word is
    unstressed. Both readings are in `stress_figures`."""
    from musegen.lyrics.phrasing import stress_figures
    from musegen.lyrics.syllables import is_function_word, sung_stresses

    assert sung_stresses("Of the river in the night") == [0, 0, 1, 0, 0, 0, 1]
    assert is_function_word("of") and is_function_word("The") and not is_function_word("river")
    f = stress_figures(["Of the river in the night"], [False, False, True, False, True, False, True])
    assert f["stressed_on_beat_sung"] == 1.0 and abs(f["stressed_on_beat"] - 2 / 3) < 1e-9  # "Of" off the beat


def test_written_lines_keep_the_word_rules(studio, chorale):
    from musegen.lyrics.line_decoder import lexicon

    takes = studio.lyrics_for(chorale, theme="the sea", variations=2, seed=4)
    lex = lexicon(studio.lyric_lm)
    for t in takes:
        ws = [w for ln in t.params["lines"] for w in ln.replace("-", " ").split()]
        ws = [w.strip(",.;:!?").strip() for w in ws]
        ws = [w for w in ws if w]
        assert all(lex.knows(w.strip("'")) or lex.knows(w) for w in ws), ws
        assert all(a.lower() != b.lower() for a, b in zip(ws, ws[1:])), ws
        assert t.params["figures"]["lines_outside_word_rules"] == 0
        assert t.params["figures"]["syllable_fit"] == 1.0


def test_theme_associations_are_measured():
    from musegen.lyrics.theme import association_table, carries_theme, theme_set

    table = association_table()
    assert len(table) > 1000
    sea = theme_set(["sea"])
    assert sea["sea"] == 1.0 and "waves" in sea and "shore" in sea
    assert carries_theme(["The waves came in"], sea) and not carries_theme(["A dry road"], sea)


def test_metric_weights_order_the_bar(chorale):
    from musegen.lyrics.phrasing import ON_BEAT, metric_weights

    w = metric_weights(chorale, [0, 480, 240, 120])
    assert w[0] == 1.0 and ON_BEAT <= w[1] < 1.0 and w[2] < ON_BEAT and w[3] < w[2]
