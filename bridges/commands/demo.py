"""`musegen demo`: the main job a new user runs right after installing.

Until the default model is trained, it loads a real score from music21's bundled corpus,
tokenizes it, checks the round trip and writes the clip back to MIDI.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job, run on a bundled example")
    p.add_argument("--out", type=Path, default=Path("takes/demo"), help="folder for the output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from musegen.clip import Clip
    from musegen.examples import example_path
    from musegen.tokenizer import Tokenizer

    console = Console()
    src = example_path("folk")
    clip = Clip.load(src)
    tok = Tokenizer()
    ids = tok.encode(clip)
    tok.validate(ids)
    back = tok.decode(ids, name=clip.name)
    out = back.save(Path(args.out) / f"{clip.name}-roundtrip.mid")
    console.print(f"[bold]{src.name}[/]: {clip.n_bars} bars, {clip.n_notes} notes, key {clip.key}")
    console.print(f"{len(ids)} tokens ({len(ids) / clip.n_bars:.1f} per bar); wrote {out}")
    return 0
