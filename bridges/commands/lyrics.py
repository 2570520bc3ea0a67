"""Lyric commands: words for a melody, a melody for words, and building the lyric model.

    musegen lyrics IN.mid --theme "the sea" --rhyme ABAB --variations 4 --out DIR
    musegen melody "Down by the river where the cold wind blows" --style irish-dance --out DIR
    musegen lyrics-corpus --out data/lyrics-corpus          # verse corpus + BPE tokenizer
    musegen lyrics-train --corpus data/lyrics-corpus --run-dir runs/lyrics --steps 1600
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lyrics-corpus", help="build the lyric model's verse corpus and tokenizer")
    p.add_argument("--out", type=Path, default=Path("data/lyrics-corpus"))
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--limit", type=int, default=None, help="read only the first N lines (for a quick try)")
    p.set_defaults(func=run_corpus)

    p = sub.add_parser("lyrics-train", help="train the lyric language model")
    p.add_argument("--corpus", type=Path, default=Path("data/lyrics-corpus"))
    p.add_argument("--run-dir", type=Path, default=Path("runs/lyrics"),
                   help="checkpoints and the final model (RUN/final); an existing run is resumed")
    p.add_argument("--steps", type=int, default=1600)
    p.add_argument("--batch-size", type=int, default=24)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=768)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.set_defaults(func=run_train)


def run_corpus(args: argparse.Namespace) -> int:
    from rich.console import Console

    from musegen.lyrics.train import build_lyric_corpus

    console = Console(stderr=True)
    with console.status("") as status:
        summary = build_lyric_corpus(args.out, vocab_size=args.vocab_size, limit=args.limit,
                                     on_stage=lambda s: (status.update(s), console.log(s)))
    for name, s in summary["splits"].items():
        console.print(f"{name}: {s['lines']:,} lines, {s['stanzas']:,} stanzas, {s['tokens']:,} tokens")
    console.print(f"wrote {args.out}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.progress import TextColumn

    from bridges.commands._ui import progress_bar
    from musegen.errors import ParameterError
    from musegen.lyrics.train import LyricTrainConfig, train_lyric_model

    console = Console(stderr=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not (args.corpus / "train.npy").exists():
        raise ParameterError(f"no lyric corpus in {args.corpus}: run `musegen lyrics-corpus --out {args.corpus}`")
    cfg = LyricTrainConfig(steps=args.steps, batch=args.batch_size, seq_len=args.context, lr=args.lr,
                           hidden=args.d_model, layers=args.layers, heads=args.heads, ffn=args.d_ff,
                           seed=args.seed, eval_every=args.eval_every, save_every=min(100, args.eval_every))
    command = "musegen " + shlex.join(sys.argv[1:])
    with progress_bar(console, "[bold]lyrics-train", TextColumn("loss {task.fields[loss]:.3f}"),
                      TextColumn("valid {task.fields[valid]}")) as bar:
        task = bar.add_task("train", total=cfg.steps, loss=float("nan"), valid="-")

        def on_step(step: int, loss: float, info: dict) -> None:
            extra = {"valid": f"{info['valid_nll']:.3f}"} if "valid_nll" in info else {}
            bar.update(task, completed=step, loss=loss, **extra)
            if "valid_nll" in info:
                console.log(f"step {step}: train loss {loss:.3f}, valid NLL {info['valid_nll']:.3f}, "
                            f"{info['tokens_per_s']:.0f} tokens/s")

        final = train_lyric_model(args.corpus, args.run_dir, cfg, command=command, on_step=on_step)
    console.print(f"wrote {final}")
    return 0
