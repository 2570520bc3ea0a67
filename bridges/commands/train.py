"""`musegen train`: train a model from the corpus cache, or teach a trained one your style.

    musegen train --out my-base-model                       # from the default corpus
    musegen train --init default --midi-dir my_songs/ --style mine --out my-model

A run folder (checkpoints, log, staged MIDI) belongs to one run. By default it is
`$MUSEGEN_HOME/runs/<name>` (`~/.cache/musegen/runs/<name>`), the name taken from `--out`
(else from `--style`, else `default`), and `train` prints it. The run's arguments are kept in
`RUN/run.json`; an existing run is resumed only by the same arguments, and a different one is
refused, naming what differs (`--no-resume` starts the folder over).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from musegen.model import MusegenLM
    from musegen.tokenizer import Tokenizer
    from musegen.train import TrainConfig, TrainState

RUN_FORMAT = 1
# what a run folder holds; --no-resume removes these and nothing else
RUN_FILES = ("run.json", "last.pt", "last.tmp", "log.jsonl", "midi", "corpus")
# arguments that change what a run computes, with their option names (the others, such as
# --device, --threads, --ckpt-every, --eval-every or --out, may change between resumes)
IDENTITY = {"corpus": "--corpus", "init": "--init", "midi_dir": "--midi-dir", "style": "--style",
            "steps": "--steps", "batch_size": "--batch-size", "context": "--context", "lr": "--lr",
            "warmup": "--warmup", "d_model": "--d-model", "layers": "--layers", "heads": "--heads",
            "d_ff": "--d-ff", "fim_rate": "--fim-rate", "seed": "--seed", "init_from": "--init-from",
            "style_alpha": "--style-alpha", "keys": "--keys", "key_dropout": "--key-dropout",
            "bf16": "--bf16"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model, or add your own style to a trained one",
        description="Train a model from the corpus, or (with --init, --midi-dir and --style) learn "
        "a new style vector for a trained model. Checkpoints go to a run folder, by default "
        "$MUSEGEN_HOME/runs/<name> (~/.cache/musegen/runs/<name>) with <name> taken from --out "
        "(else --style, else 'default'); the folder is printed at the start. Re-running the same "
        "command resumes it; other arguments on the same folder are refused (use --no-resume).")
    p.add_argument("--corpus", type=Path, default=None,
                   help="corpus folder (default: the one `musegen corpus build` writes)")
    p.add_argument("--run-dir", "--run", dest="run", type=Path, default=None,
                   help="run folder for checkpoints, log and staged MIDI (default: "
                   "$MUSEGEN_HOME/runs/<name of --out>-<hash>, or runs/style-<STYLE>, or runs/default); "
                   "it is resumed only by the same arguments (spell it --run-dir under torchrun, "
                   "whose own options clash with --run)")
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
    p.add_argument("--init-from", default=None,
                   help="start from a trained model folder ('default' = the shipped model): its sizes, "
                   "weights and style table; a key table it lacks (--keys) is learned from scratch")
    p.add_argument("--style-alpha", type=float, default=None,
                   help="balanced exposure: draw rows by style with p(style) ~ tokens^ALPHA, e.g. 0.4, "
                   "so small styles are seen many times (default: pieces by sqrt(length))")
    p.add_argument("--keys", action="store_true",
                   help="tell the model each piece's key (a learned key vector added like the style; "
                   "generation then passes the requested, prompt's or drawn key)")
    p.add_argument("--key-dropout", type=float, default=0.2,
                   help="with --keys: share of windows trained with the unknown-key row (default 0.2)")
    p.add_argument("--bf16", action="store_true",
                   help="bf16 autocast for the training matmuls on CPU (faster where the CPU has "
                   "AVX512-BF16 or AMX, refused where it has not; always on for CUDA)")
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

    # under torchrun only rank 0 reports
    console = Console(stderr=True, soft_wrap=True, quiet=int(os.environ.get("RANK", "0")) != 0)
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


# ----------------------------------------------------------------------------- run folders
def default_run_dir(out: Path | None, style: str | None) -> Path:
    """`$MUSEGEN_HOME/runs/<name>`: one folder per output folder (its name and a hash of its
    full path), else per learned style, else `default`."""
    from musegen.corpus import default_corpus_dir

    runs = default_corpus_dir().parent / "runs"
    if out is not None:
        full = str(out.expanduser().resolve())
        return runs / f"{_slug(out.name)}-{hashlib.sha1(full.encode()).hexdigest()[:8]}"
    return runs / (f"style-{_slug(style)}" if style else "default")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha1()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def _midi_files(folder: Path) -> dict[str, Path]:
    """The MIDI files under `folder`, by path relative to it."""
    return {f.relative_to(folder).as_posix(): f for f in sorted(folder.rglob("*"))
            if f.suffix.lower() in (".mid", ".midi") and f.is_file()}


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for key, flag in IDENTITY.items():
        if old.get("args", {}).get(key) != new["args"].get(key):
            out.append(f"{flag} {old.get('args', {}).get(key)!r} there, {new['args'].get(key)!r} now")
    if old.get("args", {}).get("corpus") == new["args"].get("corpus") and \
            old.get("corpus_digest") != new.get("corpus_digest"):
        out.append("the corpus was rebuilt since")
    if old.get("args", {}).get("init") == new["args"].get("init") and \
            old.get("init_digest") != new.get("init_digest"):
        out.append("the --init model's weights changed since")
    a, b = old.get("midi_files"), new.get("midi_files")
    if a is not None and b is not None and a != b:
        added = sorted(set(b) - set(a))
        gone = sorted(set(a) - set(b))
        changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
        what = [f"{label} {', '.join(names)}" for label, names in
                (("added", added), ("removed", gone), ("changed", changed)) if names]
        out.append(f"the files in --midi-dir changed ({'; '.join(what)})")
    return out


def _claim_run_dir(run: Path, record: dict, no_resume: bool, console: object) -> bool:
    """Make `run` this run's folder; True if an earlier part of the same run is resumed.

    Refuses a folder holding another run (other arguments), naming the differences."""
    from musegen.atomic import write_json
    from musegen.errors import ParameterError

    if run.exists() and not run.is_dir():
        raise ParameterError(f"--run-dir {run} is not a folder")
    if no_resume:
        _clear_run_files(run)
    saved_path = run / "run.json"
    resumed = _same_run(run, record)
    try:
        run.mkdir(parents=True, exist_ok=True)
        write_json(saved_path, record)
    except OSError as e:
        raise ParameterError(f"--run-dir {run}: cannot write there ({e.strerror or e})") from e
    console.print(f"run folder {run}" + (" (resuming)" if resumed else ""))
    if not resumed:
        (run / "log.jsonl").unlink(missing_ok=True)
    return resumed


def _clear_run_files(run: Path) -> None:
    """Remove what an earlier run left in `run` (only the files a run writes, RUN_FILES)."""
    for name in RUN_FILES:
        p = run / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def _same_run(run: Path, record: dict) -> bool:
    """True if `run` holds a checkpoint of the run `record` describes; False if it holds no run;
    ParameterError if it holds another run, or a checkpoint whose run cannot be told."""
    from musegen.errors import ParameterError

    saved_path = run / "run.json"
    if saved_path.exists():
        try:
            saved = json.loads(saved_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ParameterError(f"run folder {run}: unreadable run.json ({e}); pass --no-resume "
                                 "to start it over") from e
        diff = _differences(saved, record)
        if diff:
            raise ParameterError(
                f"run folder {run} belongs to another run: {'; '.join(diff)}. Pass --no-resume to "
                "start that folder over, or a different --out or --run-dir for a new run")
        return (run / "last.pt").exists()
    if (run / "last.pt").exists():
        raise ParameterError(f"run folder {run} has a checkpoint but no run.json, so whose run it "
                             "is cannot be told; pass --no-resume to start it over, or another --run-dir")
    return False


def _run_training(args, console, model, tok, train_p, valid_p, cfg, style_names, log_path):
    from bridges.commands._ui import progress
    from musegen.train import train

    rank0 = int(os.environ.get("RANK", "0")) == 0  # the others leave the run folder to rank 0
    with open(log_path if rank0 else os.devnull, "a") as log, \
            progress(console, "[bold]train", cfg.steps) as bar:

        def on_step(step: int, rec: dict) -> None:
            bar.update(step, info=f"loss {rec['loss']:.3f}, {rec['tok_s']:,.0f} tok/s")
            log.write(json.dumps(rec) + "\n")
            log.flush()

        def on_eval(step: int, per_style: dict) -> None:
            named = {style_names[s]: round(v, 4) for s, v in per_style.items()}
            mean = sum(per_style.values()) / max(1, len(per_style))
            bar.print(f"step {step}: valid NLL {mean:.4f} " + json.dumps(named))
            log.write(json.dumps({"step": step, "valid_nll": named}) + "\n")
            log.flush()

        return train(model, tok, train_p, valid_p, cfg, args.run, device=args.device,
                     resume=not args.no_resume, on_step=on_step, on_eval=on_eval)


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
    from musegen.model import pick_device
    from musegen.train import TrainConfig, check_bf16, export, new_model

    corpus_dir = args.corpus or default_corpus_dir()
    corpus = Corpus.open(corpus_dir)  # a missing corpus: one line naming the folder
    args.run = args.run or default_run_dir(args.out, None)
    tok = corpus.tokenizer()
    styles = corpus.styles
    names = [s["name"] for s in styles]
    init_dir = None
    if args.init_from:
        from musegen.model import MusegenConfig
        from musegen.studio import resolve_model_dir

        init_dir = resolve_model_dir(args.init_from)
        src = MusegenConfig.from_dict(json.loads((init_dir / "musegen.json").read_text())["musegen_config"])
        args.d_model, args.layers, args.heads, args.d_ff = src.d_model, src.n_layers, src.n_heads, src.d_ff
    cfg = TrainConfig(steps=args.steps or 4000, batch_size=args.batch_size, context=args.context,
                      lr=args.lr or 1.5e-3, warmup=args.warmup, eval_every=args.eval_every,
                      ckpt_every=args.ckpt_every, fim_rate=args.fim_rate, seed=args.seed,
                      style_alpha=args.style_alpha, key_dropout=args.key_dropout, bf16=args.bf16)
    check_bf16(cfg.bf16, pick_device(args.device))  # before the run folder is claimed
    record = {"format": RUN_FORMAT, "command": "train",
              "args": {"corpus": str(corpus_dir.resolve()), "steps": cfg.steps,
                       "batch_size": cfg.batch_size, "context": cfg.context, "lr": cfg.lr,
                       "warmup": cfg.warmup, "d_model": args.d_model, "layers": args.layers,
                       "heads": args.heads, "d_ff": args.d_ff, "fim_rate": cfg.fim_rate,
                       "seed": cfg.seed, "style_alpha": cfg.style_alpha, "keys": args.keys,
                       "key_dropout": cfg.key_dropout, "bf16": cfg.bf16,
                       "init_from": str(init_dir) if init_dir else None},
              "corpus_digest": _digest([corpus_dir / "pieces.jsonl", corpus_dir / "styles.json"])}
    if int(os.environ.get("RANK", "0")) == 0:
        _claim_run_dir(args.run, record, args.no_resume, console)
    train_p, valid_p = corpus.split("train"), corpus.split("valid")
    torch.manual_seed(args.seed)
    model = new_model(tok, names, d_model=args.d_model, n_layers=args.layers,
                      n_heads=args.heads, d_ff=args.d_ff, context=args.context,
                      n_keys=24 if args.keys else 0)
    if init_dir is not None:
        from musegen.train import init_from

        init_from(model, init_dir)
    console.print(f"{model.num_parameters():,} parameters; {len(train_p)} train / "
                  f"{len(valid_p)} valid pieces; {len(names)} styles; device {pick_device(args.device)}")
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
    if init_dir is not None:  # the run it continues, for the card's reproduction and exposure
        src_meta = json.loads((init_dir / "musegen.json").read_text())
        extra["training"]["init_from"] = {"folder": str(init_dir), "training": src_meta.get("training")}
    out = args.out or args.run / "model"
    export(model, out, tok, styles, extra, fp16=args.fp16)
    console.print(f"model written to {out}")
    return 0


def _stage(files: dict[str, Path], staging: Path) -> None:
    """Link the user's files (and only them) into the run's one-style MIDI folder."""
    if staging.parent.exists():
        shutil.rmtree(staging.parent)  # nothing from an earlier staging may join this corpus
    staging.mkdir(parents=True)
    for rel, f in files.items():
        (staging / rel.replace("/", "__")).symlink_to(f.resolve())


def _learn_style(args: argparse.Namespace, console: object) -> int:
    from musegen.errors import ParameterError
    from musegen.model import load_checkpoint
    from musegen.studio import resolve_model_dir
    from musegen.tokenizer import Tokenizer

    init = resolve_model_dir(args.init)
    files = _user_midi_files(args.midi_dir)
    model, meta = load_checkpoint(init, "cpu")
    if args.style in model.cfg.style_names:
        raise ParameterError(f"style {args.style!r} already exists in {init}")
    tok = Tokenizer.load(init)
    idx = model.add_style(args.style)
    cfg = _learn_config(args, idx)
    args.run = args.run or default_run_dir(args.out, args.style)
    _claim_run_dir(args.run, _learn_record(args, init, files, cfg), args.no_resume, console)
    pieces = _style_pieces(args, console, files, idx)
    console.print(f"{len(pieces)} pieces from {len(files)} files in {args.midi_dir}")
    state = _run_training(args, console, model, tok, pieces, [], cfg,
                          list(model.cfg.style_names), args.run / "log.jsonl")
    out = _export_learned(args, init, model, meta, tok, idx, len(pieces), state)
    console.print(f"model with style {args.style!r} written to {out}")
    return 0


def _user_midi_files(midi_dir: Path) -> dict[str, Path]:
    """The MIDI files under --midi-dir (by relative path), or ParameterError if there are none."""
    from musegen.errors import ParameterError

    if not midi_dir.is_dir():
        raise ParameterError(f"--midi-dir {midi_dir} is not a folder")
    files = _midi_files(midi_dir)
    if not files:
        raise ParameterError(f"--midi-dir {midi_dir} holds no .mid or .midi files")
    return files


def _learn_config(args: argparse.Namespace, idx: int) -> TrainConfig:
    """Training of the new style's vector only: short, small batches, a high learning rate."""
    from musegen.train import TrainConfig

    return TrainConfig(steps=args.steps or 300, batch_size=min(args.batch_size, 8),
                       context=min(args.context, 384), lr=args.lr or 2e-2, warmup=20,
                       eval_every=10**9, ckpt_every=args.ckpt_every, fim_rate=args.fim_rate,
                       only_style=idx, seed=args.seed)


