"""The corpus pipeline on real music21 corpus files: sources, grouping, splits, shards, resume.

Builds are small (a few pieces per style, in tmp folders) so the file runs in well under a
minute on two cores.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from musegen.clip import Clip
from musegen.corpus import Corpus, build_corpus, default_corpus_dir
from musegen.corpus.abc import convert_abc_file, midi_name, parse_abc_headers, read_abc_tunes
from musegen.corpus.grouping import (
    SPLITS,
    assign_groups,
    melodic_fingerprint,
    normalize_title,
    split_of,
)
from musegen.corpus.m21midi import write_score_midi
from musegen.corpus.styles import STYLES, corpus_root, default_styles, style_files
from musegen.errors import ParameterError
from musegen.tokenizer import Tokenizer

ROOT = corpus_root()
HAVE_ABC2MIDI = shutil.which("abc2midi") is not None
STYLES_SMALL = ["american-fife", "bach-chorale"]
LIMIT = 5


def _snapshot(out: Path) -> dict:
    """Everything a build's result consists of, minus timings."""
    summary = json.loads((out / "summary.json").read_text())
    shards = {}
    for name in summary["shards"]:
        with np.load(out / name) as z:
            shards[name] = {k: z[k].tobytes() for k in ("tokens", "offsets", "style")}
    return {
        "pieces": (out / "pieces.jsonl").read_text(),
        "skipped": (out / "skipped.jsonl").read_text(),
        "styles": (out / "styles.json").read_text(),
        "rows": summary["rows"],
        "skip_counts": summary["skipped"],
        "shards": shards,
    }


@pytest.fixture(scope="module")
def base_build(tmp_path_factory) -> Path:
    """A small real build with a two-process pool: fife tunes (abc) and Bach chorales."""
    out = tmp_path_factory.mktemp("corpus") / "base"
    calls = []
    summary = build_corpus(out, styles=STYLES_SMALL, limit_per_style=LIMIT, workers=2,
                           on_progress=lambda d, t, m: calls.append((d, t, m)))
    assert calls and calls[-1][0] == calls[-1][1], "progress must end at done == total"
    assert [d for d, _, _ in calls] == list(range(1, len(calls) + 1))
    assert summary.wall_s > 0
    return out


@pytest.fixture(scope="module")
def real_tunes(tmp_path_factory) -> list[Path]:
    """The 27 tunes of Essen's erk5.abc as MIDI files (abc2midi, else music21)."""
    work = tmp_path_factory.mktemp("erk5")
    src = ROOT / "essenFolksong" / "erk5.abc"
    convert_abc_file(src, work, use_abc2midi=HAVE_ABC2MIDI)
    tunes, _ = read_abc_tunes(src)
    paths = [work / midi_name("erk5", t.x) for t in tunes]
    return [p for p in paths if p.exists()]


# ------------------------------------------------------------------ styles and sources

def test_registry_has_eight_default_styles_with_real_files():
    assert len(default_styles()) >= 8
    for style in STYLES:
        assert style.description.endswith(".")
        files = style_files(style)
        assert files, style.name
        assert not any(f.name.startswith("test") for f in files)
    bach = next(s for s in STYLES if s.name == "bach-chorale")
    assert all(f.name != "bwv846.mxl" for f in style_files(bach))


def test_abc_headers_match_the_file():
    src = ROOT / "oneills1850" / "0001-0050.abc"
    tunes, bad = read_abc_tunes(src)
    n_x = sum(1 for line in src.read_text().splitlines() if line.startswith("X:"))
    assert bad == 0 and len(tunes) == n_x
    assert tunes[0].title == "The Enchanted Valley"
    assert len({t.x for t in tunes}) == len(tunes)


def test_repeated_x_numbers_are_left_out():
    tunes, bad = parse_abc_headers("X:1\nT:A\nK:C\nC\n\nX:1\nT:B\nK:C\nD\n\nX:two\nT:C\n")
    assert [(t.x, t.title) for t in tunes] == [(1, "A")] and bad == 2


@pytest.mark.skipif(not HAVE_ABC2MIDI, reason="abc2midi is not installed")
def test_abc2midi_writes_stem_plus_x_per_tune(tmp_path):
    src = ROOT / "miscFolk" / "americanfifeopus.abc"
    convert_abc_file(src, tmp_path)
    tunes, _ = read_abc_tunes(src)
    made = {p.name for p in tmp_path.glob("*.mid")}
    assert made == {midi_name("americanfifeopus", t.x) for t in tunes}


