"""`musegen corpus build`: the style-labelled training corpus (see musegen/corpus)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("corpus", help="build or inspect the training corpus")
    csub = p.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    b = csub.add_parser(
        "build",
        help="build the corpus from music21's bundled scores, or from --midi-dir",
        description="Parse, tokenize and split the corpus into numpy shards. Re-running after "
        "an interruption resumes where it stopped.",
    )
    b.add_argument("--out", type=Path, default=None,
                   help="corpus folder (default: $MUSEGEN_HOME/corpus or ~/.cache/musegen/corpus)")
    b.add_argument("--midi-dir", type=Path, default=None,
                   help="build from your own MIDI: each sub-folder name is a style (default: music21's scores)")
    b.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                   help="parallel worker processes (default: all cores)")
    b.add_argument("--limit-per-style", type=int, default=None,
                   help="at most this many pieces per style, for quick trials (default: all)")
    b.add_argument("--style", action="append", dest="styles", default=None,
                   help="only this style, repeatable (default: every style)")
    b.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bridges.commands._ui import progress
    from musegen.corpus import build_corpus, default_corpus_dir
    from musegen.corpus.report import format_table
    from musegen.errors import ParameterError

    if args.workers < 1:
        raise ParameterError(f"--workers must be at least 1, got {args.workers}")
    if args.midi_dir is not None and not args.midi_dir.is_dir():
        raise ParameterError(f"--midi-dir {args.midi_dir} is not a folder")
    out = args.out or default_corpus_dir()
    console = Console()
    with progress(Console(stderr=True), "[bold]corpus") as bar:
        summary = build_corpus(out, midi_dir=args.midi_dir, workers=args.workers,
                               on_progress=lambda done, total, msg: bar.update(done, total, msg),
                               limit_per_style=args.limit_per_style, styles=args.styles)
    console.print(format_table(summary))
    console.print(f"corpus written to {out} in {summary.wall_s:.1f} s")
    return 0
