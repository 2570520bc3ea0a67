"""Musicianship: takes against the real music they continue (issue 14), per style family, for
continue, regenerate, blend and from nothing. The figures are `musegen.evaluation.
musicianship`; the protocol is `musegen.evaluation.musicianship_run` (this is its front).

    python -m benchmarks.musicianship --corpus data/corpus-default \\
        --out benchmarks/results/musicianship.md
    python -m benchmarks.musicianship --quick --corpus data/corpus-default    # a smoke test
    python -m benchmarks.musicianship --no-constraints --set temperature=0.8  # switches

`--set KEY=VALUE` (repeatable) passes a generation parameter to every request that accepts it
(a value is read as JSON when it parses, else as text); `--no-constraints` passes the
switches of `musicianship_run.OFF_SWITCHES` that exist (`musegen.params`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from benchmarks._report import emit


def parse_set(items: list[str]) -> dict:
    """['temperature=0.8', 'cadence=none'] -> {'temperature': 0.8, 'cadence': 'none'}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default", help="model folder (default: the shipped model)")
    ap.add_argument("--corpus", type=Path, default=None,
                    help="built corpus folder (default: data/corpus-default, else the built one)")
    ap.add_argument("--quick", action="store_true", help="a few pieces, one seed: a smoke test")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: 2; 1 with --quick)")
    ap.add_argument("--pieces", type=int, default=None,
                    help="prompts per family and prompt length (default: 8; 2 with --quick)")
    ap.add_argument("--style", action="append", default=None, help="only this style, repeatable")
    ap.add_argument("--no-constraints", action="store_true",
                    help="switch decoding constraints off (those of OFF_SWITCHES that exist)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a generation parameter for every request, repeatable")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    ap.add_argument("--out", type=Path, default=None, help="write the Markdown here (and .json)")
    args = ap.parse_args(argv)

    import dataclasses

    import torch

    from musegen.corpus import Corpus, default_corpus_dir
    from musegen.evaluation.musicianship_run import MusicianshipConfig, markdown, run
    from musegen.studio import Studio
    from musegen.version import __version__

    corpus_dir = args.corpus or (Path("data/corpus-default") if Path("data/corpus-default/summary.json")
                                 .exists() else default_corpus_dir())
    cfg = MusicianshipConfig.quick_config() if args.quick else MusicianshipConfig()
    changes: dict = {"gen_kwargs": parse_set(args.set), "no_constraints": args.no_constraints}
    if args.seeds:
        changes["seeds"] = tuple(range(args.seeds))
    if args.pieces:
        changes["pieces_per_family"] = args.pieces
    cfg = dataclasses.replace(cfg, **changes)
    studio = Studio(model=args.model, threads=args.threads)
    corpus = Corpus.open(corpus_dir)
    t0 = time.perf_counter()
    result = run(studio, corpus, cfg, styles=args.style,
                 on_stage=lambda s: print(f"[{time.perf_counter() - t0:5.0f} s] {s}", file=sys.stderr))
    command = "python -m benchmarks.musicianship " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["# Musicianship benchmark", "",
             f"`{command.strip()}` on {time.strftime('%Y-%m-%d')}; model `{studio.model_id}`; "
             f"corpus `{corpus_dir}` (test split); {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores (shared with other work: timings are loaded), torch "
             f"{torch.__version__} ({args.threads} thread), musegen {__version__}, Python "
             f"{platform.python_version()}. Extra generation parameters: "
             f"{json.dumps(cfg.gen_kwargs) if cfg.gen_kwargs else 'none'}; constraints "
             f"{'switched off' if cfg.no_constraints else 'as default'}.", "",
             *markdown(result)]
    emit(lines, args.out)
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
