"""Benchmark the novelty index: build time, size on disk, load time, check latency, and how
long the runs shared by held-out music usually are (to choose ``COPY_RUN``).

    python benchmarks/novelty.py                      # data/corpus if built, else MIDI files
    python benchmarks/novelty.py --corpus data/corpus
    python benchmarks/novelty.py --midi data/corpus/work/midi --pieces 14000

With ``--corpus`` the train split is decoded with the corpus tokenizer and indexed; takes
to check are 8-bar excerpts of the valid split (unseen music) and of the train split
(copies). With ``--midi`` the files are loaded and, if ``--pieces`` asks for more pieces
than there are files, padded with *synthetic variants* (a random stretch of a real file, every
note's pitch moved by 1-3 semitones with probability 0.3, so most grams are new) to reach
corpus scale: ``--pieces`` pieces and about ``--notes`` pitched notes.

Single process, prints a Markdown report. Check times are ``Novelty.seconds`` after 10
warm-up checks.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from musegen.clip import Clip, Note, Track  # noqa: E402
from musegen.novelty import COPY_RUN, NoveltyIndex, melody_line  # noqa: E402


def excerpt(clip: Clip, rng: np.random.Generator, bars: int = 8) -> Clip | None:
    if clip.n_bars < bars:
        return None
    s = int(rng.integers(0, clip.n_bars - bars + 1))
    take = clip.slice_bars(s, s + bars)
    return take if take.n_notes else None


def variant(clip: Clip, rng: np.random.Generator, notes_per_piece: float) -> Clip:
    """A random stretch of ``clip`` (about ``notes_per_piece`` pitched notes) with every
    note's pitch moved by 1-3 semitones with probability 0.3."""
    n = sum(len(t.notes) for t in clip.tracks if not t.is_drum)
    bars = max(4, min(clip.n_bars, round(clip.n_bars * notes_per_piece / max(1, n))))
    s = int(rng.integers(0, clip.n_bars - bars + 1)) if clip.n_bars > bars else 0
    clip = clip.slice_bars(s, min(clip.n_bars, s + bars))
    tracks = []
    for t in clip.tracks:
        moves = np.where(rng.random(len(t.notes)) < 0.3, rng.integers(1, 4, len(t.notes))
                         * rng.choice([-1, 1], len(t.notes)), 0)
        if t.is_drum:
            moves[:] = 0
        tracks.append(replace(t, notes=tuple(
            Note(int(np.clip(x.pitch + m, 0, 127)), x.velocity, x.start_tick, x.duration_ticks)
            for x, m in zip(t.notes, moves.tolist()))))
    return replace(clip, tracks=tuple(tracks))


def longest_line(clip: Clip) -> int:
    return max((len(melody_line(t).note_index) for t in clip.tracks if not t.is_drum), default=0)


def random_walk(rng: np.random.Generator, n: int = 48) -> Clip:
    pitch, tick, notes = 64, 0, []
    for _ in range(n):
        pitch = int(np.clip(pitch + rng.integers(-5, 6), 40, 90))
        dur = int(rng.choice([120, 240, 240, 480]))
        notes.append(Note(pitch, 80, tick, dur))
        tick += dur
    return Clip(tracks=(Track(tuple(notes)),))


def from_corpus(path: Path) -> tuple[list, list, dict]:
    from musegen.corpus.dataset import Corpus

    corpus = Corpus.open(path)
    tok = corpus.tokenizer()
    t0 = time.perf_counter()
    records = {s: [r for r in corpus.pieces() if r.get("split") == s] for s in ("train", "valid")}
    out = {}
    for split in ("train", "valid"):
        items = []
        for (_, ids), rec in zip(corpus.split(split), records[split]):
            try:
                items.append((str(rec["id"]), tok.decode(ids)))  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - counted, not fatal, for a benchmark
                pass
        out[split] = items
    return out["train"], out["valid"], {"decode_s": time.perf_counter() - t0,
                                        "source": f"corpus {path} (train split indexed)"}


