"""The novelty check over real MIDI files as the "training pieces".

tests/data/realworld/*.mid and musegen/data/examples/*.mid stand in for a corpus; note that
odd_ppq_383 and tempo_map are two cuts of the same Mozart movement (K.525), so the index
rightly reports long shared runs between them.
"""

import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from musegen.clip import Clip, Note, Track
from musegen.novelty import (
    COPY_RUN,
    DEFAULT_GRAM,
    NoveltyIndex,
    NoveltyIndexError,
    build_from_corpus,
    gram_hashes,
    melody_line,
)

ROOT = Path(__file__).parent.parent
FILES = sorted((ROOT / "tests/data/realworld").glob("*.mid")) + sorted(
    (ROOT / "musegen/data/examples").glob("*.mid"))


@pytest.fixture(scope="module")
def pieces() -> dict[str, Clip]:
    assert len(FILES) >= 8
    return {p.stem: Clip.load(p) for p in FILES}


@pytest.fixture(scope="module")
def index(pieces) -> NoveltyIndex:
    return NoveltyIndex.build(pieces.items())


def random_walk(seed: int, n: int = 64, program: int = 0) -> Clip:
    rng = np.random.default_rng(seed)
    pitch, tick, notes = 64, 0, []
    for _ in range(n):
        pitch = int(np.clip(pitch + rng.integers(-5, 6), 40, 90))
        dur = int(rng.choice([120, 240, 240, 480, 720]))
        notes.append(Note(pitch, 80, tick, dur))
        tick += dur
    return Clip(tracks=(Track(tuple(notes), program),))


def planted(pieces, name: str, bar: int, bars: int = 16) -> Clip:
    """Four random bars, ``bars`` bars of training piece ``name``, four random bars."""
    copy = pieces[name].slice_bars(bar, bar + bars)
    copy = replace(copy, tracks=copy.tracks[:1])
    pad = random_walk(1, n=8)
    return pad.concat(copy).concat(random_walk(2, n=8))


# ------------------------------------------------------------------ the feature
def test_melody_line_is_a_transposition_invariant_skyline():
    chord = [Note(60, 80, 0, 480), Note(64, 80, 0, 480), Note(67, 80, 3, 480),  # one onset
             Note(62, 80, 480, 240), Note(65, 80, 720, 240)]
    line = melody_line(Track(tuple(chord)))
    assert line.note_index.tolist() == [2, 3, 4]  # the top of the chord, then the melody
    intervals = (line.codes >> np.uint64(8)).astype(int) - 64
    gaps = (line.codes & np.uint64(255)).astype(int)
    assert intervals.tolist() == [-5, 3] and gaps.tolist() == [12, 6]
    up = melody_line(Track(tuple(replace(n, pitch=n.pitch + 7) for n in chord)))
    assert np.array_equal(up.codes, line.codes)
    assert len(gram_hashes(line.codes, 3)) == 1 and len(gram_hashes(line.codes, 4)) == 0


# ------------------------------------------------------------------ catching copies
def test_planted_copy_is_caught_with_its_piece(index, pieces):
    take = planted(pieces, "folk", 8)
    r = index.check(take)
    assert r.longest_run >= max(12, COPY_RUN) and r.piece == "folk" and r.too_close()
    assert r.too_close(r.longest_run) and not r.too_close(r.longest_run + 1)
    assert r.track == 0
    # the run starts inside the copied bars (after the 4 random bars)
    assert pieces["folk"].n_bars > 24 and r.start_tick >= random_walk(1, n=8).length_ticks
    assert "folk" in r.describe()
    assert 0 <= r.seconds < 0.1


def test_transposed_copy_is_still_caught(index, pieces):
    plain = index.check(planted(pieces, "folk", 8))
    for semitones in (-7, 5):
        r = index.check(planted(pieces, "folk", 8).transpose(semitones))
        assert r.piece == "folk" and r.longest_run >= 12
        assert r.longest_run >= plain.longest_run - 2  # random pad notes may differ


def test_copy_of_a_polyphonic_voice_is_caught(index, pieces):
    take = pieces["six_eight_ppq96"].slice_bars(20, 36)
    r = index.check(take.transpose(2))
    assert r.piece == "six_eight_ppq96" and r.longest_run >= 12


def test_a_different_piece_shares_only_short_runs(pieces):
    held_out = {"folk", "six_eight_ppq96"}
    index = NoveltyIndex.build((k, v) for k, v in pieces.items() if k not in held_out)
    for name in held_out:
        r = index.check(pieces[name].slice_bars(0, 16))
        assert r.longest_run < 12 and not r.too_close(), (name, r)


def test_exclude_ignores_the_piece_itself(index, pieces):
    take = pieces["folk"].slice_bars(0, 16)
    assert index.check(take).piece == "folk"
    r = index.check(take, exclude="folk")
    assert r.piece != "folk" and r.longest_run < 12