def test_music21_fallback_converts_abc_tunes(tmp_path):
    src = ROOT / "nottingham-dataset" / "reelsa-c.abc"
    convert_abc_file(src, tmp_path, use_abc2midi=False)
    for tune in read_abc_tunes(src)[0]:
        clip = Clip.load(tmp_path / midi_name("reelsa-c", tune.x))
        assert clip.n_notes > 20 and clip.n_bars >= 8


def test_music21_writer_puts_the_pickup_before_the_first_bar_line(tmp_path):
    import music21

    score = music21.converter.parse(ROOT / "bach" / "bwv269.mxl")
    write_score_midi(score, tmp_path / "c.mid")
    clip = Clip.load(tmp_path / "c.mid")
    assert len(clip.tracks) == 4
    bar = clip.time_signatures[0].bar_ticks
    first = min(n.start_tick for t in clip.tracks for n in t.notes)
    # one-beat pickup in 3/4: the chorale starts on beat 3 of an (empty) bar 0
    assert first == bar - 480
    # repeats are written out and tied notes merged
    expanded = score.expandRepeats()
    n_written = sum(len(p.flatten().notes) for p in expanded.parts) - _tied(expanded)
    assert clip.n_notes == n_written > sum(len(p.flatten().notes) for p in score.parts)


def _tied(score: object) -> int:
    return sum(1 for n in score.flatten().notes
               if n.tie is not None and n.tie.type in ("stop", "continue"))


# ------------------------------------------------------------------ grouping and splits

def test_normalize_title():
    assert normalize_title("The Acacia -- Reel") == normalize_title("AcaciaReel") == "acacia"
    assert normalize_title("Wir haben verloren ein Blümelein, S. 18") == \
        "wir haben verloren ein bluemelein"
    assert normalize_title("Es wollt ein Müller früh aufstehn (Band 1), S. 99") == \
        normalize_title("ES WOLLT EIN MUELLER FRUEH AUFSTEHN")
    assert normalize_title("PMFC_13_01-Kyrie-Summe-Clementissime") == \
        normalize_title("PMFC_23_22-Kyrie Summe Clementissime")
    assert normalize_title("The Fair") == "fair"  # no tune type inside a word
    assert normalize_title(None) == ""


def test_split_is_stable_and_roughly_90_5_5():
    assert [split_of(g) for g in ("a", "irish-dance/oneills1850/0001-0050#1")] == \
        [split_of("a"), split_of("irish-dance/oneills1850/0001-0050#1")]
    counts = {s: 0 for s in SPLITS}
    for i in range(20_000):
        counts[split_of(f"style/piece#{i}")] += 1
    assert 17_600 < counts["train"] < 18_400
    assert 800 < counts["valid"] < 1_200 and 800 < counts["test"] < 1_200


def test_fingerprint_survives_transposition(real_tunes):
    clip = Clip.load(real_tunes[0])
    notes = [(n.start_tick, n.pitch) for n in clip.tracks[0].notes]
    up = [(t, p + 5) for t, p in notes]
    assert melodic_fingerprint(notes, 480) == melodic_fingerprint(up, 480) is not None
    assert melodic_fingerprint(notes[:5], 480) is None


def test_pieces_sharing_a_fingerprint_never_straddle_splits(real_tunes):
    # every real tune twice under different ids and titles, as an unrelated-looking variant
    pieces = []
    for k, path in enumerate(real_tunes):
        clip = Clip.load(path)
        fp = melodic_fingerprint(((n.start_tick, n.pitch) for n in clip.tracks[0].notes), 480)
        if fp is None:
            continue
        for copy in range(40):
            pieces.append({"id": f"s{copy}/tune{k}", "family": f"f{copy}",
                           "title": f"title {copy} {k}", "fingerprint": fp})
    groups = assign_groups(pieces)
    by_fp, by_id = defaultdict(set), defaultdict(set)
    for p in pieces:
        by_fp[p["fingerprint"]].add(split_of(groups[p["id"]]))
        by_id[p["fingerprint"]].add(split_of(p["id"]))
    assert len(by_fp) >= 20
    assert all(len(splits) == 1 for splits in by_fp.values())
    # without the grouping, 40 copies of a tune would have landed in several splits
    assert all(len(splits) > 1 for splits in by_id.values())


def test_generic_titles_do_not_group():
    pieces = [{"id": f"p{i}", "family": "f", "title": "Kyrie", "fingerprint": None}
              for i in range(5)]
    pieces += [{"id": "q1", "family": "f", "title": "The Acacia -- Reel",
                "fingerprint": None},
               {"id": "q2", "family": "f", "title": "Acacia", "fingerprint": None},
               {"id": "q3", "family": "g", "title": "Acacia", "fingerprint": None}]
    groups = assign_groups(pieces)
    assert len({groups[f"p{i}"] for i in range(5)}) == 5
    assert groups["q1"] == groups["q2"] == "q1" and groups["q3"] == "q3"


