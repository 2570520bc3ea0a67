"""Training: windows from the corpus cache, fill-in-the-middle, transposition, exact resume.

Every batch is a pure function of (seed, step, rank), and the model has no dropout, so
resuming from a checkpoint continues the very same run: the loss curve after a kill and a
resume is the one an uninterrupted run would have drawn.

The core reports through callbacks and prints nothing; `bridges/commands/train.py` draws the
progress bar. Data-parallel training runs under `torchrun` (DDP, gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import math
import os
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from musegen.atomic import atomic_path
from musegen.errors import ParameterError
from musegen.model import MusegenConfig, MusegenLM, pick_device, save_checkpoint
from musegen.tokenizer import Tokenizer

Piece = tuple[int, np.ndarray]  # (style index, token ids of a whole piece)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 4000
    batch_size: int = 16
    context: int = 512
    lr: float = 1.5e-3
    min_lr_ratio: float = 0.1
    warmup: int = 200
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    fim_rate: float = 0.25
    max_fim_bars: int = 8
    style_dropout: float = 0.1
    transpose_range: tuple[int, int] = (-5, 6)
    eval_every: int = 500
    ckpt_every: int = 250
    eval_pieces_per_style: int = 48
    seed: int = 0
    # learning a new style: train only this style row (index into the style table)
    only_style: int | None = None
    # balanced exposure: draw a row's style with p(style) ~ (its tokens)^style_alpha (0.3-0.5
    # lets the small styles be seen many times); None: pieces by sqrt(length), styles as they come
    style_alpha: float | None = None
    # a model told the key (n_keys > 0): share of windows trained with the "unknown key" row
    key_dropout: float = 0.2
    bf16: bool = False  # bf16 autocast for the training matmuls on CPU too (always on CUDA)


# ----------------------------------------------------------------------------- examples
def make_window(tok: Tokenizer, ids: np.ndarray, rng: np.random.Generator, context: int,
                *, fim: bool, max_fim_bars: int) -> np.ndarray:
    """One training sequence of at most `context` tokens starting at a bar line.

    With `fim`, the bars of the window are rearranged as prefix FILL suffix FILL_START
    middle FILL_END, so the model learns to regenerate a bar range given both sides.
    """
    v = tok.vocab
    bars = tok.bar_offsets(ids)
    if len(bars) == 0:
        return ids[:context]
    # start bar: the piece's beginning a third of the time, else a bar chosen by offset
    if rng.random() < 0.33:
        b0 = 0
    else:
        b0 = int(np.searchsorted(bars, rng.integers(bars[0], len(ids)), side="right")) - 1
    seq = tok.restart_at_bar(ids, b0) if b0 > 0 else ids
    if not fim:
        return seq[:context]
    body = seq[:-1] if seq[-1] == v.eos else seq
    head = tok.header(body)
    sb = tok.bar_offsets(body)
    ends = np.append(sb[1:], len(body))
    budget = context - 3
    n = int(np.searchsorted(ends, budget, side="right"))  # whole bars that fit
    if n < 2:
        return seq[:context]
    k = int(rng.integers(1, min(max_fim_bars, n - 1) + 1))  # middle length in bars
    i = int(rng.integers(0, n - k + 1))
    j = i + k
    pre, mid = body[sb[0]:sb[i]], body[sb[i]:ends[j - 1]]
    suf_bars = body[: ends[n - 1]]
    suf = tok.restart_at_bar(suf_bars, j)[len(head):] if j < n else np.array([], body.dtype)
    # the middle restarts with its own meter and tempo written out, like the suffix
    mid = tok.restart_at_bar(body[: ends[j - 1]], i)[len(head):]
    out = np.concatenate([head, pre, [v.fill], suf, [v.fill_start], mid, [v.fill_end]])
    if len(out) > context:  # restarts added a few tokens: drop the suffix's tail bars
        return seq[:context]
    return out.astype(ids.dtype)


def style_shares(pieces: Sequence[Piece], alpha: float | None) -> dict[int, float]:
    """Each style's share of the rows `make_batch` draws: with `alpha`, p(style) ~ tokens^alpha
    (balanced exposure); without, as the sqrt(length) piece weights add up per style."""
    tokens: dict[int, float] = {}
    roots: dict[int, float] = {}
    for style, ids in pieces:
        tokens[style] = tokens.get(style, 0.0) + len(ids)
        roots[style] = roots.get(style, 0.0) + math.sqrt(len(ids))
    raw = {s: (t ** alpha if alpha is not None else roots[s]) for s, t in tokens.items()}
    total = sum(raw.values())
    return {s: v / total for s, v in sorted(raw.items())}


def _piece_weights(pieces: Sequence[Piece], alpha: float | None) -> np.ndarray:
    """Each piece's probability of opening a row: sqrt(length) within its style (long pieces
    more often, but not in proportion), styles weighted by `style_shares`."""
    roots = np.sqrt(np.array([len(p[1]) for p in pieces], dtype=np.float64))
    if alpha is None:
        return roots / roots.sum()
    style_of = np.array([p[0] for p in pieces])
    out = np.zeros_like(roots)
    for s, share in style_shares(pieces, alpha).items():
        mine = style_of == s
        out[mine] = share * roots[mine] / roots[mine].sum()
    return out / out.sum()


def piece_key_rows(tok: Tokenizer, pieces: Sequence[Piece]) -> np.ndarray:
    """Each piece's key as a key-table row (`musegen.model.key_row`): the Krumhansl estimate
    of its pitched notes (the tokens carry no key signature); 0 when it has none."""
    from musegen.clip import estimate_key, parse_key
    from musegen.model import key_row

    out = np.zeros(len(pieces), dtype=np.int64)
    for i, (_, ids) in enumerate(pieces):
        try:
            key = estimate_key(tok.decode(ids).pitched_notes())
        except Exception:  # noqa: BLE001 - a piece the decoder refuses simply has no key
            key = None
        out[i] = key_row(parse_key(key)) if key else 0
    return out


def shift_key_row(row: int, semitones: int) -> int:
    """The key row of a piece in key `row` transposed by `semitones` (0 stays unknown)."""
    if row <= 0:
        return 0
    minor, tonic = divmod(row - 1, 12)
    return 1 + (tonic + semitones) % 12 + 12 * minor


def make_batch(tok: Tokenizer, pieces: Sequence[Piece], cfg: TrainConfig, step: int,
               rank: int = 0, key_rows: Sequence[int] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids (B, T), style ids (B,), key rows (B, T)) for one step: a pure function of
    (seed, step, rank).

    Each row is packed: windows from pieces of one style follow each other (every one opens
    with its own BOS and header) until the row holds `cfg.context` tokens, so short folk
    tunes do not leave most of a row as padding. The row's style conditions all of them; each
    window's tokens carry its own key (`key_rows[piece]`, moved by the window's transposition;
    `cfg.key_dropout` of the windows, and every one without `key_rows`, get 0, "unknown").
    """
    rng = np.random.default_rng([cfg.seed, step, rank])
    weights = _piece_weights(pieces, cfg.style_alpha)
    by_style: dict[int, np.ndarray] = {}
    for i, (style, _) in enumerate(pieces):
        by_style.setdefault(style, []).append(i)  # type: ignore[arg-type]
    by_style = {k: np.asarray(v) for k, v in by_style.items()}
    picks = rng.choice(len(pieces), size=cfg.batch_size, p=weights)
    rows, styles, keys = [], [], []
    lo, hi = cfg.transpose_range
    for pi in picks:
        style = pieces[pi][0]
        same = by_style[style]
        w = weights[same] / weights[same].sum()
        parts, kparts, n, k = [], [], 0, int(pi)
        while n < cfg.context:
            ids = pieces[k][1]
            semis = int(rng.integers(lo, hi + 1)) if hi > lo else 0
            shifted = tok.transpose(ids, semis) if semis else None
            ids = shifted if shifted is not None else ids
            fim = rng.random() < cfg.fim_rate
            win = make_window(tok, ids, rng, cfg.context - n, fim=fim,
                              max_fim_bars=cfg.max_fim_bars)
            parts.append(win)
            if key_rows is not None:
                told = rng.random() >= cfg.key_dropout
                row = shift_key_row(int(key_rows[k]), semis if shifted is not None else 0)
                kparts.append(np.full(len(win), row if told else 0, dtype=np.int64))
            n += len(win)
            k = int(rng.choice(same, p=w))
            if len(parts) >= 64:
                break
        rows.append(np.concatenate(parts)[: cfg.context])
        keys.append(np.concatenate(kparts)[: cfg.context] if kparts else np.zeros(len(rows[-1]), np.int64))
        keep = rng.random() >= cfg.style_dropout or cfg.only_style is not None
        styles.append(style + 1 if keep else 0)
    T = max(len(s) for s in rows)
    batch = np.full((len(rows), T), tok.vocab.pad, dtype=np.int64)
    kb = np.zeros((len(rows), T), dtype=np.int64)
    for r, s in enumerate(rows):
        batch[r, : len(s)] = s
        kb[r, : len(s)] = keys[r]
    return torch.from_numpy(batch), torch.tensor(styles, dtype=torch.long), torch.from_numpy(kb)