def test_duplicate_recordings_are_reported(index, pieces):
    # two cuts of Mozart K.525: honest, they share long runs
    r = index.check(pieces["odd_ppq_383"], exclude="odd_ppq_383")
    assert r.piece == "tempo_map" and r.longest_run >= 20


def test_random_walks_get_small_runs(index):
    runs = [index.check(random_walk(seed)).longest_run for seed in range(20)]
    assert max(runs) <= DEFAULT_GRAM + 1, runs


def test_empty_and_short_clips_give_zero(index, pieces):
    short = Clip(tracks=(Track(tuple(Note(60 + i, 80, 480 * i, 480) for i in range(5))),))
    drums = Clip(tracks=(replace(pieces["folk"].tracks[0], is_drum=True),))
    for clip in (Clip(tracks=()), short, drums):
        r = index.check(clip)
        assert (r.longest_run, r.piece, r.track, r.start_note) == (0, None, None, None)
    empty = NoveltyIndex.build([])
    assert empty.check(pieces["folk"]).longest_run == 0


def test_gram_is_validated():
    from musegen.errors import ParameterError

    with pytest.raises(ParameterError, match="gram"):
        NoveltyIndex.build([], gram=1)


# ------------------------------------------------------------------ save / load
def test_save_load_round_trip(index, pieces, tmp_path):
    path = index.save(tmp_path / "sub" / "novelty.npz")
    again = NoveltyIndex.load(path)
    assert again.names == index.names and again.gram == index.gram
    for a in ("hashes", "starts", "postings"):
        assert np.array_equal(getattr(again, a), getattr(index, a)), a
        assert getattr(again, a).dtype == getattr(index, a).dtype, a
    takes = [planted(pieces, "folk", 8), random_walk(3), *pieces.values()]
    for take in takes:
        a, b = index.check(take), again.check(take)
        assert replace(a, seconds=0) == replace(b, seconds=0)
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["novelty.npz"]
    assert again.stats["n_pieces"] == len(pieces)


def rewrite_text_member(src: Path, dst: Path, member: str, edit) -> Path:
    """Copy the .npz ``src`` to ``dst`` with the JSON text array ``member`` edited."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == f"{member}.npy":
                value = edit(json.loads(bytes(np.load(io.BytesIO(data))).decode()))
                buf = io.BytesIO()
                np.save(buf, np.frombuffer(json.dumps(value).encode(), np.uint8))
                data = buf.getvalue()
            zout.writestr(item, data)
    return dst


def test_load_rejects_bad_files(tmp_path, index):
    with pytest.raises(NoveltyIndexError, match="no novelty index"):
        NoveltyIndex.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(NoveltyIndexError, match="junk.npz"):
        NoveltyIndex.load(junk)
    good = index.save(tmp_path / "good.npz")
    other = rewrite_text_member(good, tmp_path / "v99.npz", "meta", lambda m: {**m, "version": 99})
    with pytest.raises(NoveltyIndexError, match="version 99"):
        NoveltyIndex.load(other)
    other = rewrite_text_member(good, tmp_path / "q.npz", "meta", lambda m: {**m, "max_gap": 9})
    with pytest.raises(NoveltyIndexError, match="other melody features"):
        NoveltyIndex.load(other)
    other = rewrite_text_member(good, tmp_path / "names.npz", "names", lambda n: n[:2])
    with pytest.raises(NoveltyIndexError, match="beyond the 2 listed"):
        NoveltyIndex.load(other)


# ------------------------------------------------------------------ from a corpus
def test_build_from_corpus(tmp_path, pieces):
    from musegen.atomic import write_json, write_jsonl
    from musegen.corpus.shards import write_shards
    from musegen.tokenizer import Tokenizer

    tok = Tokenizer()
    names = ["folk", "chorale", "six_eight_ppq96", "drums"]
    records = [{"id": f"style/{n}", "split": "valid" if n == "chorale" else "train",
                "style_index": 0} for n in names]
    arrays = {r["id"]: tok.encode(pieces[n]) for r, n in zip(records, names)}
    root = tmp_path / "corpus"
    shards = write_shards(root / "shards", records, arrays, shard_tokens=2000)
    write_jsonl(root / "pieces.jsonl", records)
    write_json(root / "styles.json", [{"name": "style", "index": 0}])
    tok.save(root / "tokenizer")
    write_json(root / "summary.json", {"shards": shards})
    seen = []
    index = build_from_corpus(root, progress=lambda done, total: seen.append((done, total)))
    assert index.names == ["style/folk", "style/six_eight_ppq96", "style/drums"]
    assert seen[-1] == (3, 3) and index.stats["skipped"] == []
    r = index.check(planted(pieces, "folk", 8).transpose(3))
    assert r.piece == "style/folk" and r.longest_run >= 12
