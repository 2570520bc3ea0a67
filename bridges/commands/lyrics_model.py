"""`musegen lyrics-card`: export a finished lyric-model run as a model folder, measure it and
write its model card.

    musegen lyrics-card --run-dir runs/lyrics --corpus data/lyrics-corpus --out musegen/models/lyrics
    musegen lyrics-card --model musegen/models/lyrics --corpus data/lyrics-corpus --figures-only

`--model PATH` measures a model folder as it is (any local Hugging Face causal LM) instead of
exporting a run; `--figures-only` prints the figures as JSON and writes nothing.
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
    p.add_argument("--model", type=Path, default=None,
                   help="measure this model folder in place instead of exporting --run-dir (default: none)")
    p.add_argument("--figures-only", action="store_true",
                   help="print the held-out figures as JSON; write no card (default: off)")
    p.add_argument("--max-test", type=int, default=None,
                   help="score only the first N held-out stanzas (default: all)")
    p.add_argument("--no-baseline", action="store_true", help="skip the n-gram baseline (default: measure it)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console

    from musegen.errors import ParameterError

    console = Console(stderr=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model is not None:
        if not (args.model / "config.json").exists():
            raise ParameterError(f"--model {str(args.model)!r}: no Hugging Face model folder there")
        return _measure(console, args, args.model)
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
    return _measure(console, args, folder)


def _measure(console: object, args: argparse.Namespace, folder: Path) -> int:
    """Measure `folder`; write its card and eval.json unless --figures-only."""
    import json

    from bridges.commands._ui import progress
    from musegen.errors import ParameterError
    from musegen.lyrics.evaluate import evaluate_lyric_model, sample_lines, write_card
    from musegen.lyrics.lm import LyricLM

    if not args.figures_only and (args.no_baseline or not (folder / "musegen_lyrics.json").exists()):
        raise ParameterError("a model card needs the n-gram baseline and a musegen_lyrics.json record; "
                             "use --figures-only to measure this folder")
    with progress(console, "[bold]lyrics-card") as bar:
        bar.update(info="measuring held-out NLL per token and per word" +
                   ("" if args.no_baseline else " (model and n-gram baseline)"))
        figures = evaluate_lyric_model(folder, args.corpus, max_test=args.max_test, baseline=not args.no_baseline)
        figures["hardware"] = f"{platform.machine()} {platform.processor() or ''}".strip()
        if args.figures_only:
            samples = None
        else:
            bar.update(info="writing sample lines")
            samples = sample_lines(LyricLM.load(folder))
    if samples is None:
        print(json.dumps(figures, indent=1))
        return 0
    card = write_card(folder, figures, samples)
    console.print(f"model NLL {figures['model_nll']:.4f}/token, {figures['model_nll_per_word']:.4f}/word vs "  # type: ignore[attr-defined]
                  f"{figures['baseline']['order']}-gram {figures['baseline']['test_nll']:.4f}/token, "
                  f"{figures['baseline']['test_nll_per_word']:.4f}/word; wrote {card}")
    return 0
