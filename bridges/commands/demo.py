"""`musegen demo`: the main job a new user runs right after installing.

It continues a bundled folk melody (not part of the training corpus) by 8 bars, 4 variations,
with the shipped default model, and writes the takes with their sidecars.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job, run on a bundled example")
    p.add_argument("--out", type=Path, default=Path("takes/demo"), help="folder for the takes")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--seed", type=int, default=1, help="same seed = same takes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from bridges.commands.generate import check_out_dir, progress_kw, written_line
    from musegen.clip import Clip
    from musegen.examples import example_path
    from musegen.session.files import write_numbered_takes
    from musegen.studio import Studio

    check_out_dir(args.out)
    console = Console()
    src = example_path("folk")
    clip = Clip.load(src)
    studio = Studio(model=args.model)
    console.print(f"[bold]{src.name}[/]: {clip.n_bars} bars, {clip.n_notes} notes, key {clip.key}; "
                  f"model {studio.model_id} on {studio.device}")
    with progress_kw("demo", 8 * 4) as kw:
        takes = studio.continue_(clip, bars=8, variations=4, style="irish-dance", seed=args.seed, **kw)
    table = Table(title=f"4 continuations (8 bars, irish-dance) in {takes[0].seconds:.2f} s")
    for col in ("take", "bars", "notes", "longest run shared with a training piece"):
        table.add_column(col)
    paths = write_numbered_takes(takes, args.out, "folk-continue")  # never over earlier ones
    for path, t in zip(paths, takes):
        nov = t.novelty
        table.add_row(str(path), str(t.clip.n_bars), str(t.clip.n_notes),
                      f"{nov.longest_run} ({nov.piece})" if nov and nov.piece else "0")
    console.print(table)
    console.print(written_line(paths, args.out), soft_wrap=True, highlight=False)
    return 0