def heldout_windows(pieces: Sequence[Piece], context: int, per_style: int | None = None
                    ) -> list[Piece]:
    """The evaluation protocol shared with the n-gram baseline: the first `context` tokens
    of each held-out piece (at most `per_style` pieces per style, in corpus order)."""
    out, seen = [], {}
    for style, ids in pieces:
        if per_style is not None and seen.get(style, 0) >= per_style:
            continue
        seen[style] = seen.get(style, 0) + 1
        out.append((style, np.asarray(ids[:context])))
    return out


@torch.no_grad()
def token_nll(model: MusegenLM, windows: Sequence[Piece], *, batch_size: int = 16,
              style_offset: int = 1, key_rows: Sequence[int] | None = None) -> list[np.ndarray]:
    """Per-token NLL (nats) of tokens 1.. of each window under its own style (and, given
    `key_rows`, one per window, its key; else the unknown-key row)."""
    model.eval()
    dev = next(model.parameters()).device
    out: list[np.ndarray] = []
    for k in range(0, len(windows), batch_size):
        chunk = windows[k:k + batch_size]
        T = max(len(w) for _, w in chunk)
        ids = torch.zeros(len(chunk), T, dtype=torch.long)
        for r, (_, w) in enumerate(chunk):
            ids[r, : len(w)] = torch.from_numpy(w.astype(np.int64))
        ids = ids.to(dev)
        style = model.style_vectors(torch.tensor([s + style_offset for s, _ in chunk], device=dev))
        if key_rows is not None:
            style = style + model.key_vectors(torch.tensor(list(key_rows[k:k + batch_size]), device=dev))
        logits = model(ids, style).float()
        nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
        for r, (_, w) in enumerate(chunk):
            out.append(nll[r, : len(w) - 1].cpu().numpy())
    return out