def _learn_record(args: argparse.Namespace, init: Path, files: dict[str, Path], cfg: TrainConfig) -> dict:
    """What identifies a style-learning run (run.json): its arguments and digests of its inputs."""
    return {"format": RUN_FORMAT, "command": "train (learn a style)",
            "args": {"init": str(init.resolve()), "midi_dir": str(args.midi_dir.resolve()),
                     "style": args.style, "steps": cfg.steps, "batch_size": cfg.batch_size,
                     "context": cfg.context, "lr": cfg.lr, "fim_rate": cfg.fim_rate,
                     "seed": cfg.seed},
            "init_digest": _digest([init / "model.safetensors", init / "styles.json"]),
            "midi_files": {rel: _digest([f]) for rel, f in files.items()}}


def _style_pieces(args: argparse.Namespace, console: object, files: dict[str, Path],
                  idx: int) -> list[tuple[int, list[int]]]:
    """The user's files as a one-style corpus in the run folder, every piece tagged with the new
    style `idx` (ParameterError if none is usable)."""
    from bridges.commands._ui import progress
    from musegen.corpus import build_corpus
    from musegen.corpus.dataset import Corpus
    from musegen.errors import ParameterError

    # the user's folder becomes a one-style corpus (sub-folder name = style)
    _stage(files, args.run / "midi" / args.style)
    with progress(console, "reading your MIDI files") as bar:
        summary = build_corpus(args.run / "corpus", midi_dir=args.run / "midi", workers=1,
                               on_progress=lambda done, total, msg: bar.update(done, total, msg))
    corpus = Corpus.open(args.run / "corpus")
    pieces = corpus.split("train") + corpus.split("valid") + corpus.split("test")
    if not pieces:
        raise ParameterError(f"no usable MIDI in {args.midi_dir} (skipped: {summary.skipped})")
    return [(idx, ids) for _, ids in pieces]


