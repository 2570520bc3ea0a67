"""Tokens per bar and voice preservation: MidiTok 3 REMI (programs, tempos, time signatures,
8 velocities) against musegen-REMI on the test split of the corpus.

    python -m benchmarks.miditok_compare --corpus data/corpus-default
"""

from __future__ import annotations

import argparse
import collections
import json
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    warnings.filterwarnings("ignore")
    from miditok import REMI, TokenizerConfig
    from symusic import Score

    from musegen import Clip
    from musegen.examples import example_path
    from musegen.tokenizer import Tokenizer

    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus-default"))
    args = ap.parse_args()
    rows = [json.loads(x) for x in (args.corpus / "pieces.jsonl").read_text().splitlines()]
    cfg = TokenizerConfig(use_programs=True, one_token_stream_for_programs=True, use_tempos=True,
                          use_time_signatures=True, num_velocities=8)
    mt, ours = REMI(cfg), Tokenizer()
    per: dict[str, list[list[float]]] = collections.defaultdict(lambda: [[], []])
    for r in rows:
        if r["split"] != "test":
            continue
        path = args.corpus / r["midi"]
        clip = Clip.load(path)
        toks = mt(Score(str(path)))
        n = len(toks.ids) if hasattr(toks, "ids") else len(toks[0].ids)
        per[r["style"]][0].append(n / clip.n_bars)
        per[r["style"]][1].append(len(ours.encode(clip)) / clip.n_bars)
    print("| style | MidiTok REMI tokens/bar (median) | musegen-REMI tokens/bar (median) |")
    print("|---|---:|---:|")
    for style, (a, b) in sorted(per.items()):
        print(f"| {style} | {np.median(a):.1f} | {np.median(b):.1f} |")
    path = example_path("chorale")
    back = mt.decode(mt(Score(str(path))))
    clip = Clip.load(path)
    print(f"\nBWV 66.6 (4 voices on program 0): MidiTok round trip gives {len(back.tracks)} track(s), "
          f"musegen-REMI {len(ours.decode(ours.encode(clip)).tracks)}.")


if __name__ == "__main__":
    main()