def nll_by_style(windows: Sequence[Piece], nlls: Sequence[np.ndarray]) -> dict[int, float]:
    tot: dict[int, list[float]] = {}
    for (style, _), x in zip(windows, nlls):
        acc = tot.setdefault(style, [0.0, 0.0])
        acc[0] += float(x.sum())
        acc[1] += len(x)
    return {s: a / max(n, 1) for s, (a, n) in sorted(tot.items())}


# ----------------------------------------------------------------------------- the loop
@dataclass
class TrainState:
    step: int = 0
    history: list[dict] = field(default_factory=list)  # {"step", "loss", "lr", "tok_s"}
    evals: list[dict] = field(default_factory=list)  # {"step", "valid_nll": {style: nll}}
    wall_s: float = 0.0


def lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def _optimizer(model: MusegenLM, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.only_style is not None:
        return torch.optim.AdamW([model.styles.weight], lr=cfg.lr, weight_decay=0.0)
    table = ("styles.", "keys.")  # the style and key tables: no weight decay
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith(table)]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2 or n.startswith(table)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": rest, "weight_decay": 0.0}],
                             lr=cfg.lr, betas=(0.9, 0.95))


def save_training_state(path: Path, model: MusegenLM, opt: torch.optim.Optimizer,
                        state: TrainState, cfg: TrainConfig) -> None:
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "model_config": model.cfg.to_dict(),
                    "optimizer": opt.state_dict(), "state": asdict(state),
                    "train_config": asdict(cfg)}, tmp)


def load_training_state(path: Path) -> dict:
    """A checkpoint written by `save_training_state`; ParameterError if it cannot be read."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as e:
        raise ParameterError(f"{path}: not a readable training checkpoint ({e})") from e


# how often to evaluate and checkpoint does not change the weights: these may differ on resume
FREE_ON_RESUME = frozenset({"eval_every", "ckpt_every", "eval_pieces_per_style"})


def check_resumable(saved: dict, model: MusegenLM, cfg: TrainConfig, path: Path) -> None:
    """Refuse to continue a checkpoint under another training or model config: the result
    would be neither run. The message names each differing field, its old and new value."""
    diff = []
    for what, old, new in (("train config", saved.get("train_config", {}), asdict(cfg)),
                           ("model config", saved.get("model_config", {}), model.cfg.to_dict())):
        for key in sorted((set(old) & set(new)) - FREE_ON_RESUME):
            a, b = old[key], new[key]
            if (list(a) if isinstance(a, tuple) else a) != (list(b) if isinstance(b, tuple) else b):
                diff.append(f"{what} {key}={a!r} there, {b!r} now")
    if diff:
        raise ParameterError(f"{path} belongs to another run ({'; '.join(diff)}): resume it with "
                             "its own settings, or start over without resuming")


def _init_distributed(dev: torch.device) -> tuple[bool, int, torch.device]:
    """(distributed, rank, device): under `torchrun` (WORLD_SIZE > 1) joins the process group
    (nccl on CUDA, gloo on CPU) and takes this process's GPU; else (False, 0, dev)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False, 0, dev
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    rank = dist.get_rank()
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return True, rank, dev