def _export_learned(args: argparse.Namespace, init: Path, model: MusegenLM, meta: dict, tok: Tokenizer,
                    idx: int, n_pieces: int, state: TrainState) -> Path:
    """The model with its new style written to --out (or the run folder's `model`), with the
    style listed in styles.json and added to the model card; the folder written."""
    from musegen.train import export

    styles = json.loads((init / "styles.json").read_text())
    styles.append({"name": args.style, "description": args.description
                   or f"User style learned from {args.midi_dir}",
                   "pieces": n_pieces, "index": idx})
    extra = {k: v for k, v in meta.items() if k not in ("musegen_config", "versions")}
    extra["learned_style"] = {"name": args.style, "steps": state.step, "pieces": n_pieces,
                              "wall_s": round(state.wall_s, 1),
                              "final_loss": state.history[-1]["loss"] if state.history else None}
    out = args.out or args.run / "model"
    export(model, out, tok, styles, extra)
    card = init / "MODEL_CARD.md"
    base = card.read_text() if card.exists() else f"# musegen model {out.name}\n\nBased on {init}.\n"
    (out / "MODEL_CARD.md").write_text(base + f"\n\n## Added style `{args.style}`\n\n"
                                       f"Learned from {n_pieces} pieces in {state.step} steps "
                                       f"({state.wall_s:.0f} s), style vector only.\n")
    return out
