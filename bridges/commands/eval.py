"""`musegen eval`: the full evaluation of a model (likelihood, style fidelity, blend control,
descriptors, novelty, validity, style map) written as report.md + metrics.json + PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model: report.md, metrics.json and figures")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: the built one)")
    p.add_argument("--quick", action="store_true", help="fewer takes and pieces (a few minutes)")
    p.add_argument("--seed", type=int, default=1234, help="seed for every generated take")
    p.add_argument("--takes", type=int, default=None, help="generated takes per style (default: 32; 4 with --quick)")
    p.add_argument("--blend-takes", type=int, default=None, help="takes per blend weight (default: 16; 4 with --quick)")
    p.add_argument("--musicianship", action="store_true",
                   help="add section 8: takes against the real music they continue (a few minutes more)")
    p.add_argument("--style-strength", type=float, default=1.0,
                   help="style strength of every generated take (default: 1, as trained; >1 guides "
                        "toward the style: each take also runs under the no-style vector, twice the rows)")
    p.add_argument("--out", type=Path, required=True, help="folder for the report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import sys

    from rich.console import Console

    from bridges.commands._ui import progress
    from musegen.corpus import default_corpus_dir
    from musegen.errors import ParameterError
    from musegen.evaluation.report import EvalConfig, evaluate, write_report
    from musegen.params import spec
    from musegen.studio import resolve_model_dir

    spec("blend", "style_strength").kind.check("--style-strength", args.style_strength)  # the takes' own rule
    console = Console(stderr=True)
    model_dir = resolve_model_dir(args.model)
    corpus = args.corpus or default_corpus_dir()
    if not (corpus / "summary.json").exists():
        raise ParameterError(f"no corpus at {corpus}: run `musegen corpus build` first")
    cfg = EvalConfig.quick_config() if args.quick else EvalConfig()
    cfg = dataclasses.replace(cfg, seed=args.seed, musicianship=args.musicianship,
                              style_strength=args.style_strength)
    if args.takes:
        cfg = dataclasses.replace(cfg, takes_per_style=args.takes)
    if args.blend_takes:
        cfg = dataclasses.replace(cfg, blend_takes=args.blend_takes)
    command = " ".join(["musegen eval"] + (sys.argv[2:] if sys.argv[1:2] == ["eval"] else []))
    if command == "musegen eval":
        command = (f"musegen eval{' --model ' + str(args.model) if args.model else ''}"
                   f"{' --corpus ' + str(args.corpus) if args.corpus else ''}"
                   f"{' --quick' if args.quick else ''}{' --musicianship' if args.musicianship else ''}"
                   f" --out {args.out}")
    try:
        with progress(console, "[bold]eval") as bar:
            metrics = evaluate(model_dir, corpus, cfg, on_stage=lambda s: bar.update(info=s))
    except ValueError as e:
        raise ParameterError(str(e)) from e
    paths = write_report(metrics, args.out, command)
    h = metrics["headline"]
    console.print(f"classifier on real pieces {100 * h['classifier_accuracy']:.1f} %; generated "
                  f"fidelity {100 * h['generated_fidelity']:.1f} %; blend Spearman "
                  f"{h['blend_spearman']:.2f}; copies >= 12 notes {100 * h['copy_share']:.1f} %; "
                  f"validity {100 * h['validity']:.1f} %")
    for p in paths:
        console.print(f"wrote {p}")
    return 0