def _restore(ckpt: Path, model: MusegenLM, cfg: TrainConfig, resume: bool
             ) -> tuple[TrainState, dict | None]:
    """(the state to continue from, the checkpoint read): with `resume` and a checkpoint, its
    weights are loaded into `model`; otherwise a fresh state and None."""
    if not (resume and ckpt.exists()):
        return TrainState(), None
    saved = load_training_state(ckpt)
    check_resumable(saved, model, cfg, ckpt)
    model.load_state_dict(saved["model"])
    return TrainState(**saved["state"]), saved


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls natively (AVX512-BF16 or AMX tiles), as torch sees it;
    True when this torch cannot tell (its probes are private and may move)."""
    probes = [getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(p is None for p in probes):
        return True
    return any(p() for p in probes)  # type: ignore[misc]


def check_bf16(bf16: bool, dev: torch.device) -> None:
    """bf16 autocast on a CPU that would emulate it is refused (ParameterError naming --bf16)."""
    if bf16 and dev.type == "cpu" and not cpu_has_bf16():
        raise ParameterError("--bf16: this CPU has no bf16 matrix instructions (AVX512-BF16 or AMX); "
                             "torch emulates bf16 on it, ~18x slower than fp32 (measured 130 vs "
                             "~2,300 tokens/s on a 2-core Zen 3 EPYC): train without --bf16")


def _ddp(model: MusegenLM) -> torch.nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)


def _keep_only_style_grad(model: MusegenLM, only_style: int) -> None:
    """Learn one style row, leave the others as they are."""
    g = model.styles.weight.grad
    keep = torch.zeros_like(g)
    keep[only_style + 1] = 1
    g.mul_(keep)


def _train_step(model: MusegenLM, net: torch.nn.Module, opt: torch.optim.Optimizer,
                tok: Tokenizer, pieces: Sequence[Piece], cfg: TrainConfig, state: TrainState,
                dev: torch.device, rank: int, key_rows: np.ndarray | None = None) -> dict:
    """One optimizer step (batch `state.step`), advancing `state.step`; returns the step's
    record, also appended to `state.history`."""
    step = state.step
    ids, style_ids, keys = make_batch(tok, pieces, cfg, step, rank, key_rows)
    ids, style_ids = ids.to(dev), style_ids.to(dev)
    for g in opt.param_groups:
        g["lr"] = lr_at(cfg, step)
    t0 = time.time()
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda" or cfg.bf16):
        style = model.style_vectors(style_ids)
        if key_rows is not None:  # one vector per position: each window's own key
            style = style[:, None, :] + model.key_vectors(keys.to(dev))
        logits = net(ids, style)
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                               ids[:, 1:].reshape(-1), ignore_index=tok.vocab.pad)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.only_style is not None:
        _keep_only_style_grad(model, cfg.only_style)
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    n_tok = int((ids != tok.vocab.pad).sum())
    dt = time.time() - t0
    state.step += 1
    rec = {"step": state.step, "loss": float(loss.detach()), "lr": lr_at(cfg, step),
           "tok_s": n_tok * (int(os.environ.get("WORLD_SIZE", "1"))) / max(dt, 1e-9)}
    state.history.append(rec)
    return rec


def _due(state: TrainState, cfg: TrainConfig, every: int) -> bool:
    """Whether the step just done is a multiple of `every`, or the last one."""
    return state.step % every == 0 or state.step == cfg.steps


def _evaluate(model: MusegenLM, valid: Sequence[Piece], state: TrainState,
              on_eval: Callable[[int, dict[int, float]], None] | None,
              key_rows: np.ndarray | None = None) -> None:
    per_style = nll_by_style(valid, token_nll(model, valid, key_rows=key_rows))
    state.evals.append({"step": state.step, "valid_nll": per_style})
    model.train()
    if on_eval:
        on_eval(state.step, per_style)


def train(
    model: MusegenLM,
    tok: Tokenizer,
    train_pieces: Sequence[Piece],
    valid_pieces: Sequence[Piece],
    cfg: TrainConfig,
    run_dir: Path,
    *,
    device: str | None = None,
    resume: bool = True,
    on_step: Callable[[int, dict], None] | None = None,
    on_eval: Callable[[int, dict[int, float]], None] | None = None,
    stop_after: int | None = None,
) -> TrainState:
    """Train `model` for `cfg.steps` steps, checkpointing to `run_dir/last.pt`.

    If `run_dir/last.pt` exists and `resume`, training continues from it exactly; a
    checkpoint of another config (other steps, lr, sizes, styles...) raises ParameterError.
    `stop_after` ends the call after that many steps (tests use it to simulate a kill).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "last.pt"
    distributed, rank, dev = _init_distributed(pick_device(device))
    check_bf16(cfg.bf16, dev)
    state, saved = _restore(ckpt, model, cfg, resume)
    model.to(dev).train()
    opt = _optimizer(model, cfg)
    if saved is not None:
        opt.load_state_dict(saved["optimizer"])
    net = _ddp(model) if distributed else model
    valid = heldout_windows(valid_pieces, cfg.context, cfg.eval_pieces_per_style)
    # a model told the key: each piece's key, estimated once (the validation windows' too)
    told = model.cfg.n_keys > 0  # (learning a style too: its vector is learned as it will be used)
    key_rows = piece_key_rows(tok, train_pieces) if told else None
    valid_keys = piece_key_rows(tok, valid) if told else None
    t_start, done_here = time.time(), 0
    while state.step < cfg.steps:
        rec = _train_step(model, net, opt, tok, train_pieces, cfg, state, dev, rank, key_rows)
        done_here += 1
        if rank == 0:
            if on_step:
                on_step(state.step, rec)
            if valid and _due(state, cfg, cfg.eval_every):
                _evaluate(model, valid, state, on_eval, valid_keys)
            if _due(state, cfg, cfg.ckpt_every):
                state.wall_s += time.time() - t_start
                t_start = time.time()
                save_training_state(ckpt, model, opt, state, cfg)
        if stop_after is not None and done_here >= stop_after:
            break
    state.wall_s += time.time() - t_start
    if distributed:
        import torch.distributed as dist

        dist.barrier()
    return state


