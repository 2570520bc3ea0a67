"""`musegen train`: train a model from the corpus cache, or teach a trained one your style.

    musegen train --out runs/default                       # from the default corpus
    musegen train --init default --midi-dir my_songs/ --style mine --out my-model
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model, or add your own style to a trained one")
    p.add_argument("--corpus", type=Path, default=None,
                   help="corpus folder (default: the one `musegen corpus build` writes)")
    p.add_argument("--run-dir", "--run", dest="run", type=Path, default=Path("runs/default"),
                   help="run folder for checkpoints and logs; an existing run is resumed "
                   "(spell it --run-dir under torchrun, whose own options clash with --run)")
    p.add_argument("--out", type=Path, default=None,
                   help="where to write the finished model folder (default: RUN/model)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps (default 4000; 300 when learning a style)")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per step (at most 8 to learn a style)")
    p.add_argument("--context", type=int, default=512, help="training window in tokens")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default 1.5e-3; 2e-2 when learning a style)")
    p.add_argument("--warmup", type=int, default=200, help="steps of linear learning-rate warm-up")
    p.add_argument("--d-model", type=int, default=256, help="model width")
    p.add_argument("--layers", type=int, default=6, help="transformer layers")
    p.add_argument("--heads", type=int, default=4, help="attention heads per layer")
    p.add_argument("--d-ff", type=int, default=768, help="feed-forward width")
    p.add_argument("--eval-every", type=int, default=500, help="steps between validation losses")
    p.add_argument("--ckpt-every", type=int, default=100, help="steps between checkpoints (resume points)")
    p.add_argument("--fim-rate", type=float, default=0.25, help="share of training windows in fill-in-the-middle form")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and data order")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cuda, mps or cpu")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--no-resume", action="store_true",
                   help="start the run folder over (its checkpoint, log and staged MIDI are removed)")
    p.add_argument("--fp16", action="store_true", help="store the exported weights in float16")
    g = p.add_argument_group("learn my style")
    g.add_argument("--init", default=None,
                   help="start from a trained model folder ('default' = the shipped model)")
    g.add_argument("--midi-dir", type=Path, default=None,
                   help="your MIDI files (a folder of .mid files) for the new style (default: none)")
    g.add_argument("--style", default=None, help="name of the new style (default: none)")
    g.add_argument("--description", default=None, help="one line describing the new style (default: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console

    from musegen.errors import ParameterError

    console = Console(stderr=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("batch_size", "context", "d_model", "layers", "heads"):
        if getattr(args, name) < 1:
            raise ParameterError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.steps is not None and args.steps < 1:
        raise ParameterError(f"--steps must be at least 1, got {args.steps}")
    if args.init or args.midi_dir or args.style:
        if not (args.init and args.midi_dir and args.style):
            raise ParameterError("learning a style needs --init, --midi-dir and --style together")
        return _learn_style(args, console)
    return _train_from_corpus(args, console)


def _progress(console, total):
    from rich.progress import TextColumn

    from bridges.commands._ui import progress_bar

    return progress_bar(console, "[bold]train", TextColumn("loss {task.fields[loss]:.3f}"),
                        TextColumn("{task.fields[tok_s]:,.0f} tok/s"))


def _run_training(args, console, model, tok, train_p, valid_p, cfg, style_names, log_path):
    from musegen.train import train

    log = open(log_path, "a")
    with _progress(console, cfg.steps) as prog:
        task = prog.add_task("train", total=cfg.steps, loss=float("nan"), tok_s=0.0)

        def on_step(step: int, rec: dict) -> None:
            prog.update(task, completed=step, loss=rec["loss"], tok_s=rec["tok_s"])
            log.write(json.dumps(rec) + "\n")
            log.flush()

        def on_eval(step: int, per_style: dict) -> None:
            named = {style_names[s]: round(v, 4) for s, v in per_style.items()}
            mean = sum(per_style.values()) / max(1, len(per_style))
            prog.console.print(f"step {step}: valid NLL {mean:.4f} " + json.dumps(named))
            log.write(json.dumps({"step": step, "valid_nll": named}) + "\n")
            log.flush()

        state = train(model, tok, train_p, valid_p, cfg, args.run, device=args.device,
                      resume=not args.no_resume, on_step=on_step, on_eval=on_eval)
    log.close()
    return state


def _hardware(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def _train_from_corpus(args: argparse.Namespace, console: object) -> int:
    import torch

    from musegen.corpus import default_corpus_dir
    from musegen.corpus.dataset import Corpus
    from musegen.errors import ParameterError
    from musegen.model import pick_device
    from musegen.train import TrainConfig, export, new_model

    corpus_dir = args.corpus or default_corpus_dir()
    if not (corpus_dir / "styles.json").exists():
        raise ParameterError(f"no corpus at {corpus_dir}: run `musegen corpus build` first")
    corpus = Corpus.open(corpus_dir)
    tok = corpus.tokenizer()
    styles = corpus.styles
    names = [s["name"] for s in styles]
    train_p, valid_p = corpus.split("train"), corpus.split("valid")
    cfg = TrainConfig(steps=args.steps or 4000, batch_size=args.batch_size, context=args.context,
                      lr=args.lr or 1.5e-3, warmup=args.warmup, eval_every=args.eval_every,
                      ckpt_every=args.ckpt_every, fim_rate=args.fim_rate, seed=args.seed)
    torch.manual_seed(args.seed)
    model = new_model(tok, names, d_model=args.d_model, n_layers=args.layers,
                      n_heads=args.heads, d_ff=args.d_ff, context=args.context)
    console.print(f"{model.num_parameters():,} parameters; {len(train_p)} train / "
                  f"{len(valid_p)} valid pieces; {len(names)} styles; device {pick_device(args.device)}")
    args.run.mkdir(parents=True, exist_ok=True)
    state = _run_training(args, console, model, tok, train_p, valid_p, cfg, names,
                          args.run / "log.jsonl")
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    tail = state.history[-50:]
    extra = {
        "training": {
            "train_config": {**cfg.__dict__},
            "steps": state.step,
            "wall_s": round(state.wall_s, 1),
            "hardware": _hardware(str(pick_device(args.device))),
            "final_train_loss": sum(h["loss"] for h in tail) / max(1, len(tail)),
            "final_valid_nll": state.evals[-1]["valid_nll"] if state.evals else None,
            "corpus": str(corpus_dir),
            "command": "musegen " + " ".join(sys.argv[1:]) if sys.argv else "",
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    }
    out = args.out or args.run / "model"
    export(model, out, tok, styles, extra, fp16=args.fp16)
    console.print(f"model written to {out}")
    return 0


def _learn_style(args: argparse.Namespace, console: object) -> int:
    from musegen.corpus import build_corpus
    from musegen.corpus.dataset import Corpus
    from musegen.errors import ParameterError
    from musegen.model import load_checkpoint
    from musegen.studio import resolve_model_dir
    from musegen.tokenizer import Tokenizer
    from musegen.train import TrainConfig, export

    init = resolve_model_dir(args.init)
    if not args.midi_dir.is_dir():
        raise ParameterError(f"--midi-dir {args.midi_dir} is not a folder")
    model, meta = load_checkpoint(init, "cpu")
    if args.style in model.cfg.style_names:
        raise ParameterError(f"style {args.style!r} already exists in {init}")
    tok = Tokenizer.load(init)
    # the user's folder becomes a one-style corpus (sub-folder name = style)
    staging = args.run / "midi" / args.style
    staging.mkdir(parents=True, exist_ok=True)
    for f in sorted(args.midi_dir.rglob("*")):
        if f.suffix.lower() in (".mid", ".midi") and f.is_file():
            link = staging / f.name
            if not link.exists():
                link.symlink_to(f.resolve())
    with console.status("reading your MIDI files"):
        summary = build_corpus(args.run / "corpus", midi_dir=args.run / "midi", workers=1)
    corpus = Corpus.open(args.run / "corpus")
    pieces = corpus.split("train") + corpus.split("valid") + corpus.split("test")
    if not pieces:
        raise ParameterError(f"no usable MIDI in {args.midi_dir} (skipped: {summary.skipped})")
    idx = model.add_style(args.style)
    pieces = [(idx, ids) for _, ids in pieces]
    cfg = TrainConfig(steps=args.steps or 300, batch_size=min(args.batch_size, 8),
                      context=min(args.context, 384), lr=args.lr or 2e-2, warmup=20,
                      eval_every=10**9, ckpt_every=args.ckpt_every, fim_rate=args.fim_rate,
                      only_style=idx, seed=args.seed)
    state = _run_training(args, console, model, tok, pieces, [], cfg,
                          list(model.cfg.style_names), args.run / "log.jsonl")
    styles = json.loads((init / "styles.json").read_text())
    styles.append({"name": args.style, "description": args.description
                   or f"User style learned from {args.midi_dir}",
                   "pieces": len(pieces), "index": idx})
    extra = {k: v for k, v in meta.items() if k not in ("musegen_config", "versions")}
    extra["learned_style"] = {"name": args.style, "steps": state.step, "pieces": len(pieces),
                              "wall_s": round(state.wall_s, 1),
                              "final_loss": state.history[-1]["loss"] if state.history else None}
    out = args.out or args.run / "model"
    export(model, out, tok, styles, extra)
    card = init / "MODEL_CARD.md"
    if card.exists():
        (out / "MODEL_CARD.md").write_text(card.read_text() + f"\n\n## Added style `{args.style}`\n\n"
                                           f"Learned from {len(pieces)} pieces in {state.step} steps "
                                           f"({state.wall_s:.0f} s), style vector only.\n")
    console.print(f"model with style {args.style!r} written to {out}")
    return 0