# ------------------------------------------------------------------ whole builds

def test_build_outputs_and_reader(base_build):
    corpus = Corpus.open(base_build)
    assert corpus.style_names == STYLES_SMALL
    records = corpus.pieces()
    assert records and len(records) <= LIMIT * len(STYLES_SMALL)
    tok = corpus.tokenizer()
    for split in SPLITS:
        pieces = corpus.split(split)
        assert len(pieces) == sum(1 for r in records if r["split"] == split)
        for style, ids in pieces:
            assert 0 <= style < len(corpus.styles) and ids.dtype == np.uint16
            assert ids[0] == tok.vocab.bos and (ids == tok.vocab.bar).sum() >= 2
    # a shard piece is exactly the tokenizer's encoding of that piece's MIDI file
    for rec in (records[0], records[-1]):
        with np.load(base_build / rec["shard"]) as z:
            ids = z["tokens"][z["offsets"][rec["index"]]:z["offsets"][rec["index"] + 1]]
            assert corpus.styles[z["style"][rec["index"]]]["name"] == rec["style"]
        assert np.array_equal(ids, Tokenizer().encode(Clip.load(base_build / rec["midi"])))
        assert rec["n_tokens"] == len(ids)
        assert rec["n_bars"] == int((ids == tok.vocab.bar).sum())
        assert rec["n_notes"] == tok.count_notes(ids)
    summary = json.loads((base_build / "summary.json").read_text())
    assert summary["versions"]["music21"] and "abc2midi" in summary
    assert {r["style"] for r in summary["rows"]} == set(STYLES_SMALL)


def test_no_group_straddles_splits(base_build):
    split_of_group = {}
    for rec in Corpus.open(base_build).pieces():
        assert split_of_group.setdefault(rec["group"], rec["split"]) == rec["split"]
        assert rec["split"] == split_of(rec["group"])


def test_resume_after_interrupt_and_after_losing_files(tmp_path, base_build):
    out = tmp_path / "resumed"

    class Interrupt(Exception):
        pass

    def stop(done: int, total: int, message: str) -> None:
        if done == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        build_corpus(out, styles=STYLES_SMALL, limit_per_style=LIMIT, workers=1,
                     on_progress=stop)
    assert not (out / "summary.json").exists()
    messages = []
    build_corpus(out, styles=STYLES_SMALL, limit_per_style=LIMIT, workers=1,
                 on_progress=lambda d, t, m: messages.append(m))
    assert sum(m.startswith("have MIDI") for m in messages) >= 2  # not converted again
    assert _snapshot(out) == _snapshot(base_build)  # one process == two, resumed == fresh

    # lose a token chunk, a MIDI file and a shard: the next build redoes only those
    next(iter((out / "work" / "chunks").glob("*.npz"))).unlink()
    next(iter((out / "work" / "midi").rglob("*.mid"))).unlink()
    (out / json.loads((out / "summary.json").read_text())["shards"][0]).unlink()
    messages.clear()
    build_corpus(out, styles=STYLES_SMALL, limit_per_style=LIMIT, workers=1,
                 on_progress=lambda d, t, m: messages.append(m))
    assert sum(m.startswith("convert") for m in messages) == 1
    assert _snapshot(out) == _snapshot(base_build)


_KILLABLE_BUILD = """
import sys, time
from pathlib import Path
from musegen.corpus import build_corpus

def progress(done, total, message):
    if done == int(sys.argv[2]) and message.startswith("tokenized"):
        Path(sys.argv[3]).write_text(message)
        time.sleep(60)  # killed here, half way through the token chunks

if __name__ == "__main__":
    build_corpus(Path(sys.argv[1]), styles=["scottish-air"], limit_per_style=600,
                 workers=1, on_progress=progress)
"""