def init_from(model: MusegenLM, folder: Path) -> None:
    """Start `model` from a trained model folder: its language model and style table (same
    vocabulary, styles and shape, else ParameterError naming what differs); a key table the
    folder's model lacks (`n_keys`) starts fresh and is learned by the run."""
    from musegen.model import load_checkpoint

    src, _ = load_checkpoint(folder, "cpu")
    a, b = src.cfg, model.cfg
    for name in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "style_names"):
        if getattr(a, name) != getattr(b, name):
            raise ParameterError(f"--init-from {folder}: its {name} is {getattr(a, name)!r}, this "
                                 f"run's is {getattr(b, name)!r}; use the same sizes and corpus")
    if a.n_keys and a.n_keys != b.n_keys:
        raise ParameterError(f"--init-from {folder}: it is told {a.n_keys} keys, this run {b.n_keys}")
    state = {k: v for k, v in src.state_dict().items() if b.n_keys or not k.startswith("keys.")}
    missing = model.load_state_dict(state, strict=False).missing_keys
    if any(not k.startswith("keys.") for k in missing):
        raise ParameterError(f"--init-from {folder}: weights missing for {missing[0]}")


def new_model(tok: Tokenizer, style_names: Sequence[str], **sizes: int) -> MusegenLM:
    v = tok.vocab
    cfg = MusegenConfig(vocab_size=v.size, n_styles=len(style_names), pad_id=v.pad,
                        bos_id=v.bos, eos_id=v.eos, style_names=tuple(style_names), **sizes)
    return MusegenLM(cfg)


def export(model: MusegenLM, out_dir: Path, tok: Tokenizer, styles: list[dict],
           extra: dict | None = None, *, fp16: bool = False) -> Path:
    """The checkpoint folder: HF config + weights, style table, styles.json, tokenizer."""
    save_checkpoint(model.cpu(), out_dir, styles=styles, extra=extra,
                    dtype=torch.float16 if fp16 else torch.float32)
    tok.save(out_dir)
    return out_dir


__all__ = ["TrainConfig", "TrainState", "train", "make_batch", "make_window", "token_nll",
           "style_shares", "piece_key_rows", "shift_key_row", "init_from",
           "heldout_windows", "nll_by_style", "new_model", "export", "lr_at",
           "save_training_state", "load_training_state", "check_resumable"]
