"""Each multi-voice style's ensemble, measured from its real pieces: how many voices its pieces
have and each voice's range, per voice count. Stored with the model as `voices.json`, where the
voice-leading constraint (`musegen.generate.voices`) reads it to start from nothing.

    python -m musegen.corpus.voices musegen/models/default [--styles bach-chorale ...] [--limit N]

A voice is a part of the score, in the score's order (the order the corpus writes tracks in);
its range is the 2nd..98th percentile of its pitches, so one stray note does not widen it.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musegen.atomic import write_text
from musegen.corpus.m21midi import _part_notes
from musegen.corpus.styles import get_style, style_files
from musegen.generate.voices import FILE, STYLES, load


def piece_voices(path: Path) -> list[list[int]]:
    """The pitches of each part (with notes) of one score, in score order."""
    import music21

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = music21.converter.parse(str(path))
    parts = list(getattr(score, "parts", [])) or [score]
    out = [[p for _, _, p, _ in _part_notes(part)] for part in parts]
    return [v for v in out if v]


def measure(style: str, limit: int | None = None) -> dict:
    """{"voices": {count: pieces}, "ranges": {count: [[low, high] per voice]}} of a style."""
    files = style_files(get_style(style))
    if limit is not None and len(files) > limit:  # evenly spread over the sorted files
        files = [files[int(i)] for i in np.linspace(0, len(files) - 1, limit)]
    counts: Counter[int] = Counter()
    pitches: dict[int, list[list[int]]] = {}
    for f in files:
        try:
            voices = piece_voices(f)
        except Exception:  # noqa: BLE001 - music21 raises many kinds; a bad file is skipped
            continue
        if not voices:
            continue
        counts[len(voices)] += 1
        per = pitches.setdefault(len(voices), [[] for _ in voices])
        for acc, v in zip(per, voices):
            acc.extend(v)
    ranges = {str(n): [[int(np.percentile(v, 2)), int(np.percentile(v, 98))] for v in per]
              for n, per in sorted(pitches.items())}
    return {"voices": {str(n): c for n, c in sorted(counts.items())}, "ranges": ranges,
            "pieces": sum(counts.values())}


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - a measuring run
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--styles", nargs="+", default=list(STYLES))
    ap.add_argument("--limit", type=int, default=None, help="pieces per style, spread evenly")
    a = ap.parse_args(argv)
    out = load(a.model_dir)
    for s in a.styles:
        out[s] = measure(s, a.limit)
        print(s, out[s]["voices"], out[s]["ranges"].get("4"))
    write_text(a.model_dir / FILE, json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":  # pragma: no cover
    main()
