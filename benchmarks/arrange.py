"""`Studio.arrange` on held-out music: chorales harmonized from their soprano, German folk
songs harmonized as chorales, one inner voice filled, and the speed against a continuation.

The pieces are the corpus's **test split**, computed the way `musegen corpus build` does it
(`musegen.corpus.grouping`: groups by title within a family and by the top line's melodic
fingerprint, split by a stable hash of the group id) over the `bach-chorale` and `german-folk`
styles of music21's bundled corpus: their MIDI is written once into `--cache` (music21 for the
chorales, abc2midi for the folk songs). A chorale whose melody Bach set twice lands in one
group, so a test chorale's tune is not in training under another BWV number. (Fingerprint joins
with the other ten styles are not computed here; titles only join within a family anyway.)

Figures (`musegen.evaluation.musicianship`, the same functions for takes and for Bach):
kept voice note-for-note identical, triads/7ths on beats, parallel 5ths + 8ves per bar, voice
crossings, SATB range share of the added voices, bass at or below tenor.

    python -m benchmarks.arrange --out benchmarks/results/arrange.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import numpy as np

from benchmarks._report import emit

SEED = 2026
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "musegen" / "arrange-bench"


# ------------------------------------------------------------------ the test split
def _convert_chorale(job: tuple[str, str]) -> None:
    from musegen.corpus.sources import convert_m21_file

    src, target = Path(job[0]), Path(job[1])
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        convert_m21_file(src, target, timeout_s=60.0)


def test_split(cache: Path, workers: int = 2) -> dict[str, list[tuple[str, Path]]]:
    """{style: [(piece id, MIDI file), ...]} of the test split of bach-chorale and german-folk
    (cached in `cache/split.json`)."""
    index = cache / "split.json"
    if index.exists():
        d = json.loads(index.read_text())
        return {k: [(i, Path(p)) for i, p in v] for k, v in d.items()}
    from concurrent.futures import ProcessPoolExecutor

    from musegen.clip import Clip
    from musegen.corpus import abc as abc_mod
    from musegen.corpus.encode import top_line_fingerprint
    from musegen.corpus.grouping import assign_groups, split_of
    from musegen.corpus.sources import enumerate_style
    from musegen.corpus.styles import get_style

    pieces, jobs = [], []
    for name in ("bach-chorale", "german-folk"):
        p, j = enumerate_style(get_style(name), cache)
        pieces += p
        jobs += j
    m21 = [(str(j.source), str(j.target)) for j in jobs if j.kind == "music21"]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_convert_chorale, m21, chunksize=8))
    for j in jobs:
        if j.kind == "abc" and not abc_mod.is_converted(j.target):
            abc_mod.convert_abc_file(j.source, j.target, use_abc2midi=True)
    rows = []
    for p in pieces:
        fp = None
        if p.skip is None and p.midi.exists():
            try:
                fp = top_line_fingerprint(Clip.load(p.midi))
            except Exception:  # noqa: BLE001 - an unreadable file is left out, as the build does
                continue
        rows.append({"id": p.id, "family": p.family, "title": p.title, "fingerprint": fp,
                     "style": p.style, "midi": str(p.midi), "ok": fp is not None})
    groups = assign_groups(rows)
    out: dict[str, list] = {"bach-chorale": [], "german-folk": []}
    for r in rows:
        if r["ok"] and split_of(groups[r["id"]]) == "test":
            out[r["style"]].append((r["id"], r["midi"]))
    cache.mkdir(parents=True, exist_ok=True)
    index.write_text(json.dumps(out, indent=1))
    return {k: [(i, Path(p)) for i, p in v] for k, v in out.items()}


if __name__ == "__main__" and sys.argv[1:2] == ["--split-only"]:
    s = test_split(CACHE)
    print({k: len(v) for k, v in s.items()})
    sys.exit(0)
