"""`musegen eval-nll`: held-out NLL per style, the model against the n-gram baseline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-nll", help="held-out NLL per style: model vs n-gram baseline")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: the built one)")
    p.add_argument("--split", default="test", choices=["valid", "test"], help="held-out split to measure")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here (default: no JSON)")
    p.add_argument("--context", type=int, default=None,
                   help="tokens per held-out window (default: the model's training window); give "
                   "the same value to compare models trained on different windows")
    p.set_defaults(func=run)

    c = sub.add_parser("model-card", help="measure a trained model and write its MODEL_CARD.md")
    c.add_argument("--model", type=Path, required=True, help="model folder written by `musegen train`")
    c.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: the built one)")
    c.add_argument("--musicianship", action="store_true",
                   help="add the musicianship tables (quick benchmark; a few minutes more)")
    c.set_defaults(func=run_card)


def check_styles(model_dir: Path, corpus_dir: Path) -> None:
    """A finished corpus whose styles are the model's first ones, or one line saying why not."""
    from musegen.corpus.dataset import Corpus
    from musegen.errors import ParameterError

    styles = Corpus.open(corpus_dir).style_names
    saved = json.loads((model_dir / "musegen.json").read_text(encoding="utf-8"))
    names = list(saved["musegen_config"]["style_names"])
    if names[: len(styles)] != styles:
        raise ParameterError(f"corpus {corpus_dir} has styles {styles}, not the model's {names}")


def run_card(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bridges.commands._ui import progress
    from musegen.corpus import default_corpus_dir
    from musegen.modelcard import finalize
    from musegen.studio import resolve_model_dir

    console = Console()
    model_dir = resolve_model_dir(args.model)  # a bad --model or --corpus: one line naming it
    corpus = args.corpus or default_corpus_dir()
    check_styles(model_dir, corpus)  # before the card measures (and writes) anything
    with progress(Console(stderr=True), "[bold]model-card") as bar:
        figures = finalize(model_dir, corpus, on_stage=lambda s: bar.update(info=s),
                           musicianship=args.musicianship)
    nll = figures["nll"]
    console.print(f"model NLL {nll['model_mean']:.4f} vs n-gram {nll['baseline_mean']:.4f}; "
                  f"mean improvement {100 * nll['mean_improvement']:.1f} %")
    console.print(f"wrote {model_dir / 'MODEL_CARD.md'}")
    return 0


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bridges.commands._ui import progress
    from musegen.atomic import write_json
    from musegen.corpus import default_corpus_dir
    from musegen.errors import ParameterError
    from musegen.evaluation.nll import evaluate_model_dir
    from musegen.studio import resolve_model_dir

    console = Console()
    model_dir = resolve_model_dir(args.model)
    corpus = args.corpus or default_corpus_dir()
    if not (corpus / "summary.json").exists():
        raise ParameterError(f"no corpus at {corpus}: run `musegen corpus build` first")
    check_styles(model_dir, corpus)
    if args.context is not None and args.context < 16:
        raise ParameterError(f"--context must be at least 16 tokens, got {args.context}")
    with progress(Console(stderr=True), "[bold]eval-nll") as bar:
        report = evaluate_model_dir(model_dir, corpus, split=args.split,
                                    on_stage=lambda s: bar.update(info=s), context=args.context)
    console.print(report.markdown())
    if args.json:
        write_json(args.json, report.to_dict())
        console.print(f"wrote {args.json}")
    return 0