def from_midi(folder: Path, n_pieces: int, n_notes: int,
              rng: np.random.Generator) -> tuple[list, list, dict]:
    files = sorted(folder.rglob("*.mid"))
    t0 = time.perf_counter()
    real = []
    for f in files:
        try:
            real.append((str(f.relative_to(folder)), Clip.load(f)))
        except Exception:  # noqa: BLE001
            pass
    load_s = time.perf_counter() - t0
    # hold out 5% of the real files as unseen music
    order = rng.permutation(len(real))
    held = [real[i] for i in order[: max(1, len(real) // 20)]]
    train = [real[i] for i in order[max(1, len(real) // 20):]]
    k = 0
    base = list(train)
    real_notes = sum(len(t.notes) for _, c in train for t in c.tracks if not t.is_drum)
    per_piece = max(1.0, (n_notes - real_notes) / max(1, n_pieces - len(train)))
    while len(train) < n_pieces:
        name, clip = base[int(rng.integers(len(base)))]
        train.append((f"{name}~{k}", variant(clip, rng, per_piece)))
        k += 1
    return train, held, {"load_s": load_s, "source": f"{len(real)} MIDI files under {folder}"
                         f" + {k} synthetic variants"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "data/corpus")
    ap.add_argument("--midi", type=Path, default=ROOT / "data/corpus/work/midi")
    ap.add_argument("--pieces", type=int, default=14000, help="pad --midi to this many")
    ap.add_argument("--notes", type=int, default=2_500_000,
                    help="with --midi: pitched notes to aim for over all pieces")
    ap.add_argument("--checks", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    if (args.corpus / "summary.json").is_file():
        train, held, info = from_corpus(args.corpus)
    else:
        train, held, info = from_midi(args.midi, args.pieces, args.notes, rng)
    n_notes = sum(len(t.notes) for _, c in train for t in c.tracks if not t.is_drum)

    gc.collect()
    t0 = time.perf_counter()
    index = NoveltyIndex.build(train)
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = index.save(Path(tmp) / "novelty.npz")
        save_s = time.perf_counter() - t0
        size = path.stat().st_size
        t0 = time.perf_counter()
        index = NoveltyIndex.load(path)
        load_s = time.perf_counter() - t0

    # takes: half unseen music, a quarter copies of training pieces, a quarter random walks
    takes: list[tuple[str, Clip]] = []
    sources: list[str] = []
    while len(takes) < args.checks:
        kind = len(takes) % 4
        if kind in (0, 1):
            name, clip = held[int(rng.integers(len(held)))]
            take = excerpt(clip, rng)
            kind_name = "unseen"
        elif kind == 2:
            name, clip = train[int(rng.integers(len(train)))]
            take = excerpt(clip, rng)
            kind_name = "copy"
        else:
            take, kind_name, name = random_walk(rng), "random", "random walk"
        if take is not None:
            takes.append((kind_name, take))
            sources.append(name)
    for _, take in takes[:10]:
        index.check(take)  # warm-up
    results = [(k, index.check(t), t.n_notes) for k, t in takes]
    ms = [r.seconds * 1e3 for _, r, _ in results]

    def pct(xs: list[float], q: float) -> float:
        return float(np.percentile(xs, q)) if xs else float("nan")

    print(f"# Novelty index benchmark ({time.strftime('%Y-%m-%d')})\n")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} cores "
          f"({platform.processor() or 'cpu'}), shared with a training job; "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    print(f"- data: {info['source']}")
    if "decode_s" in info:
        print(f"- decoding the corpus tokens to clips: {info['decode_s']:.1f} s")
    print(f"- indexed: {len(train)} pieces, {n_notes:,} pitched notes, "
          f"{index.stats['n_line_notes']:,} melody-line notes, {index.stats['n_grams']:,} grams")
    print(f"- index: {len(index.hashes):,} distinct hashes, {len(index.postings):,} "
          f"(hash, piece) postings, false-match rate {index.false_match_rate:.1e} per gram")
    print(f"- build {build_s:.1f} s (from decoded clips), save {save_s:.2f} s, "
          f"load {load_s:.2f} s, file {size / 1e6:.2f} MB")
    take_notes = statistics.median(n for *_, n in results)
    print(f"- check, {len(takes)} 8-bar takes (median {take_notes:.0f} notes)"
          f": median {statistics.median(ms):.2f} ms, p95 {pct(ms, 95):.2f} ms, "
          f"max {max(ms):.2f} ms\n")
    print("| takes | n | longest_run p50 | p90 | p99 | max | too_close (>= "
          f"{COPY_RUN}) |")
    print("|---|---|---|---|---|---|---|")
    long_copies = {id(t) for k, t in takes if k == "copy" and longest_line(t) >= COPY_RUN}
    results += [(f"copy, a voice >= {COPY_RUN} notes", r, n)
                for (k, t), (_, r, n) in zip(takes, results) if id(t) in long_copies]
    for kind in ("unseen", "copy", f"copy, a voice >= {COPY_RUN} notes", "random"):
        runs = [r.longest_run for k, r, _ in results if k == kind]
        close = sum(r.too_close() for k, r, _ in results if k == kind)
        print(f"| {kind} | {len(runs)} | {pct(runs, 50):.0f} | {pct(runs, 90):.0f} | "
              f"{pct(runs, 99):.0f} | {max(runs)} | {close / max(1, len(runs)):.0%} |")

    flagged = [(src, r) for src, (k, r, _) in zip(sources, results) if k == "unseen"
               and r.too_close()]
    if flagged:
        print("\nUnseen takes at or over COPY_RUN (source -> training piece, run):\n")
        for src, r in flagged[:12]:
            print(f"- {src} -> {r.piece}: {r.longest_run}")


if __name__ == "__main__":
    main()

