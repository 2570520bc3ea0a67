"""Round trip over a corpus split, from the MIDI files: decode(encode(clip)) == quantize(clip).

Also reports tokens per bar for each style (the figure generation speed depends on).

    python -m benchmarks.roundtrip --corpus data/corpus-default --split test --out benchmarks/results/roundtrip.md
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks._report import emit
from musegen.clip import Clip
from musegen.errors import MusegenError
from musegen.tokenizer import Tokenizer


def grid_notes(c: Clip) -> list:
    return sorted((i, n.pitch, n.start_tick, n.duration_ticks) for i, t in enumerate(c.tracks) for n in t.notes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus-default"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    tok = Tokenizer.load(args.corpus / "tokenizer")
    rows = [json.loads(x) for x in (args.corpus / "pieces.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["split"] == args.split]
    ok, failures = 0, []
    per_style: dict[str, list[float]] = defaultdict(list)
    t0 = time.perf_counter()
    for r in rows:
        path = args.corpus / r["midi"]
        if not path.exists():
            path = Path(str(path).replace("data/corpus-default", "data/corpus"))
        try:
            clip = Clip.load(path)
            ids = tok.encode(clip)
            tok.validate(ids)
            back, q = tok.decode(ids), tok.quantize(clip)
        except (MusegenError, OSError) as e:
            failures.append((r["id"], str(e)))
            continue
        same = grid_notes(back) == grid_notes(q) and back.n_bars == q.n_bars == clip.n_bars
        same &= [(t.program, t.is_drum) for t in back.tracks] == [(t.program, t.is_drum) for t in q.tracks]
        if same:
            ok += 1
        else:
            failures.append((r["id"], "mismatch"))
        per_style[r["style"]].append(len(ids) / max(1, clip.n_bars))
    wall = time.perf_counter() - t0
    lines = [f"# Tokenizer round trip and tokens per bar ({args.split} split)", "",
             f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
             f"{len(rows)} pieces read from their MIDI files in {wall:.1f} s.", "",
             f"**decode(encode(clip)) == quantize(clip)** (pitch, onset, duration, track, bar count): "
             f"{ok} of {len(rows)} pieces.", ""]
    if failures:
        lines += ["Failures:", ""] + [f"- {i}: {why}" for i, why in failures[:50]] + [""]
    lines += ["| style | pieces | tokens per bar (median) | p95 |", "|---|---:|---:|---:|"]
    for s, v in sorted(per_style.items()):
        lines.append(f"| {s} | {len(v)} | {np.median(v):.1f} | {np.percentile(v, 95):.1f} |")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