@pytest.mark.skipif(not HAVE_ABC2MIDI, reason="abc2midi is not installed")
def test_resume_after_kill(tmp_path):
    import subprocess
    import sys
    import time

    out, marker = tmp_path / "killed", tmp_path / "reached"
    script = tmp_path / "build.py"
    script.write_text(_KILLABLE_BUILD)
    # 600 airs: 3 abc files (stage 1), then 3 token chunks of 256 pieces; die after one
    n_jobs = 3
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(n_jobs + 1),
                             str(marker)], cwd=Path(__file__).parent.parent)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the build never reached its first token chunk"
        proc.kill()
    finally:
        proc.wait()
    chunks = list((out / "work" / "chunks").glob("*.npz"))
    assert len(chunks) == 1 and not (out / "summary.json").exists()
    messages = []
    summary = build_corpus(out, styles=["scottish-air"], limit_per_style=600, workers=1,
                           on_progress=lambda d, t, m: messages.append(m))
    assert sum(m.startswith("tokens cached") for m in messages) == 1
    assert sum(m.startswith("tokenized") for m in messages) == 2
    assert not any(m.startswith(("convert", "abc2midi")) for m in messages)
    assert sum(r["pieces"] for r in summary.rows()) + summary.n_skipped == 600
    fresh = build_corpus(tmp_path / "fresh", styles=["scottish-air"], limit_per_style=600,
                         workers=1)
    assert fresh.rows() == summary.rows() and fresh.skipped == summary.skipped
    assert _snapshot(out) == _snapshot(tmp_path / "fresh")


def test_midi_dir_styles_skips_and_variants(tmp_path, real_tunes):
    src = tmp_path / "mine"
    reels, airs = src / "My Reels", src / "slow_airs"
    reels.mkdir(parents=True)
    airs.mkdir()
    for path in real_tunes[:4]:
        shutil.copy(path, reels / path.name)
    for path in real_tunes[4:7]:
        shutil.copy(path, airs / path.name)
    # a transposed copy of a reel, filed under another style and name: a variant
    Clip.load(real_tunes[0]).transpose(3).save(airs / "something else.mid")
    (reels / "corrupt.mid").write_bytes(real_tunes[1].read_bytes()[:60])
    (reels / "empty.mid").write_bytes(b"")
    (airs / "notes.txt").write_text("not a MIDI file, ignored")
    Clip.load(real_tunes[2]).slice_bars(0, 1).save(airs / "one bar.mid")

    summary = build_corpus(tmp_path / "out", midi_dir=src, workers=1)
    corpus = Corpus.open(tmp_path / "out")
    assert corpus.style_names == ["my-reels", "slow-airs"]
    assert [s["description"] for s in corpus.styles] == ["User style from My Reels",
                                                        "User style from slow_airs"]
    assert summary.n_skipped == 3
    reasons = summary.skipped
    assert reasons.get("too short (<2 bars)") == 1
    assert sum(n for r, n in reasons.items() if r.startswith("unreadable MIDI")) == 2
    skipped = [json.loads(line) for line in (tmp_path / "out" / "skipped.jsonl").open()]
    assert {Path(r["source"]).name for r in skipped} == {"corrupt.mid", "empty.mid",
                                                         "one bar.mid"}
    records = {r["id"]: r for r in corpus.pieces()}
    original = records[f"my-reels/{real_tunes[0].stem}"]
    variant = records["slow-airs/something else"]
    assert original["group"] == variant["group"] and original["split"] == variant["split"]
    assert sum(len(corpus.split(s)) for s in SPLITS) == len(records) == 8


def test_bad_arguments_name_the_value(tmp_path):
    with pytest.raises(ParameterError, match="no-such-style"):
        build_corpus(tmp_path, styles=["no-such-style"])
    with pytest.raises(ParameterError, match="limit_per_style"):
        build_corpus(tmp_path, styles=STYLES_SMALL, limit_per_style=0)
    with pytest.raises(ParameterError, match="not a folder"):
        build_corpus(tmp_path, midi_dir=tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="summary.json"):
        Corpus.open(tmp_path)


def test_default_corpus_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MUSEGEN_HOME", str(tmp_path))
    assert default_corpus_dir() == tmp_path / "corpus"
    monkeypatch.delenv("MUSEGEN_HOME")
    assert default_corpus_dir() == Path.home() / ".cache" / "musegen" / "corpus"


def test_summary_round_trips_and_renders(base_build):
    import io

    from rich.console import Console

    from musegen.corpus import CorpusSummary
    from musegen.corpus.report import format_skipped, format_table

    saved = json.loads((base_build / "summary.json").read_text())
    summary = CorpusSummary.from_dict(saved, base_build)
    assert summary.to_dict()["rows"] == saved["rows"]
    assert [(r["style"], r["split"]) for r in summary.rows()] == \
        [(s, split) for s in STYLES_SMALL for split in SPLITS]
    assert summary.totals()["all"]["pieces"] == len(Corpus.open(base_build).pieces())
    console = Console(file=io.StringIO(), width=140, record=True)
    console.print(format_table(summary))
    console.print(format_skipped(summary))
    text = console.export_text()
    assert "bach-chorale" in text and "american-fife" in text and "tokens" in text
    assert "…" not in text  # fits in 140 columns without cutting names
