"""`musegen lyrics-card`: export a finished lyric-model run as a model folder, measure it and
write its model card.

    musegen lyrics-card --run-dir runs/lyrics --corpus data/lyrics-corpus --out musegen/models/lyrics
"""

from __future__ import annotations

import argparse
import platform
import shutil
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lyrics-card", help="export a trained lyric model, measure it, write its model card")
    p.add_argument("--run-dir", type=Path, default=Path("runs/lyrics"), help="the finished `lyrics-train` run")
    p.add_argument("--corpus", type=Path, default=Path("data/lyrics-corpus"), help="the `lyrics-corpus` folder")
    p.add_argument("--out", type=Path, default=None, help="model folder to write (default: RUN/final in place)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console

    from bridges.commands._ui import progress
    from musegen.errors import ParameterError
    from musegen.lyrics.evaluate import evaluate_lyric_model, sample_lines, write_card
    from musegen.lyrics.lm import LyricLM

    console = Console(stderr=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    final = args.run_dir / "final"
    if not (final / "musegen_lyrics.json").exists():
        raise ParameterError(f"no finished lyric-model run in {args.run_dir} (run `musegen lyrics-train` first)")
    folder = final
    if args.out is not None and args.out.resolve() != final.resolve():
        tmp = args.out.with_name(args.out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(final, tmp)
        shutil.rmtree(args.out, ignore_errors=True)
        tmp.rename(args.out)  # the folder appears whole or not at all
        folder = args.out
    with progress(console, "[bold]lyrics-card") as bar:
        bar.update(info="measuring held-out perplexity (model and n-gram baseline)")
        figures = evaluate_lyric_model(folder, args.corpus)
        figures["hardware"] = f"{platform.machine()} {platform.processor() or ''}".strip()
        bar.update(info="writing sample lines")
        samples = sample_lines(LyricLM.load(folder))
    card = write_card(folder, figures, samples)
    console.print(f"model NLL {figures['model_nll']:.4f} (ppl {figures['model_ppl']:.2f}) vs "
                  f"{figures['baseline']['order']}-gram {figures['baseline']['test_nll']:.4f} "
                  f"(ppl {figures['baseline_ppl']:.2f}); wrote {card}")
    return 0
