"""The novelty check: says honestly when a take is too close to a piece musegen learned from.

What is compared
----------------
Each non-drum track of a clip is reduced to one **melody line**: onsets are snapped to the
tokenizer's grid (1/12 quarter, :data:`QUANTUM_TICKS`) and at each onset only the highest
pitch is kept (the "skyline"). Note ``i`` of the line (``i >= 1``) is described by the pair

* the pitch interval from note ``i-1`` in semitones (clamped to +-63), and
* the onset gap from note ``i-1`` in grid steps (clamped to 1..255, about 21 quarters).

So two lines match when their pitches agree up to one transposition and their onsets up to
one shift in time; note durations (articulation) and the final note's length are ignored.

A **gram** is ``gram`` consecutive notes of a line (``gram - 1`` pairs, default 6 notes).
:class:`NoveltyIndex` stores a 32-bit hash of every gram of every voice of every training
piece with the list of pieces it occurs in.

What ``longest_run`` means
--------------------------
``Novelty.longest_run`` is the largest ``L`` such that some voice of the checked clip has
``L`` consecutive line notes whose ``L - gram + 1`` grams all occur in **one** training
piece (chaining stops as soon as no piece holds every gram so far). It is 0 when no gram
matches, or when no voice has ``gram`` notes; otherwise it is at least ``gram``. The grams
of a run must each occur in that piece, not necessarily at consecutive places in it, and
may come from different voices of it; so a run can be a few notes longer than the longest
literal copy when a piece repeats its own material. A planted copy of a training melody
gives a run as long as the copy (minus notes the skyline changes).

Hash collisions
---------------
Grams are hashed to 32 bits (64-bit polynomial hash, splitmix64 finaliser, top 32 bits).
A gram that is in no training piece still "matches" with probability
``n_hashes / 2**32`` (the index's ``false_match_rate``: 2.0e-4 for the corpus below). A
false match alone makes a run of exactly ``gram`` notes; it lengthens a true run by one
note only if it also lands on that same piece (about ``rate / n_pieces`` more). So a run
longer than ``gram + 1`` is a real match of every gram in it, up to odds of roughly
``n_grams_checked * rate**2`` (about 1e-6 for an 8-bar take), while a run of exactly
``gram`` notes is a false alarm with probability about ``n_grams_checked * rate`` (about 1%
for an 8-bar take). Random-walk melodies score at most 7 in the benchmark.

Choosing a threshold
--------------------
Human music shares short stock figures, and folk tunes come in families, so held-out pieces
share runs with the training set too. Over 2,253 8-bar excerpts of the corpus's valid split
checked against its train split: median 9 notes, p90 14, p95 17, p99 29; the share at or
over 12 / 16 / 20 notes is 19% / 6.8% / 3.7% (Scottish fiddle reels 46% / 13% / 7.5%,
Chinese folk 1.8% / 0% / 0%). Most long ones are variants of one tune under two numbers.
:data:`COPY_RUN` = 16 (two bars of eighth notes, four bars of a chorale) is the default of
:meth:`Novelty.too_close`; an 8-bar verbatim copy of a training piece scores 32 (median).

Cost (measured)
---------------
``python benchmarks/novelty.py`` on a 2-core x86-64 VM shared with a training job,
Python 3.11.7, numpy 2.4.6, single process:

* corpus (``data/corpus``, train split): 13,157 pieces, 1.90 M pitched notes, 1.80 M
  grams, 856 k distinct hashes, 1.32 M postings. ``build_from_corpus`` 27 s in all (decoding
  the tokens to clips ~26 s, indexing the clips 1.4 s); file **3.85 MB**; load 0.17 s.
  ``check`` of 200 8-bar takes (median 48 notes): **median 0.10 ms, p95 0.31 ms**.
* scale test (``--corpus none``: 1,785 real MIDI files, 93 more held out, padded with
  12,215 pitch-mutated variants to 14,000 pieces, 2.55 M notes, more diverse than folk): build 3.6 s, 1.61 M hashes,
  2.13 M postings, file **6.65 MB**, load 0.31 s; check (median 82 notes) median 0.27 ms,
  p95 0.40 ms.

In memory an index takes 12 bytes per distinct hash plus 2 per posting (~13 MB for the
corpus above).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musegen.atomic import write_bytes
from musegen.clip import PPQ, Clip, Track
from musegen.errors import MusegenError, ParameterError

FORMAT = "musegen-novelty"
FORMAT_VERSION = 1
DEFAULT_GRAM = 6
QUANTUM_TICKS = PPQ // 12  # the tokenizer's grid: 16ths and eighth-note triplets are exact
MAX_INTERVAL = 63  # semitones; larger leaps are clamped
MAX_GAP = 255  # grid steps (~21 quarters); longer rests are clamped
COPY_RUN = 16
"""Suggested threshold: a run of this many notes or more is "too close" (see ``too_close``)."""

_MULT = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


class NoveltyIndexError(MusegenError, ValueError):
    """A novelty index file is missing, corrupt or of another format version."""


@dataclass(frozen=True)
class Novelty:
    """The result of :meth:`NoveltyIndex.check`.

    ``longest_run`` notes of track ``track`` of the checked clip, starting at
    ``clip.tracks[track].notes[start_note]`` (tick ``start_tick``), also occur in the
    training piece named ``piece``. With no match: 0 and ``None`` everywhere.
    ``seconds`` is how long the check took.
    """

    longest_run: int
    piece: str | None
    track: int | None
    start_note: int | None
    start_tick: int | None
    seconds: float

    def too_close(self, min_run: int = COPY_RUN) -> bool:
        """Whether the longest shared run reaches ``min_run`` notes."""
        return self.longest_run >= min_run

    def describe(self) -> str:
        """One sentence for a musician."""
        if not self.longest_run:
            return "no run of notes matches anything musegen learned from"
        beat = (self.start_tick or 0) / PPQ
        return (f"{self.longest_run} consecutive notes of track {self.track} (from beat "
                f"{beat:g}) also occur in training piece {self.piece!r}")


@dataclass(frozen=True)
class MelodyLine:
    """One voice reduced to its skyline: ``codes[i]`` describes note ``i + 1`` relative to
    note ``i``; ``note_index[i]`` is that line note's index in the track's ``notes``."""

    codes: np.ndarray  # (n - 1,) uint64: (interval + 64) << 8 | gap
    note_index: np.ndarray  # (n,) int64


def melody_line(track: Track) -> MelodyLine:
    """The skyline of ``track`` as transposition-invariant codes (see the module docs)."""
    n = len(track.notes)
    if n == 0:
        return MelodyLine(np.zeros(0, np.uint64), np.zeros(0, np.int64))
    start = np.fromiter((x.start_tick for x in track.notes), np.int64, n)
    pitch = np.fromiter((x.pitch for x in track.notes), np.int64, n)
    onset = (start + QUANTUM_TICKS // 2) // QUANTUM_TICKS
    order = np.lexsort((pitch, onset))  # by onset, then pitch: the last of a group is the top
    onset, pitch = onset[order], pitch[order]
    top = np.ones(n, bool)
    top[:-1] = onset[:-1] != onset[1:]
    onset, pitch, order = onset[top], pitch[top], order[top]
    interval = np.clip(np.diff(pitch), -MAX_INTERVAL, MAX_INTERVAL) + (MAX_INTERVAL + 1)
    gap = np.clip(np.diff(onset), 1, MAX_GAP)
    return MelodyLine(((interval << 8) | gap).astype(np.uint64), order)


def gram_hashes(codes: np.ndarray, gram: int) -> np.ndarray:
    """32-bit hash of every window of ``gram - 1`` codes (``gram`` notes), in order."""
    k = gram - 1
    m = len(codes) - k + 1
    if m <= 0 or k <= 0:
        return np.zeros(0, np.uint32)
    h = np.full(m, gram, np.uint64)
    for i in range(k):
        h = h * _MULT + codes[i:i + m] + np.uint64(1)
    h ^= h >> np.uint64(30)  # splitmix64 finaliser: spreads every input bit
    h *= _MIX1
    h ^= h >> np.uint64(27)
    h *= _MIX2
    h ^= h >> np.uint64(31)
    return (h >> np.uint64(32)).astype(np.uint32)


def _voices(clip: Clip) -> list[tuple[int, Track]]:
    return [(i, t) for i, t in enumerate(clip.tracks) if not t.is_drum and t.notes]


class NoveltyIndex:
    """Hashed melody n-grams of a training set, with the pieces each occurs in.

    Arrays: ``hashes`` (sorted unique uint32), ``starts`` (offsets into ``postings``, one
    more than ``hashes``) and ``postings`` (piece indices, sorted within each hash's list).
    """

    def __init__(self, hashes: np.ndarray, starts: np.ndarray, postings: np.ndarray,
                 names: Sequence[str], gram: int = DEFAULT_GRAM,
                 stats: dict | None = None) -> None:
        if gram < 2:
            raise ParameterError(f"gram must be at least 2 notes, not {gram}")
        assert len(starts) == len(hashes) + 1 and int(starts[-1]) == len(postings)
        self.hashes = hashes
        self.starts = starts
        self.postings = postings
        self.names = list(names)
        self.gram = int(gram)
        self.stats = dict(stats or {})

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return (f"NoveltyIndex({len(self.names)} pieces, {len(self.hashes)} grams of "
                f"{self.gram} notes, {len(self.postings)} postings)")

    @property
    def false_match_rate(self) -> float:
        """Chance that a gram absent from every training piece still matches a hash."""
        return len(self.hashes) / 2.0**32

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, items: Iterable[tuple[str, Clip]], gram: int = DEFAULT_GRAM) -> NoveltyIndex:
        """Index every voice of every ``(name, clip)``; piece ``i`` is the ``i``-th item."""
        if not 2 <= gram <= 64:
            raise ParameterError(f"gram must be 2..64 notes, not {gram}")
        names: list[str] = []
        keys: list[np.ndarray] = []
        n_notes = n_grams = n_voices = 0
        for name, clip in items:
            piece = len(names)
            names.append(str(name))
            hs = []
            for _, track in _voices(clip):
                line = melody_line(track)
                h = gram_hashes(line.codes, gram)
                n_voices += 1
                n_notes += len(line.note_index)
                n_grams += len(h)
                hs.append(h)
            if hs:
                h = np.unique(np.concatenate(hs)).astype(np.uint64)
                keys.append((h << np.uint64(32)) | np.uint64(piece))
        key = np.sort(np.concatenate(keys)) if keys else np.zeros(0, np.uint64)
        hashed = (key >> np.uint64(32)).astype(np.uint32)
        first = np.ones(len(hashed), bool)
        first[1:] = hashed[1:] != hashed[:-1]
        starts = np.append(np.flatnonzero(first), len(hashed)).astype(np.int64)
        dtype = np.uint16 if len(names) <= 1 << 16 else np.uint32
        postings = (key & np.uint64(0xFFFFFFFF)).astype(dtype)
        stats = {"n_pieces": len(names), "n_voices": n_voices, "n_line_notes": n_notes,
                 "n_grams": n_grams}
        return cls(hashed[first], starts, postings, names, gram, stats)

    # ------------------------------------------------------------------ check
    def check(self, clip: Clip, *, exclude: str | None = None) -> Novelty:
        """The longest run of ``clip``'s notes shared with one training piece.

        ``exclude`` names a training piece to ignore (to check a training piece against
        the rest of the set). Of equally long runs, the one in the piece indexed first,
        then the earliest in the clip, is reported.
        """
        t0 = time.perf_counter()
        # Every gram of every voice gets a global position; voices are one position apart
        # so that no run crosses from one voice into the next.
        voices, hashes, offsets, at = [], [], [], 0
        for ti, track in _voices(clip):
            line = melody_line(track)
            h = gram_hashes(line.codes, self.gram)
            if len(h):
                voices.append((ti, line, at))
                hashes.append(h)
                offsets.append(np.arange(at, at + len(h)))
                at += len(h) + 1
        if not voices or not len(self.hashes):
            return Novelty(0, None, None, None, None, time.perf_counter() - t0)
        h = np.concatenate(hashes)
        gram_at = np.concatenate(offsets)
        pos = np.minimum(np.searchsorted(self.hashes, h), len(self.hashes) - 1)
        found = self.hashes[pos] == h
        pos, gram_at = pos[found], gram_at[found]
        # All (gram, piece) pairs: each matched gram with every piece of its posting list.
        lo, counts = self.starts[pos], self.starts[pos + 1] - self.starts[pos]
        total = int(counts.sum())
        first = np.cumsum(counts) - counts
        pieces = self.postings[np.arange(total) - np.repeat(first - lo, counts)]
        grams = np.repeat(gram_at, counts)
        if exclude is not None and exclude in self.names:
            keep = pieces != self.names.index(exclude)
            pieces, grams = pieces[keep], grams[keep]
        if not len(pieces):
            return Novelty(0, None, None, None, None, time.perf_counter() - t0)
        # Grouped by piece (a stable radix sort keeps gram order within a piece), a run is
        # a stretch of consecutive gram positions.
        order = np.argsort(pieces, kind="stable")
        pieces, grams = pieces[order], grams[order]
        brk = np.ones(len(grams), bool)
        brk[1:] = (grams[1:] != grams[:-1] + 1) | (pieces[1:] != pieces[:-1])
        run_start = np.flatnonzero(brk)
        run_len = np.diff(np.append(run_start, len(grams)))
        k = int(np.argmax(run_len))
        n_grams, piece, g = int(run_len[k]), int(pieces[run_start[k]]), int(grams[run_start[k]])
        ti, line, at = next(v for v in reversed(voices) if v[2] <= g)
        note = int(line.note_index[g - at])
        return Novelty(n_grams + self.gram - 1, self.names[piece], ti, note,
                       clip.tracks[ti].notes[note].start_tick, time.perf_counter() - t0)

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | Path) -> Path:
        """Write one compressed ``.npz`` atomically (temp file, fsync, rename).

        Sorted hashes are stored as byte planes of their differences, posting lists as
        differences within each list: deflate then gets close to their entropy.
        """
        p = Path(path)
        counts = np.diff(self.starts).astype(np.uint32)
        dh = np.diff(self.hashes.astype(np.int64), prepend=0).astype(np.uint32)
        dp = self.postings.astype(np.int64)
        inner = np.ones(len(dp), bool)
        inner[self.starts[:-1]] = False
        dp[1:][inner[1:]] = np.diff(dp)[inner[1:]]
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "gram": self.gram,
                "quantum_ticks": QUANTUM_TICKS, "max_interval": MAX_INTERVAL,
                "max_gap": MAX_GAP, "hash_bits": 32, "numpy": np.__version__, **self.stats}
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            meta=_text_array(json.dumps(meta)),
            names=_text_array(json.dumps(self.names, ensure_ascii=False)),
            hash_delta=_planes(dh),
            counts=_planes(counts),
            posting_delta=_planes(dp.astype(self.postings.dtype)),
        )
        write_bytes(p, buf.getvalue())
        return p

    @classmethod
    def load(cls, path: str | Path) -> NoveltyIndex:
        """Read an index written by :meth:`save`; ``NoveltyIndexError`` names what is wrong."""
        p = Path(path)
        meta, names, dh, counts, dp, dtype = _read_index_file(p)
        hashes = np.cumsum(dh, dtype=np.uint64).astype(np.uint32)
        starts = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=starts[1:])
        if starts[-1] != len(dp) or np.any(dh[1:] == 0) or np.any(counts == 0):
            raise NoveltyIndexError(f"{p}: hashes or posting lists do not add up; corrupt")
        postings = _undelta_postings(dp, starts, counts)
        if len(postings) and not 0 <= postings.min() <= postings.max() < len(names):
            raise NoveltyIndexError(f"{p}: a posting names a piece beyond the "
                                    f"{len(names)} listed; the file is corrupt")
        postings = postings.astype(dtype)
        stats = {k: v for k, v in meta.items() if k.startswith("n_") or k == "skipped"}
        return cls(hashes, starts, postings, names, meta["gram"], stats)


def _read_index_file(p: Path) -> tuple[dict, list, np.ndarray, np.ndarray, np.ndarray, type]:
    """(meta, names, hash deltas, list lengths, posting deltas, posting dtype) of an index file,
    its format and melody features checked; ``NoveltyIndexError`` for anything unreadable."""
    try:
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            _check_meta(p, meta)
            names = json.loads(bytes(z["names"]).decode("utf-8"))
            dh = _unplanes(z["hash_delta"], np.uint32)
            counts = _unplanes(z["counts"], np.uint32)
            dtype = np.uint16 if z["posting_delta"].shape[0] == 2 else np.uint32
            dp = _unplanes(z["posting_delta"], dtype).astype(np.int64)
    except FileNotFoundError:
        raise NoveltyIndexError(f"{p}: no novelty index here") from None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        if isinstance(e, NoveltyIndexError):
            raise
        raise NoveltyIndexError(f"{p}: not a readable novelty index ({e})") from None
    return meta, names, dh, counts, dp, dtype


def _check_meta(p: Path, meta: dict) -> None:
    """The file's format, version and melody features are the ones this code reads."""
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise NoveltyIndexError(
            f"{p}: format {meta.get('format')!r} version {meta.get('version')!r}"
            f" is not {FORMAT!r} version {FORMAT_VERSION}")
    if (meta["quantum_ticks"], meta["max_interval"], meta["max_gap"]) != (
            QUANTUM_TICKS, MAX_INTERVAL, MAX_GAP):
        raise NoveltyIndexError(f"{p}: built with other melody features {meta}")


def _undelta_postings(dp: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Posting lists stored as differences within each list, back to piece numbers (int64)."""
    c = np.cumsum(dp)
    base = c[starts[:-1]] - dp[starts[:-1]] if len(dp) else np.zeros(0, np.int64)
    return c - np.repeat(base, counts)


def _text_array(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), np.uint8)


def _planes(a: np.ndarray) -> np.ndarray:
    """(itemsize, n) uint8: byte ``k`` of every value together, so deflate sees the runs."""
    a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<")))
    return a.view(np.uint8).reshape(-1, a.dtype.itemsize).T.copy()


def _unplanes(planes: np.ndarray, dtype: type) -> np.ndarray:
    return np.ascontiguousarray(planes.T).view(np.dtype(dtype).newbyteorder("<")).ravel() \
        .astype(dtype)


def build_from_corpus(corpus_dir: str | Path, split: str = "train", gram: int = DEFAULT_GRAM,
                      progress: Callable[[int, int], None] | None = None) -> NoveltyIndex:
    """Index split ``split`` of a built corpus, naming each piece by its corpus id.

    Token arrays are decoded with the corpus's own tokenizer; a piece that does not decode
    is left out and listed in ``index.stats["skipped"]``. ``progress(done, total)`` is
    called every 500 pieces.
    """
    from musegen.corpus.dataset import Corpus

    corpus = Corpus.open(Path(corpus_dir))
    tokenizer = corpus.tokenizer()
    pieces = corpus.split(split)
    # pieces.jsonl lists each split's pieces in shard order: the order split() returns.
    records = [r for r in corpus.pieces() if r.get("split") == split]
    if len(records) != len(pieces):
        raise NoveltyIndexError(f"{corpus_dir}: pieces.jsonl lists {len(records)} {split} "
                                f"pieces but the shards hold {len(pieces)}")
    order = sorted(range(len(records)),
                   key=lambda i: (records[i].get("shard", ""), records[i].get("index", i)))
    if order != list(range(len(records))):
        raise NoveltyIndexError(f"{corpus_dir}: pieces.jsonl is not in shard order")
    skipped: list[str] = []

    def items() -> Iterable[tuple[str, Clip]]:
        for i, ((_, ids), rec) in enumerate(zip(pieces, records)):
            if progress and i % 500 == 0:
                progress(i, len(pieces))
            try:
                clip = tokenizer.decode(ids, name=str(rec["id"]))  # type: ignore[attr-defined]
            except (MusegenError, ValueError, IndexError):
                skipped.append(str(rec["id"]))
                continue
            yield str(rec["id"]), clip

    index = NoveltyIndex.build(items(), gram=gram)
    index.stats["skipped"] = skipped
    if progress:
        progress(len(pieces), len(pieces))
    return index


__all__ = [
    "COPY_RUN",
    "DEFAULT_GRAM",
    "MelodyLine",
    "Novelty",
    "NoveltyIndex",
    "NoveltyIndexError",
    "build_from_corpus",
    "gram_hashes",
    "melody_line",
]
